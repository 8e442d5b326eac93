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

/// The same into rows of `ld` ≥ rows floats: dst[c·ld + r] = src[r·cols + c] (the padding
/// floats are not written).
void soma_transpose_strided_f32(const float *src, size_t rows, size_t cols, float *dst,
                                size_t ld);

/// Mini-batch events from per-image codes (each image's spiking inputs, sorted by step):
/// image i's spikes at step t are pixels[image_start[i] + step_start[i·(steps+1) + t] ..<
/// image_start[i] + step_start[i·(steps+1) + t + 1]]. Rows are t·batch + b, sample b being
/// image order[b]. `pixels` must be readable 8 entries past its last spike.

/// Number of events in steps [0, t) of the batch: the row start of row t·batch.
size_t soma_latency_batch_count(const uint16_t *step_start, const ptrdiff_t *order, size_t batch,
                                size_t steps, size_t t);

/// Writes the events of steps [t_begin, t_end): row_start[t·batch + b] for those rows and
/// idx[pos_begin ..< pos_end], where pos_begin/pos_end are the counts before t_begin/t_end.
/// Writes nothing outside those ranges, so disjoint step ranges may run in parallel.
void soma_latency_batch_fill(const uint16_t *pixels, const ptrdiff_t *image_start,
                             const uint16_t *step_start, const ptrdiff_t *order, size_t batch,
                             size_t steps, size_t t_begin, size_t t_end, size_t pos_begin,
                             size_t pos_end, int32_t *row_start, int32_t *idx);

#endif
