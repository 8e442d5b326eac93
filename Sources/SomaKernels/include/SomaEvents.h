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

/// Latency-coded mini-batches, rows t·batch + b (sample b being image order[b]).
///
/// First the batch's codes: for samples b in [b0, b1), the pixel indices of image order[b]
/// (`features` bytes at images + order[b]·features) sorted stably by spike step go to
/// codes[b·features ..< (b+1)·features], and step_start[b·(steps+1) + t] is the offset there
/// of step t's first spike (t ≤ steps; pixels that never spike come after the one at t =
/// steps). step_of_byte[v] is the spike step of a pixel of value v, or `steps` for none.
/// Disjoint sample ranges may run in parallel.
void soma_latency_code(const uint8_t *images, size_t features, const uint32_t *step_of_byte,
                       size_t steps, const ptrdiff_t *order, size_t b0, size_t b1,
                       uint32_t *step_start, int32_t *codes);

/// Number of events in steps [0, t) of the batch: the row start of row t·batch.
size_t soma_latency_batch_count(const uint32_t *step_start, size_t batch, size_t steps, size_t t);

/// Writes the events of steps [t_begin, t_end): row_start[t·batch + b] for those rows and
/// idx[pos_begin ..< pos_end], where pos_begin/pos_end are the counts before t_begin/t_end.
/// Writes nothing outside those ranges, so disjoint step ranges may run in parallel. `codes`
/// must be readable 8 entries past batch·features.
void soma_latency_batch_fill(const int32_t *codes, size_t features, const uint32_t *step_start,
                             size_t batch, size_t steps, size_t t_begin, size_t t_end,
                             size_t pos_begin, size_t pos_end, int32_t *row_start, int32_t *idx);

#endif
