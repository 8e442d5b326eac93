// S2NN's derivative for 16 float lanes, shared by the bulk kernel, the fused LIF backward
// (kernels.c) and the current-based network's backward (cuba.c), so all three give the same
// values bit for bit. Private to SomaKernels.
#ifndef SOMA_S2NN_AVX512_H
#define SOMA_S2NN_AVX512_H
#include "cpu.h"

#ifdef SOMA_X86
// α·e/(1 + e)² with e = exp(αx) below the threshold, β/(x + 1) from it on: the formula of the
// portable soma_s2nn_derivative_f32 with the same exp polynomial, but 2^n applied by vscalef
// (no integer bit tricks) and the division replaced by vrcp14 and one Newton step, the
// longest-latency instruction of the portable loop. Within 2 ulp of the portable values.
AVX512 static inline __m512 soma_s2nn16(__m512 v, __m512 alpha, __m512 beta) {
  const __m512 one = _mm512_set1_ps(1.0f), lo = _mm512_set1_ps(-87.0f);
  const __mmask16 below = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
  // −|αx|: exp never overflows; below −87 it is 0, as in the portable version.
  const __m512 z = _mm512_or_ps(_mm512_mul_ps(alpha, v), _mm512_set1_ps(-0.0f));
  const __mmask16 live = _mm512_cmp_ps_mask(z, lo, _CMP_GE_OQ);
  const __m512 zc = _mm512_max_ps(z, lo);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(zc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), zc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), one);
  const __m512 e = _mm512_maskz_scalef_ps(live, y, n);
  const __m512 d = _mm512_add_ps(one, e);
  // β/(x + 1) is never formed for x < 0, where x = −1 would make it infinite.
  const __m512 num = _mm512_mask_mul_ps(beta, below, alpha, e);
  const __m512 den = _mm512_mask_mul_ps(_mm512_add_ps(v, one), below, d, d);
  __m512 q = _mm512_rcp14_ps(den);
  q = _mm512_mul_ps(q, _mm512_fnmadd_ps(den, q, _mm512_set1_ps(2.0f)));
  // At x = +∞ the Newton step forms ∞·0; β/∞ is 0.
  q = _mm512_mask_mov_ps(q, _mm512_fpclass_ps_mask(den, 0x08), _mm512_setzero_ps());
  return _mm512_mul_ps(num, q);
}
#endif
#endif
