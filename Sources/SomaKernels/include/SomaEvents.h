#ifndef SOMA_EVENTS_H
#define SOMA_EVENTS_H
#include <stdint.h>
#include <stddef.h>

// Event-driven kernels over spike tensors held as compressed rows: row r's active inputs are
// idx[row_start[r] ..< row_start[r + 1]]. Work is proportional to the number of spikes. (The
// event matmul and column gradient are soma_sparse_gather_f32 in SomaSparse.h.)

/// dwt[i, :] += grad[r, :] for every event (r, i) with r in [row_begin, row_end), dwt [n_in, n_out].
void soma_events_weight_grad_f32(const int32_t *row_start, const int32_t *idx, size_t row_begin,
                                 size_t row_end, const float *grad, size_t n_out, float *dwt);

/// dst [cols, rows] = transpose of src [rows, cols], in cache-sized tiles.
void soma_transpose_f32(const float *src, size_t rows, size_t cols, float *dst);

#endif
