// Event kernels for compiled networks' Linear layers (see include/SomaSparse.h).
#include "SomaSparse.h"
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cpu.h"

// ---------------------------------------------------------------- events from dense rows

static size_t from_dense_portable(const float *x, size_t r0, size_t r1, size_t n, int32_t *list,
                                  size_t k0, int32_t *begin, int32_t *end, int *binary,
                                  uint16_t *rowmask, size_t rows_padded) {
  size_t k = k0;
  int ok = 1;
  for (size_t r = r0; r < r1; r++) {
    begin[r] = (int32_t)k;
    const float *row = x + r * n;
    unsigned m = 0;
    for (size_t i = 0; i < n; i++) {
      const float v = row[i];
      list[k] = (int32_t)i;  // branch-free: written always, kept only when v ≠ 0
      k += (v != 0.0f);
      ok &= (v == 0.0f) | (v == 1.0f);
      m |= (unsigned)(v != 0.0f) << (i % 16);
      if (i % 16 == 15 || i == n - 1) {
        if (rowmask) rowmask[(i / 16) * rows_padded + r] = (uint16_t)m;
        m = 0;
      }
    }
    end[r] = (int32_t)k;
  }
  if (!ok) *binary = 0;
  return k - k0;
}

#ifdef SOMA_X86
AVX512 static size_t from_dense_avx512(const float *x, size_t r0, size_t r1, size_t n,
                                       int32_t *list, size_t k0, int32_t *begin, int32_t *end,
                                       int *binary, uint16_t *rowmask, size_t rows_padded) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 zero = _mm512_setzero_ps();
  const __m512 one = _mm512_set1_ps(1.0f);
  const __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1u);
  const size_t full = n - n % 16;
  __mmask16 bad = 0;
  size_t k = k0;
  for (size_t r = r0; r < r1; r++) {
    begin[r] = (int32_t)k;
    const float *row = x + r * n;
    for (size_t i = 0; i < full; i += 16) {
      const __m512 v = _mm512_loadu_ps(row + i);
      const __mmask16 nz = _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ);
      bad |= nz & ~_mm512_cmp_ps_mask(v, one, _CMP_EQ_OQ);
      const __m512i ids = _mm512_add_epi32(iota, _mm512_set1_epi32((int)i));
      // Register compress + full store: the memory form of vpcompressd is slow on Intel.
      _mm512_storeu_si512((void *)(list + k), _mm512_maskz_compress_epi32(nz, ids));
      k += (size_t)__builtin_popcount(nz);
      if (rowmask) rowmask[(i / 16) * rows_padded + r] = nz;
    }
    if (tail) {
      const __m512 v = _mm512_maskz_loadu_ps(tail, row + full);
      const __mmask16 nz = _mm512_mask_cmp_ps_mask(tail, v, zero, _CMP_NEQ_UQ);
      bad |= nz & ~_mm512_cmp_ps_mask(v, one, _CMP_EQ_OQ);
      const __m512i ids = _mm512_add_epi32(iota, _mm512_set1_epi32((int)full));
      _mm512_storeu_si512((void *)(list + k), _mm512_maskz_compress_epi32(nz, ids));
      k += (size_t)__builtin_popcount(nz);
      if (rowmask) rowmask[(full / 16) * rows_padded + r] = nz;
    }
    end[r] = (int32_t)k;
  }
  if (bad) *binary = 0;
  return k - k0;
}
#endif

size_t soma_sparse_from_dense_f32(const float *x, size_t r0, size_t r1, size_t n,
                                  int32_t *list, size_t k0, int32_t *begin, int32_t *end,
                                  int *binary, uint16_t *rowmask, size_t rows_padded) {
#ifdef SOMA_X86
  if (has_avx512())
    return from_dense_avx512(x, r0, r1, n, list, k0, begin, end, binary, rowmask, rows_padded);
#endif
  return from_dense_portable(x, r0, r1, n, list, k0, begin, end, binary, rowmask, rows_padded);
}

// ---------------------------------------------------------------- masks only, lists from masks

static size_t masks_portable(const float *x, size_t r0, size_t r1, size_t n, int *binary,
                             uint16_t *rowmask, size_t rows_padded) {
  size_t count = 0;
  int ok = 1;
  for (size_t r = r0; r < r1; r++) {
    const float *row = x + r * n;
    for (size_t cb = 0; cb * 16 < n; cb++) {
      unsigned m = 0;
      for (size_t q = 0; q < 16 && cb * 16 + q < n; q++) {
        const float v = row[cb * 16 + q];
        m |= (unsigned)(v != 0.0f) << q;
        ok &= (v == 0.0f) | (v == 1.0f);
      }
      rowmask[cb * rows_padded + r] = (uint16_t)m;
      count += (size_t)__builtin_popcount(m);
    }
  }
  if (!ok) *binary = 0;
  return count;
}

static size_t lists_portable(const uint16_t *rowmask, size_t rows_padded, size_t n, size_t r0,
                             size_t r1, int32_t *list, size_t k0, int32_t *begin, int32_t *end) {
  size_t k = k0;
  for (size_t r = r0; r < r1; r++) {
    begin[r] = (int32_t)k;
    for (size_t cb = 0; cb * 16 < n; cb++) {
      const unsigned m = rowmask[cb * rows_padded + r];
      for (unsigned q = 0; q < 16; q++)
        if ((m >> q) & 1u) list[k++] = (int32_t)(cb * 16 + q);
    }
    end[r] = (int32_t)k;
  }
  return k - k0;
}

#ifdef SOMA_X86
AVX512 static size_t masks_avx512(const float *x, size_t r0, size_t r1, size_t n, int *binary,
                                  uint16_t *rowmask, size_t rows_padded) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512 one = _mm512_set1_ps(1.0f);
  const size_t blocks = (n + 15) / 16;
  const __mmask16 tail = (n % 16) ? (__mmask16)((1u << (n % 16)) - 1u) : (__mmask16)0xffff;
  __mmask16 bad = 0;
  size_t count = 0;
  for (size_t r = r0; r < r1; r++) {
    const float *row = x + r * n;
    for (size_t cb = 0; cb < blocks; cb++) {
      const __mmask16 k = cb + 1 == blocks ? tail : (__mmask16)0xffff;
      const __m512 v = _mm512_maskz_loadu_ps(k, row + cb * 16);
      const __mmask16 nz = _mm512_mask_cmp_ps_mask(k, v, zero, _CMP_NEQ_UQ);
      bad |= nz & ~_mm512_cmp_ps_mask(v, one, _CMP_EQ_OQ);
      rowmask[cb * rows_padded + r] = nz;
      count += (size_t)__builtin_popcount(nz);
    }
  }
  if (bad) *binary = 0;
  return count;
}

AVX512 static size_t lists_avx512(const uint16_t *rowmask, size_t rows_padded, size_t n,
                                  size_t r0, size_t r1, int32_t *list, size_t k0,
                                  int32_t *begin, int32_t *end) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const size_t blocks = (n + 15) / 16;
  size_t k = k0;
  for (size_t r = r0; r < r1; r++) {
    begin[r] = (int32_t)k;
    for (size_t cb = 0; cb < blocks; cb++) {
      const __mmask16 m = rowmask[cb * rows_padded + r];
      const __m512i ids = _mm512_add_epi32(iota, _mm512_set1_epi32((int)(cb * 16)));
      _mm512_storeu_si512((void *)(list + k), _mm512_maskz_compress_epi32(m, ids));
      k += (size_t)__builtin_popcount(m);
    }
    end[r] = (int32_t)k;
  }
  return k - k0;
}
#endif

#ifdef SOMA_X86
// For each byte m, the positions of its set bits, one per byte from the lowest, as the 8-lane
// compress that AVX2 lacks: widened to 32 bits and offset, they are the list entries of m.
static const uint64_t soma_bit_positions[256] = {
    0x0000000000000000ull, 0x0000000000000000ull, 0x0000000000000001ull, 0x0000000000000100ull,
    0x0000000000000002ull, 0x0000000000000200ull, 0x0000000000000201ull, 0x0000000000020100ull,
    0x0000000000000003ull, 0x0000000000000300ull, 0x0000000000000301ull, 0x0000000000030100ull,
    0x0000000000000302ull, 0x0000000000030200ull, 0x0000000000030201ull, 0x0000000003020100ull,
    0x0000000000000004ull, 0x0000000000000400ull, 0x0000000000000401ull, 0x0000000000040100ull,
    0x0000000000000402ull, 0x0000000000040200ull, 0x0000000000040201ull, 0x0000000004020100ull,
    0x0000000000000403ull, 0x0000000000040300ull, 0x0000000000040301ull, 0x0000000004030100ull,
    0x0000000000040302ull, 0x0000000004030200ull, 0x0000000004030201ull, 0x0000000403020100ull,
    0x0000000000000005ull, 0x0000000000000500ull, 0x0000000000000501ull, 0x0000000000050100ull,
    0x0000000000000502ull, 0x0000000000050200ull, 0x0000000000050201ull, 0x0000000005020100ull,
    0x0000000000000503ull, 0x0000000000050300ull, 0x0000000000050301ull, 0x0000000005030100ull,
    0x0000000000050302ull, 0x0000000005030200ull, 0x0000000005030201ull, 0x0000000503020100ull,
    0x0000000000000504ull, 0x0000000000050400ull, 0x0000000000050401ull, 0x0000000005040100ull,
    0x0000000000050402ull, 0x0000000005040200ull, 0x0000000005040201ull, 0x0000000504020100ull,
    0x0000000000050403ull, 0x0000000005040300ull, 0x0000000005040301ull, 0x0000000504030100ull,
    0x0000000005040302ull, 0x0000000504030200ull, 0x0000000504030201ull, 0x0000050403020100ull,
    0x0000000000000006ull, 0x0000000000000600ull, 0x0000000000000601ull, 0x0000000000060100ull,
    0x0000000000000602ull, 0x0000000000060200ull, 0x0000000000060201ull, 0x0000000006020100ull,
    0x0000000000000603ull, 0x0000000000060300ull, 0x0000000000060301ull, 0x0000000006030100ull,
    0x0000000000060302ull, 0x0000000006030200ull, 0x0000000006030201ull, 0x0000000603020100ull,
    0x0000000000000604ull, 0x0000000000060400ull, 0x0000000000060401ull, 0x0000000006040100ull,
    0x0000000000060402ull, 0x0000000006040200ull, 0x0000000006040201ull, 0x0000000604020100ull,
    0x0000000000060403ull, 0x0000000006040300ull, 0x0000000006040301ull, 0x0000000604030100ull,
    0x0000000006040302ull, 0x0000000604030200ull, 0x0000000604030201ull, 0x0000060403020100ull,
    0x0000000000000605ull, 0x0000000000060500ull, 0x0000000000060501ull, 0x0000000006050100ull,
    0x0000000000060502ull, 0x0000000006050200ull, 0x0000000006050201ull, 0x0000000605020100ull,
    0x0000000000060503ull, 0x0000000006050300ull, 0x0000000006050301ull, 0x0000000605030100ull,
    0x0000000006050302ull, 0x0000000605030200ull, 0x0000000605030201ull, 0x0000060503020100ull,
    0x0000000000060504ull, 0x0000000006050400ull, 0x0000000006050401ull, 0x0000000605040100ull,
    0x0000000006050402ull, 0x0000000605040200ull, 0x0000000605040201ull, 0x0000060504020100ull,
    0x0000000006050403ull, 0x0000000605040300ull, 0x0000000605040301ull, 0x0000060504030100ull,
    0x0000000605040302ull, 0x0000060504030200ull, 0x0000060504030201ull, 0x0006050403020100ull,
    0x0000000000000007ull, 0x0000000000000700ull, 0x0000000000000701ull, 0x0000000000070100ull,
    0x0000000000000702ull, 0x0000000000070200ull, 0x0000000000070201ull, 0x0000000007020100ull,
    0x0000000000000703ull, 0x0000000000070300ull, 0x0000000000070301ull, 0x0000000007030100ull,
    0x0000000000070302ull, 0x0000000007030200ull, 0x0000000007030201ull, 0x0000000703020100ull,
    0x0000000000000704ull, 0x0000000000070400ull, 0x0000000000070401ull, 0x0000000007040100ull,
    0x0000000000070402ull, 0x0000000007040200ull, 0x0000000007040201ull, 0x0000000704020100ull,
    0x0000000000070403ull, 0x0000000007040300ull, 0x0000000007040301ull, 0x0000000704030100ull,
    0x0000000007040302ull, 0x0000000704030200ull, 0x0000000704030201ull, 0x0000070403020100ull,
    0x0000000000000705ull, 0x0000000000070500ull, 0x0000000000070501ull, 0x0000000007050100ull,
    0x0000000000070502ull, 0x0000000007050200ull, 0x0000000007050201ull, 0x0000000705020100ull,
    0x0000000000070503ull, 0x0000000007050300ull, 0x0000000007050301ull, 0x0000000705030100ull,
    0x0000000007050302ull, 0x0000000705030200ull, 0x0000000705030201ull, 0x0000070503020100ull,
    0x0000000000070504ull, 0x0000000007050400ull, 0x0000000007050401ull, 0x0000000705040100ull,
    0x0000000007050402ull, 0x0000000705040200ull, 0x0000000705040201ull, 0x0000070504020100ull,
    0x0000000007050403ull, 0x0000000705040300ull, 0x0000000705040301ull, 0x0000070504030100ull,
    0x0000000705040302ull, 0x0000070504030200ull, 0x0000070504030201ull, 0x0007050403020100ull,
    0x0000000000000706ull, 0x0000000000070600ull, 0x0000000000070601ull, 0x0000000007060100ull,
    0x0000000000070602ull, 0x0000000007060200ull, 0x0000000007060201ull, 0x0000000706020100ull,
    0x0000000000070603ull, 0x0000000007060300ull, 0x0000000007060301ull, 0x0000000706030100ull,
    0x0000000007060302ull, 0x0000000706030200ull, 0x0000000706030201ull, 0x0000070603020100ull,
    0x0000000000070604ull, 0x0000000007060400ull, 0x0000000007060401ull, 0x0000000706040100ull,
    0x0000000007060402ull, 0x0000000706040200ull, 0x0000000706040201ull, 0x0000070604020100ull,
    0x0000000007060403ull, 0x0000000706040300ull, 0x0000000706040301ull, 0x0000070604030100ull,
    0x0000000706040302ull, 0x0000070604030200ull, 0x0000070604030201ull, 0x0007060403020100ull,
    0x0000000000070605ull, 0x0000000007060500ull, 0x0000000007060501ull, 0x0000000706050100ull,
    0x0000000007060502ull, 0x0000000706050200ull, 0x0000000706050201ull, 0x0000070605020100ull,
    0x0000000007060503ull, 0x0000000706050300ull, 0x0000000706050301ull, 0x0000070605030100ull,
    0x0000000706050302ull, 0x0000070605030200ull, 0x0000070605030201ull, 0x0007060503020100ull,
    0x0000000007060504ull, 0x0000000706050400ull, 0x0000000706050401ull, 0x0000070605040100ull,
    0x0000000706050402ull, 0x0000070605040200ull, 0x0000070605040201ull, 0x0007060504020100ull,
    0x0000000706050403ull, 0x0000070605040300ull, 0x0000070605040301ull, 0x0007060504030100ull,
    0x0000070605040302ull, 0x0007060504030200ull, 0x0007060504030201ull, 0x0706050403020100ull,
};

// Appends the positions of the set bits of the 16-bit word m, offset by base, at list + k
// (writing up to 8 slots past the new end); returns the new k.
AVX2 static inline size_t append_bits16(unsigned m, int32_t base, int32_t *list, size_t k) {
  const __m256i b = _mm256_set1_epi32(base);
  const unsigned lo = m & 0xffu, hi = (m >> 8) & 0xffu;
  _mm256_storeu_si256((__m256i *)(list + k),
                      _mm256_add_epi32(b, _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(
                                              (long long)soma_bit_positions[lo]))));
  k += (size_t)__builtin_popcount(lo);
  _mm256_storeu_si256((__m256i *)(list + k),
                      _mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(8)),
                                       _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(
                                           (long long)soma_bit_positions[hi]))));
  return k + (size_t)__builtin_popcount(hi);
}

AVX2 static size_t masks_avx2(const float *x, size_t r0, size_t r1, size_t n, int *binary,
                              uint16_t *rowmask, size_t rows_padded) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 one = _mm256_set1_ps(1.0f);
  unsigned bad = 0;
  size_t count = 0;
  for (size_t r = r0; r < r1; r++) {
    const float *row = x + r * n;
    for (size_t i = 0; i < n; i += 16) {
      unsigned m = 0;
      for (size_t h = 0; h < 16 && i + h < n; h += 8) {
        const __m256 v = i + h + 8 <= n ? _mm256_loadu_ps(row + i + h)
                                        : _mm256_maskload_ps(row + i + h, soma_lanes8(n - i - h));
        const unsigned nz = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
        bad |= nz & ~(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, one, _CMP_EQ_OQ));
        m |= nz << h;
      }
      rowmask[(i / 16) * rows_padded + r] = (uint16_t)m;
      count += (size_t)__builtin_popcount(m);
    }
  }
  if (bad) *binary = 0;
  return count;
}

AVX2 static size_t lists_avx2(const uint16_t *rowmask, size_t rows_padded, size_t n, size_t r0,
                              size_t r1, int32_t *list, size_t k0, int32_t *begin, int32_t *end) {
  const size_t blocks = (n + 15) / 16;
  size_t k = k0;
  for (size_t r = r0; r < r1; r++) {
    begin[r] = (int32_t)k;
    for (size_t cb = 0; cb < blocks; cb++)
      k = append_bits16(rowmask[cb * rows_padded + r], (int32_t)(cb * 16), list, k);
    end[r] = (int32_t)k;
  }
  return k - k0;
}
#endif

size_t soma_sparse_masks_f32(const float *x, size_t r0, size_t r1, size_t n, int *binary,
                             uint16_t *rowmask, size_t rows_padded) {
#ifdef SOMA_X86
  if (has_avx512()) return masks_avx512(x, r0, r1, n, binary, rowmask, rows_padded);
  if (has_avx2()) return masks_avx2(x, r0, r1, n, binary, rowmask, rows_padded);
#endif
  return masks_portable(x, r0, r1, n, binary, rowmask, rows_padded);
}

size_t soma_sparse_lists_from_masks(const uint16_t *rowmask, size_t rows_padded, size_t n,
                                    size_t r0, size_t r1, int32_t *list, size_t k0,
                                    int32_t *begin, int32_t *end) {
#ifdef SOMA_X86
  if (has_avx512()) return lists_avx512(rowmask, rows_padded, n, r0, r1, list, k0, begin, end);
  if (has_avx2()) return lists_avx2(rowmask, rows_padded, n, r0, r1, list, k0, begin, end);
#endif
  return lists_portable(rowmask, rows_padded, n, r0, r1, list, k0, begin, end);
}

// ---------------------------------------------------------------- row masks → column bits

static void transpose_masks_portable(const uint16_t *rowmask, size_t n, size_t rows_padded,
                                     size_t cb0, size_t cb1, size_t t0, size_t t1,
                                     uint16_t *colbits) {
  const size_t words = rows_padded / 16;
  for (size_t cb = cb0; cb < cb1; cb++) {
    const size_t width = n - cb * 16 < 16 ? n - cb * 16 : 16;
    for (size_t t = t0; t < t1; t++) {
      const uint16_t *m = rowmask + cb * rows_padded + t * 16;
      for (size_t j = 0; j < width; j++) {
        unsigned w = 0;
        for (size_t q = 0; q < 16; q++) w |= (unsigned)((m[q] >> j) & 1u) << q;
        colbits[(cb * 16 + j) * words + t] = (uint16_t)w;
      }
    }
  }
}

#ifdef SOMA_X86
// A 16 × 16 bit transpose per tile: shifting bit j of every row's mask into the sign bit and
// collecting the 16 sign bits gives column j's rows.
AVX512 static void transpose_masks_avx512(const uint16_t *rowmask, size_t n, size_t rows_padded,
                                          size_t cb0, size_t cb1, size_t t0, size_t t1,
                                          uint16_t *colbits) {
  const size_t words = rows_padded / 16;
  for (size_t cb = cb0; cb < cb1; cb++) {
    const size_t width = n - cb * 16 < 16 ? n - cb * 16 : 16;
    for (size_t t = t0; t < t1; t++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(rowmask + cb * rows_padded + t * 16));
      __m256i shifted = _mm256_slli_epi16(v, 15);
      for (size_t j = 0; j < width; j++) {
        colbits[(cb * 16 + j) * words + t] = _mm256_movepi16_mask(shifted);
        shifted = _mm256_slli_epi16(_mm256_srli_epi16(v, (int)j + 1), 15);
      }
    }
  }
}
#endif

#ifdef SOMA_X86
// The same 16 × 16 bit transpose with AVX2: bit j of each row's mask shifted into the sign of
// its 16-bit lane, the lanes narrowed to bytes (signs kept), and the byte signs collected.
AVX2 static void transpose_masks_avx2(const uint16_t *rowmask, size_t n, size_t rows_padded,
                                      size_t cb0, size_t cb1, size_t t0, size_t t1,
                                      uint16_t *colbits) {
  const size_t words = rows_padded / 16;
  for (size_t cb = cb0; cb < cb1; cb++) {
    const size_t width = n - cb * 16 < 16 ? n - cb * 16 : 16;
    for (size_t t = t0; t < t1; t++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(rowmask + cb * rows_padded + t * 16));
      for (size_t j = 0; j < width; j++) {
        const __m256i s = _mm256_sll_epi16(v, _mm_cvtsi32_si128((int)(15 - j)));
        const unsigned mm = (unsigned)_mm256_movemask_epi8(_mm256_packs_epi16(s, s));
        colbits[(cb * 16 + j) * words + t] = (uint16_t)((mm & 0xffu) | ((mm >> 8) & 0xff00u));
      }
    }
  }
}
#endif

void soma_sparse_transpose_masks(const uint16_t *rowmask, size_t n, size_t rows_padded,
                                 size_t cb0, size_t cb1, size_t t0, size_t t1,
                                 uint16_t *colbits) {
#ifdef SOMA_X86
  if (has_avx512()) {
    transpose_masks_avx512(rowmask, n, rows_padded, cb0, cb1, t0, t1, colbits);
    return;
  }
  if (has_avx2()) {
    transpose_masks_avx2(rowmask, n, rows_padded, cb0, cb1, t0, t1, colbits);
    return;
  }
#endif
  transpose_masks_portable(rowmask, n, rows_padded, cb0, cb1, t0, t1, colbits);
}

// ---------------------------------------------------------------- gather-sum of listed rows


// sqrt without errno (libm's sqrtf must set it for negative input, which keeps loops scalar);
// the argument here is never negative.
#if defined(__clang__) && __has_builtin(__builtin_elementwise_sqrt)
#define SOMA_SQRT(x) __builtin_elementwise_sqrt(x)
#else
#define SOMA_SQRT(x) __builtin_sqrtf(x)
#endif

// Adam on one gradient value: p −= lr/c1 · m / (√(v/c2) + eps), with lr_c1 = lr / c1 and
// ic2 = 1 / c2 precomputed.
static inline void adam_scalar(float g, float *p, float *m, float *v, const soma_adam_step *a) {
  const float mi = a->b1 * *m + (1.0f - a->b1) * g;
  const float vi = a->b2 * *v + (1.0f - a->b2) * g * g;
  *m = mi;
  *v = vi;
  *p -= a->lr_c1 * mi / (SOMA_SQRT(vi * a->ic2) + a->eps);
}

// Row i of the result, 64 columns at a time: stored to dst (if any), and/or applied by Adam
// to param/m/v (if adam is set).
SOMA_CLONES static void gather_portable(const int32_t *begin, const int32_t *end,
                                   const int32_t *list, size_t i0, size_t i1,
                                   const float *src, size_t n, const float *init, float *dst,
                                   const soma_adam_step *adam, float *param, float *m, float *v) {
  for (size_t i = i0; i < i1; i++) {
    for (size_t j0 = 0; j0 < n; j0 += 64) {
      const size_t w = n - j0 < 64 ? n - j0 : 64;
      float acc[64];
      // init may be dst's own row i (accumulating passes): it is read before dst is written.
      for (size_t j = 0; j < w; j++) acc[j] = init ? init[j0 + j] : 0.0f;
      for (int32_t e = begin[i]; e < end[i]; e++) {
        const float *restrict s = src + (size_t)list[e] * n + j0;
        for (size_t j = 0; j < w; j++) acc[j] += s[j];
      }
      if (dst)
        for (size_t j = 0; j < w; j++) dst[i * n + j0 + j] = acc[j];
      if (adam) {
        const size_t o = i * n + j0;
        for (size_t j = 0; j < w; j++) adam_scalar(acc[j], param + o + j, m + o + j, v + o + j, adam);
      }
    }
  }
}

#ifdef SOMA_X86
typedef struct {
  __m512 b1, omb1, b2, omb2, lr_c1, ic2, eps;
} adam_vec;

AVX512 static inline adam_vec adam_consts(const soma_adam_step *a) {
  return (adam_vec){_mm512_set1_ps(a->b1),    _mm512_set1_ps(1.0f - a->b1),
                    _mm512_set1_ps(a->b2),    _mm512_set1_ps(1.0f - a->b2),
                    _mm512_set1_ps(a->lr_c1), _mm512_set1_ps(a->ic2),
                    _mm512_set1_ps(a->eps)};
}

// Adam on 16 (masked) parameters whose gradient is g.
AVX512 static inline void adam16(__m512 g, float *p, float *m, float *v, __mmask16 k,
                                 const adam_vec *c) {
  const __m512 mi = _mm512_fmadd_ps(c->b1, _mm512_maskz_loadu_ps(k, m), _mm512_mul_ps(c->omb1, g));
  const __m512 vi = _mm512_fmadd_ps(c->b2, _mm512_maskz_loadu_ps(k, v),
                                    _mm512_mul_ps(_mm512_mul_ps(c->omb2, g), g));
  const __m512 den = _mm512_add_ps(_mm512_sqrt_ps(_mm512_mul_ps(vi, c->ic2)), c->eps);
  const __m512 pi = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, p),
                                  _mm512_div_ps(_mm512_mul_ps(c->lr_c1, mi), den));
  _mm512_mask_storeu_ps(m, k, mi);
  _mm512_mask_storeu_ps(v, k, vi);
  _mm512_mask_storeu_ps(p, k, pi);
}

// 128 columns per pass: eight independent accumulator chains hide the add latency, and each
// event costs eight loads from the (cache-resident) source row.
AVX512 static inline void sum_block128(const int32_t *l, int32_t count, const float *src, size_t n,
                                       size_t j0, const float *init, __m512 acc[8]) {
  __m512 a0, a1, a2, a3, a4, a5, a6, a7;
  if (init) {
    a0 = _mm512_loadu_ps(init + j0), a1 = _mm512_loadu_ps(init + j0 + 16);
    a2 = _mm512_loadu_ps(init + j0 + 32), a3 = _mm512_loadu_ps(init + j0 + 48);
    a4 = _mm512_loadu_ps(init + j0 + 64), a5 = _mm512_loadu_ps(init + j0 + 80);
    a6 = _mm512_loadu_ps(init + j0 + 96), a7 = _mm512_loadu_ps(init + j0 + 112);
  } else {
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm512_setzero_ps();
  }
  for (int32_t e = 0; e < count; e++) {
    const float *s = src + (size_t)l[e] * n + j0;
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(s));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(s + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(s + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(s + 48));
    a4 = _mm512_add_ps(a4, _mm512_loadu_ps(s + 64));
    a5 = _mm512_add_ps(a5, _mm512_loadu_ps(s + 80));
    a6 = _mm512_add_ps(a6, _mm512_loadu_ps(s + 96));
    a7 = _mm512_add_ps(a7, _mm512_loadu_ps(s + 112));
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
  acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7;
}

// One 16-column slice (masked at the edge); events in fours so four chains run at once.
AVX512 static inline __m512 sum_slice16(const int32_t *l, int32_t count, const float *src,
                                        size_t n, size_t j0, __mmask16 m, const float *init) {
  __m512 a0 = init ? _mm512_maskz_loadu_ps(m, init + j0) : _mm512_setzero_ps();
  __m512 a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int32_t e = 0;
  for (; e + 4 <= count; e += 4) {
    a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m, src + (size_t)l[e] * n + j0));
    a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(m, src + (size_t)l[e + 1] * n + j0));
    a2 = _mm512_add_ps(a2, _mm512_maskz_loadu_ps(m, src + (size_t)l[e + 2] * n + j0));
    a3 = _mm512_add_ps(a3, _mm512_maskz_loadu_ps(m, src + (size_t)l[e + 3] * n + j0));
  }
  for (; e < count; e++) a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m, src + (size_t)l[e] * n + j0));
  return _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
}

// Row i's 128-column block at j0 (or 16-column slice when j0 + 128 > n): stored to dst (if
// any) and/or applied by Adam (if c is set) while in registers.
AVX512 static inline void gather_row_block(const int32_t *begin, const int32_t *end,
                                           const int32_t *list, size_t i, const float *src,
                                           size_t n, size_t j0, const float *init, float *dst,
                                           const adam_vec *c, float *param, float *m, float *v) {
  const size_t o = i * n + j0;
  if (j0 + 128 <= n) {
    __m512 acc[8];
    sum_block128(list + begin[i], end[i] - begin[i], src, n, j0, init, acc);
    if (dst)
      for (int q = 0; q < 8; q++) _mm512_storeu_ps(dst + o + 16 * q, acc[q]);
    if (c)
      for (int q = 0; q < 8; q++)
        adam16(acc[q], param + o + 16 * q, m + o + 16 * q, v + o + 16 * q, 0xffff, c);
    return;
  }
  const size_t w = n - j0 < 16 ? n - j0 : 16;
  const __mmask16 k = (__mmask16)((1u << w) - 1u);
  const __m512 sum = sum_slice16(list + begin[i], end[i] - begin[i], src, n, j0, k, init);
  if (dst) _mm512_mask_storeu_ps(dst + o, k, sum);
  if (c) adam16(sum, param + o, m + o, v + o, k, c);
}

// Plain gathers run column blocks outermost: one pass reads a 128-column slab of src (e.g.
// 784 × 512 B) for all rows, so the slab stays in L2 instead of every row streaming the whole
// of src. With Adam, rows go outermost instead: param, m and v are then read as contiguous
// rows, which the prefetcher follows (11 % faster on a 256 × 512 source; equal on 1024 × 512).
AVX512 static void gather_avx512(const int32_t *begin, const int32_t *end, const int32_t *list,
                                 size_t i0, size_t i1, const float *src, size_t n,
                                 const float *init, float *dst, const soma_adam_step *adam,
                                 float *param, float *m, float *v) {
  const adam_vec c = adam ? adam_consts(adam) : (adam_vec){0};
  const adam_vec *cp = adam ? &c : NULL;
  size_t full = n / 128 * 128;
  if (adam) {
    for (size_t i = i0; i < i1; i++) {
      for (size_t j0 = 0; j0 < full; j0 += 128)
        gather_row_block(begin, end, list, i, src, n, j0, init, dst, cp, param, m, v);
      for (size_t j0 = full; j0 < n; j0 += 16)
        gather_row_block(begin, end, list, i, src, n, j0, init, dst, cp, param, m, v);
    }
    return;
  }
  for (size_t j0 = 0; j0 < full; j0 += 128)
    for (size_t i = i0; i < i1; i++)
      gather_row_block(begin, end, list, i, src, n, j0, init, dst, NULL, NULL, NULL, NULL);
  for (size_t j0 = full; j0 < n; j0 += 16)
    for (size_t i = i0; i < i1; i++)
      gather_row_block(begin, end, list, i, src, n, j0, init, dst, NULL, NULL, NULL, NULL);
}

AVX512 static void adam_avx512(float *p, const float *g, float *m, float *v, size_t n,
                               const soma_adam_step *a) {
  const adam_vec c = adam_consts(a);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) adam16(_mm512_loadu_ps(g + i), p + i, m + i, v + i, 0xffff, &c);
  if (i < n) {
    const __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
    adam16(_mm512_maskz_loadu_ps(k, g + i), p + i, m + i, v + i, k, &c);
  }
}

// Expands rows t0*16 ..< t1*16 of a column's bits into a row list; returns its length.
AVX512 static inline int32_t expand_bits(const uint16_t *bits, size_t t0, size_t t1, int32_t *l) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int32_t k = 0;
  for (size_t t = t0; t < t1; t++) {
    const __mmask16 m = bits[t];
    const __m512i ids = _mm512_add_epi32(iota, _mm512_set1_epi32((int)(t * 16)));
    _mm512_storeu_si512((void *)(l + k), _mm512_maskz_compress_epi32(m, ids));
    k += __builtin_popcount(m);
  }
  return k;
}

#endif

#ifdef SOMA_X86
typedef struct {
  __m256 b1, omb1, b2, omb2, lr_c1, ic2, eps;
} adam_vec8;

AVX2 static inline adam_vec8 adam_consts8(const soma_adam_step *a) {
  return (adam_vec8){_mm256_set1_ps(a->b1),    _mm256_set1_ps(1.0f - a->b1),
                     _mm256_set1_ps(a->b2),    _mm256_set1_ps(1.0f - a->b2),
                     _mm256_set1_ps(a->lr_c1), _mm256_set1_ps(a->ic2),
                     _mm256_set1_ps(a->eps)};
}

// Adam on 8 parameters whose gradient is g (the first `lanes` of them when lanes < 8).
AVX2 static inline void adam8(__m256 g, float *p, float *m, float *v, size_t lanes,
                              const adam_vec8 *c) {
  if (lanes >= 8) {
    const __m256 mi = _mm256_fmadd_ps(c->b1, _mm256_loadu_ps(m), _mm256_mul_ps(c->omb1, g));
    const __m256 vi = _mm256_fmadd_ps(c->b2, _mm256_loadu_ps(v),
                                      _mm256_mul_ps(_mm256_mul_ps(c->omb2, g), g));
    const __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vi, c->ic2)), c->eps);
    _mm256_storeu_ps(m, mi);
    _mm256_storeu_ps(v, vi);
    _mm256_storeu_ps(p, _mm256_sub_ps(_mm256_loadu_ps(p),
                                      _mm256_div_ps(_mm256_mul_ps(c->lr_c1, mi), den)));
    return;
  }
  const __m256i k = soma_lanes8(lanes);
  const __m256 mi = _mm256_fmadd_ps(c->b1, _mm256_maskload_ps(m, k), _mm256_mul_ps(c->omb1, g));
  const __m256 vi = _mm256_fmadd_ps(c->b2, _mm256_maskload_ps(v, k),
                                    _mm256_mul_ps(_mm256_mul_ps(c->omb2, g), g));
  const __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vi, c->ic2)), c->eps);
  _mm256_maskstore_ps(m, k, mi);
  _mm256_maskstore_ps(v, k, vi);
  _mm256_maskstore_ps(p, k, _mm256_sub_ps(_mm256_maskload_ps(p, k),
                                          _mm256_div_ps(_mm256_mul_ps(c->lr_c1, mi), den)));
}

// Row i's 64-column block at j0: eight independent accumulator chains (the whole AVX2
// register file's half) hide the add latency; each event costs eight loads of its source row.
// Stored to dst (if any) and/or applied by Adam (if c is set) while in registers.
AVX2 static inline void gather_block64_avx2(const int32_t *l, int32_t count, const float *src,
                                            size_t n, size_t j0, const float *init, float *dst,
                                            const adam_vec8 *c, float *param, float *m, float *v) {
  __m256 a0, a1, a2, a3, a4, a5, a6, a7;
  if (init) {
    a0 = _mm256_loadu_ps(init + j0), a1 = _mm256_loadu_ps(init + j0 + 8);
    a2 = _mm256_loadu_ps(init + j0 + 16), a3 = _mm256_loadu_ps(init + j0 + 24);
    a4 = _mm256_loadu_ps(init + j0 + 32), a5 = _mm256_loadu_ps(init + j0 + 40);
    a6 = _mm256_loadu_ps(init + j0 + 48), a7 = _mm256_loadu_ps(init + j0 + 56);
  } else {
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm256_setzero_ps();
  }
  for (int32_t e = 0; e < count; e++) {
    const float *s = src + (size_t)l[e] * n + j0;
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(s));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(s + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(s + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(s + 24));
    a4 = _mm256_add_ps(a4, _mm256_loadu_ps(s + 32));
    a5 = _mm256_add_ps(a5, _mm256_loadu_ps(s + 40));
    a6 = _mm256_add_ps(a6, _mm256_loadu_ps(s + 48));
    a7 = _mm256_add_ps(a7, _mm256_loadu_ps(s + 56));
  }
  const __m256 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
  if (dst)
    for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + 8 * q, acc[q]);
  if (c)
    for (int q = 0; q < 8; q++) adam8(acc[q], param + 8 * q, m + 8 * q, v + 8 * q, 8, c);
}

// The columns [j0, n) (fewer than 64) of row i, 8 at a time (masked at the edge); events in
// fours so four chains run at once.
AVX2 static inline void gather_tail_avx2(const int32_t *l, int32_t count, const float *src,
                                         size_t n, size_t j0, const float *init, float *dst,
                                         const adam_vec8 *c, float *param, float *m, float *v) {
  for (size_t j = j0; j < n; j += 8) {
    const size_t w = n - j < 8 ? n - j : 8;
    const __m256i k = soma_lanes8(w);
    __m256 a0 = init ? _mm256_maskload_ps(init + j, k) : _mm256_setzero_ps();
    __m256 a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int32_t e = 0;
    for (; e + 4 <= count; e += 4) {
      a0 = _mm256_add_ps(a0, _mm256_maskload_ps(src + (size_t)l[e] * n + j, k));
      a1 = _mm256_add_ps(a1, _mm256_maskload_ps(src + (size_t)l[e + 1] * n + j, k));
      a2 = _mm256_add_ps(a2, _mm256_maskload_ps(src + (size_t)l[e + 2] * n + j, k));
      a3 = _mm256_add_ps(a3, _mm256_maskload_ps(src + (size_t)l[e + 3] * n + j, k));
    }
    for (; e < count; e++) a0 = _mm256_add_ps(a0, _mm256_maskload_ps(src + (size_t)l[e] * n + j, k));
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    if (dst) _mm256_maskstore_ps(dst + (j - j0), k, sum);
    if (c) adam8(sum, param + (j - j0), m + (j - j0), v + (j - j0), w, c);
  }
}

// As gather_avx512: plain gathers run 64-column slabs outermost (a 784 × 256 B slab stays in
// L2 for all rows); with Adam, rows go outermost so param, m and v stream as whole rows.
AVX2 static void gather_avx2(const int32_t *begin, const int32_t *end, const int32_t *list,
                             size_t i0, size_t i1, const float *src, size_t n, const float *init,
                             float *dst, const soma_adam_step *adam, float *param, float *m,
                             float *v) {
  const adam_vec8 c = adam ? adam_consts8(adam) : (adam_vec8){0};
  const adam_vec8 *cp = adam ? &c : NULL;
  const size_t full = n / 64 * 64;
#define SOMA_GATHER_ARGS(i, j0)                                                                \
  list + begin[i], end[i] - begin[i], src, n, j0, init, dst ? dst + (i) * n + (j0) : NULL, cp, \
      adam ? param + (i) * n + (j0) : NULL, adam ? m + (i) * n + (j0) : NULL,                  \
      adam ? v + (i) * n + (j0) : NULL
  if (adam) {
    for (size_t i = i0; i < i1; i++) {
      for (size_t j0 = 0; j0 < full; j0 += 64) gather_block64_avx2(SOMA_GATHER_ARGS(i, j0));
      if (full < n) gather_tail_avx2(SOMA_GATHER_ARGS(i, full));
    }
    return;
  }
  for (size_t j0 = 0; j0 < full; j0 += 64)
    for (size_t i = i0; i < i1; i++) gather_block64_avx2(SOMA_GATHER_ARGS(i, j0));
  if (full < n)
    for (size_t i = i0; i < i1; i++) gather_tail_avx2(SOMA_GATHER_ARGS(i, full));
#undef SOMA_GATHER_ARGS
}

AVX2 static void adam_avx2(float *p, const float *g, float *m, float *v, size_t n,
                           const soma_adam_step *a) {
  const adam_vec8 c = adam_consts8(a);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) adam8(_mm256_loadu_ps(g + i), p + i, m + i, v + i, 8, &c);
  if (i < n) adam8(_mm256_maskload_ps(g + i, soma_lanes8(n - i)), p + i, m + i, v + i, n - i, &c);
}
#endif

static void gather(const int32_t *begin, const int32_t *end, const int32_t *list, size_t i0,
                   size_t i1, const float *src, size_t n, const float *init, float *dst,
                   const soma_adam_step *adam, float *param, float *m, float *v) {
#ifdef SOMA_X86
  if (has_avx512()) {
    gather_avx512(begin, end, list, i0, i1, src, n, init, dst, adam, param, m, v);
    return;
  }
  if (has_avx2()) {
    gather_avx2(begin, end, list, i0, i1, src, n, init, dst, adam, param, m, v);
    return;
  }
#endif
  gather_portable(begin, end, list, i0, i1, src, n, init, dst, adam, param, m, v);
}

void soma_sparse_gather_f32(const int32_t *begin, const int32_t *end, const int32_t *list,
                            size_t i0, size_t i1, const float *src, size_t n, const float *init,
                            float *dst) {
  gather(begin, end, list, i0, i1, src, n, init, dst, NULL, NULL, NULL, NULL);
}

void soma_sparse_gather_adam_f32(const int32_t *begin, const int32_t *end, const int32_t *list,
                                 size_t i0, size_t i1, const float *src, size_t n, float *grad,
                                 const soma_adam_step *adam, float *param, float *m, float *v) {
  gather(begin, end, list, i0, i1, src, n, NULL, grad, adam, param, m, v);
}


void soma_sparse_adam_f32(float *param, const float *grad, float *m, float *v, size_t n,
                          const soma_adam_step *adam) {
#ifdef SOMA_X86
  if (has_avx512()) {
    adam_avx512(param, grad, m, v, n, adam);
    return;
  }
  if (has_avx2()) {
    adam_avx2(param, grad, m, v, n, adam);
    return;
  }
#endif
  for (size_t i = 0; i < n; i++) adam_scalar(grad[i], param + i, m + i, v + i, adam);
}

// ---------------------------------------------------------------- scatter through an L1 tile

// Rows i of the block [ib, ib + 64) ∩ [·, i1) whose bit k is set, as one 64-bit word (bit r is
// row ib + r): block word w is bits[(ib / 16 + w) · si + k · sk].
static inline uint64_t block_bits(const uint16_t *bits, size_t si, size_t sk, size_t nw,
                                  size_t k, uint64_t keep) {
  const uint16_t *p = bits + k * sk;
  uint64_t b = p[0];
  if (nw > 1) b |= (uint64_t)p[si] << 16;
  if (nw > 2) b |= (uint64_t)p[2 * si] << 32;
  if (nw > 3) b |= (uint64_t)p[3 * si] << 48;
  return b & keep;
}

SOMA_CLONES static void scatter_portable(const uint16_t *bits, size_t si, size_t sk, size_t kc, size_t i0,
                             size_t i1, const float *src, size_t n, const float *init, float *dst,
                             size_t ldt, const soma_adam_step *adam, float *param, float *m,
                             float *v) {
  for (size_t i = i0; i < i1; i++) {
    const uint16_t *row = bits + (i / 16) * si;
    const unsigned q = (unsigned)(i % 16);
    for (size_t j0 = 0; j0 < n; j0 += 128) {
      const size_t w = n - j0 < 128 ? n - j0 : 128;
      float acc[128];
      for (size_t j = 0; j < w; j++) acc[j] = init ? init[j0 + j] : 0.0f;
      for (size_t k = 0; k < kc; k++) {
        if (!((row[k * sk] >> q) & 1u)) continue;
        const float *restrict s = src + k * n + j0;
        for (size_t j = 0; j < w; j++) acc[j] += s[j];
      }
      const size_t o = i * n + j0;
      if (dst && ldt)
        for (size_t j = 0; j < w; j++) dst[(j0 + j) * ldt + i] = acc[j];
      else if (dst)
        for (size_t j = 0; j < w; j++) dst[o + j] = acc[j];
      if (adam)
        for (size_t j = 0; j < w; j++) adam_scalar(acc[j], param + o + j, m + o + j, v + o + j, adam);
    }
  }
}

#ifdef SOMA_X86
// Adds the 128 floats at s (8 vectors, in registers) to the tile rows set in b.
#define SOMA_SCATTER_ROWS(b, tile, w0, w1, w2, w3, w4, w5, w6, w7)                              \
  do {                                                                                         \
    const size_t r_ = (size_t)__builtin_ctzll(b);                                              \
    b &= b - 1;                                                                                \
    float *t_ = (tile) + r_ * 128;                                                             \
    _mm512_store_ps(t_, _mm512_add_ps(_mm512_load_ps(t_), w0));                                \
    _mm512_store_ps(t_ + 16, _mm512_add_ps(_mm512_load_ps(t_ + 16), w1));                      \
    _mm512_store_ps(t_ + 32, _mm512_add_ps(_mm512_load_ps(t_ + 32), w2));                      \
    _mm512_store_ps(t_ + 48, _mm512_add_ps(_mm512_load_ps(t_ + 48), w3));                      \
    _mm512_store_ps(t_ + 64, _mm512_add_ps(_mm512_load_ps(t_ + 64), w4));                      \
    _mm512_store_ps(t_ + 80, _mm512_add_ps(_mm512_load_ps(t_ + 80), w5));                      \
    _mm512_store_ps(t_ + 96, _mm512_add_ps(_mm512_load_ps(t_ + 96), w6));                      \
    _mm512_store_ps(t_ + 112, _mm512_add_ps(_mm512_load_ps(t_ + 112), w7));                    \
  } while (b)

// Output rows go in blocks of 64 and columns in blocks of 128, so one block's sums (32 KB)
// stay in L1 while every source row k is read once per block: its 128 columns are loaded into
// registers and added to each output row whose bit k is set. Per event that is 8 L1 loads and
// 8 L1 stores, against 8 lines from L2 for the row-at-a-time gather (about 0.7× its time at
// 10–40 % density on 784 × 512). Rows still add their events in ascending k, after init.
AVX512 static void scatter_avx512(const uint16_t *bits, size_t si, size_t sk, size_t kc,
                                  size_t i0, size_t i1, const float *src, size_t n,
                                  const float *init, float *dst, size_t ldt,
                                  const soma_adam_step *adam, float *param, float *m, float *v) {
  _Alignas(64) float tile[64 * 128];
  const adam_vec c = adam ? adam_consts(adam) : (adam_vec){0};
  for (size_t ib = i0; ib < i1; ib += 64) {
    const size_t rb = i1 - ib < 64 ? i1 - ib : 64;
    const size_t nw = (rb + 15) / 16;
    const uint64_t keep = rb == 64 ? ~(uint64_t)0 : ((uint64_t)1 << rb) - 1;
    const uint16_t *bb = bits + (ib / 16) * si;
    for (size_t j0 = 0; j0 < n; j0 += 128) {
      const size_t w = n - j0 < 128 ? n - j0 : 128;
      const size_t nv = (w + 15) / 16;
      const __mmask16 lastm = (w % 16) ? (__mmask16)((1u << (w % 16)) - 1u) : (__mmask16)0xffff;
      for (size_t r = 0; r < rb; r++)
        for (size_t q = 0; q < nv; q++) {
          const __mmask16 k = q + 1 == nv ? lastm : (__mmask16)0xffff;
          _mm512_store_ps(tile + r * 128 + 16 * q,
                          init ? _mm512_maskz_loadu_ps(k, init + j0 + 16 * q) : _mm512_setzero_ps());
        }
      if (w == 128) {
        for (size_t k = 0; k < kc; k++) {
          uint64_t b = block_bits(bb, si, sk, nw, k, keep);
          if (!b) continue;
          const float *s = src + k * n + j0;
          // The source row two ahead (prefetches do not fault past the end).
          const char *pf = (const char *)(s + 2 * n);
          for (int z = 0; z < 512; z += 64) _mm_prefetch(pf + z, _MM_HINT_T0);
          const __m512 w0 = _mm512_loadu_ps(s), w1 = _mm512_loadu_ps(s + 16);
          const __m512 w2 = _mm512_loadu_ps(s + 32), w3 = _mm512_loadu_ps(s + 48);
          const __m512 w4 = _mm512_loadu_ps(s + 64), w5 = _mm512_loadu_ps(s + 80);
          const __m512 w6 = _mm512_loadu_ps(s + 96), w7 = _mm512_loadu_ps(s + 112);
          SOMA_SCATTER_ROWS(b, tile, w0, w1, w2, w3, w4, w5, w6, w7);
        }
      } else {
        // A narrower last column block: one masked vector at a time.
        for (size_t k = 0; k < kc; k++) {
          const uint64_t b0 = block_bits(bb, si, sk, nw, k, keep);
          if (!b0) continue;
          const float *s = src + k * n + j0;
          for (size_t q = 0; q < nv; q++) {
            const __m512 sv = _mm512_maskz_loadu_ps(q + 1 == nv ? lastm : (__mmask16)0xffff, s + 16 * q);
            uint64_t b = b0;
            do {
              float *t = tile + (size_t)__builtin_ctzll(b) * 128 + 16 * q;
              b &= b - 1;
              _mm512_store_ps(t, _mm512_add_ps(_mm512_load_ps(t), sv));
            } while (b);
          }
        }
      }
      if (dst && ldt)
        // Transposed: column j0 + c of the tile is rows ib ..< ib + rb of dst's row j0 + c.
        for (size_t c = 0; c < w; c++)
          for (size_t r = 0; r < rb; r++) dst[(j0 + c) * ldt + ib + r] = tile[r * 128 + c];
      for (size_t r = 0; r < rb; r++) {
        const size_t o = (ib + r) * n + j0;
        for (size_t q = 0; q < nv; q++) {
          const __mmask16 k = q + 1 == nv ? lastm : (__mmask16)0xffff;
          const __m512 sum = _mm512_load_ps(tile + r * 128 + 16 * q);
          if (dst && !ldt) _mm512_mask_storeu_ps(dst + o + 16 * q, k, sum);
          if (adam) adam16(sum, param + o + 16 * q, m + o + 16 * q, v + o + 16 * q, k, &c);
        }
      }
    }
  }
}
#undef SOMA_SCATTER_ROWS
#endif

// ---------------------------------------------------------------- scatter, AVX2

size_t soma_sparse_packed_count(size_t kc, size_t n) { return kc * ((n + 7) / 8 * 8); }

// Slab jb (columns [64 jb, 64 jb + w), w rounded up to 8 and zero-filled) holds rows k
// contiguously at packed + 64 · jb · kc + k · w8.
void soma_sparse_pack_f32(const float *src, size_t kc, size_t n, size_t k0, size_t k1,
                          float *packed) {
  for (size_t j0 = 0; j0 < n; j0 += 64) {
    const size_t w = n - j0 < 64 ? n - j0 : 64;
    const size_t w8 = (w + 7) / 8 * 8;
    float *slab = packed + j0 * kc;
    for (size_t k = k0; k < k1; k++) {
      float *d = slab + k * w8;
      memcpy(d, src + k * n + j0, w * sizeof(float));
      for (size_t j = w; j < w8; j++) d[j] = 0.0f;
    }
  }
}

#ifdef SOMA_X86
// Transposes the 8 × 8 block held in r[0..8) (row i in r[i]) in place.
AVX2 static inline void transpose8_avx2(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// The rows [0, rb) × columns [0, w) of a 64-column tile, transposed: column c goes to
// dst[c · ldt ..< c · ldt + rb], in 8 × 8 blocks through registers (rows past rb are read but
// never stored).
AVX2 static void store_tile_transposed_avx2(const float *tile, size_t rb, size_t w, float *dst,
                                            size_t ldt) {
  for (size_t r0 = 0; r0 < rb; r0 += 8) {
    const size_t nr = rb - r0 < 8 ? rb - r0 : 8;
    const __m256i rows = soma_lanes8(nr);
    for (size_t c0 = 0; c0 < w; c0 += 8) {
      const size_t nc = w - c0 < 8 ? w - c0 : 8;
      __m256 v[8];
      for (int t = 0; t < 8; t++) v[t] = _mm256_load_ps(tile + (r0 + (size_t)t) * 64 + c0);
      transpose8_avx2(v);
      for (size_t c = 0; c < nc; c++) {
        float *d = dst + (c0 + c) * ldt + r0;
        if (nr == 8)
          _mm256_storeu_ps(d, v[c]);
        else
          _mm256_maskstore_ps(d, rows, v[c]);
      }
    }
  }
}

// soma_sparse_pack_f32 of srcᵀ: 8 × 8 blocks through registers, 8 source rows (slab columns)
// at a time; a source row's 8 floats are read where the next block reads the rest of its line.
AVX2 static void pack_transposed_avx2(const float *src, size_t n, size_t kc, size_t k0,
                                      size_t k1, float *packed) {
  for (size_t j0 = 0; j0 < n; j0 += 64) {
    const size_t w = n - j0 < 64 ? n - j0 : 64;
    const size_t w8 = (w + 7) / 8 * 8;
    float *slab = packed + j0 * kc;
    size_t k = k0;
    for (; k + 8 <= k1; k += 8)
      for (size_t c0 = 0; c0 < w8; c0 += 8) {
        __m256 v[8];
        for (size_t t = 0; t < 8; t++)
          v[t] = c0 + t < w ? _mm256_loadu_ps(src + (j0 + c0 + t) * kc + k) : _mm256_setzero_ps();
        transpose8_avx2(v);
        for (size_t u = 0; u < 8; u++) _mm256_storeu_ps(slab + (k + u) * w8 + c0, v[u]);
      }
    for (; k < k1; k++) {
      float *d = slab + k * w8;
      for (size_t c = 0; c < w8; c++) d[c] = c < w ? src[(j0 + c) * kc + k] : 0.0f;
    }
  }
}
#endif

void soma_sparse_pack_transposed_f32(const float *src, size_t n, size_t kc, size_t k0, size_t k1,
                                     float *packed) {
#ifdef SOMA_X86
  if (has_avx2()) {
    pack_transposed_avx2(src, n, kc, k0, k1, packed);
    return;
  }
#endif
  for (size_t j0 = 0; j0 < n; j0 += 64) {
    const size_t w = n - j0 < 64 ? n - j0 : 64;
    const size_t w8 = (w + 7) / 8 * 8;
    float *slab = packed + j0 * kc;
    for (size_t k = k0; k < k1; k++) {
      float *d = slab + k * w8;
      for (size_t c = 0; c < w8; c++) d[c] = c < w ? src[(j0 + c) * kc + k] : 0.0f;
    }
  }
}

#ifdef SOMA_X86
// The first rb rows × w columns of a 64-column L1 tile set to init[0 ..< w] (or 0).
AVX2 static inline void tile_start_avx2(float *tile, size_t rb, size_t w, const float *init) {
  const size_t nv = (w + 7) / 8;
  for (size_t r = 0; r < rb; r++)
    for (size_t q = 0; q < nv; q++) {
      const size_t lanes = w - 8 * q < 8 ? w - 8 * q : 8;
      _mm256_store_ps(tile + r * 64 + 8 * q,
                      init ? _mm256_maskload_ps(init + 8 * q, soma_lanes8(lanes))
                           : _mm256_setzero_ps());
    }
}

// The tile's rb × w sums to dst (row r at dst + o + r · n, when dst is not NULL) and, with
// Adam's constants c, as the gradient of param, m, v at the same offsets.
AVX2 static inline void tile_finish_avx2(const float *tile, size_t rb, size_t w, size_t o,
                                         size_t n, float *dst, const adam_vec8 *c,
                                         float *param, float *m, float *v) {
  const size_t nv = (w + 7) / 8;
  for (size_t r = 0; r < rb; r++, o += n)
    for (size_t q = 0; q < nv; q++) {
      const size_t lanes = w - 8 * q < 8 ? w - 8 * q : 8;
      const __m256 sum = _mm256_load_ps(tile + r * 64 + 8 * q);
      if (dst) {
        if (lanes == 8)
          _mm256_storeu_ps(dst + o + 8 * q, sum);
        else
          _mm256_maskstore_ps(dst + o + 8 * q, soma_lanes8(lanes), sum);
      }
      if (c) adam8(sum, param + o + 8 * q, m + o + 8 * q, v + o + 8 * q, lanes, c);
    }
}
#endif

#ifdef SOMA_X86
// As scatter_avx512 with half the vector width: a tile of 64 output rows × 64 columns (16 KB)
// stays in L1 while each source row k's 64 columns (8 vectors, in registers) are added to the
// tile rows whose bit k is set: 8 L1 loads and stores per event. The source rows come from the
// packed slabs (soma_sparse_pack_f32): read in their original layout, the rows of one 64-column
// slab sit 1–2 KB apart, map to a quarter of L2's sets or fewer and evict each other (measured
// 1.4× slower even for a row-list gather). Rows add their events in ascending k, after init.
// `packed` is either the packed slabs (packed_layout set) or the source itself, rows n floats
// apart (when few output blocks read each slab, packing costs more than the set conflicts).
AVX2 static void scatter_avx2(const uint16_t *bits, size_t si, size_t sk, size_t kc, size_t i0,
                              size_t i1, const float *packed, int packed_layout, size_t n,
                              size_t c0, size_t c1, const float *init, float *dst, size_t ldt,
                              const soma_adam_step *adam, float *param, float *m, float *v) {
  _Alignas(64) float tile[64 * 64];
  const adam_vec8 c = adam ? adam_consts8(adam) : (adam_vec8){0};
  for (size_t ib = i0; ib < i1; ib += 64) {
    const size_t rb = i1 - ib < 64 ? i1 - ib : 64;
    const size_t nw = (rb + 15) / 16;
    const uint64_t keep = rb == 64 ? ~(uint64_t)0 : ((uint64_t)1 << rb) - 1;
    const uint16_t *bb = bits + (ib / 16) * si;
    for (size_t j0 = c0; j0 < c1; j0 += 64) {
      const size_t w = n - j0 < 64 ? n - j0 : 64;
      const size_t nv = (w + 7) / 8;
      const float *slab = packed_layout ? packed + j0 * kc : packed + j0;
      const size_t ld = packed_layout ? (nv == 8 ? 64 : nv * 8) : n;
      tile_start_avx2(tile, rb, w, init ? init + j0 : NULL);
      if (nv == 8) {
        for (size_t k = 0; k < kc; k++) {
          uint64_t b = block_bits(bb, si, sk, nw, k, keep);
          if (!b) continue;
          const float *s = slab + k * ld;
          const __m256 w0 = _mm256_loadu_ps(s), w1 = _mm256_loadu_ps(s + 8);
          const __m256 w2 = _mm256_loadu_ps(s + 16), w3 = _mm256_loadu_ps(s + 24);
          const __m256 w4 = _mm256_loadu_ps(s + 32), w5 = _mm256_loadu_ps(s + 40);
          const __m256 w6 = _mm256_loadu_ps(s + 48), w7 = _mm256_loadu_ps(s + 56);
          do {
            float *t = tile + (size_t)__builtin_ctzll(b) * 64;
            b &= b - 1;
            _mm256_store_ps(t, _mm256_add_ps(_mm256_load_ps(t), w0));
            _mm256_store_ps(t + 8, _mm256_add_ps(_mm256_load_ps(t + 8), w1));
            _mm256_store_ps(t + 16, _mm256_add_ps(_mm256_load_ps(t + 16), w2));
            _mm256_store_ps(t + 24, _mm256_add_ps(_mm256_load_ps(t + 24), w3));
            _mm256_store_ps(t + 32, _mm256_add_ps(_mm256_load_ps(t + 32), w4));
            _mm256_store_ps(t + 40, _mm256_add_ps(_mm256_load_ps(t + 40), w5));
            _mm256_store_ps(t + 48, _mm256_add_ps(_mm256_load_ps(t + 48), w6));
            _mm256_store_ps(t + 56, _mm256_add_ps(_mm256_load_ps(t + 56), w7));
          } while (b);
        }
      } else {
        // The narrower last slab (its rows are nv · 8 floats, zero-padded): a vector at a time.
        for (size_t k = 0; k < kc; k++) {
          const uint64_t b0 = block_bits(bb, si, sk, nw, k, keep);
          if (!b0) continue;
          const float *s = slab + k * ld;
          for (size_t q = 0; q < nv; q++) {
            // Unpacked rows end at w: the last vector reads only its own lanes.
            const size_t lanes = w - 8 * q < 8 ? w - 8 * q : 8;
            const __m256 sv = packed_layout || lanes == 8
                                  ? _mm256_loadu_ps(s + 8 * q)
                                  : _mm256_maskload_ps(s + 8 * q, soma_lanes8(lanes));
            uint64_t b = b0;
            do {
              float *t = tile + (size_t)__builtin_ctzll(b) * 64 + 8 * q;
              b &= b - 1;
              _mm256_store_ps(t, _mm256_add_ps(_mm256_load_ps(t), sv));
            } while (b);
          }
        }
      }
      if (dst && ldt) store_tile_transposed_avx2(tile, rb, w, dst + j0 * ldt + ib, ldt);
      tile_finish_avx2(tile, rb, w, ib * n + j0, n, ldt ? NULL : dst, adam ? &c : NULL, param, m,
                       v);
    }
  }
}
#endif

#ifdef SOMA_X86
// The same sums as scatter_avx2, output-row first: for a tile of 64 output rows × 64 columns
// (16 KB, in L1) and a block of GT_KB source rows of the packed slab (8 KB, in L1), each tile
// row's events in the block are added to 8 accumulators in registers, which are loaded from and
// stored to the tile once per (row, block). An event costs 8 L1 loads and 8 adds instead of the
// scatter's 8 loads, 8 adds and 8 stores, and Zen-class cores load two 256-bit vectors a cycle
// but store one. Each row still adds its events in ascending source row after init, so the sums
// are the scatter's, bit for bit. rbits[i · ri + (k / 16) · rk], bit k % 16, says output row i
// has source row k.
#define GT_KB 64
AVX2 static void gather_tiles_avx2(const uint16_t *rbits, size_t ri, size_t rk, size_t kc,
                                   size_t i0, size_t i1, const float *packed, size_t n,
                                   const float *init, float *dst, const soma_adam_step *adam,
                                   float *param, float *m, float *v) {
  _Alignas(64) float tile[64 * 64];
  const adam_vec8 c = adam ? adam_consts8(adam) : (adam_vec8){0};
  const size_t kwords = (kc + 15) / 16;
  for (size_t ib = i0; ib < i1; ib += 64) {
    const size_t rb = i1 - ib < 64 ? i1 - ib : 64;
    for (size_t j0 = 0; j0 < n; j0 += 64) {
      const size_t w = n - j0 < 64 ? n - j0 : 64;
      const size_t nv = (w + 7) / 8;
      const size_t ld = nv == 8 ? 64 : nv * 8;
      const float *slab = packed + j0 * kc;
      tile_start_avx2(tile, rb, w, init ? init + j0 : NULL);
      for (size_t w0 = 0; w0 < kwords; w0 += GT_KB / 16) {
        const size_t nw = kwords - w0 < GT_KB / 16 ? kwords - w0 : GT_KB / 16;
        const float *block = slab + 16 * w0 * ld;
        for (size_t r = 0; r < rb; r++) {
          const uint16_t *rw = rbits + (ib + r) * ri + w0 * rk;
          uint64_t b = rw[0];
          if (nw > 1) b |= (uint64_t)rw[rk] << 16;
          if (nw > 2) b |= (uint64_t)rw[2 * rk] << 32;
          if (nw > 3) b |= (uint64_t)rw[3 * rk] << 48;
          if (!b) continue;
          float *t = tile + r * 64;
          if (nv == 8) {
            __m256 a0 = _mm256_load_ps(t), a1 = _mm256_load_ps(t + 8);
            __m256 a2 = _mm256_load_ps(t + 16), a3 = _mm256_load_ps(t + 24);
            __m256 a4 = _mm256_load_ps(t + 32), a5 = _mm256_load_ps(t + 40);
            __m256 a6 = _mm256_load_ps(t + 48), a7 = _mm256_load_ps(t + 56);
            do {
              const float *s = block + (size_t)__builtin_ctzll(b) * 64;
              b &= b - 1;
              a0 = _mm256_add_ps(a0, _mm256_loadu_ps(s));
              a1 = _mm256_add_ps(a1, _mm256_loadu_ps(s + 8));
              a2 = _mm256_add_ps(a2, _mm256_loadu_ps(s + 16));
              a3 = _mm256_add_ps(a3, _mm256_loadu_ps(s + 24));
              a4 = _mm256_add_ps(a4, _mm256_loadu_ps(s + 32));
              a5 = _mm256_add_ps(a5, _mm256_loadu_ps(s + 40));
              a6 = _mm256_add_ps(a6, _mm256_loadu_ps(s + 48));
              a7 = _mm256_add_ps(a7, _mm256_loadu_ps(s + 56));
            } while (b);
            _mm256_store_ps(t, a0), _mm256_store_ps(t + 8, a1);
            _mm256_store_ps(t + 16, a2), _mm256_store_ps(t + 24, a3);
            _mm256_store_ps(t + 32, a4), _mm256_store_ps(t + 40, a5);
            _mm256_store_ps(t + 48, a6), _mm256_store_ps(t + 56, a7);
          } else {
            // The narrower last slab (rows of nv · 8 floats, zero-padded).
            do {
              const float *s = block + (size_t)__builtin_ctzll(b) * ld;
              b &= b - 1;
              for (size_t q = 0; q < nv; q++)
                _mm256_store_ps(t + 8 * q,
                                _mm256_add_ps(_mm256_load_ps(t + 8 * q), _mm256_loadu_ps(s + 8 * q)));
            } while (b);
          }
        }
      }
      tile_finish_avx2(tile, rb, w, ib * n + j0, n, dst, adam ? &c : NULL, param, m, v);
    }
  }
}
#endif

static void scatter(const uint16_t *bits, size_t si, size_t sk, size_t kc, size_t i0, size_t i1,
                    const float *src, size_t n, const float *init, float *dst, size_t ldt,
                    const soma_adam_step *adam, float *param, float *m, float *v) {
  if (i1 <= i0) return;
#ifdef SOMA_X86
  if (has_avx512()) {
    scatter_avx512(bits, si, sk, kc, i0, i1, src, n, init, dst, ldt, adam, param, m, v);
    return;
  }
#endif
  scatter_portable(bits, si, sk, kc, i0, i1, src, n, init, dst, ldt, adam, param, m, v);
}

void soma_sparse_scatter_f32(const uint16_t *bits, size_t si, size_t sk, size_t kc, size_t i0,
                             size_t i1, const float *src, size_t n, const float *init, float *dst,
                             const soma_adam_step *adam, float *param, float *m, float *v) {
  scatter(bits, si, sk, kc, i0, i1, src, n, init, dst, 0, adam, param, m, v);
}

void soma_sparse_scatter_shared_f32(const uint16_t *bits, size_t si, size_t sk, size_t kc,
                                    size_t i0, size_t i1, size_t part, size_t parts,
                                    size_t *next, const float *src, const float *packed,
                                    size_t n, const float *init, float *dst, size_t ldt,
                                    const soma_adam_step *adam, float *param, float *m,
                                    float *v) {
  const size_t blocks = (i1 - i0 + 63) / 64;
  if (!next) {
    // Rows split at multiples of 16 (one mask word), the same rows to the same part every pass.
    const size_t words = (i1 - i0 + 15) / 16;
    const size_t r0 = i0 + 16 * (part * words / parts);
    size_t r1 = i0 + 16 * ((part + 1) * words / parts);
    if (r1 > i1) r1 = i1;
    if (r1 <= r0) return;
#ifdef SOMA_X86
    if (!has_avx512() && has_avx2()) {
      scatter_avx2(bits, si, sk, kc, r0, r1, packed ? packed : src, packed != NULL, n, 0, n,
                   init, dst, ldt, adam, param, m, v);
      return;
    }
#endif
    for (size_t ib = r0; ib < r1; ib += 64)
      scatter(bits, si, sk, kc, ib, r1 - ib < 64 ? r1 : ib + 64, src, n, init, dst, ldt, adam,
              param, m, v);
    return;
  }
#ifdef SOMA_X86
  // A packed source too large for the caches (e.g. a tape Linear's 6272 × 2048 weight) is
  // read slab by slab: work items are (slab, row block) in slab order, so the threads' blocks
  // share each slab while it is in L2/L3 instead of each block streaming the whole source from
  // memory (csnn-fmnist's Linear forward pass, one thread, against sgemm: 0.23 → 0.13–0.17 of
  // its time at 2 % density, about the same at 31 %, where the additions dominate).
  if (!has_avx512() && has_avx2() && packed && blocks > 1 && kc * n >= ((size_t)4 << 20)) {
    const size_t slabs = (n + 63) / 64;
    for (;;) {
      const size_t b = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
      if (b >= blocks * slabs) return;
      const size_t ib = i0 + 64 * (b % blocks), j0 = 64 * (b / blocks);
      const size_t ie = i1 - ib < 64 ? i1 : ib + 64;
      scatter_avx2(bits, si, sk, kc, ib, ie, packed, 1, n, j0, n - j0 < 64 ? n : j0 + 64, init,
                   dst, ldt, adam, param, m, v);
    }
  }
#endif
  for (;;) {
    const size_t b = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
    if (b >= blocks) return;
    const size_t ib = i0 + 64 * b;
    const size_t ie = i1 - ib < 64 ? i1 : ib + 64;
#ifdef SOMA_X86
    if (!has_avx512() && has_avx2()) {
      scatter_avx2(bits, si, sk, kc, ib, ie, packed ? packed : src, packed != NULL, n, 0, n, init,
                   dst, ldt, adam, param, m, v);
      continue;
    }
#endif
    scatter(bits, si, sk, kc, ib, ie, src, n, init, dst, ldt, adam, param, m, v);
  }
}

void soma_sparse_gather_tiles_f32(const uint16_t *rbits, size_t ri, size_t rk, size_t kc,
                                  size_t i0, size_t i1, size_t part, size_t parts,
                                  const float *packed, size_t n, const float *init, float *dst,
                                  const soma_adam_step *adam, float *param, float *m, float *v) {
  const size_t words = (i1 - i0 + 15) / 16;
  const size_t r0 = i0 + 16 * (part * words / parts);
  size_t r1 = i0 + 16 * ((part + 1) * words / parts);
  if (r1 > i1) r1 = i1;
  if (r1 <= r0) return;
#ifdef SOMA_X86
  gather_tiles_avx2(rbits, ri, rk, kc, r0, r1, packed, n, init, dst, adam, param, m, v);
#else
  (void)rbits, (void)ri, (void)rk, (void)kc, (void)packed, (void)n, (void)init, (void)dst;
  (void)adam, (void)param, (void)m, (void)v;
#endif
}

int soma_sparse_gather_tiles_available(void) {
#ifdef SOMA_X86
  return soma_sparse_scatter_wants_packed();
#else
  return 0;
#endif
}

int soma_sparse_scatter_wants_packed(void) {
#ifdef SOMA_X86
  return !has_avx512() && has_avx2();
#else
  return 0;
#endif
}

#ifdef SOMA_X86
AVX2 static size_t bits_to_list_avx2(const uint16_t *bits, size_t words, int32_t *list, size_t k) {
  for (size_t t = 0; t < words; t++) k = append_bits16(bits[t], (int32_t)(t * 16), list, k);
  return k;
}
#endif

void soma_sparse_bits_to_lists(const uint16_t *colbits, size_t rows_padded, size_t c0,
                               size_t c1, int32_t *list, size_t k0, int32_t *begin,
                               int32_t *end) {
  const size_t words = rows_padded / 16;
  size_t k = k0;
  for (size_t c = c0; c < c1; c++) {
    begin[c] = (int32_t)k;
#ifdef SOMA_X86
    if (has_avx512()) {
      k += (size_t)expand_bits(colbits + c * words, 0, words, list + k);
      end[c] = (int32_t)k;
      continue;
    }
    if (has_avx2()) {
      k = bits_to_list_avx2(colbits + c * words, words, list, k);
      end[c] = (int32_t)k;
      continue;
    }
#endif
    for (size_t t = 0; t < words; t++)
      for (unsigned q = 0; q < 16; q++)
        if ((colbits[c * words + t] >> q) & 1u) list[k++] = (int32_t)(t * 16 + q);
    end[c] = (int32_t)k;
  }
}


// ---------------------------------------------------------------- small reductions

SOMA_CLONES void soma_column_sums_f32(const float *x, size_t rows, size_t n, size_t j0, size_t j1,
                                 float *out) {
  for (size_t j = j0; j < j1; j++) out[j] = 0.0f;
  for (size_t r = 0; r < rows; r++) {
    const float *restrict row = x + r * n;
    float *restrict o = out;
    for (size_t j = j0; j < j1; j++) o[j] += row[j];
  }
}

SOMA_CLONES void soma_narrow_product_f32(const float *a, size_t r0, size_t r1, size_t k,
                                    const float *wt, size_t n, float *out) {
  for (size_t r = r0; r < r1; r++) {
    const float *restrict ar = a + r * k;
    float *restrict o = out + r * n;
    if (k == 0) {
      for (size_t i = 0; i < n; i++) o[i] = 0.0f;
      continue;
    }
    for (size_t i = 0; i < n; i++) o[i] = ar[0] * wt[i];
    for (size_t j = 1; j < k; j++) {
      const float aj = ar[j];
      const float *restrict w = wt + j * n;
      for (size_t i = 0; i < n; i++) o[i] += aj * w[i];
    }
  }
}

SOMA_CLONES size_t soma_count_nonzero_f32(const float *x, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += (x[i] != 0.0f);
  return c;
}

SOMA_CLONES int soma_all_finite_f32(const float *x, size_t n) {
  // x·0 is 0 for every finite x and NaN for ±inf and NaN; the NaN survives the sum. No
  // branch, so the loop vectorises.
  float acc[16] = {0};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (size_t k = 0; k < 16; k++) acc[k] += x[i + k] * 0.0f;
  float tail = 0.0f;
  for (; i < n; i++) tail += x[i] * 0.0f;
  for (size_t k = 0; k < 16; k++) tail += acc[k];
  return tail == 0.0f;
}

// ---------------------------------------------------------------- workspace memory

void *soma_buffer_alloc(size_t bytes) {
  const size_t huge = (size_t)2 << 20;
  void *p = NULL;
  if (bytes >= huge / 2) {
    const size_t rounded = (bytes + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, rounded) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, rounded, MADV_HUGEPAGE);  // advisory: ignored where THP is off
#endif
    return p;
  }
  if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) return NULL;
  return p;
}

void soma_buffer_free(void *p) { free(p); }
