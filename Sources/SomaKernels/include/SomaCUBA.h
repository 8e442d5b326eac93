#ifndef SOMA_CUBA_H
#define SOMA_CUBA_H
#include <stddef.h>
#include <stdint.h>

// Fused kernels of the current-based LIF network (SpyTorch's Fashion-MNIST SNN), Float.
// Rows are r = t * batch + b. The forward handles samples [b0, b1) for all steps, so two
// threads can split the batch. Input spikes arrive as compressed rows (row_start/idx); hidden
// spikes leave as per-row lists (spike_count[r], spike_idx[r * hidden + j]).
//
// Every per-neuron row of floats the kernels index by input or sample (W1ᵀ and dW1ᵀ rows,
// syn/mem, x, gm/gy, dsur) is ld = soma_cuba_row_stride(hidden) floats long, hidden rounded
// up to 16: with 64-byte-aligned buffers each 16-neuron chunk is then one cache line instead
// of straddling two (the random rows of W1ᵀ and dW1ᵀ made every access a split load or store).
// The padding floats are never read into results; buffers are written [.., hidden] below as
// [.., ld] in memory.

/// The row stride, in floats, of the per-neuron rows above: hidden rounded up to 16.
size_t soma_cuba_row_stride(size_t hidden);

/// Forward over all steps: I = events · W1ᵀ, the current-based LIF recurrence
///   s_t = H(mem_t − θ); syn ← α·syn + I_t; mem ← (β·mem + syn_old)·(1 − s_t),
/// hidden spike lists, and the readout current j_out[r, :] = Σ over spiking h of w2t[h, :].
/// Spike lists hold 16-bit neuron indices, so hidden must be ≤ 65 536.
/// `syn`/`mem` are [batch, hidden] scratch. The membranes are not kept: the backward
/// recomputes them (soma_cuba_states_f32), which costs less than storing [T, B, H].
void soma_cuba_forward_f32(size_t steps, size_t batch, size_t inputs, size_t hidden,
                           size_t outputs, size_t b0, size_t b1, const int32_t *in_row_start,
                           const int32_t *in_idx, const float *w1t, const float *w2t,
                           float alpha, float beta, float threshold, float *syn, float *mem,
                           int32_t *spike_count, uint16_t *spike_idx, float *j_out);

/// The recurrence alone for the `count` samples listed in `samples`, steps [t_begin, steps),
/// as the forward ran it: x_out[t, i, h] = mem_t − θ of sample samples[i] (rows before t_begin
/// are not written). The caller promises that none of these samples has an input event before
/// t_begin, so their state there is still zero. `syn`/`mem` are [count, hidden] scratch.
void soma_cuba_states_f32(size_t t_begin, size_t steps, size_t batch, size_t hidden,
                          const int32_t *samples, size_t count, const int32_t *in_row_start,
                          const int32_t *in_idx, const float *w1t, float alpha, float beta,
                          float threshold, float *syn, float *mem, float *x_out);

/// Built-in surrogates the backward can evaluate itself (`surrogate` argument).
enum {
  SOMA_CUBA_SURROGATE_GIVEN = 0,       // dsur holds the derivative
  SOMA_CUBA_SURROGATE_S2NN = 1,        // S2NN(alpha s_a, beta s_b), as soma_surrogate_s2nn_f32
  SOMA_CUBA_SURROGATE_INV_SQUARE = 2,  // InvSquareGrad(alpha s_a): 1/(s_a·|x| + 1)²
};

/// Backward in reverse time over the steps [t_begin, t_end) for the `count` samples listed in
/// `samples`, given x = mem − θ as soma_cuba_states_f32 leaves it ([steps, count, hidden]),
/// dj = dL/dJ [rows, O] and dsur = surrogate'(x) for those steps,
/// [t_end − t_begin, count, hidden]: dL/dspike = dj · W2 formed on the fly, the reverse
/// recurrence, and the weight gradients scattered into per-thread partials dw1t
/// [inputs, ld] and dw2t [hidden, soma_cuba_row_stride(outputs)], 64-byte aligned, padding
/// kept zero (accumulated). `gm`/`gy` are [batch, hidden] and
/// carry the reverse state from one call to the next; the caller zeroes a sample's rows before
/// its latest step. `row` is [3 * hidden] scratch. If `last` is not NULL, sample b is skipped
/// at every step t > last[b]: the caller promises that dj is zero for that sample from step
/// last[b] + 1 on, so its reverse state is still zero there and the step would add only zeros
/// (its dsur is then not read). With `surrogate` S2NN or INV_SQUARE the derivative is computed
/// from x inside the step, with the same values as the bulk kernels give, and dsur is not
/// read.
void soma_cuba_backward_f32(size_t batch, size_t hidden, size_t outputs,
                            const int32_t *samples, size_t count, const int32_t *in_row_start,
                            const int32_t *in_idx, const float *w2, float alpha, float beta,
                            const float *x, const float *dsur, const int32_t *spike_count,
                            const uint16_t *spike_idx, const float *dj, float *gm, float *gy,
                            float *row, float *dw1t, float *dw2t, size_t t_begin,
                            size_t t_end, const int32_t *last, int surrogate, float s_a,
                            float s_b);

/// The readout LIF over lanes k = b·outputs + o in [k0, k1) of [steps, lanes] currents j:
///   flt ← α·flt + J_t, out ← β·out + flt_old, and each lane's maximum of out over the steps
/// (peak[k]) and its first step (peak_step[k]). `flt`/`out` are [k1 − k0] scratch; if `trace`
/// is not NULL, trace[t·lanes + k] = out after step t.
/// dst[h · inputs + i] = Σ over q < parts, in order, of partials[q · part_stride + i · ld + h]
/// for h in [h0, h1) and every input i: the per-thread dW1ᵀ partials summed and transposed to
/// dW1 [hidden, inputs] (ld = soma_cuba_row_stride(hidden)).
void soma_cuba_reduce_dw1_f32(const float *partials, size_t parts, size_t part_stride,
                              size_t inputs, size_t hidden, float *dst, size_t h0, size_t h1);

void soma_cuba_readout_f32(size_t steps, size_t lanes, size_t k0, size_t k1, float alpha,
                           float beta, const float *j, float *flt, float *out, float *peak,
                           int32_t *peak_step, float *trace);

/// Its reverse pass for the max-over-time readout: dlogits[k] enters at step peak_step[k], and
/// j (the currents) is overwritten with dL/dJ_t. `g_out`/`g_flt` are [k1 − k0] scratch.
void soma_cuba_readout_backward_f32(size_t steps, size_t lanes, size_t k0, size_t k1,
                                    float alpha, float beta, const int32_t *peak_step,
                                    const float *dlogits, float *j, float *g_out,
                                    float *g_flt);
#endif
