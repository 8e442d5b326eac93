// The surrogate kernels, instantiated by kernels.c for T = float and T = double with S(name)
// appending the type suffix. No include guard: it is meant to be included twice.

static inline T S(soma_s2nn_derivative)(T v, T alpha, T beta) {
  int below = v < 0;
  T z = alpha * v;
  z = z < 0 ? z : -z;  // −|αx|: exp never overflows
  T e = S(soma_exp_neg)(z);
  T d = 1 + e;
  // One division whose operands are chosen per branch first: β/(x+1) is never formed for
  // x < 0, where x = −1 would make it infinite.
  T num = below ? alpha * e : beta;
  T den = below ? d * d : v + 1;
  return num / den;
}

SOMA_CLONES
void S(soma_surrogate_s2nn)(const T *restrict x, T *restrict out, size_t n, T alpha, T beta) {
#if defined(SOMA_S2NN_AVX512)
  if (has_avx512()) return S(s2nn_avx512)(x, out, n, alpha, beta);
#endif
  for (size_t i = 0; i < n; i++) out[i] = S(soma_s2nn_derivative)(x[i], alpha, beta);
}

// One reverse LIF step with the S2NN derivative inlined: the shift, derivative and backward
// passes of soma_lif_shift / soma_surrogate_s2nn / soma_lif_backward fused into one loop over
// the neurons, with the same expressions (so the same results bit for bit).
SOMA_CLONES
void S(soma_lif_backward_s2nn)(const T *restrict grad_spikes, const T *restrict h,
                               T *restrict gv, T *restrict grad_current, size_t n, T beta,
                               T threshold, int zero_reset, int detach_reset, T s_alpha,
                               T s_beta) {
#pragma STDC FP_CONTRACT OFF
#if defined(SOMA_S2NN_AVX512)
  if (has_avx512())
    return S(lif_backward_s2nn_avx512)(grad_spikes, h, gv, grad_current, n, beta, threshold,
                                       zero_reset, detach_reset, s_alpha, s_beta);
#endif
  if (!zero_reset && !detach_reset) {
    for (size_t i = 0; i < n; i++) {
      T sg = S(soma_s2nn_derivative)(h[i] - threshold, s_alpha, s_beta);
      T dh = grad_spikes[i] * sg + gv[i] * ((T)1 - threshold * sg);
      grad_current[i] = dh;
      gv[i] = beta * dh;
    }
  } else if (!zero_reset) {
    for (size_t i = 0; i < n; i++) {
      T sg = S(soma_s2nn_derivative)(h[i] - threshold, s_alpha, s_beta);
      T dh = grad_spikes[i] * sg + gv[i];
      grad_current[i] = dh;
      gv[i] = beta * dh;
    }
  } else if (!detach_reset) {
    for (size_t i = 0; i < n; i++) {
      T sg = S(soma_s2nn_derivative)(h[i] - threshold, s_alpha, s_beta);
      T keep = (h[i] - threshold >= 0) ? (T)0 : (T)1;
      T dh = grad_spikes[i] * sg + gv[i] * (keep - h[i] * sg);
      grad_current[i] = dh;
      gv[i] = beta * dh;
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      T sg = S(soma_s2nn_derivative)(h[i] - threshold, s_alpha, s_beta);
      T keep = (h[i] - threshold >= 0) ? (T)0 : (T)1;
      T dh = grad_spikes[i] * sg + gv[i] * keep;
      grad_current[i] = dh;
      gv[i] = beta * dh;
    }
  }
}

// One reverse LIF step with the arctangent derivative c / (1 + (k·x)²) of x = h − θ inlined
// (k = π·α/2 and c = α/2 as Arctan rounds them): the expressions of soma_lif_shift,
// Arctan.derivative and soma_lif_backward in one loop, so the same results bit for bit.
SOMA_CLONES
void S(soma_lif_backward_arctan)(const T *restrict grad_spikes, const T *restrict h,
                                 T *restrict gv, T *restrict grad_current, size_t n, T beta,
                                 T threshold, int zero_reset, int detach_reset, T k, T c) {
#pragma STDC FP_CONTRACT OFF
#define SOMA_ARCTAN_SG(i)                                                                     \
  const T x = h[i] - threshold;                                                               \
  const T z = k * x;                                                                          \
  const T sg = c / ((T)1 + z * z);
  if (!zero_reset && !detach_reset) {
    for (size_t i = 0; i < n; i++) {
      SOMA_ARCTAN_SG(i)
      T dh = grad_spikes[i] * sg + gv[i] * ((T)1 - threshold * sg);
      grad_current[i] = dh;
      gv[i] = beta * dh;
    }
  } else if (!zero_reset) {
    for (size_t i = 0; i < n; i++) {
      SOMA_ARCTAN_SG(i)
      T dh = grad_spikes[i] * sg + gv[i];
      grad_current[i] = dh;
      gv[i] = beta * dh;
    }
  } else if (!detach_reset) {
    for (size_t i = 0; i < n; i++) {
      SOMA_ARCTAN_SG(i)
      T keep = (x >= 0) ? (T)0 : (T)1;
      T dh = grad_spikes[i] * sg + gv[i] * (keep - h[i] * sg);
      grad_current[i] = dh;
      gv[i] = beta * dh;
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      SOMA_ARCTAN_SG(i)
      T keep = (x >= 0) ? (T)0 : (T)1;
      T dh = grad_spikes[i] * sg + gv[i] * keep;
      grad_current[i] = dh;
      gv[i] = beta * dh;
    }
  }
#undef SOMA_ARCTAN_SG
}

SOMA_CLONES
void S(soma_surrogate_sigmoid)(const T *restrict x, T *restrict out, size_t n, T alpha) {
  for (size_t i = 0; i < n; i++) {
    T z = alpha * x[i];
    z = z < 0 ? z : -z;
    T e = S(soma_exp_neg)(z);
    T d = 1 + e;
    out[i] = alpha * e / (d * d);
  }
}

SOMA_CLONES
void S(soma_surrogate_exp_abs)(const T *restrict x, T *restrict out, size_t n, T alpha,
                               T scale) {
  for (size_t i = 0; i < n; i++) {
    T z = alpha * x[i];
    z = z < 0 ? z : -z;
    out[i] = scale * S(soma_exp_neg)(z);
  }
}

SOMA_CLONES
void S(soma_surrogate_gaussian)(const T *restrict x, T *restrict out, size_t n, T k, T scale) {
  for (size_t i = 0; i < n; i++) {
    T z = k * x[i];
    out[i] = scale * S(soma_exp_neg)(-(z * z));
  }
}

SOMA_CLONES
void S(soma_surrogate_multi_gaussian)(const T *restrict x, T *restrict out, size_t n, T center,
                                      T side, T k0, T k1, T mu) {
  for (size_t i = 0; i < n; i++) {
    T v = x[i];
    T z0 = v * k0;
    T zp = (v - mu) * k1;
    T zm = (v + mu) * k1;
    out[i] = center * S(soma_exp_neg)(-(z0 * z0)) -
             side * (S(soma_exp_neg)(-(zp * zp)) + S(soma_exp_neg)(-(zm * zm)));
  }
}

SOMA_CLONES
void S(soma_surrogate_q_pseudo_spike)(const T *restrict x, T *restrict out, size_t n, T c,
                                      T alpha) {
  for (size_t i = 0; i < n; i++) {
    T a = x[i] < 0 ? -x[i] : x[i];
    out[i] = S(soma_exp_neg)(-alpha * S(soma_log_ge1)(1 + c * a));
  }
}

SOMA_CLONES
void S(soma_surrogate_squarewave)(const T *restrict x, T *restrict out, size_t n, T period,
                                  int harmonics, T scale) {
  enum { block = 256 };
  T hi[block], lo[block];
  const T half = period / 2;
  for (size_t start = 0; start < n; start += block) {
    size_t m = n - start < block ? n - start : block;
    const T *xb = x + start;
    T *ob = out + start;
    // x reduced exactly into [−T/2, T/2], in half-turns as hi + lo.
    for (size_t i = 0; i < m; i++) {
      T k = RINT(xb[i] / period);
      T r = FMA(-k, period, xb[i]);
      T h = r / half;
      hi[i] = h;
      lo[i] = FMA(-h, half, r) / half;
      ob[i] = 0;
    }
    for (int j = 0; j < harmonics; j++) {
      T c = (T)(2 * j + 1);
      for (size_t i = 0; i < m; i++) {
        T v = c * hi[i];
        T err = FMA(c, hi[i], -v);
        T w = (v - 2 * S(soma_round_small)(v / 2)) + (err + c * lo[i]);
        T a = w < 0 ? -w : w;
        ob[i] += S(soma_sinpi)((T)0.5 - a);  // cos(π·w)
      }
    }
    for (size_t i = 0; i < m; i++) ob[i] *= scale;
  }
}
