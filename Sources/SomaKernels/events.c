#include "SomaEvents.h"
#include <stdlib.h>

// One binary, three code paths: AVX-512, AVX2+FMA, baseline; picked at load time (ifunc).
#include "cpu.h"

SOMA_CLONES
void soma_events_weight_grad_f32(const int32_t *row_start, const int32_t *idx, size_t row_begin,
                                 size_t row_end, const float *grad, size_t n_out, float *dwt) {
  for (size_t r = row_begin; r < row_end; r++) {
    const float *restrict g = grad + r * n_out;
    for (int32_t e = row_start[r]; e < row_start[r + 1]; e++) {
      float *restrict d = dwt + (size_t)idx[e] * n_out;
      for (size_t j = 0; j < n_out; j++) d[j] += g[j];
    }
  }
}

#ifdef SOMA_X86
// 16 × 16 blocks through registers (masked at the edges): the scalar tiles below moved one
// float per load and store.
AVX512 static void transpose_avx512(const float *src, size_t rows, size_t cols, float *dst,
                                    size_t ld) {
  for (size_t r0 = 0; r0 < rows; r0 += 16) {
    const size_t nr = rows - r0 < 16 ? rows - r0 : 16;
    for (size_t c0 = 0; c0 < cols; c0 += 16) {
      const size_t nc = cols - c0 < 16 ? cols - c0 : 16;
      __m512 v[16];
      for (size_t i = 0; i < 16; i++)
        v[i] = i < nr ? _mm512_maskz_loadu_ps(soma_lanes(nc), src + (r0 + i) * cols + c0)
                      : _mm512_setzero_ps();
      soma_transpose16(v);
      for (size_t j = 0; j < nc; j++)
        _mm512_mask_storeu_ps(dst + (c0 + j) * ld + r0, soma_lanes(nr), v[j]);
    }
  }
}
#endif

SOMA_CLONES
static void transpose_portable(const float *src, size_t rows, size_t cols, float *dst,
                               size_t ld) {
  // 32×32 tiles: both the reads and the strided writes stay within a few cache lines.
  for (size_t r0 = 0; r0 < rows; r0 += 32) {
    const size_t r1 = r0 + 32 < rows ? r0 + 32 : rows;
    for (size_t c0 = 0; c0 < cols; c0 += 32) {
      const size_t c1 = c0 + 32 < cols ? c0 + 32 : cols;
      for (size_t r = r0; r < r1; r++)
        for (size_t c = c0; c < c1; c++) dst[c * ld + r] = src[r * cols + c];
    }
  }
}

void soma_transpose_strided_f32(const float *src, size_t rows, size_t cols, float *dst,
                                size_t ld) {
#ifdef SOMA_X86
  if (has_avx512()) {
    transpose_avx512(src, rows, cols, dst, ld);
    return;
  }
#endif
  transpose_portable(src, rows, cols, dst, ld);
}

void soma_transpose_f32(const float *src, size_t rows, size_t cols, float *dst) {
  soma_transpose_strided_f32(src, rows, cols, dst, rows);
}

size_t soma_latency_batch_count(const uint16_t *step_start, const ptrdiff_t *order, size_t batch,
                                size_t steps, size_t t) {
  size_t sum = 0;
  for (size_t b = 0; b < batch; b++) sum += step_start[(size_t)order[b] * (steps + 1) + t];
  return sum;
}

static inline __attribute__((always_inline)) void copy8_u16_i32(int32_t *restrict dst,
                                                               const uint16_t *restrict src) {
  for (int k = 0; k < 8; k++) dst[k] = (int32_t)src[k];
}

SOMA_CLONES
void soma_latency_batch_fill(const uint16_t *pixels, const ptrdiff_t *image_start,
                             const uint16_t *step_start, const ptrdiff_t *order, size_t batch,
                             size_t steps, size_t t_begin, size_t t_end, size_t pos_begin,
                             size_t pos_end, int32_t *row_start, int32_t *idx) {
  // Rows in output order, so idx is written front to back. Most (sample, step) runs hold 0–8
  // spikes at irregular counts: a loop bounded by the count mispredicts about once per row
  // (≈ 10 ns each), so runs are copied in whole blocks of 8 (at least one) and the count only
  // advances the position. Near pos_end the copy is exact, so nothing past this call's range
  // is touched.
  // Each sample's code pointers once per call, not per step (a few KB; a call covers a range of
  // steps, ten at a time from the training pipeline).
  const uint16_t **code = malloc(2 * batch * sizeof *code);
  if (!code && batch) abort();
  const uint16_t **offsets = code + batch;
  for (size_t b = 0; b < batch; b++) {
    const size_t i = (size_t)order[b];
    code[b] = pixels + image_start[i];
    offsets[b] = step_start + i * (steps + 1);
  }
  // The batch's images are random ones from a split of tens of MB: request all their lines
  // now, so the misses overlap instead of arriving one per sample in the loop below.
  for (size_t b = 0; b < batch; b++) {
    const char *o = (const char *)(offsets[b] + t_begin);
    const char *o_end = (const char *)(offsets[b] + t_end + 1);
    for (; o < o_end + 64; o += 64) __builtin_prefetch(o);
    const char *p = (const char *)(code[b] + offsets[b][t_begin]);
    const char *p_end = (const char *)(code[b] + offsets[b][t_end]);
    for (; p < p_end + 64; p += 64) __builtin_prefetch(p);
  }
  size_t pos = pos_begin;
  for (size_t t = t_begin; t < t_end; t++) {
    int32_t *rs = row_start + t * batch;
    for (size_t b = 0; b < batch; b++) {
      const uint16_t *o = offsets[b] + t;
      const uint16_t *src = code[b] + o[0];
      const size_t n = (size_t)o[1] - o[0];
      int32_t *dst = idx + pos;
      rs[b] = (int32_t)pos;
      if (pos + n + 8 <= pos_end) {
        size_t k = 0;
        do {
          copy8_u16_i32(dst + k, src + k);
          k += 8;
        } while (k < n);
      } else {
        for (size_t k = 0; k < n; k++) dst[k] = (int32_t)src[k];
      }
      pos += n;
    }
  }
  free(code);
  if (t_end == steps) row_start[steps * batch] = (int32_t)pos;
}
