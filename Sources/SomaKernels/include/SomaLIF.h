#ifndef SOMA_LIF_H
#define SOMA_LIF_H
#include <stddef.h>

// One time step of the fused LIF kernels over n neurons (SomaNN's LIF, IF, RecurrentLIF), for
// contiguous buffers that do not alias. `zero_reset` selects v = h·(1 − s) instead of
// v = h − θ·s; `detach_reset` drops the reset's path in the backward pass. Compiled for
// AVX-512, AVX2 and baseline x86-64 (target_clones), without FMA contraction so the results
// equal the composed Swift ops bit for bit.

/// h = beta·v + current; s = (h − θ ≥ 0); v = reset(h, s). Stores h when `h` is not NULL.
void soma_lif_forward_f32(const float *current, float *v, float *h, float *spikes, size_t n,
                          float beta, float threshold, int zero_reset);
void soma_lif_forward_f64(const double *current, double *v, double *h, double *spikes,
                          size_t n, double beta, double threshold, int zero_reset);

/// out[i] = x[i] − c.
void soma_lif_shift_f32(const float *x, float *out, size_t n, float c);
void soma_lif_shift_f64(const double *x, double *out, size_t n, double c);

/// From dL/ds (`grad_spikes`), h, the surrogate derivative d = σ'(h − θ) and dL/dv_t (`gv`,
/// overwritten with dL/dv_{t−1}): writes dL/dI_t = dL/dh_t to `grad_current`.
void soma_lif_backward_f32(const float *grad_spikes, const float *h, const float *d, float *gv,
                           float *grad_current, size_t n, float beta, float threshold,
                           int zero_reset, int detach_reset);
void soma_lif_backward_f64(const double *grad_spikes, const double *h, const double *d,
                           double *gv, double *grad_current, size_t n, double beta,
                           double threshold, int zero_reset, int detach_reset);

// Current-based LIF (SpyTorch's neuron), one step: s = (mem − θ ≥ 0); syn ← α·syn + current;
// mem ← (β·mem + syn_old)·(1 − s) (zero reset) or β·mem + syn_old − θ·s. Stores the membrane
// before the step in `mem_out` when it is not NULL.
void soma_lif_cuba_forward_f32(const float *current, float *syn, float *mem, float *mem_out,
                           float *spikes, size_t n, float alpha, float beta, float threshold,
                           int zero_reset);
void soma_lif_cuba_forward_f64(const double *current, double *syn, double *mem, double *mem_out,
                           double *spikes, size_t n, double alpha, double beta, double threshold,
                           int zero_reset);

/// One reverse step: from dL/ds_t, the stored mem_t (`mem`), d = σ'(mem_t − θ), and the carried
/// gs = dL/dsyn_{t+1}, gm = dL/dmem_{t+1} (both updated to step t), writes dL/dI_t.
void soma_lif_cuba_backward_f32(const float *grad_spikes, const float *mem, const float *d,
                            float *gs, float *gm, float *grad_current, size_t n, float alpha,
                            float beta, float threshold, int zero_reset);
void soma_lif_cuba_backward_f64(const double *grad_spikes, const double *mem, const double *d,
                            double *gs, double *gm, double *grad_current, size_t n, double alpha,
                            double beta, double threshold, int zero_reset);

/// dst[i] += src[i] and x[i] *= k for i < n: the tape kernels' accumulations, in C so that a
/// network whose surrogate is only known at run time (an unspecialised generic caller) does
/// not pay a witness call per element.
void soma_vec_add_f32(float *dst, const float *src, size_t n);
void soma_vec_add_f64(double *dst, const double *src, size_t n);
void soma_vec_scale_f32(float *x, float k, size_t n);
void soma_vec_scale_f64(double *x, double k, size_t n);

#endif
