#include "SomaKernels.h"
#include <stdint.h>
#include <string.h>

#define SOMA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// exp(z) for z ≤ 88 by range reduction z = n·ln2 + r, |r| ≤ ln2/2, and a degree-6 polynomial
// for e^r (the Cephes expf coefficients), then scaling by 2^n through the exponent bits.
// Below −87 (where 2^n would leave the normal range) the result is 0. Written branch-free with
// selects so that the loops calling it vectorise.
static inline float soma_exp_poly(float z) {
  const float lo = -87.0f, hi = 88.0f;
  float zc = z < lo ? lo : (z > hi ? hi : z);
  float n = zc * 1.44269504088896341f;
  n = (n + 12582912.0f) - 12582912.0f;  // round to nearest integer (|n| < 2^22)
  float r = zc - n * 0.693359375f;      // ln2 split in two parts, the first exact in n·c
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
  y = y * scale;
  return z < lo ? 0.0f : y;
}

SOMA_CLONES
void soma_surrogate_s2nn_f32(const float *restrict x, float *restrict out, size_t n, float alpha,
                             float beta) {
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    int below = v < 0.0f;
    float z = alpha * v;
    z = z < 0.0f ? z : -z;  // −|αx|, so exp never overflows
    float e = soma_exp_poly(z);
    float d = 1.0f + e;
    // One division, each branch's operands chosen before it: the x ≥ 0 branch's 1/(x+1) is
    // never formed for x < 0 (x = −1 would make it infinite).
    float num = below ? alpha * e : beta;
    float den = below ? d * d : v + 1.0f;
    out[i] = num / den;
  }
}

SOMA_CLONES
void soma_surrogate_sigmoid_f32(const float *restrict x, float *restrict out, size_t n,
                                float alpha) {
  for (size_t i = 0; i < n; i++) {
    float z = alpha * x[i];
    z = z < 0.0f ? z : -z;
    float e = soma_exp_poly(z);
    float d = 1.0f + e;
    out[i] = alpha * e / (d * d);
  }
}

SOMA_CLONES
void soma_surrogate_exp_abs_f32(const float *restrict x, float *restrict out, size_t n,
                                float alpha, float scale) {
  for (size_t i = 0; i < n; i++) {
    float z = alpha * x[i];
    z = z < 0.0f ? z : -z;
    out[i] = scale * soma_exp_poly(z);
  }
}

SOMA_CLONES
void soma_surrogate_gaussian_f32(const float *restrict x, float *restrict out, size_t n, float k,
                                 float scale) {
  for (size_t i = 0; i < n; i++) {
    float z = k * x[i];
    out[i] = scale * soma_exp_poly(-(z * z));
  }
}

SOMA_CLONES
void soma_surrogate_exp_f32(const float *restrict z, float *restrict out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = soma_exp_poly(z[i]);
}
