#ifndef SOMA_KERNELS_H
#define SOMA_KERNELS_H
#include <stddef.h>

// Vectorised surrogate-gradient derivatives over contiguous arrays (out must not alias x), in
// float (_f32) and double (_f64). Each is compiled for AVX-512, AVX2 and baseline x86-64
// (target_clones) and uses polynomial exp/log/sin instead of libm so the loops vectorise.
// Float results stay within 1e-7 + 1e-5·|exact| of the exact values for |x| ≤ 60 (checked for
// every clone), double within 1e-12 + 1e-10·|exact|.

#define SOMA_SURROGATE_KERNELS(T, S)                                                          \
  /* S2NN: alpha·e/(1+e)² with e = exp(alpha·x) for x < 0, beta/(x+1) for x ≥ 0. */            \
  void soma_surrogate_s2nn_##S(const T *x, T *out, size_t n, T alpha, T beta);                \
  /* A reverse LIF step (as soma_lif_backward) with the S2NN derivative of h − θ inlined. */     \
  void soma_lif_backward_s2nn_##S(const T *grad_spikes, const T *h, T *gv, T *grad_current,    \
                                  size_t n, T beta, T threshold, int zero_reset,               \
                                  int detach_reset, T s_alpha, T s_beta);                      \
  /* A reverse LIF step with the Arctan derivative c/(1 + (k·(h − θ))²) inlined. */           \
  void soma_lif_backward_arctan_##S(const T *grad_spikes, const T *h, T *gv, T *grad_current,  \
                                    size_t n, T beta, T threshold, int zero_reset,             \
                                    int detach_reset, T k, T c);                               \
  /* Sigmoid: alpha·e/(1+e)² with e = exp(−|alpha·x|). */                                      \
  void soma_surrogate_sigmoid_##S(const T *x, T *out, size_t n, T alpha);                     \
  /* scale·exp(−alpha·|x|) (PiecewiseExp, SlayerGrad). */                                     \
  void soma_surrogate_exp_abs_##S(const T *x, T *out, size_t n, T alpha, T scale);            \
  /* scale·exp(−(k·x)²) (ERF, GaussianGrad). */                                               \
  void soma_surrogate_gaussian_##S(const T *x, T *out, size_t n, T k, T scale);               \
  /* center·exp(−(k0·x)²) − side·(exp(−(k1·(x−mu))²) + exp(−(k1·(x+mu))²)). */                 \
  void soma_surrogate_multi_gaussian_##S(const T *x, T *out, size_t n, T center, T side, T k0, \
                                         T k1, T mu);                                         \
  /* QPseudoSpike: (1 + c·|x|)^(−alpha). */                                                    \
  void soma_surrogate_q_pseudo_spike_##S(const T *x, T *out, size_t n, T c, T alpha);         \
  /* SquarewaveFourierSeries: scale·Σ_{j<harmonics} cos((2j+1)·2π·x/period). */                \
  void soma_surrogate_squarewave_##S(const T *x, T *out, size_t n, T period, int harmonics,   \
                                     T scale);                                                \
  /* LIF neurons over `steps` steps of currents (step t at current + t·step_stride; 0: the    \
     same currents every step) for planes [q0, q1) of H × W, their spikes max-pooled 2 × 2 with \
     stride 2 (floor): pooled[t·out_step + q·(H/2)·(W/2) + …]. The full-size spikes are never  \
     stored; the results are soma_lif_forward's and soma_maxpool2d's. scratch: steps · 256    \
     scalars. */                                                                              \
  void soma_lif_pool2_forward_##S(const T *current, size_t step_stride, size_t steps,          \
                                  size_t q0, size_t q1, size_t H, size_t W, T beta,            \
                                  T threshold, int zero_reset, T *pooled, size_t out_step,    \
                                  T *scratch);                                                \
  /* Its backward pass from the pooled gradient g (laid out as `pooled`): dL/dI of step t at    \
     grad + t·grad_step, or with `tied` the sum over the steps times inv_steps at grad. The     \
     surrogate is S2NN(sa, sb) for kind 0, the arctangent c/(1 + (k·x)²) with k = sa, c = sb    \
     for kind 1. scratch: steps · 256 scalars. */                                              \
  void soma_lif_pool2_backward_##S(const T *current, size_t step_stride, size_t steps,         \
                                   size_t q0, size_t q1, size_t H, size_t W, T beta,           \
                                   T threshold, int zero_reset, int detach_reset, int kind,    \
                                   T sa, T sb, const T *g, size_t out_step, T *grad,           \
                                   size_t grad_step, int tied, T inv_steps, T *scratch);

SOMA_SURROGATE_KERNELS(float, f32)
SOMA_SURROGATE_KERNELS(double, f64)

#undef SOMA_SURROGATE_KERNELS

/// On the calling thread only: kernels that have a hand-written AVX-512 variant run their
/// portable C code instead while `on` is non-zero (for tests that compare the two; kernels
/// handed to worker threads keep the default there).
void soma_use_portable_kernels(int on);

/// Non-zero when the hand-written AVX-512 kernels run on this CPU (and thread): planners pick
/// between event kernels by it.
int soma_has_avx512(void);

/// Whether the portable loops are built as target_clones (an x86-64-v3 clone contracts a·b + c
/// into FMAs as the hand-written kernels do); not in ThreadSanitizer builds, whose baseline
/// loops then round those sums differently in the last bit.
int soma_portable_kernels_are_cloned(void);

#endif
