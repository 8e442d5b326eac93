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
#if defined(__linux__)
#define SOMA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SOMA_CLONES
#endif
static inline int has_avx512(void) {
  if (soma_portable_only) return 0;
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init();
    cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  }
  return cached;
}
#else
#define SOMA_CLONES
static inline int has_avx512(void) { return 0; }
#endif

#endif
