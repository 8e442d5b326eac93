#include "SomaEvents.h"

// One binary, three code paths: AVX-512, AVX2+FMA, baseline; picked at load time (ifunc).
#if defined(__x86_64__) && defined(__linux__)
#define SOMA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SOMA_CLONES
#endif

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

SOMA_CLONES
void soma_transpose_f32(const float *src, size_t rows, size_t cols, float *dst) {
  // 32×32 tiles: both the reads and the strided writes stay within a few cache lines.
  for (size_t r0 = 0; r0 < rows; r0 += 32) {
    const size_t r1 = r0 + 32 < rows ? r0 + 32 : rows;
    for (size_t c0 = 0; c0 < cols; c0 += 32) {
      const size_t c1 = c0 + 32 < cols ? c0 + 32 : cols;
      for (size_t r = r0; r < r1; r++)
        for (size_t c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
    }
  }
}
