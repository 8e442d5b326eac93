#include "SomaCUBA.h"
#include "SomaKernels.h"
#include <string.h>

#include "cpu.h"
#include "s2nn_avx512.h"

size_t soma_cuba_row_stride(size_t hidden) { return (hidden + 15) & ~(size_t)15; }

// Where one pass of the hidden recurrence runs and writes: samples b = samples[i] (or b0 + i
// when samples is NULL) for i < count, over the steps from t0 on (the state is zero at t0),
// with their state syn/mem at i·ld; x = mem − θ of (t, i), if x is not NULL, at
// (t·count + i)·ld; spike lists and the readout current, if spike_idx is not NULL, at row
// r = t·batch + b (ld = soma_cuba_row_stride(hidden)).
typedef struct {
  const int32_t *samples;
  size_t b0, count, t0;
  float *syn, *mem, *x;
  int32_t *spike_count;
  uint16_t *spike_idx;
  float *j_out;
} cuba_pass;

SOMA_CLONES
static void forward_portable(size_t steps, size_t batch, size_t hidden, size_t outputs,
                             const int32_t *in_row_start, const int32_t *in_idx,
                             const float *w1t, const float *w2t, float alpha, float beta,
                             float threshold, cuba_pass o) {
  const size_t ld = soma_cuba_row_stride(hidden);
  for (size_t k = 0; k < o.count * ld; k++) o.syn[k] = o.mem[k] = 0.0f;
  for (size_t t = o.t0; t < steps; t++) {
    for (size_t i = 0; i < o.count; i++) {
      const size_t b = o.samples ? (size_t)o.samples[i] : o.b0 + i;
      const size_t r = t * batch + b;
      float *restrict sy = o.syn + i * ld;
      float *restrict mv = o.mem + i * ld;
      // Spikes from the old membrane; record mem − θ.
      if (o.x) {
        float *restrict xo = o.x + (t * o.count + i) * ld;
        for (size_t h = 0; h < hidden; h++) xo[h] = mv[h] - threshold;
      }
      int32_t n = 0;
      if (o.spike_idx) {
        // Branch-free compaction: at a few % spikes a branch here mispredicts on every
        // spike, which made steps of busier networks measurably slower.
        uint16_t *restrict si = o.spike_idx + r * hidden;
        for (size_t h = 0; h < hidden; h++) {
          si[n] = (uint16_t)h;
          n += mv[h] - threshold >= 0.0f;
        }
        o.spike_count[r] = n;
      }
      // mem ← (β·mem + syn)·(1 − s), syn ← α·syn (the input current is added below).
      for (size_t h = 0; h < hidden; h++) {
        const float keep = mv[h] - threshold >= 0.0f ? 0.0f : 1.0f;
        mv[h] = (beta * mv[h] + sy[h]) * keep;
        sy[h] = alpha * sy[h];
      }
      for (int32_t e = in_row_start[r]; e < in_row_start[r + 1]; e++) {
        const float *restrict w = w1t + (size_t)in_idx[e] * ld;
        for (size_t h = 0; h < hidden; h++) sy[h] += w[h];
      }
      if (o.spike_idx) {
        const uint16_t *restrict si = o.spike_idx + r * hidden;
        float *restrict jo = o.j_out + r * outputs;
        for (size_t q = 0; q < outputs; q++) jo[q] = 0.0f;
        for (int32_t j = 0; j < n; j++) {
          const float *restrict w = w2t + (size_t)si[j] * outputs;
          for (size_t q = 0; q < outputs; q++) jo[q] += w[q];
        }
      }
    }
  }
}

#ifdef SOMA_X86
// The same recurrence one 16-neuron chunk at a time: the threshold test gives a bit mask, the
// LIF update and the input currents go through registers once, and the spike list is read
// off the masks' set bits (a cost per spike, not per neuron: the portable loop's compaction
// was half of the forward's time). The operations and their order are the portable
// version's, so the results are equal bit for bit to its x86-64-v4 clone's.
AVX512 static void forward_avx512(size_t steps, size_t batch, size_t hidden, size_t outputs,
                                  const int32_t *in_row_start, const int32_t *in_idx,
                                  const float *w1t, const float *w2t, float alpha, float beta,
                                  float threshold, cuba_pass o) {
  const size_t ld = soma_cuba_row_stride(hidden);
  for (size_t k = 0; k < o.count * ld; k++) o.syn[k] = o.mem[k] = 0.0f;
  const __m512 vth = _mm512_set1_ps(threshold), va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
  const __m512 one = _mm512_set1_ps(1.0f);
  const __mmask16 omask = (__mmask16)(outputs >= 16 ? 0xffffu : (1u << outputs) - 1u);
  // A sample's spikes are read off all its chunks' masks after the chunk loop, 64 neurons a
  // word: a loop over the set bits per 16-neuron chunk mispredicted on most chunks that fired
  // and cost 15–20 % of a busy network's forward. (Spike indices are uint16: hidden ≤ 65536.)
  const size_t words = (hidden + 63) / 64;
  uint64_t fired[1024] = {0};
  for (size_t t = o.t0; t < steps; t++) {
    for (size_t i = 0; i < o.count; i++) {
      const size_t b = o.samples ? (size_t)o.samples[i] : o.b0 + i;
      const size_t r = t * batch + b;
      float *restrict sy = o.syn + i * ld;
      float *restrict mv = o.mem + i * ld;
      float *restrict xo = o.x ? o.x + (t * o.count + i) * ld : NULL;
      uint16_t *restrict si = o.spike_idx ? o.spike_idx + r * hidden : NULL;
      const int32_t e0 = in_row_start[r], e1 = in_row_start[r + 1];
      int32_t n = 0;
      for (size_t c = 0; c < hidden; c += 16) {
        const __mmask16 lm =
            (__mmask16)(hidden - c >= 16 ? 0xffffu : (1u << (hidden - c)) - 1u);
        const __m512 m = _mm512_maskz_loadu_ps(lm, mv + c);
        const __m512 s = _mm512_maskz_loadu_ps(lm, sy + c);
        const __m512 x = _mm512_sub_ps(m, vth);
        if (xo) _mm512_mask_storeu_ps(xo + c, lm, x);
        const __mmask16 fire = _mm512_mask_cmp_ps_mask(lm, x, zero, _CMP_GE_OQ);
        const __m512 keep = _mm512_mask_blend_ps(fire, one, zero);
        _mm512_mask_storeu_ps(mv + c, lm, _mm512_mul_ps(_mm512_fmadd_ps(vb, m, s), keep));
        __m512 acc = _mm512_mul_ps(va, s);
        for (int32_t e = e0; e < e1; e++)
          acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(lm, w1t + (size_t)in_idx[e] * ld + c));
        _mm512_mask_storeu_ps(sy + c, lm, acc);
        if (si) fired[c >> 6] |= (uint64_t)fire << (c & 63);
      }
      if (!si) continue;
      float *restrict jo = o.j_out + r * outputs;
      __m512 j = zero;
      for (size_t wi = 0; wi < words; wi++) {
        for (uint64_t f = fired[wi]; f; f &= f - 1) {
          const size_t h = wi * 64 + (size_t)__builtin_ctzll(f);
          si[n++] = (uint16_t)h;
          if (outputs <= 16)
            j = _mm512_add_ps(j, _mm512_maskz_loadu_ps(omask, w2t + h * outputs));
        }
        fired[wi] = 0;
      }
      o.spike_count[r] = n;
      if (outputs <= 16) {
        _mm512_mask_storeu_ps(jo, omask, j);
      } else {
        for (size_t q = 0; q < outputs; q++) jo[q] = 0.0f;
        for (int32_t q = 0; q < n; q++) {
          const float *restrict w = w2t + (size_t)si[q] * outputs;
          for (size_t k = 0; k < outputs; k++) jo[k] += w[k];
        }
      }
    }
  }
}
#endif

#ifdef SOMA_X86
// forward_avx512 with 8 lanes, for CPUs with AVX2 only: the same operations in the same
// order (so equal bit for bit to the portable loop's x86-64-v3 clone). Chunks load and store
// whole vectors: rows are soma_cuba_row_stride(hidden) floats apart, so the lanes past
// `hidden` are the rows' own padding, and their threshold tests are masked off.
AVX2 static void forward_avx2(size_t steps, size_t batch, size_t hidden, size_t outputs,
                              const int32_t *in_row_start, const int32_t *in_idx,
                              const float *w1t, const float *w2t, float alpha, float beta,
                              float threshold, cuba_pass o) {
  const size_t ld = soma_cuba_row_stride(hidden);
  for (size_t k = 0; k < o.count * ld; k++) o.syn[k] = o.mem[k] = 0.0f;
  const __m256 vth = _mm256_set1_ps(threshold), va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta), zero = _mm256_setzero_ps();
  const __m256 one = _mm256_set1_ps(1.0f);
  const size_t words = (hidden + 63) / 64;
  uint64_t fired[1024] = {0};
  const __m256i o0 = soma_lanes8(outputs), o1 = soma_lanes8(outputs > 8 ? outputs - 8 : 0);
  for (size_t t = o.t0; t < steps; t++) {
    for (size_t i = 0; i < o.count; i++) {
      const size_t b = o.samples ? (size_t)o.samples[i] : o.b0 + i;
      const size_t r = t * batch + b;
      float *restrict sy = o.syn + i * ld;
      float *restrict mv = o.mem + i * ld;
      float *restrict xo = o.x ? o.x + (t * o.count + i) * ld : NULL;
      uint16_t *restrict si = o.spike_idx ? o.spike_idx + r * hidden : NULL;
      const int32_t e0 = in_row_start[r], e1 = in_row_start[r + 1];
      int32_t n = 0;
      for (size_t c = 0; c < hidden; c += 8) {
        const unsigned lanes = hidden - c >= 8 ? 0xffu : (1u << (hidden - c)) - 1u;
        const __m256 m = _mm256_loadu_ps(mv + c);
        const __m256 s = _mm256_loadu_ps(sy + c);
        const __m256 x = _mm256_sub_ps(m, vth);
        if (xo) _mm256_storeu_ps(xo + c, x);
        const __m256 fire = _mm256_cmp_ps(x, zero, _CMP_GE_OQ);
        const __m256 keep = _mm256_blendv_ps(one, zero, fire);
        _mm256_storeu_ps(mv + c, _mm256_mul_ps(_mm256_fmadd_ps(vb, m, s), keep));
        _mm256_storeu_ps(sy + c, _mm256_mul_ps(va, s));
        if (si) fired[c >> 6] |= (uint64_t)((unsigned)_mm256_movemask_ps(fire) & lanes) << (c & 63);
      }
      // The input currents, event by event over the whole row: a loop per chunk over the
      // row's few events (0–8, irregular) mispredicted its exit in every chunk.
      for (int32_t e = e0; e < e1; e++) {
        const float *restrict w = w1t + (size_t)in_idx[e] * ld;
        for (size_t c = 0; c < hidden; c += 8)
          _mm256_storeu_ps(sy + c, _mm256_add_ps(_mm256_loadu_ps(sy + c), _mm256_loadu_ps(w + c)));
      }
      if (!si) continue;
      float *restrict jo = o.j_out + r * outputs;
      __m256 j0 = zero, j1 = zero;
      for (size_t wi = 0; wi < words; wi++) {
        for (uint64_t f = fired[wi]; f; f &= f - 1) {
          const size_t h = wi * 64 + (size_t)__builtin_ctzll(f);
          si[n++] = (uint16_t)h;
          if (outputs <= 16) {
            const float *w = w2t + h * outputs;
            j0 = _mm256_add_ps(j0, _mm256_maskload_ps(w, o0));
            if (outputs > 8) j1 = _mm256_add_ps(j1, _mm256_maskload_ps(w + 8, o1));
          }
        }
        fired[wi] = 0;
      }
      o.spike_count[r] = n;
      if (outputs <= 16) {
        _mm256_maskstore_ps(jo, o0, j0);
        if (outputs > 8) _mm256_maskstore_ps(jo + 8, o1, j1);
      } else {
        for (size_t q = 0; q < outputs; q++) jo[q] = 0.0f;
        for (int32_t q = 0; q < n; q++) {
          const float *restrict w = w2t + (size_t)si[q] * outputs;
          for (size_t k = 0; k < outputs; k++) jo[k] += w[k];
        }
      }
    }
  }
}
#endif

static void forward(size_t steps, size_t batch, size_t hidden, size_t outputs,
                    const int32_t *in_row_start, const int32_t *in_idx, const float *w1t,
                    const float *w2t, float alpha, float beta, float threshold, cuba_pass o) {
#ifdef SOMA_X86
  if (has_avx512() && hidden <= 65536) {  // the mask words below are sized for 16-bit indices
    forward_avx512(steps, batch, hidden, outputs, in_row_start, in_idx, w1t, w2t, alpha, beta,
                   threshold, o);
    return;
  }
  if (has_avx2() && hidden <= 65536) {
    forward_avx2(steps, batch, hidden, outputs, in_row_start, in_idx, w1t, w2t, alpha, beta,
                 threshold, o);
    return;
  }
#endif
  forward_portable(steps, batch, hidden, outputs, in_row_start, in_idx, w1t, w2t, alpha, beta,
                   threshold, o);
}

void soma_cuba_forward_f32(size_t steps, size_t batch, size_t inputs, size_t hidden,
                           size_t outputs, size_t b0, size_t b1, const int32_t *in_row_start,
                           const int32_t *in_idx, const float *w1t, const float *w2t,
                           float alpha, float beta, float threshold, float *syn, float *mem,
                           int32_t *spike_count, uint16_t *spike_idx, float *j_out) {
  (void)inputs;
  const size_t ld = soma_cuba_row_stride(hidden);
  const cuba_pass o = {NULL, b0,          b1 - b0,   0,    syn + b0 * ld, mem + b0 * ld,
                       NULL, spike_count, spike_idx, j_out};
  forward(steps, batch, hidden, outputs, in_row_start, in_idx, w1t, w2t, alpha, beta,
          threshold, o);
}

void soma_cuba_states_f32(size_t t_begin, size_t steps, size_t batch, size_t hidden,
                          const int32_t *samples, size_t count, const int32_t *in_row_start,
                          const int32_t *in_idx, const float *w1t, float alpha, float beta,
                          float threshold, float *syn, float *mem, float *x_out) {
  const cuba_pass o = {samples, 0, count, t_begin, syn, mem, x_out, NULL, NULL, NULL};
  forward(steps, batch, hidden, 0, in_row_start, in_idx, w1t, NULL, alpha, beta, threshold,
          o);
}

// A built-in surrogate's derivative of one row of x, as the bulk kernels compute it: S2NN
// through soma_surrogate_s2nn_f32, InvSquareGrad with the Swift type's expressions.
static void surrogate_row(int sur, float sa, float sb, const float *x, float *out, size_t n) {
#pragma STDC FP_CONTRACT OFF
  if (sur == SOMA_CUBA_SURROGATE_S2NN) {
    soma_surrogate_s2nn_f32(x, out, n, sa, sb);
  } else {
    for (size_t h = 0; h < n; h++) {
      const float d = sa * __builtin_fabsf(x[h]) + 1.0f;
      out[h] = 1.0f / (d * d);
    }
  }
}

SOMA_CLONES
static void backward_portable(size_t batch, size_t hidden, size_t outputs,
                              const int32_t *samples, size_t count, const int32_t *in_row_start,
                              const int32_t *in_idx, const float *w2, float alpha, float beta,
                              const float *x, const float *dsur, const int32_t *spike_count,
                              const uint16_t *spike_idx, const float *dj, float *gm, float *gy,
                              float *row, float *dw1t, float *dw2t, size_t t_begin,
                              size_t t_end, const int32_t *last, int sur, float sa,
                              float sb) {
  const size_t ld = soma_cuba_row_stride(hidden), ldo = soma_cuba_row_stride(outputs);
  float *restrict di = row;
  float *restrict gs = row + hidden;
  for (size_t tt = t_end; tt-- > t_begin;) {
    for (size_t i = 0; i < count; i++) {
      const size_t b = (size_t)samples[i];
      if (last && (int64_t)tt > (int64_t)last[b]) continue;
      const size_t r = tt * batch + b;
      float *restrict m = gm + b * ld;
      float *restrict y = gy + b * ld;
      const float *restrict xr = x + (tt * count + i) * ld;
      const float *restrict dr = dsur + ((tt - t_begin) * count + i) * ld;
      if (sur != SOMA_CUBA_SURROGATE_GIVEN) {
        surrogate_row(sur, sa, sb, xr, row + 2 * hidden, hidden);
        dr = row + 2 * hidden;
      }
      const float *restrict jr = dj + r * outputs;
      // dL/dI_t is dL/dsyn_{t+1}, the value carried in from step t + 1.
      memcpy(di, y, hidden * sizeof(float));
      // dL/ds_t = dJ_t · W2.
      for (size_t h = 0; h < hidden; h++) gs[h] = 0.0f;
      for (size_t o = 0; o < outputs; o++) {
        const float g = jr[o];
        const float *restrict w = w2 + o * hidden;
        for (size_t h = 0; h < hidden; h++) gs[h] += g * w[h];
      }
      for (size_t h = 0; h < hidden; h++) {
        const float keep = xr[h] >= 0.0f ? 0.0f : 1.0f;
        const float mNext = m[h];
        m[h] = gs[h] * dr[h] + beta * keep * mNext;
        y[h] = alpha * y[h] + keep * mNext;
      }
      // dW1ᵀ[i, :] += dI_t for each input spike (t, b, i).
      for (int32_t e = in_row_start[r]; e < in_row_start[r + 1]; e++) {
        float *restrict d = dw1t + (size_t)in_idx[e] * ld;
        for (size_t h = 0; h < hidden; h++) d[h] += di[h];
      }
      // dW2ᵀ[h, :] += dJ_t for each hidden spike (t, b, h).
      const uint16_t *restrict si = spike_idx + r * hidden;
      for (int32_t j = 0; j < spike_count[r]; j++) {
        float *restrict d = dw2t + (size_t)si[j] * ldo;
        for (size_t o = 0; o < outputs; o++) d[o] += jr[o];
      }
    }
  }
}

#ifdef SOMA_X86
// InvSquareGrad (SuperSpike): 1/(α|x| + 1)², the Swift type's expressions.
AVX512 static inline __m512 inv_square16(__m512 v, __m512 alpha) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 d = _mm512_add_ps(_mm512_mul_ps(alpha, _mm512_abs_ps(v)), one);
  return _mm512_div_ps(one, _mm512_mul_ps(d, d));
}

// The reverse step with 128 neurons (8 chunks) in registers at a time: dL/ds = dJ·W2 is summed
// in registers instead of a scratch row, dL/dI (the old dL/dsyn) stays in registers for the
// dW1ᵀ scatter, and a sample's outputs (16 or fewer) are one vector added to whole aligned
// 16-float rows in the dW2ᵀ scatter.
// The operations and their order are the portable loop's, so results are equal bit for bit to
// its x86-64-v4 clone's, given the same derivative: S2NN computed here equals the AVX-512 bulk
// kernel's (soma_s2nn16 in both), within 2 ulp of the portable one's.
AVX512 static void backward_avx512(size_t batch, size_t hidden, size_t outputs,
                                   const int32_t *samples, size_t count,
                                   const int32_t *in_row_start,
                                   const int32_t *in_idx, const float *w2, float alpha,
                                   float beta, const float *x, const float *dsur,
                                   const int32_t *spike_count, const uint16_t *spike_idx,
                                   const float *dj, float *gm, float *gy, float *dw1t,
                                   float *dw2t, size_t t_begin, size_t t_end,
                                   const int32_t *last, int sur, float sa, float sb) {
  const size_t ld = soma_cuba_row_stride(hidden), ldo = soma_cuba_row_stride(outputs);
  const __m512 s_a = _mm512_set1_ps(sa), s_b = _mm512_set1_ps(sb);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  const __mmask16 omask = (__mmask16)(outputs >= 16 ? 0xffffu : (1u << outputs) - 1u);
  for (size_t tt = t_end; tt-- > t_begin;) {
    for (size_t i = 0; i < count; i++) {
      const size_t b = (size_t)samples[i];
      if (last && (int64_t)tt > (int64_t)last[b]) continue;
      const size_t r = tt * batch + b;
      float *restrict m = gm + b * ld;
      float *restrict y = gy + b * ld;
      const float *restrict xr = x + (tt * count + i) * ld;
      const float *restrict dr = dsur + ((tt - t_begin) * count + i) * ld;
      const float *restrict jr = dj + r * outputs;
      const int32_t e0 = in_row_start[r], e1 = in_row_start[r + 1];
      for (size_t g = 0; g < hidden; g += 128) {
        __mmask16 lm[8];
        __m512 gs[8], di[8];
        for (size_t j = 0; j < 8; j++) {
          const size_t c = g + 16 * j;
          lm[j] = (__mmask16)(c >= hidden ? 0u
                              : hidden - c >= 16 ? 0xffffu
                                                 : (1u << (hidden - c)) - 1u);
          gs[j] = zero;
        }
        for (size_t o = 0; o < outputs; o++) {
          const __m512 go = _mm512_set1_ps(jr[o]);
          const float *restrict w = w2 + o * hidden + g;
          for (size_t j = 0; j < 8; j++)
            gs[j] = _mm512_fmadd_ps(go, _mm512_maskz_loadu_ps(lm[j], w + 16 * j), gs[j]);
        }
        for (size_t j = 0; j < 8; j++) {
          const size_t c = g + 16 * j;
          const __m512 xv = _mm512_maskz_loadu_ps(lm[j], xr + c);
          const __m512 keep =
              _mm512_mask_blend_ps(_mm512_cmp_ps_mask(xv, zero, _CMP_GE_OQ), one, zero);
          const __m512 mNext = _mm512_maskz_loadu_ps(lm[j], m + c);
          const __m512 yv = _mm512_maskz_loadu_ps(lm[j], y + c);
          di[j] = yv;
          const __m512 dv = sur == SOMA_CUBA_SURROGATE_S2NN ? soma_s2nn16(xv, s_a, s_b)
                            : sur == SOMA_CUBA_SURROGATE_INV_SQUARE
                                ? inv_square16(xv, s_a)
                                : _mm512_maskz_loadu_ps(lm[j], dr + c);
          _mm512_mask_storeu_ps(
              m + c, lm[j], _mm512_fmadd_ps(gs[j], dv, _mm512_mul_ps(_mm512_mul_ps(vb, keep), mNext)));
          _mm512_mask_storeu_ps(y + c, lm[j], _mm512_fmadd_ps(va, yv, _mm512_mul_ps(keep, mNext)));
        }
        for (int32_t e = e0; e < e1; e++) {
          float *restrict d = dw1t + (size_t)in_idx[e] * ld + g;
          for (size_t j = 0; j < 8; j++)
            _mm512_mask_storeu_ps(
                d + 16 * j, lm[j], _mm512_add_ps(_mm512_maskz_loadu_ps(lm[j], d + 16 * j), di[j]));
        }
      }
      const uint16_t *restrict si = spike_idx + r * hidden;
      if (outputs <= 16) {
        // Whole aligned rows, padding lanes adding zero: a masked store followed by a load of
        // a nearby row (or the same row, for the next sample) can stall store forwarding.
        const __m512 jv = _mm512_maskz_loadu_ps(omask, jr);
        for (int32_t q = 0; q < spike_count[r]; q++) {
          float *restrict d = dw2t + (size_t)si[q] * 16;
          _mm512_store_ps(d, _mm512_add_ps(_mm512_load_ps(d), jv));
        }
      } else {
        for (int32_t q = 0; q < spike_count[r]; q++) {
          float *restrict d = dw2t + (size_t)si[q] * ldo;
          for (size_t o = 0; o < outputs; o++) d[o] += jr[o];
        }
      }
    }
  }
}
#endif

#ifdef SOMA_X86
// backward_avx512 with 8 lanes and 32 neurons (4 chunks) in registers at a time, for CPUs
// with AVX2 only; a built-in surrogate's derivative comes from the bulk kernel into `row`
// first, as in the portable loop. The operations and their order are the portable loop's,
// so results are equal bit for bit to its x86-64-v3 clone's. Rows are padded to
// soma_cuba_row_stride(hidden) floats; lanes past `hidden` are loaded and computed but never
// stored except into that padding (dW1ᵀ's included), which nothing reads.
AVX2 static void backward_avx2(size_t batch, size_t hidden, size_t outputs,
                               const int32_t *samples, size_t count, const int32_t *in_row_start,
                               const int32_t *in_idx, const float *w2, float alpha, float beta,
                               const float *x, const float *dsur, const int32_t *spike_count,
                               const uint16_t *spike_idx, const float *dj, float *gm, float *gy,
                               float *row, float *dw1t, float *dw2t, size_t t_begin,
                               size_t t_end, const int32_t *last, int sur, float sa, float sb) {
  const size_t ld = soma_cuba_row_stride(hidden), ldo = soma_cuba_row_stride(outputs);
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  const __m256i o0 = soma_lanes8(outputs), o1 = soma_lanes8(outputs > 8 ? outputs - 8 : 0);
  for (size_t tt = t_end; tt-- > t_begin;) {
    for (size_t i = 0; i < count; i++) {
      const size_t b = (size_t)samples[i];
      if (last && (int64_t)tt > (int64_t)last[b]) continue;
      const size_t r = tt * batch + b;
      float *restrict m = gm + b * ld;
      float *restrict y = gy + b * ld;
      const float *restrict xr = x + (tt * count + i) * ld;
      const float *restrict dr = dsur + ((tt - t_begin) * count + i) * ld;
      if (sur != SOMA_CUBA_SURROGATE_GIVEN) {
        surrogate_row(sur, sa, sb, xr, row, hidden);
        dr = row;
      }
      const float *restrict jr = dj + r * outputs;
      const int32_t e0 = in_row_start[r], e1 = in_row_start[r + 1];
      for (size_t g = 0; g < hidden; g += 32) {
        const size_t nc = (hidden - g + 7) / 8 < 4 ? (hidden - g + 7) / 8 : 4;
        __m256 gs[4] = {zero, zero, zero, zero}, di[4] = {zero, zero, zero, zero};
        // w2 rows are `hidden` floats apart (not padded): the last chunk is masked.
        __m256i lm[4];
        for (size_t j = 0; j < 4; j++) {
          const size_t c = g + 8 * j;
          lm[j] = soma_lanes8(c >= hidden ? 0 : hidden - c);
        }
        for (size_t o = 0; o < outputs; o++) {
          const __m256 go = _mm256_set1_ps(jr[o]);
          const float *restrict w = w2 + o * hidden + g;
          for (size_t j = 0; j < nc; j++)
            gs[j] = _mm256_fmadd_ps(go, _mm256_maskload_ps(w + 8 * j, lm[j]), gs[j]);
        }
        for (size_t j = 0; j < nc; j++) {
          const size_t c = g + 8 * j;
          const __m256 xv = _mm256_loadu_ps(xr + c);
          const __m256 keep = _mm256_blendv_ps(one, zero, _mm256_cmp_ps(xv, zero, _CMP_GE_OQ));
          const __m256 mNext = _mm256_loadu_ps(m + c);
          const __m256 yv = _mm256_loadu_ps(y + c);
          di[j] = yv;
          const __m256 dv = _mm256_maskload_ps(dr + c, lm[j]);
          _mm256_storeu_ps(
              m + c, _mm256_fmadd_ps(gs[j], dv, _mm256_mul_ps(_mm256_mul_ps(vb, keep), mNext)));
          _mm256_storeu_ps(y + c, _mm256_fmadd_ps(va, yv, _mm256_mul_ps(keep, mNext)));
        }
        for (int32_t e = e0; e < e1; e++) {
          float *restrict d = dw1t + (size_t)in_idx[e] * ld + g;
          for (size_t j = 0; j < nc; j++)
            _mm256_storeu_ps(d + 8 * j, _mm256_add_ps(_mm256_loadu_ps(d + 8 * j), di[j]));
        }
      }
      const uint16_t *restrict si = spike_idx + r * hidden;
      if (outputs <= 16) {
        const __m256 j0 = _mm256_maskload_ps(jr, o0);
        const __m256 j1 = outputs > 8 ? _mm256_maskload_ps(jr + 8, o1) : zero;
        for (int32_t q = 0; q < spike_count[r]; q++) {
          float *restrict d = dw2t + (size_t)si[q] * ldo;
          _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), j0));
          if (outputs > 8) _mm256_storeu_ps(d + 8, _mm256_add_ps(_mm256_loadu_ps(d + 8), j1));
        }
      } else {
        for (int32_t q = 0; q < spike_count[r]; q++) {
          float *restrict d = dw2t + (size_t)si[q] * ldo;
          for (size_t o = 0; o < outputs; o++) d[o] += jr[o];
        }
      }
    }
  }
}
#endif

void soma_cuba_backward_f32(size_t batch, size_t hidden, size_t outputs,
                            const int32_t *samples, size_t count, const int32_t *in_row_start,
                            const int32_t *in_idx, const float *w2, float alpha, float beta,
                            const float *x, const float *dsur, const int32_t *spike_count,
                            const uint16_t *spike_idx, const float *dj, float *gm, float *gy,
                            float *row, float *dw1t, float *dw2t, size_t t_begin,
                            size_t t_end, const int32_t *last, int surrogate, float s_a,
                            float s_b) {
#ifdef SOMA_X86
  if (has_avx512()) {
    backward_avx512(batch, hidden, outputs, samples, count, in_row_start, in_idx, w2, alpha,
                    beta, x, dsur, spike_count, spike_idx, dj, gm, gy, dw1t, dw2t, t_begin,
                    t_end, last, surrogate, s_a, s_b);
    return;
  }
  if (has_avx2()) {
    backward_avx2(batch, hidden, outputs, samples, count, in_row_start, in_idx, w2, alpha, beta,
                  x, dsur, spike_count, spike_idx, dj, gm, gy, row, dw1t, dw2t, t_begin, t_end,
                  last, surrogate, s_a, s_b);
    return;
  }
#endif
  backward_portable(batch, hidden, outputs, samples, count, in_row_start, in_idx, w2, alpha,
                    beta, x, dsur, spike_count, spike_idx, dj, gm, gy, row, dw1t, dw2t, t_begin,
                    t_end, last, surrogate, s_a, s_b);
}

#ifdef SOMA_X86
// 16 × 16 tiles: the parts' rows summed in registers, transposed there, and written as rows
// of dW1 (the Swift loop this replaces moved one float at a time).
AVX512 static void reduce_dw1_avx512(const float *p, size_t parts, size_t ps, size_t inputs,
                                     size_t hidden, float *dst, size_t h0, size_t h1) {
  const size_t ld = soma_cuba_row_stride(hidden);
  for (size_t i0 = 0; i0 < inputs; i0 += 16) {
    const size_t ni = inputs - i0 < 16 ? inputs - i0 : 16;
    for (size_t hb = h0; hb < h1; hb += 16) {
      const size_t nh = h1 - hb < 16 ? h1 - hb : 16;
      const __mmask16 hm = soma_lanes(nh);
      __m512 v[16];
      for (size_t i = 0; i < 16; i++) {
        if (i >= ni) {
          v[i] = _mm512_setzero_ps();
          continue;
        }
        const float *row = p + (i0 + i) * ld + hb;
        __m512 sum = _mm512_maskz_loadu_ps(hm, row);
        for (size_t q = 1; q < parts; q++)
          sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(hm, row + q * ps));
        v[i] = sum;
      }
      soma_transpose16(v);
      for (size_t j = 0; j < nh; j++)
        _mm512_mask_storeu_ps(dst + (hb + j) * inputs + i0, soma_lanes(ni), v[j]);
    }
  }
}
#endif

SOMA_CLONES
static void reduce_dw1_portable(const float *p, size_t parts, size_t ps, size_t inputs,
                                size_t hidden, float *dst, size_t h0, size_t h1) {
  const size_t ld = soma_cuba_row_stride(hidden);
  for (size_t i0 = 0; i0 < inputs; i0 += 32) {
    const size_t i1 = i0 + 32 < inputs ? i0 + 32 : inputs;
    for (size_t hb = h0; hb < h1; hb += 32) {
      const size_t he = hb + 32 < h1 ? hb + 32 : h1;
      for (size_t i = i0; i < i1; i++) {
        const float *row = p + i * ld;
        for (size_t h = hb; h < he; h++) {
          float sum = row[h];
          for (size_t q = 1; q < parts; q++) sum += row[q * ps + h];
          dst[h * inputs + i] = sum;
        }
      }
    }
  }
}

void soma_cuba_reduce_dw1_f32(const float *partials, size_t parts, size_t part_stride,
                              size_t inputs, size_t hidden, float *dst, size_t h0, size_t h1) {
#ifdef SOMA_X86
  if (has_avx512()) {
    reduce_dw1_avx512(partials, parts, part_stride, inputs, hidden, dst, h0, h1);
    return;
  }
#endif
  reduce_dw1_portable(partials, parts, part_stride, inputs, hidden, dst, h0, h1);
}

// The readout recurrences over lanes k = b·outputs + o in [k0, k1), with the Swift path's
// expressions: no FMA contraction, so the results are the same bit for bit.
SOMA_CLONES
void soma_cuba_readout_f32(size_t steps, size_t lanes, size_t k0, size_t k1, float alpha,
                           float beta, const float *j, float *flt, float *out, float *peak,
                           int32_t *peak_step, float *trace) {
#pragma STDC FP_CONTRACT OFF
  const size_t n = k1 - k0;
  float *restrict f = flt, *restrict o = out, *restrict pk = peak + k0;
  int32_t *restrict ps = peak_step + k0;
  for (size_t i = 0; i < n; i++) {
    f[i] = o[i] = 0.0f;
    pk[i] = -__builtin_inff();
    ps[i] = 0;
  }
  for (size_t t = 0; t < steps; t++) {
    const float *restrict jr = j + t * lanes + k0;
    const int32_t step = (int32_t)t;
    for (size_t i = 0; i < n; i++) {
      const float fi = f[i];
      f[i] = alpha * fi + jr[i];
      const float v = beta * o[i] + fi;
      o[i] = v;
      const int better = v > pk[i];  // the first step of the maximum wins ties
      pk[i] = better ? v : pk[i];
      ps[i] = better ? step : ps[i];
    }
    if (trace) memcpy(trace + t * lanes + k0, o, n * sizeof(float));
  }
}

#ifdef SOMA_X86
// The reverse readout in explicit vectors: clang vectorises the portable loop but guards the
// vector body with checks that sent every call to the scalar one.
AVX512 static void readout_backward_avx512(size_t steps, size_t lanes, size_t k0, size_t k1,
                                           float alpha, float beta, const int32_t *peak_step,
                                           const float *dlogits, float *j, float *g_out,
                                           float *g_flt) {
  const size_t n = k1 - k0;
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (size_t i = 0; i < n; i++) g_out[i] = g_flt[i] = 0.0f;
  for (size_t t = steps; t-- > 0;) {
    float *jr = j + t * lanes + k0;
    const __m512i step = _mm512_set1_epi32((int32_t)t);
    for (size_t i = 0; i < n; i += 16) {
      const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1u);
      const __m512 go = _mm512_maskz_loadu_ps(m, g_out + i);
      const __m512 gf = _mm512_maskz_loadu_ps(m, g_flt + i);
      const __mmask16 at = _mm512_mask_cmpeq_epi32_mask(
          m, _mm512_maskz_loadu_epi32(m, peak_step + k0 + i), step);
      const __m512 g = _mm512_mask_add_ps(go, at, go, _mm512_maskz_loadu_ps(m, dlogits + k0 + i));
      _mm512_mask_storeu_ps(jr + i, m, gf);
      _mm512_mask_storeu_ps(g_flt + i, m, _mm512_add_ps(_mm512_mul_ps(va, gf), g));
      _mm512_mask_storeu_ps(g_out + i, m, _mm512_mul_ps(vb, g));
    }
  }
}
#endif

SOMA_CLONES
static void readout_backward_portable(size_t steps, size_t lanes, size_t k0, size_t k1,
                                      float alpha, float beta, const int32_t *peak_step,
                                      const float *dlogits, float *j, float *g_out,
                                      float *g_flt) {
#pragma STDC FP_CONTRACT OFF
  const size_t n = k1 - k0;
  float *restrict go = g_out, *restrict gf = g_flt;
  const int32_t *restrict ps = peak_step + k0;
  const float *restrict dl = dlogits + k0;
  for (size_t i = 0; i < n; i++) go[i] = gf[i] = 0.0f;
  for (size_t t = steps; t-- > 0;) {
    float *restrict jr = j + t * lanes + k0;
    const int32_t step = (int32_t)t;
    for (size_t i = 0; i < n; i++) {
      const float g = ps[i] == step ? go[i] + dl[i] : go[i];
      jr[i] = gf[i];
      gf[i] = alpha * gf[i] + g;
      go[i] = beta * g;
    }
  }
}

void soma_cuba_readout_backward_f32(size_t steps, size_t lanes, size_t k0, size_t k1,
                                    float alpha, float beta, const int32_t *peak_step,
                                    const float *dlogits, float *j, float *g_out,
                                    float *g_flt) {
#ifdef SOMA_X86
  if (has_avx512()) {
    readout_backward_avx512(steps, lanes, k0, k1, alpha, beta, peak_step, dlogits, j, g_out,
                            g_flt);
    return;
  }
#endif
  readout_backward_portable(steps, lanes, k0, k1, alpha, beta, peak_step, dlogits, j, g_out,
                            g_flt);
}
