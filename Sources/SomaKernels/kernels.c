// Vectorised surrogate-gradient derivatives over contiguous arrays. The per-type kernels are
// written once in surrogate_kernels.inc.h and instantiated for float (suffix f32) and double
// (f64) on top of branch-free polynomial exp, log and sin(π·s) helpers, so every loop
// vectorises (AVX-512, AVX2 or baseline SSE2, chosen at load time by target_clones).
#include "SomaKernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "s2nn_avx512.h"

_Thread_local int soma_portable_only = 0;
void soma_use_portable_kernels(int on) { soma_portable_only = on != 0; }

int soma_has_avx512(void) { return has_avx512(); }

int soma_portable_kernels_are_cloned(void) {
#if defined(SOMA_X86) && defined(__linux__) && !defined(SOMA_TSAN)
  return 1;
#else
  return 0;
#endif
}

// MARK: float helpers

// exp(z) for z ≤ 0: z = n·ln2 + r with |r| ≤ ln2/2, e^r by the Cephes expf polynomial
// (relative error ~1e-7), 2^n through the exponent bits; 0 below −87, where 2^n would leave the
// normal range.
static inline float soma_exp_neg_f32(float z) {
  const float lo = -87.0f;
  float zc = z < lo ? lo : z;
  float n = zc * 1.44269504088896341f;
  n = (n + 12582912.0f) - 12582912.0f;  // round to nearest (|n| < 2^22)
  float r = zc - n * 0.693359375f;      // ln 2 in two parts; n·0.693359375 is exact
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return z < lo ? 0.0f : y * scale;
}

// ln(y) for finite y ≥ 1: y = m·2^e with m in [√½, √2), ln m = 2·atanh(t), t = (m−1)/(m+1).
static inline float soma_log_ge1_f32(float y) {
  int32_t bits;
  memcpy(&bits, &y, sizeof bits);
  int32_t e = (bits >> 23) - 127;
  int32_t mbits = (bits & 0x007fffff) | 0x3f800000;
  float m;
  memcpy(&m, &mbits, sizeof m);
  int big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  float ef = (float)e + (big ? 1.0f : 0.0f);
  float t = (m - 1.0f) / (m + 1.0f);
  float t2 = t * t;
  float s = 1.0f / 9.0f;
  s = s * t2 + 1.0f / 7.0f;
  s = s * t2 + 1.0f / 5.0f;
  s = s * t2 + 1.0f / 3.0f;
  s = s * t2 + 1.0f;
  return ef * 0.693147180559945309f + 2.0f * t * s;
}

// sin(π·s) for |s| ≤ 1/2 (a little beyond is fine): the Taylor series in π·s to degree 13.
static inline float soma_sinpi_f32(float s) {
  float s2 = s * s;
  float p;
  p = 0.00046630280576761234f;
  p = p * s2 + -0.007370430945714348f;
  p = p * s2 + 0.08214588661112819f;
  p = p * s2 + -0.5992645293207919f;
  p = p * s2 + 2.550164039877345f;
  p = p * s2 + -5.167712780049969f;
  p = p * s2 + 3.141592653589793f;
  return s * p;
}

// Rounds |v| < 2^22 to the nearest integer.
static inline float soma_round_small_f32(float v) { return (v + 12582912.0f) - 12582912.0f; }

// MARK: double helpers

// exp(z) for z ≤ 0: Cody–Waite reduction by ln 2, Taylor series of e^r to degree 12
// (relative error < 2e-16), 2^n through the exponent bits; 0 below −708.
static inline double soma_exp_neg_f64(double z) {
  const double lo = -708.0;
  double zc = z < lo ? lo : z;
  double n = zc * 1.4426950408889634074;
  n = (n + 6755399441055744.0) - 6755399441055744.0;  // round to nearest (|n| < 2^51)
  double r = zc - n * 6.93147180369123816490e-01;    // ln 2 high part: n·hi is exact
  r = r - n * 1.90821492927058770002e-10;
  double p;
  p = 2.08767569878681e-09;
  p = p * r + 2.505210838544172e-08;
  p = p * r + 2.755731922398589e-07;
  p = p * r + 2.7557319223985893e-06;
  p = p * r + 2.48015873015873e-05;
  p = p * r + 0.0001984126984126984;
  p = p * r + 0.001388888888888889;
  p = p * r + 0.008333333333333333;
  p = p * r + 0.041666666666666664;
  p = p * r + 0.16666666666666666;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t bits = ((int64_t)n + 1023) << 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return z < lo ? 0.0 : p * scale;
}

// ln(y) for finite y ≥ 1, as for float with the atanh series to t^22.
static inline double soma_log_ge1_f64(double y) {
  int64_t bits;
  memcpy(&bits, &y, sizeof bits);
  int64_t e = (bits >> 52) - 1023;
  int64_t mbits = (bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;
  double m;
  memcpy(&m, &mbits, sizeof m);
  int big = m > 1.4142135623730951;
  m = big ? m * 0.5 : m;
  double ef = (double)e + (big ? 1.0 : 0.0);
  double t = (m - 1.0) / (m + 1.0);
  double t2 = t * t;
  double s = 1.0 / 23.0;
  for (int k = 10; k >= 0; k--) s = s * t2 + 1.0 / (2 * k + 1);
  return ef * 0.69314718055994530942 + 2.0 * t * s;
}

// sin(π·s) for |s| ≤ 1/2: the Taylor series in π·s to degree 23.
static inline double soma_sinpi_f64(double s) {
  double s2 = s * s;
  double p;
  p = -1.0518471716932054e-11;
  p = p * s2 + 5.392664662608125e-10;
  p = p * s2 + -2.2948428997269856e-08;
  p = p * s2 + 7.952054001475508e-07;
  p = p * s2 + -2.1915353447830204e-05;
  p = p * s2 + 0.00046630280576761234;
  p = p * s2 + -0.007370430945714348;
  p = p * s2 + 0.08214588661112819;
  p = p * s2 + -0.5992645293207919;
  p = p * s2 + 2.550164039877345;
  p = p * s2 + -5.167712780049969;
  p = p * s2 + 3.141592653589793;
  return s * p;
}

static inline double soma_round_small_f64(double v) {
  return (v + 6755399441055744.0) - 6755399441055744.0;
}

// MARK: S2NN in AVX-512

#ifdef SOMA_X86
AVX512 static void s2nn_avx512_f32(const float *x, float *out, size_t n, float alpha,
                                   float beta) {
  const __m512 a = _mm512_set1_ps(alpha), b = _mm512_set1_ps(beta);
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, soma_s2nn16(_mm512_loadu_ps(x + i), a, b));
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(out + i, m, soma_s2nn16(_mm512_maskz_loadu_ps(m, x + i), a, b));
  }
}

// soma_lif_backward_s2nn_f32 with soma_s2nn16, each product and sum as in the portable loops
// (which compile without FMA contraction), so it equals soma_surrogate_s2nn_f32 followed by
// soma_lif_backward_f32 bit for bit.
AVX512 static void lif_backward_s2nn_avx512_f32(const float *grad_spikes, const float *h,
                                                float *gv, float *grad_current, size_t n,
                                                float beta, float threshold, int zero_reset,
                                                int detach_reset, float s_alpha, float s_beta) {
  const __m512 a = _mm512_set1_ps(s_alpha), b = _mm512_set1_ps(s_beta);
  const __m512 vbeta = _mm512_set1_ps(beta), th = _mm512_set1_ps(threshold);
  const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1u);
    const __m512 hv = _mm512_maskz_loadu_ps(m, h + i);
    const __m512 gs = _mm512_maskz_loadu_ps(m, grad_spikes + i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gv + i);
    const __m512 x = _mm512_sub_ps(hv, th);
    const __m512 sg = soma_s2nn16(x, a, b);
    const __m512 keep = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ), one, zero);
    __m512 gterm;
    if (!zero_reset && !detach_reset)
      gterm = _mm512_mul_ps(g, _mm512_sub_ps(one, _mm512_mul_ps(th, sg)));
    else if (!zero_reset)
      gterm = g;
    else if (!detach_reset)
      gterm = _mm512_mul_ps(g, _mm512_sub_ps(keep, _mm512_mul_ps(hv, sg)));
    else
      gterm = _mm512_mul_ps(g, keep);
    const __m512 dh = _mm512_add_ps(_mm512_mul_ps(gs, sg), gterm);
    _mm512_mask_storeu_ps(grad_current + i, m, dh);
    _mm512_mask_storeu_ps(gv + i, m, _mm512_mul_ps(vbeta, dh));
  }
}
#define SOMA_S2NN_AVX512 1
#endif

// MARK: kernels

#define T float
#define S(name) name##_f32
#define FMA fmaf
#define RINT rintf
#include "surrogate_kernels.inc.h"
#include "lif_pool_kernels.inc.h"
#undef SOMA_S2NN_AVX512
#undef T
#undef S
#undef FMA
#undef RINT

#define T double
#define S(name) name##_f64
#define FMA fma
#define RINT rint
#include "surrogate_kernels.inc.h"
#include "lif_pool_kernels.inc.h"
