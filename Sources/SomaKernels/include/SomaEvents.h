#ifndef SOMA_EVENTS_H
#define SOMA_EVENTS_H
#include <stdint.h>
#include <stddef.h>

// Event-driven kernels over spike tensors held as compressed rows: row r's active inputs are
// idx[row_start[r] ..< row_start[r + 1]]. Work is proportional to the number of spikes.

/// out[r, :] (+)= sum over active i of wt[i, :], for wt stored [n_in, n_out].
/// When accumulate is 0, out is overwritten.
void soma_events_matmul_f32(const int32_t *row_start, const int32_t *idx, size_t row_begin,
                            size_t row_end, const float *wt, size_t n_out, float *out,
                            int accumulate);

/// dwt[i, :] += grad[r, :] for every event (r, i) with r in [row_begin, row_end), dwt [n_in, n_out].
void soma_events_weight_grad_f32(const int32_t *row_start, const int32_t *idx, size_t row_begin,
                                 size_t row_end, const float *grad, size_t n_out, float *dwt);

/// dwt[c, :] = sum of grad[r, :] over the rows r listed for column c (compressed columns:
/// rows[col_start[c] ..< col_start[c + 1]]), for c in [col_begin, col_end). The weight gradient
/// dense(events)ᵀ · grad without scatter conflicts, so columns split cleanly over threads.
void soma_events_column_grad_f32(const int32_t *col_start, const int32_t *rows,
                                 size_t col_begin, size_t col_end, const float *grad,
                                 size_t n_out, float *dwt);

/// y[i] += x[i] for n elements (used to combine per-thread partial gradients).
void soma_add_inplace_f32(float *y, const float *x, size_t n);

/// dst [cols, rows] = transpose of src [rows, cols], in cache-sized tiles.
void soma_transpose_f32(const float *src, size_t rows, size_t cols, float *dst);

/// One bias-corrected Adam step over n parameters: c1 = 1 − b1^t, c2 = 1 − b2^t.
void soma_adam_f32(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                   float b2, float c1, float c2, float eps);

#endif
