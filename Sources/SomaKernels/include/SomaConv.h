#ifndef SOMA_CONV_H
#define SOMA_CONV_H
#include <stddef.h>
#include <stdint.h>

// Kernels behind SomaNN's convolution, pooling and batch-norm layers, in float (_f32) and
// double (_f64). Images are NCHW and contiguous; every kernel takes a range of images (or
// channels) so callers can split the work over threads with disjoint writes. Compiled for
// x86-64-v4, v3 and the baseline (target_clones).

/// The geometry of a 2-D convolution or pooling window over one image of `channels` planes
/// `height` × `width`, giving planes `out_height` × `out_width`.
typedef struct soma_conv_shape {
  size_t channels, height, width;
  size_t out_height, out_width;
  size_t kernel_h, kernel_w;
  size_t stride_h, stride_w;
  size_t pad_h, pad_w;
  size_t dilation_h, dilation_w;
} soma_conv_shape;

#define SOMA_CONV_KERNELS(T, S)                                                                \
  /* Unfolds images [n0, n1) of x into rows [r0, r1) of cols [C·kh·kw, (n1 − n0)·P] (P the   \
     output pixels per plane; row (c·kh + ky)·kw + kx, column (n − n0)·P + oy·out_w + ox),    \
     zeros where the window reads padding. */                                                  \
  void soma_im2col_##S(const soma_conv_shape *s, const T *x, size_t n0, size_t n1, size_t r0,  \
                       size_t r1, T *cols);                                                    \
  /* The adjoint of soma_im2col: adds cols back into the channels [c0, c1) of images          \
     [n0, n1) of dx. */                                                                        \
  void soma_col2im_##S(const soma_conv_shape *s, const T *cols, size_t n0, size_t n1,           \
                       size_t c0, size_t c1, T *dx);                                           \
  /* out[n, o, p] = buf[o, (n − n0)·P + p] (+ bias[o] when bias is not NULL), n in [n0, n1).  \
     buf holds (n1 − n0)·P columns per row. */                                                 \
  void soma_conv_scatter_##S(const T *buf, size_t channels, size_t P, size_t n0, size_t n1,    \
                             const T *bias, T *out);                                           \
  /* buf[o, (n − n0)·P + p] = g[n, o, p] for n in [n0, n1): the inverse of the scatter. */     \
  void soma_conv_gather_##S(const T *g, size_t channels, size_t P, size_t n0, size_t n1,        \
                            T *buf);                                                           \
  /* The number of non-zero entries of x [n]; *binary becomes 0 if one is neither 0 nor 1. */  \
  size_t soma_conv_count_active_##S(const T *x, size_t n, int *binary);                            \
  /* Active inputs of x [rows, cols] for rows [r0, r1): row r's non-zero columns go to        \
     list[begin[r] ..< end[r]], written from list[k0] on; returns how many. *binary becomes 0 \
     if an entry is neither 0 nor 1. */                                                        \
  size_t soma_conv_events_##S(const T *x, size_t r0, size_t r1, size_t cols, int32_t *list,    \
                              size_t k0, int64_t *begin, int64_t *end, int *binary);            \
  /* Event-driven convolution of 0/1 images [n0, n1) whose active pixels are the row lists     \
     of (image, channel) rows: for each active input pixel and each kernel offset that lands   \
     on an output pixel, adds wt[c, ky, kx, 0..<out_per_group] (the weight as [C, kh, kw, Og])  \
     to out[n, oy, ox, g·Og ..] (NHWC, overwritten for these images). */                       \
  void soma_conv_events_forward_##S(const soma_conv_shape *s, size_t groups,                    \
                                    size_t out_channels, const int32_t *list,                  \
                                    const int64_t *begin, const int64_t *end, size_t n0,       \
                                    size_t n1, const T *wt, T *out);                           \
  /* The weight gradient from the same events, for input channels [c0, c1): dwt[c, ky, kx, j] \
     = Σ over images n < images and active pixels of (n, c) of g[n, oy, ox, g·Og + j], g the    \
     output gradient NHWC (overwrites those rows of dwt). */                                   \
  void soma_conv_events_weight_grad_##S(const soma_conv_shape *s, size_t groups,                \
                                        size_t out_channels, const int32_t *list,              \
                                        const int64_t *begin, const int64_t *end,              \
                                        size_t images, size_t c0, size_t c1, const T *g,        \
                                        T *dwt);                                               \
  /* Winograd F(2×2, 3×3) for a 3 × 3, stride-1, undilated convolution of one group: the   \
     weight [K, C, 3, 3] as u[ξ, K, C] (ξ the 16 tile positions); images [n0, n1) as          \
     v[ξ, C, (n1 − n0)·tiles] (tiles = ⌈out_h/2⌉·⌈out_w/2⌉ per image, zeros in the padding);  \
     and back from m[ξ, K, (n1 − n0)·tiles] (= u[ξ]·v[ξ]) to out [n, K, out_h, out_w] (+ bias \
     when not NULL). */                                                                        \
  void soma_wino_weight_##S(const T *w, size_t K, size_t C, T *u);                              \
  void soma_wino_input_##S(const soma_conv_shape *s, const T *x, size_t n0, size_t n1, T *v);    \
  void soma_wino_output_##S(const soma_conv_shape *s, size_t K, const T *m, size_t n0,          \
                            size_t n1, const T *bias, T *out);                                 \
  /* For the weight gradient: the output gradient g [n, K, out_h, out_w] of images [n0, n1)   \
     as z[ξ, K, (n1 − n0)·tiles], and dw [K, C, 3, 3] from du[ξ, K, C] = Σ z[ξ]·v[ξ]ᵀ. */        \
  void soma_wino_grad_tiles_##S(const soma_conv_shape *s, size_t K, const T *g, size_t n0,      \
                                size_t n1, T *z);                                              \
  void soma_wino_weight_grad_##S(const T *du, size_t K, size_t C, T *dw);                       \
  /* c[i, j] = Σ_p a[i·as + p·ap]·b[p·bs + j] for i < M, j < N (added to c when accumulate   \
     is non-zero): the Winograd tile GEMMs, with neither operand packed. */                    \
  void soma_tile_gemm_##S(size_t M, size_t N, size_t kc, const T *a, size_t as, size_t ap,      \
                          const T *b, size_t bs, T *c, size_t ldc, int accumulate);            \
  /* Winograd F(m×m, 3×3) for m = 4 or 5, the same with n² tile positions ξ over n × n tiles \
     (n = m + 2, tiles = ⌈out_h/m⌉·⌈out_w/m⌉ per image) and the tile matrices channel-minor:  \
     v[ξ·xs + col·cs + c] with col = (n − n0)·tiles + tile and cs = C rounded up to 8 (zeros  \
     in the extra channels), so that each ξ is a [columns, cs] matrix; m and z likewise with  \
     K (m's extra channels are read and dropped). The weight as u[ξ, C, K] (so that m[ξ] =    \
     v[ξ]·u[ξ] needs no transposed operand); du[ξ, K, C] as F(2×2)'s. scratch holds           \
     soma_winom_scratch(s, m) elements. */                                                     \
  void soma_winom_weight_##S(size_t m, const T *w, size_t K, size_t C, T *u);                   \
  size_t soma_winom_scratch_##S(const soma_conv_shape *s, size_t m);                            \
  void soma_winom_input_##S(const soma_conv_shape *s, size_t m, const T *x, size_t n0,          \
                            size_t n1, T *v, size_t xs, T *scratch);                           \
  void soma_winom_output_##S(const soma_conv_shape *s, size_t m, size_t K, const T *mt,         \
                             size_t ms, size_t n0, size_t n1, const T *bias, T *out,           \
                             T *scratch);                                                      \
  void soma_winom_grad_tiles_##S(const soma_conv_shape *s, size_t m, size_t K, const T *g,      \
                                 size_t n0, size_t n1, T *z, size_t zs, T *scratch);           \
  void soma_winom_weight_grad_##S(size_t m, const T *du, size_t K, size_t C, T *dw);            \
  /* out[n, c, p] = in[n, p, c] (+ bias[c]) for images [n0, n1): NHWC to NCHW. */              \
  void soma_nhwc_to_nchw_##S(const T *in, size_t channels, size_t P, size_t n0, size_t n1,      \
                             const T *bias, T *out);                                           \
  /* out[n, p, c] = in[n, c, p] for images [n0, n1): NCHW to NHWC. */                          \
  void soma_nchw_to_nhwc_##S(const T *in, size_t channels, size_t P, size_t n0, size_t n1,      \
                             T *out);                                                          \
  /* Max pooling of planes [q0, q1) (a plane is one channel of one image): out and, per        \
     output, the flat index in its input plane of the maximum (the first one on ties;          \
     padding is −∞). */                                                                        \
  void soma_maxpool2d_##S(const soma_conv_shape *s, const T *x, size_t q0, size_t q1, T *out,   \
                          int32_t *argmax);                                                    \
  /* dx (zeroed here for planes [q0, q1)) gets each g at its argmax. */                         \
  void soma_maxpool2d_backward_##S(const soma_conv_shape *s, const T *g, const int32_t *argmax,  \
                                   size_t q0, size_t q1, T *dx);                               \
  /* Average pooling of planes [q0, q1); with count_pad the divisor is the window clipped to    \
     the padded plane (PyTorch's count_include_pad), else the in-plane pixels. */              \
  void soma_avgpool2d_##S(const soma_conv_shape *s, const T *x, size_t q0, size_t q1,          \
                          int count_pad, T *out);                                              \
  void soma_avgpool2d_backward_##S(const soma_conv_shape *s, const T *g, size_t q0, size_t q1,  \
                                   int count_pad, T *dx);                                      \
  /* Batch norm over x [rows, C, S] for channels [c0, c1): the mean and biased variance over   \
     rows and S, accumulated in double. */                                                     \
  void soma_bn_stats_##S(const T *x, size_t rows, size_t C, size_t S, size_t c0, size_t c1,     \
                         double *mean, double *var);                                           \
  /* y[r, c, s] = x[r, c, s]·scale[c] + shift[c] for channels [c0, c1). */                     \
  void soma_bn_apply_##S(const T *x, size_t rows, size_t C, size_t S, size_t c0, size_t c1,     \
                         const T *scale, const T *shift, T *y);                                \
  /* The backward pass of training-mode batch norm for channels [c0, c1). The gradient g has    \
     grows rows; x has xrows rows, and row r of g belongs to row r mod xrows of x (an input     \
     repeated over time is stored once). With x̂ = (x − mean)·invstd and M = grows·S:            \
     dbeta = Σ g, dgamma = Σ g·x̂, and (when dx is not NULL) dx = gamma·invstd·(g − dbeta/M −    \
     x̂·dgamma/M), dx [grows, C, S]. */                                                          \
  void soma_bn_backward_##S(const T *x, size_t xrows, const T *g, size_t grows, size_t C,        \
                            size_t S, size_t c0, size_t c1, const double *mean,                \
                            const double *invstd, const T *gamma, T *dx, double *dgamma,       \
                            double *dbeta);                                                    \
  /* dx as soma_bn_backward's from given per-channel means over the batch, mg of g and mgx of  \
     g·x̂ (SyncBatchNorm: the sums over every process's part of it, divided by its size). */   \
  void soma_bn_backward_dx_##S(const T *x, size_t xrows, const T *g, size_t grows, size_t C,   \
                               size_t S, size_t c0, size_t c1, const double *mean,             \
                               const double *invstd, const T *gamma, const double *mg,         \
                               const double *mgx, T *dx);

/// 0 when the environment sets SOMA_CONV_WINOGRAD=0 (convolutions then use im2col only), 2
/// when it sets SOMA_CONV_WINOGRAD=2 (Winograd F(2×2, 3×3) only), 4 when it sets
/// SOMA_CONV_WINOGRAD=4 (up to F(4×4, 3×3)), else 1.
int soma_conv_winograd_enabled(void);

SOMA_CONV_KERNELS(float, f32)
SOMA_CONV_KERNELS(double, f64)

#undef SOMA_CONV_KERNELS

#endif
