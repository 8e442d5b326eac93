// What the kernels may assume about the CPU (private to SomaKernels, not part of the module).
// SOMA_CLONES compiles a plain C function for x86-64-v4, v3 and the baseline and picks one at
// load time; AVX512 marks a hand-written intrinsics variant that callers reach only after
// has_avx512() says the running CPU has the subsets it uses.
#ifndef SOMA_CPU_H
#define SOMA_CPU_H

// Set on a thread by soma_use_portable_kernels (SomaKernels.h): has_avx512() says no there.
extern _Thread_local int soma_portable_only;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SOMA_X86 1
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,popcnt,bmi,bmi2")))
// Under ThreadSanitizer the clones are left out: their ifunc resolvers run while the dynamic
// loader relocates the library, before the TSan runtime is up, and the instrumented resolvers
// crash in __tsan_func_entry. The baseline code paths (and the AVX512 variants, chosen at run
// time) are the same either way.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SOMA_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SOMA_TSAN 1
#endif
#if defined(__linux__) && !defined(SOMA_TSAN)
#define SOMA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SOMA_CLONES
#endif
#include <stdatomic.h>
static inline int has_avx512(void) {
  if (soma_portable_only) return 0;
  // Any thread may be first: the cache is atomic so concurrent first calls do not race. They
  // all compute the same answer, so relaxed ordering is enough (nothing else is published).
  static _Atomic int cached = -1;
  int c = atomic_load_explicit(&cached, memory_order_relaxed);
  if (c < 0) {
    __builtin_cpu_init();
    c = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    atomic_store_explicit(&cached, c, memory_order_relaxed);
  }
  return c;
}

// AVX2 + FMA (x86-64-v3, e.g. AMD Zen 1–3, Intel Haswell and later): the hand-written
// 8-lane variants, for CPUs without AVX-512.
#define AVX2 __attribute__((target("avx2,fma,bmi,bmi2,popcnt")))
static inline int has_avx2(void) {
  if (soma_portable_only) return 0;
  static _Atomic int cached = -1;
  int c = atomic_load_explicit(&cached, memory_order_relaxed);
  if (c < 0) {
    __builtin_cpu_init();
    c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    atomic_store_explicit(&cached, c, memory_order_relaxed);
  }
  return c;
}

// The first n (≤ 8) lanes of a 256-bit vector as a maskload/maskstore mask.
AVX2 static inline __m256i soma_lanes8(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Transposes the 16 × 16 block held in r[0..16) (row i in r[i]) in place: unpacks of row
// pairs, then shuffles within 128-bit lanes, then two rounds of 128-bit lane shuffles.
AVX512 static inline void soma_transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int h = 0; h < 16; h += 8)
    for (int j = 0; j < 4; j++) {
      t[h + j] = _mm512_shuffle_f32x4(r[h + j], r[h + j + 4], 0x88);
      t[h + j + 4] = _mm512_shuffle_f32x4(r[h + j], r[h + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; j++) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
  }
}

// The mask of the first n (≤ 16) lanes.
static inline __mmask16 soma_lanes(size_t n) {
  return (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u);
}
#else
#define SOMA_CLONES
static inline int has_avx512(void) { return 0; }
static inline int has_avx2(void) { return 0; }
#endif

#endif
