#include "SomaCUBA.h"
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#define SOMA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SOMA_CLONES
#endif

SOMA_CLONES
void soma_cuba_forward_f32(size_t steps, size_t batch, size_t inputs, size_t hidden,
                           size_t outputs, size_t b0, size_t b1, const int32_t *in_row_start,
                           const int32_t *in_idx, const float *w1t, const float *w2t,
                           float alpha, float beta, float threshold, float *syn, float *mem,
                           float *x_out, int32_t *spike_count, uint16_t *spike_idx,
                           float *j_out) {
  (void)inputs;
  for (size_t k = b0 * hidden; k < b1 * hidden; k++) syn[k] = mem[k] = 0.0f;
  for (size_t t = 0; t < steps; t++) {
    for (size_t b = b0; b < b1; b++) {
      const size_t r = t * batch + b;
      float *restrict sy = syn + b * hidden;
      float *restrict mv = mem + b * hidden;
      float *restrict xo = x_out + r * hidden;
      // Spikes from the old membrane; record mem − θ.
      int32_t n = 0;
      uint16_t *restrict si = spike_idx + r * hidden;
      for (size_t h = 0; h < hidden; h++) xo[h] = mv[h] - threshold;
      // Branch-free compaction: at a few % spikes a branch here mispredicts on every spike,
      // which made steps of busier networks measurably slower.
      for (size_t h = 0; h < hidden; h++) {
        si[n] = (uint16_t)h;
        n += xo[h] >= 0.0f;
      }
      spike_count[r] = n;
      // mem ← (β·mem + syn)·(1 − s), syn ← α·syn (the input current is added below).
      for (size_t h = 0; h < hidden; h++) {
        const float keep = xo[h] >= 0.0f ? 0.0f : 1.0f;
        mv[h] = (beta * mv[h] + sy[h]) * keep;
        sy[h] = alpha * sy[h];
      }
      for (int32_t e = in_row_start[r]; e < in_row_start[r + 1]; e++) {
        const float *restrict w = w1t + (size_t)in_idx[e] * hidden;
        for (size_t h = 0; h < hidden; h++) sy[h] += w[h];
      }
      float *restrict jo = j_out + r * outputs;
      for (size_t o = 0; o < outputs; o++) jo[o] = 0.0f;
      for (int32_t j = 0; j < n; j++) {
        const float *restrict w = w2t + (size_t)si[j] * outputs;
        for (size_t o = 0; o < outputs; o++) jo[o] += w[o];
      }
    }
  }
}

SOMA_CLONES
void soma_cuba_backward_f32(size_t steps, size_t batch, size_t inputs, size_t hidden,
                            size_t outputs, size_t b0, size_t b1, const int32_t *in_row_start,
                            const int32_t *in_idx, const float *w2, float alpha, float beta,
                            const float *x, const float *dsur, const int32_t *spike_count,
                            const uint16_t *spike_idx, const float *dj, float *gm, float *gy,
                            float *row, float *dw1t, float *dw2t, size_t t_begin,
                            size_t t_end, const int32_t *last) {
  (void)inputs;
  if (t_end == steps)
    for (size_t k = b0 * hidden; k < b1 * hidden; k++) gm[k] = gy[k] = 0.0f;
  float *restrict di = row;
  float *restrict gs = row + hidden;
  for (size_t tt = t_end; tt-- > t_begin;) {
    for (size_t b = b0; b < b1; b++) {
      if (last && (int64_t)tt > (int64_t)last[b]) continue;
      const size_t r = tt * batch + b;
      float *restrict m = gm + b * hidden;
      float *restrict y = gy + b * hidden;
      const float *restrict xr = x + r * hidden;
      const float *restrict dr = dsur + ((tt - t_begin) * (b1 - b0) + (b - b0)) * hidden;
      const float *restrict jr = dj + r * outputs;
      // dL/dI_t is dL/dsyn_{t+1}, the value carried in from step t + 1.
      memcpy(di, y, hidden * sizeof(float));
      // dL/ds_t = dJ_t · W2.
      for (size_t h = 0; h < hidden; h++) gs[h] = 0.0f;
      for (size_t o = 0; o < outputs; o++) {
        const float g = jr[o];
        const float *restrict w = w2 + o * hidden;
        for (size_t h = 0; h < hidden; h++) gs[h] += g * w[h];
      }
      for (size_t h = 0; h < hidden; h++) {
        const float keep = xr[h] >= 0.0f ? 0.0f : 1.0f;
        const float mNext = m[h];
        m[h] = gs[h] * dr[h] + beta * keep * mNext;
        y[h] = alpha * y[h] + keep * mNext;
      }
      // dW1ᵀ[i, :] += dI_t for each input spike (t, b, i).
      for (int32_t e = in_row_start[r]; e < in_row_start[r + 1]; e++) {
        float *restrict d = dw1t + (size_t)in_idx[e] * hidden;
        for (size_t h = 0; h < hidden; h++) d[h] += di[h];
      }
      // dW2ᵀ[h, :] += dJ_t for each hidden spike (t, b, h).
      const uint16_t *restrict si = spike_idx + r * hidden;
      for (int32_t j = 0; j < spike_count[r]; j++) {
        float *restrict d = dw2t + (size_t)si[j] * outputs;
        for (size_t o = 0; o < outputs; o++) d[o] += jr[o];
      }
    }
  }
}
