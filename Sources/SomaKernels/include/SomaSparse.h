#ifndef SOMA_SPARSE_H
#define SOMA_SPARSE_H
#include <stddef.h>
#include <stdint.h>

// Allocation-free event kernels (compiled networks' Linear layers, SpikeEvents). A spike matrix is held as per-row
// ranges into one index buffer: row r's active columns are list[begin[r] ..< end[r]]. Rows
// need not be contiguous in `list`, so threads can each fill their own region without a join.
// On x86-64 with AVX-512 the hot loops use it (compress stores, 8 register accumulators);
// elsewhere portable C.

/// Events of the dense rows [r0, r1) of x [rows, n]: writes row r's non-zero columns to
/// list[k0 ...] (the region must hold (r1 − r0)·n + 16 entries), sets begin[r]/end[r] and
/// returns the number written. *binary becomes 0 if any entry is neither 0 nor 1.
/// If rowmask is not NULL it also gets, for each block of 16 columns cb and row r,
/// rowmask[cb · rows_padded + r] = the 16-bit mask of that row's non-zero columns in the block.
size_t soma_sparse_from_dense_f32(const float *x, size_t r0, size_t r1, size_t n,
                                  int32_t *list, size_t k0, int32_t *begin, int32_t *end,
                                  int *binary, uint16_t *rowmask, size_t rows_padded);

/// Only the row masks of soma_sparse_from_dense_f32 (same layout) for rows [r0, r1) of x
/// [rows, n], and the number of non-zero entries; *binary becomes 0 if any entry is neither 0
/// nor 1. Cheaper than the full extraction when the events are read from the masks.
size_t soma_sparse_masks_f32(const float *x, size_t r0, size_t r1, size_t n, int *binary,
                             uint16_t *rowmask, size_t rows_padded);

/// Row lists from row masks, as soma_sparse_from_dense_f32 writes them: row r's columns go to
/// list[begin[r] ..< end[r]], written from list[k0] on (room for the events plus 16); returns
/// the number written.
size_t soma_sparse_lists_from_masks(const uint16_t *rowmask, size_t rows_padded, size_t n,
                                    size_t r0, size_t r1, int32_t *list, size_t k0,
                                    int32_t *begin, int32_t *end);

/// Column bits from row masks, for column blocks [cb0, cb1) and row words [t0, t1):
/// colbits[c · (rows_padded / 16) + t] is the 16-bit mask of the rows 16t ..< 16t + 16 where
/// column c is non-zero. rows_padded is a multiple of 16 and the row masks of padding rows are 0.
void soma_sparse_transpose_masks(const uint16_t *rowmask, size_t n, size_t rows_padded,
                                 size_t cb0, size_t cb1, size_t t0, size_t t1,
                                 uint16_t *colbits);


/// dst[i, :] = init[:] (or 0 if init is NULL; init may be dst's own row i when i0 + 1 == i1) + Σ_{e ∈ begin[i] ..< end[i]} src[list[e], :]
/// for i in [i0, i1); rows of src and dst have n floats. With a row list this is the event
/// matmul (src = weight [in, out]); with a column list it is the weight gradient (src = dL/dI).
void soma_sparse_gather_f32(const int32_t *begin, const int32_t *end, const int32_t *list,
                            size_t i0, size_t i1, const float *src, size_t n, const float *init,
                            float *dst);

/// One bias-corrected Adam step's constants: lr_c1 = lr / (1 − b1^t), ic2 = 1 / (1 − b2^t).
typedef struct {
  float lr_c1, b1, b2, ic2, eps;
} soma_adam_step;

/// The gather above (without init) fused with an Adam step on its result: for each row i in
/// [i0, i1) and column j, g = Σ src[list[e], j] is applied to param[i, j] with the moments
/// m[i, j], v[i, j] (the arithmetic of soma_sparse_adam_f32) while still in registers, and is also
/// stored to grad[i, j] if grad is not NULL. All of param, m, v, grad are [·, n].
void soma_sparse_gather_adam_f32(const int32_t *begin, const int32_t *end, const int32_t *list,
                                 size_t i0, size_t i1, const float *src, size_t n, float *grad,
                                 const soma_adam_step *adam, float *param, float *m, float *v);

/// The same sums as the gathers, driven by bit masks instead of lists: for rows i in
/// [i0, i1) (i0 a multiple of 16), dst[i, :] = init[:] (or 0) + Σ src[k, :] over the k in
/// [0, kc) whose bit is set for row i, added in ascending k (so the result equals the gather's
/// bit for bit). The bit of (i, k) is bit i % 16 of bits[(i / 16) · si + k · sk]: row masks
/// (si = rows_padded, sk = 1) make this the weight gradient over sample rows k, column bits
/// (si = 1, sk = rows_padded / 16) the event matmul. When adam is not NULL each sum is also
/// applied to param/m/v (as soma_sparse_gather_adam_f32); dst may then be NULL. Fastest when
/// many rows share each k (10 % density and up; the gathers win below about 5 %).
void soma_sparse_scatter_f32(const uint16_t *bits, size_t si, size_t sk, size_t kc, size_t i0,
                             size_t i1, const float *src, size_t n, const float *init, float *dst,
                             const soma_adam_step *adam, float *param, float *m, float *v);

/// soma_sparse_scatter_f32 over [i0, i1) (i0 a multiple of 16), as part `part` of `parts` of a
/// parallel region. With next NULL the rows are split at multiples of 16, each part always the
/// same rows, so that a thread of the pool (which runs part 0 on the caller) finds the rows and
/// any Adam moments it updated last pass in its own caches. Otherwise the calling threads take
/// blocks of 64 rows in turn from the counter *next (zero before the first thread starts) and
/// return when none is left, so a core slowed by something else takes fewer blocks. packed,
/// when not NULL, is src in the slab layout of soma_sparse_pack_f32; the AVX2 kernel then reads
/// only it (see soma_sparse_scatter_wants_packed), the others only src (which may then be NULL
/// if the CPU wants packed sources). When ldt is not 0, dst is written transposed:
/// dst[j · ldt + i] for row i and column j (a weight gradient [out, in] from events over the
/// inputs); adam must then be NULL.
void soma_sparse_scatter_shared_f32(const uint16_t *bits, size_t si, size_t sk, size_t kc,
                                    size_t i0, size_t i1, size_t part, size_t parts,
                                    size_t *next, const float *src, const float *packed,
                                    size_t n, const float *init, float *dst, size_t ldt,
                                    const soma_adam_step *adam, float *param, float *m,
                                    float *v);

/// The sums of soma_sparse_scatter_shared_f32 with next NULL (bit for bit), output row first:
/// part `part` of `parts` of the rows [i0, i1) (split as there), from packed slabs only.
/// rbits[i · ri + (k / 16) · rk], bit k % 16, says output row i has source row k. Only where
/// soma_sparse_gather_tiles_available() says so (AVX2 without AVX-512).
void soma_sparse_gather_tiles_f32(const uint16_t *rbits, size_t ri, size_t rk, size_t kc,
                                  size_t i0, size_t i1, size_t part, size_t parts,
                                  const float *packed, size_t n, const float *init, float *dst,
                                  const soma_adam_step *adam, float *param, float *m, float *v);
int soma_sparse_gather_tiles_available(void);

/// Whether the scatter on this CPU reads a packed copy of its source (AVX2 without AVX-512).
int soma_sparse_scatter_wants_packed(void);

/// Floats a packed copy of a [kc, n] source takes.
size_t soma_sparse_packed_count(size_t kc, size_t n);

/// Packs rows [k0, k1) of src [kc, n] into 64-column slabs: slab jb (width w = min(64,
/// n − 64 jb), rounded up to 8 and zero-filled) holds its rows k contiguously from
/// packed + 64 · jb · kc. Threads may pack disjoint row ranges at once.
void soma_sparse_pack_f32(const float *src, size_t kc, size_t n, size_t k0, size_t k1,
                          float *packed);

/// soma_sparse_pack_f32 of the transpose of src [n, kc] (a weight stored [out, in], read by
/// events over its inputs): rows [k0, k1) of srcᵀ [kc, n] into the same 64-column slabs.
/// Threads may pack disjoint row ranges at once.
void soma_sparse_pack_transposed_f32(const float *src, size_t n, size_t kc, size_t k0,
                                     size_t k1, float *packed);

/// One bias-corrected Adam step (as PyTorch's Adam) on param[0 ..< n] from grad; the fused
/// gather's update does the same arithmetic, bit for bit.
void soma_sparse_adam_f32(float *param, const float *grad, float *m, float *v, size_t n,
                          const soma_adam_step *adam);

/// Column c's rows as a list: list[begin[c] ..< end[c]] for c in [c0, c1), written from
/// list[k0] on (room for the events plus 16).
void soma_sparse_bits_to_lists(const uint16_t *colbits, size_t rows_padded, size_t c0,
                               size_t c1, int32_t *list, size_t k0, int32_t *begin,
                               int32_t *end);

/// out[j] = Σ_r x[r, j] for columns j in [j0, j1) of x [rows, n].
void soma_column_sums_f32(const float *x, size_t rows, size_t n, size_t j0, size_t j1,
                          float *out);

/// out[r, :] = Σ_j a[r, j] · wt[j, :] for rows r in [r0, r1): a is [rows, k], wt [k, n], out
/// [rows, n]. The product dI · Wᵀ of a layer with few (k) outputs, given Wᵀ.
void soma_narrow_product_f32(const float *a, size_t r0, size_t r1, size_t k, const float *wt,
                             size_t n, float *out);

/// Number of non-zero entries of x[0 ..< n].
size_t soma_count_nonzero_f32(const float *x, size_t n);

/// 1 when every entry of x[0 ..< n] is finite (no NaN, no ±inf), else 0.
int soma_all_finite_f32(const float *x, size_t n);

/// A 64-byte aligned workspace buffer. Buffers of 1 MiB or more are placed on 2 MiB boundaries
/// and offered to transparent huge pages (Linux), so random row gathers over them miss the TLB
/// less. Free with soma_buffer_free. Returns NULL if out of memory.
void *soma_buffer_alloc(size_t bytes);
void soma_buffer_free(void *p);

#endif
