// Fused LIF time-step kernels (see include/SomaLIF.h).
#include "SomaLIF.h"
#include "cpu.h"

#pragma STDC FP_CONTRACT OFF

// cpu.h's clones: x86-64-v4, v3 and baseline on x86-64 Linux, none elsewhere or under TSan.
#define CLONES SOMA_CLONES

#define DEFINE_LIF(T, SUFFIX)                                                                   \
  CLONES void soma_lif_forward_##SUFFIX(const T *restrict current, T *restrict v,              \
                                        T *restrict h, T *restrict spikes, size_t n, T beta,   \
                                        T threshold, int zero_reset) {                         \
    if (h) {                                                                                   \
      if (zero_reset) {                                                                        \
        for (size_t i = 0; i < n; i++) {                                                       \
          T hv = beta * v[i] + current[i];                                                     \
          T s = (hv - threshold >= 0) ? (T)1 : (T)0;                                           \
          h[i] = hv;                                                                           \
          spikes[i] = s;                                                                       \
          v[i] = hv * ((T)1 - s);                                                              \
        }                                                                                      \
      } else {                                                                                 \
        for (size_t i = 0; i < n; i++) {                                                       \
          T hv = beta * v[i] + current[i];                                                     \
          T s = (hv - threshold >= 0) ? (T)1 : (T)0;                                           \
          h[i] = hv;                                                                           \
          spikes[i] = s;                                                                       \
          v[i] = hv - threshold * s;                                                           \
        }                                                                                      \
      }                                                                                        \
    } else {                                                                                   \
      if (zero_reset) {                                                                        \
        for (size_t i = 0; i < n; i++) {                                                       \
          T hv = beta * v[i] + current[i];                                                     \
          T s = (hv - threshold >= 0) ? (T)1 : (T)0;                                           \
          spikes[i] = s;                                                                       \
          v[i] = hv * ((T)1 - s);                                                              \
        }                                                                                      \
      } else {                                                                                 \
        for (size_t i = 0; i < n; i++) {                                                       \
          T hv = beta * v[i] + current[i];                                                     \
          T s = (hv - threshold >= 0) ? (T)1 : (T)0;                                           \
          spikes[i] = s;                                                                       \
          v[i] = hv - threshold * s;                                                           \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  CLONES void soma_lif_shift_##SUFFIX(const T *restrict x, T *restrict out, size_t n, T c) {   \
    for (size_t i = 0; i < n; i++) out[i] = x[i] - c;                                          \
  }                                                                                            \
                                                                                               \
  CLONES void soma_lif_backward_##SUFFIX(const T *restrict grad_spikes, const T *restrict h,   \
                                         const T *restrict d, T *restrict gv,                  \
                                         T *restrict grad_current, size_t n, T beta,           \
                                         T threshold, int zero_reset, int detach_reset) {      \
    if (!zero_reset && !detach_reset) {                                                        \
      for (size_t i = 0; i < n; i++) {                                                         \
        T sg = d[i];                                                                           \
        T dh = grad_spikes[i] * sg + gv[i] * ((T)1 - threshold * sg);                          \
        grad_current[i] = dh;                                                                  \
        gv[i] = beta * dh;                                                                     \
      }                                                                                        \
    } else if (!zero_reset) {                                                                  \
      for (size_t i = 0; i < n; i++) {                                                         \
        T dh = grad_spikes[i] * d[i] + gv[i];                                                  \
        grad_current[i] = dh;                                                                  \
        gv[i] = beta * dh;                                                                     \
      }                                                                                        \
    } else if (!detach_reset) {                                                                \
      for (size_t i = 0; i < n; i++) {                                                         \
        T sg = d[i];                                                                           \
        T keep = (h[i] - threshold >= 0) ? (T)0 : (T)1;                                        \
        T dh = grad_spikes[i] * sg + gv[i] * (keep - h[i] * sg);                               \
        grad_current[i] = dh;                                                                  \
        gv[i] = beta * dh;                                                                     \
      }                                                                                        \
    } else {                                                                                   \
      for (size_t i = 0; i < n; i++) {                                                         \
        T keep = (h[i] - threshold >= 0) ? (T)0 : (T)1;                                        \
        T dh = grad_spikes[i] * d[i] + gv[i] * keep;                                           \
        grad_current[i] = dh;                                                                  \
        gv[i] = beta * dh;                                                                     \
      }                                                                                        \
    }                                                                                          \
  }

#define DEFINE_CUBA(T, SUFFIX)                                                                  \
  CLONES void soma_lif_cuba_forward_##SUFFIX(const T *restrict current, T *restrict syn,           \
                                         T *restrict mem, T *restrict mem_out,                 \
                                         T *restrict spikes, size_t n, T alpha, T beta,        \
                                         T threshold, int zero_reset) {                        \
    if (mem_out)                                                                               \
      for (size_t i = 0; i < n; i++) mem_out[i] = mem[i];                                      \
    if (zero_reset) {                                                                          \
      for (size_t i = 0; i < n; i++) {                                                         \
        T m = mem[i];                                                                          \
        T s = (m - threshold >= 0) ? (T)1 : (T)0;                                              \
        T old = syn[i];                                                                        \
        spikes[i] = s;                                                                         \
        syn[i] = alpha * old + current[i];                                                     \
        mem[i] = (beta * m + old) * ((T)1 - s);                                                \
      }                                                                                        \
    } else {                                                                                   \
      for (size_t i = 0; i < n; i++) {                                                         \
        T m = mem[i];                                                                          \
        T s = (m - threshold >= 0) ? (T)1 : (T)0;                                              \
        T old = syn[i];                                                                        \
        spikes[i] = s;                                                                         \
        syn[i] = alpha * old + current[i];                                                     \
        mem[i] = beta * m + old - threshold * s;                                               \
      }                                                                                        \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  CLONES void soma_lif_cuba_backward_##SUFFIX(const T *restrict grad_spikes, const T *restrict mem, \
                                          const T *restrict d, T *restrict gs, T *restrict gm,  \
                                          T *restrict grad_current, size_t n, T alpha, T beta,  \
                                          T threshold, int zero_reset) {                        \
    if (zero_reset) {                                                                          \
      for (size_t i = 0; i < n; i++) {                                                         \
        grad_current[i] = gs[i];                                                               \
        T k = (mem[i] - threshold >= 0) ? (T)0 : (T)1;                                         \
        T g = gm[i] * k;                                                                       \
        gm[i] = grad_spikes[i] * d[i] + beta * g;                                              \
        gs[i] = alpha * gs[i] + g;                                                             \
      }                                                                                        \
    } else {                                                                                   \
      for (size_t i = 0; i < n; i++) {                                                         \
        grad_current[i] = gs[i];                                                               \
        T g = gm[i];                                                                           \
        gm[i] = grad_spikes[i] * d[i] + beta * g;                                              \
        gs[i] = alpha * gs[i] + g;                                                             \
      }                                                                                        \
    }                                                                                          \
  }

DEFINE_LIF(float, f32)
DEFINE_LIF(double, f64)
DEFINE_CUBA(float, f32)
DEFINE_CUBA(double, f64)

SOMA_CLONES
void soma_vec_add_f32(float *restrict dst, const float *restrict src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}
SOMA_CLONES
void soma_vec_add_f64(double *restrict dst, const double *restrict src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}
SOMA_CLONES
void soma_vec_scale_f32(float *x, float k, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] *= k;
}
SOMA_CLONES
void soma_vec_scale_f64(double *x, double k, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] *= k;
}
