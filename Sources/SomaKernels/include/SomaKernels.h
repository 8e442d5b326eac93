#ifndef SOMA_KERNELS_H
#define SOMA_KERNELS_H
#include <stddef.h>

// Vectorised surrogate-gradient derivatives over contiguous Float arrays (out may not alias x).
// Each is compiled for AVX-512, AVX2 and baseline x86-64 (target_clones) and uses a polynomial
// exp (relative error ~2e-7) instead of libm, so the loops vectorise.

/// out[i] = S2NN'(x[i]): alpha·e/(1+e)² with e = exp(alpha·x) for x < 0, beta/(x+1) for x ≥ 0.
void soma_surrogate_s2nn_f32(const float *x, float *out, size_t n, float alpha, float beta);

/// out[i] = alpha·e/(1+e)² with e = exp(−|alpha·x[i]|) (the Sigmoid surrogate derivative).
void soma_surrogate_sigmoid_f32(const float *x, float *out, size_t n, float alpha);

/// out[i] = scale·exp(−alpha·|x[i]|) (PiecewiseExp, SlayerGrad).
void soma_surrogate_exp_abs_f32(const float *x, float *out, size_t n, float alpha, float scale);

/// out[i] = scale·exp(−(k·x[i])²) (ERF, GaussianGrad).
void soma_surrogate_gaussian_f32(const float *x, float *out, size_t n, float k, float scale);

/// exp(z[i]) for every element by the kernels' polynomial (exposed for accuracy tests).
void soma_surrogate_exp_f32(const float *z, float *out, size_t n);

#endif
