#include "SomaEvents.h"
#include <stdlib.h>
#include <string.h>

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

void soma_latency_code(const uint8_t *images, size_t features, const uint32_t *step_of_byte,
                       size_t steps, const ptrdiff_t *order, size_t b0, size_t b1,
                       uint32_t *step_start, int32_t *codes) {
  // A counting sort per image over steps + 1 buckets (the last: pixels that never spike), so
  // no branch depends on a pixel's value.
  uint32_t *fill = malloc((steps + 2) * sizeof *fill);
  if (!fill) abort();
  for (size_t b = b0; b < b1; b++) {
    const uint8_t *img = images + (size_t)order[b] * features;
    for (size_t t = 0; t <= steps + 1; t++) fill[t] = 0;
    for (size_t j = 0; j < features; j++) fill[step_of_byte[img[j]] + 1]++;
    for (size_t t = 0; t <= steps; t++) fill[t + 1] += fill[t];
    uint32_t *ss = step_start + b * (steps + 1);
    for (size_t t = 0; t <= steps; t++) ss[t] = fill[t];
    int32_t *code = codes + b * features;
    for (size_t j = 0; j < features; j++) code[fill[step_of_byte[img[j]]]++] = (int32_t)j;
  }
  free(fill);
}

size_t soma_latency_batch_count(const uint32_t *step_start, size_t batch, size_t steps, size_t t) {
  size_t sum = 0;
  for (size_t b = 0; b < batch; b++) sum += step_start[b * (steps + 1) + t];
  return sum;
}

SOMA_CLONES
void soma_latency_batch_fill(const int32_t *codes, size_t features, const uint32_t *step_start,
                             size_t batch, size_t steps, size_t t_begin, size_t t_end,
                             size_t pos_begin, size_t pos_end, int32_t *row_start, int32_t *idx) {
  // Rows in output order, so idx is written front to back. Most (sample, step) runs hold 0–8
  // spikes at irregular counts: a loop bounded by the count mispredicts about once per row
  // (≈ 10 ns each), so runs are copied in whole blocks of 8 (at least one) and the count only
  // advances the position. Near pos_end the copy is exact, so nothing past this call's range
  // is touched.
  size_t pos = pos_begin;
  for (size_t t = t_begin; t < t_end; t++) {
    int32_t *rs = row_start + t * batch;
    for (size_t b = 0; b < batch; b++) {
      const uint32_t *o = step_start + b * (steps + 1) + t;
      const int32_t *src = codes + b * features + o[0];
      const size_t n = (size_t)o[1] - o[0];
      int32_t *dst = idx + pos;
      rs[b] = (int32_t)pos;
      if (pos + n + 8 <= pos_end) {
        size_t k = 0;
        do {
          memcpy(dst + k, src + k, 8 * sizeof *dst);
          k += 8;
        } while (k < n);
      } else {
        for (size_t k = 0; k < n; k++) dst[k] = src[k];
      }
      pos += n;
    }
  }
  if (t_end == steps) row_start[steps * batch] = (int32_t)pos;
}
