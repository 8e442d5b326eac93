// LIF neurons followed by a 2 × 2, stride-2 max pool (floor mode), for one scalar type T
// (S(name) appends its suffix); included by kernels.c after surrogate_kernels.inc.h, whose
// S2NN derivative it inlines. No include guard: it is meant to be included twice.
//
// A group of 8 windows side by side in one pair of input rows is carried through all T steps
// in registers: a window's four neurons are four vectors of 8 lanes, filled from the rows'
// 16 currents by even/odd lanes, so a step reads the currents once and writes one pooled value
// a window, and neither the full-size spike maps nor the window indices are ever stored.
// Every group is 8 windows wide (the loops have a fixed trip count and vectorise); past the
// end of a row of windows the lanes compute junk from the next row, which is never kept: the
// groups of a row run right to left, so the junk a pooled or gradient row's last group writes
// at the start of the next row is overwritten afterwards, and a group whose junk would land
// past its plane goes through buffers.
// The expressions are those of soma_lif_forward, soma_maxpool2d (ties to the first in
// row-major order) and the reverse LIF steps with the surrogate inlined, in the same order,
// so the results are theirs bit for bit.

#define LP_W 8

// One group's forward steps from the rows c0, c1 (step t at + t · cs, 2·LP_W currents each).
// Stores each step's pooled values at o + t · os, or the membranes before the reset at
// h + t · 4·LP_W ([steps][4][LP_W]).
// keep_h (a constant of the inlined callers) chooses the membranes, else the pooled values: a
// store under a run-time condition would become a masked store, slow on Zen 2.
static inline __attribute__((always_inline)) void S(lp_forward_group)(
    const int zero_reset, const int keep_h, const T *restrict c0, const T *restrict c1,
    size_t cs, size_t steps, T beta, T threshold, T *restrict o, size_t os, T *restrict h) {
#pragma STDC FP_CONTRACT OFF
  T v0[LP_W] = {0}, v1[LP_W] = {0}, v2[LP_W] = {0}, v3[LP_W] = {0};
  for (size_t t = 0; t < steps; t++) {
    const T *restrict r0 = c0 + t * cs, *restrict r1 = c1 + t * cs;
    T *restrict hp = h + t * 4 * LP_W;
    T best[LP_W];
    for (int i = 0; i < LP_W; i++) {
      const T ha = beta * v0[i] + r0[2 * i], hb = beta * v1[i] + r0[2 * i + 1];
      const T hc = beta * v2[i] + r1[2 * i], hd = beta * v3[i] + r1[2 * i + 1];
      const T sa = (ha - threshold >= 0) ? (T)1 : (T)0, sb = (hb - threshold >= 0) ? (T)1 : (T)0;
      const T sc = (hc - threshold >= 0) ? (T)1 : (T)0, sd = (hd - threshold >= 0) ? (T)1 : (T)0;
      if (zero_reset) {
        v0[i] = ha * ((T)1 - sa), v1[i] = hb * ((T)1 - sb);
        v2[i] = hc * ((T)1 - sc), v3[i] = hd * ((T)1 - sd);
      } else {
        v0[i] = ha - threshold * sa, v1[i] = hb - threshold * sb;
        v2[i] = hc - threshold * sc, v3[i] = hd - threshold * sd;
      }
      if (keep_h) {
        hp[i] = ha, hp[LP_W + i] = hb;
        hp[2 * LP_W + i] = hc, hp[3 * LP_W + i] = hd;
      }
      T m = sa;
      m = sb > m ? sb : m;
      m = sc > m ? sc : m;
      m = sd > m ? sd : m;
      best[i] = m;
    }
    if (!keep_h)
      for (int i = 0; i < LP_W; i++) o[t * os + i] = best[i];
  }
}

// Whether the group of windows from (oy, ox0) would read or write past its plane (its
// currents' 2 × 16 or its pooled row's 8): such a group goes through buffers.
static inline int S(lp_edge)(size_t H, size_t W, size_t oy, size_t ox0) {
  return (2 * oy + 1) * W + 2 * ox0 + 2 * LP_W > H * W ||
         oy * (W / 2) + ox0 + LP_W > (H / 2) * (W / 2);
}

// The currents of a group whose reads would run past its plane, copied into buf
// ([steps or 1][2][2·LP_W], zero past the row) so that the group reads them at stride 4·LP_W.
static inline void S(lp_buffer_rows)(const T *c0, size_t W, size_t cs, size_t steps, size_t width,
                                     T *buf) {
  for (size_t t = 0; t < (cs ? steps : 1); t++)
    for (size_t r = 0; r < 2; r++) {
      T *b = buf + (t * 2 + r) * 2 * LP_W;
      for (size_t i = 0; i < 2 * LP_W; i++) b[i] = i < width ? c0[t * cs + r * W + i] : (T)0;
    }
}

SOMA_CLONES
void S(soma_lif_pool2_forward)(const T *restrict current, size_t step_stride, size_t steps,
                               size_t q0, size_t q1, size_t H, size_t W, T beta, T threshold,
                               int zero_reset, T *restrict pooled, size_t out_step,
                               T *restrict scratch) {
  const size_t oh = H / 2, ow = W / 2, P = oh * ow;
  T *buf = scratch, *ob = scratch + steps * 4 * LP_W;  // [steps][2][16], [steps][8]
  for (size_t q = q0; q < q1; q++)
    for (size_t oy = 0; oy < oh; oy++)
      for (size_t ox0 = (ow + LP_W - 1) / LP_W * LP_W; ox0 >= LP_W;) {
        ox0 -= LP_W;
        const T *c = current + q * H * W + 2 * oy * W + 2 * ox0;
        T *o = pooled + q * P + oy * ow + ox0;
        const size_t cnt = ow - ox0 < LP_W ? ow - ox0 : LP_W;
        if (!S(lp_edge)(H, W, oy, ox0)) {
          if (zero_reset)
            S(lp_forward_group)(1, 0, c, c + W, step_stride, steps, beta, threshold, o, out_step, NULL);
          else
            S(lp_forward_group)(0, 0, c, c + W, step_stride, steps, beta, threshold, o, out_step, NULL);
          continue;
        }
        S(lp_buffer_rows)(c, W, step_stride, steps, W - 2 * ox0, buf);
        const size_t bs = step_stride ? 4 * LP_W : 0;
        if (zero_reset)
          S(lp_forward_group)(1, 0, buf, buf + 2 * LP_W, bs, steps, beta, threshold, ob, LP_W, NULL);
        else
          S(lp_forward_group)(0, 0, buf, buf + 2 * LP_W, bs, steps, beta, threshold, ob, LP_W, NULL);
        for (size_t t = 0; t < steps; t++)
          for (size_t i = 0; i < cnt; i++) o[t * out_step + i] = ob[t * LP_W + i];
      }
}

// The surrogate derivative at x = h − θ: kind 0 S2NN(a, b), kind 1 arctan c / (1 + (k·x)²)
// with k = a, c = b (as soma_lif_backward_arctan).
static inline __attribute__((always_inline)) T S(lp_surrogate)(const int kind, T x, T a, T b) {
  if (kind == 0) return S(soma_s2nn_derivative)(x, a, b);
  const T z = a * x;
  return b / ((T)1 + z * z);
}

// dh of one lane with the reset not detached, from its spike gradient gs, derivative sg,
// membrane h, x = h − θ and carried gradient gv (soma_lif_backward's two such cases; the
// detached ones are in lp_reverse_group).
static inline __attribute__((always_inline)) T S(lp_dh)(const int zero_reset, T gs, T sg, T h,
                                                        T x, T gv, T threshold) {
  if (!zero_reset) return gs * sg + gv * ((T)1 - threshold * sg);
  const T keep = (x >= 0) ? (T)0 : (T)1;
  return gs * sg + gv * (keep - h * sg);
}

// One group's reverse steps from the membranes `h` of lp_forward_group: the pooled gradient of
// step t at g + t · gs_ goes to its window's first largest spike; dL/dI of step t is written
// to the rows d0, d1 + t · ds, or with `tied` the sum over the steps times inv_steps once.
static inline __attribute__((always_inline)) void S(lp_reverse_group)(
    const int zero_reset, const int detach_reset, const int kind, const int tied,
    const T *restrict h, size_t steps, T beta, T threshold, T a, T b, const T *restrict g,
    size_t gstep, T *d0, T *d1, size_t ds, T inv_steps) {
#pragma STDC FP_CONTRACT OFF
  T g0[LP_W] = {0}, g1[LP_W] = {0}, g2[LP_W] = {0}, g3[LP_W] = {0};
  T a0[LP_W] = {0}, a1[LP_W] = {0}, a2[LP_W] = {0}, a3[LP_W] = {0};
  for (size_t t = steps; t-- > 0;) {
    const T *restrict hp = h + t * 4 * LP_W;
    const T *restrict gp = g + t * gstep;
    T da[LP_W], db[LP_W], dc[LP_W], dd[LP_W];
    for (int i = 0; i < LP_W; i++) {
      const T ha = hp[i], hb = hp[LP_W + i], hc = hp[2 * LP_W + i], hd = hp[3 * LP_W + i];
      const T xa = ha - threshold, xb = hb - threshold, xc = hc - threshold, xd = hd - threshold;
      const T sa = (xa >= 0) ? (T)1 : (T)0, sb = (xb >= 0) ? (T)1 : (T)0;
      const T sc = (xc >= 0) ? (T)1 : (T)0, sd = (xd >= 0) ? (T)1 : (T)0;
      // The window's choice as soma_maxpool2d makes it: the first of the largest.
      T best = sa;
      const T pb = sb > best ? (T)1 : (T)0;
      best = sb > best ? sb : best;
      const T pc = sc > best ? (T)1 : (T)0;
      best = sc > best ? sc : best;
      const T pd = sd > best ? (T)1 : (T)0;
      // The pool's backward adds the gradient to a cleared plane.
      const T gi = (T)0 + gp[i];
      const T gd = pd != 0 ? gi : (T)0;
      const T gc = pd == 0 && pc != 0 ? gi : (T)0;
      const T gb = pd == 0 && pc == 0 && pb != 0 ? gi : (T)0;
      const T ga = pd == 0 && pc == 0 && pb == 0 ? gi : (T)0;
      if (detach_reset) {
        // With the reset detached a lane's derivative only multiplies its spike gradient,
        // which is 0 but at the window's choice, and 0·σ' = 0 for the finite, positive
        // derivatives here: one derivative a window instead of four, the same sums.
        const T xs = pd != 0 ? xd : pc != 0 ? xc : pb != 0 ? xb : xa;
        const T gsg = gi * S(lp_surrogate)(kind, xs, a, b);
        const T ta = pd == 0 && pc == 0 && pb == 0 ? gsg : (T)0;
        const T tb = pd == 0 && pc == 0 && pb != 0 ? gsg : (T)0;
        const T tc = pd == 0 && pc != 0 ? gsg : (T)0;
        const T td = pd != 0 ? gsg : (T)0;
        if (zero_reset) {
          da[i] = ta + g0[i] * ((xa >= 0) ? (T)0 : (T)1);
          db[i] = tb + g1[i] * ((xb >= 0) ? (T)0 : (T)1);
          dc[i] = tc + g2[i] * ((xc >= 0) ? (T)0 : (T)1);
          dd[i] = td + g3[i] * ((xd >= 0) ? (T)0 : (T)1);
        } else {
          da[i] = ta + g0[i], db[i] = tb + g1[i], dc[i] = tc + g2[i], dd[i] = td + g3[i];
        }
      } else {
        da[i] = S(lp_dh)(zero_reset, ga, S(lp_surrogate)(kind, xa, a, b), ha, xa, g0[i],
                         threshold);
        db[i] = S(lp_dh)(zero_reset, gb, S(lp_surrogate)(kind, xb, a, b), hb, xb, g1[i],
                         threshold);
        dc[i] = S(lp_dh)(zero_reset, gc, S(lp_surrogate)(kind, xc, a, b), hc, xc, g2[i],
                         threshold);
        dd[i] = S(lp_dh)(zero_reset, gd, S(lp_surrogate)(kind, xd, a, b), hd, xd, g3[i],
                         threshold);
      }
      g0[i] = beta * da[i], g1[i] = beta * db[i], g2[i] = beta * dc[i], g3[i] = beta * dd[i];
      if (tied) a0[i] = a0[i] + da[i], a1[i] = a1[i] + db[i], a2[i] = a2[i] + dc[i], a3[i] = a3[i] + dd[i];
    }
    // Row d0 first: its junk lanes may fall on row d1 (d0 and d1 may overlap).
    if (!tied) {
      for (int i = 0; i < LP_W; i++) d0[t * ds + 2 * i] = da[i], d0[t * ds + 2 * i + 1] = db[i];
      for (int i = 0; i < LP_W; i++) d1[t * ds + 2 * i] = dc[i], d1[t * ds + 2 * i + 1] = dd[i];
    }
  }
  if (tied) {
    for (int i = 0; i < LP_W; i++) d0[2 * i] = a0[i] * inv_steps, d0[2 * i + 1] = a1[i] * inv_steps;
    for (int i = 0; i < LP_W; i++) d1[2 * i] = a2[i] * inv_steps, d1[2 * i + 1] = a3[i] * inv_steps;
  }
}

#define LP_REVERSE(Z, D, K, TIED)                                                              \
  S(lp_reverse_group)(Z, D, K, TIED, hs, steps, beta, threshold, sa, sb, gq, gstep, d0, d1, ds, \
                      inv_steps)

SOMA_CLONES
void S(soma_lif_pool2_backward)(const T *restrict current, size_t step_stride, size_t steps,
                                size_t q0, size_t q1, size_t H, size_t W, T beta, T threshold,
                                int zero_reset, int detach_reset, int kind, T sa, T sb,
                                const T *restrict g, size_t out_step, T *restrict grad,
                                size_t grad_step, int tied, T inv_steps, T *restrict scratch) {
  const size_t oh = H / 2, ow = W / 2, P = oh * ow;
  const int variant = (zero_reset ? 8 : 0) | (detach_reset ? 4 : 0) | (kind ? 2 : 0) | (tied ? 1 : 0);
  const size_t writes = tied ? 1 : steps;
  // Membranes [steps][4][8], buffered currents [steps][2][16], pooled gradient [steps][8] and
  // current gradient [steps][2][16] of an edge group.
  T *hs = scratch, *cb = hs + steps * 4 * LP_W, *gb = cb + steps * 4 * LP_W;
  T *db = gb + steps * LP_W;
  for (size_t q = q0; q < q1; q++) {
    for (size_t oy = 0; oy < oh; oy++)
      for (size_t ox0 = (ow + LP_W - 1) / LP_W * LP_W; ox0 >= LP_W;) {
        ox0 -= LP_W;
        const size_t at = q * H * W + 2 * oy * W + 2 * ox0;
        const size_t cnt = ow - ox0 < LP_W ? ow - ox0 : LP_W;
        const int edge = S(lp_edge)(H, W, oy, ox0);
        const T *c0 = current + at;
        size_t cs = step_stride;
        if (edge) {
          S(lp_buffer_rows)(c0, W, step_stride, steps, W - 2 * ox0, cb);
          c0 = cb, cs = step_stride ? 4 * LP_W : 0;
        }
        const T *c1 = edge ? cb + 2 * LP_W : c0 + W;
        if (zero_reset)
          S(lp_forward_group)(1, 1, c0, c1, cs, steps, beta, threshold, NULL, 0, hs);
        else
          S(lp_forward_group)(0, 1, c0, c1, cs, steps, beta, threshold, NULL, 0, hs);
        const T *gq = g + q * P + oy * ow + ox0;
        size_t gstep = out_step;
        T *d0 = grad + at, *d1 = d0 + W;
        size_t ds = grad_step;
        if (edge) {
          for (size_t t = 0; t < steps; t++)
            for (size_t i = 0; i < LP_W; i++) gb[t * LP_W + i] = i < cnt ? gq[t * out_step + i] : (T)0;
          gq = gb, gstep = LP_W, d0 = db, d1 = db + 2 * LP_W, ds = 4 * LP_W;
        }
        switch (variant) {
          case 0: LP_REVERSE(0, 0, 0, 0); break;
          case 1: LP_REVERSE(0, 0, 0, 1); break;
          case 2: LP_REVERSE(0, 0, 1, 0); break;
          case 3: LP_REVERSE(0, 0, 1, 1); break;
          case 4: LP_REVERSE(0, 1, 0, 0); break;
          case 5: LP_REVERSE(0, 1, 0, 1); break;
          case 6: LP_REVERSE(0, 1, 1, 0); break;
          case 7: LP_REVERSE(0, 1, 1, 1); break;
          case 8: LP_REVERSE(1, 0, 0, 0); break;
          case 9: LP_REVERSE(1, 0, 0, 1); break;
          case 10: LP_REVERSE(1, 0, 1, 0); break;
          case 11: LP_REVERSE(1, 0, 1, 1); break;
          case 12: LP_REVERSE(1, 1, 0, 0); break;
          case 13: LP_REVERSE(1, 1, 0, 1); break;
          case 14: LP_REVERSE(1, 1, 1, 0); break;
          default: LP_REVERSE(1, 1, 1, 1); break;
        }
        if (edge)
          for (size_t t = 0; t < writes; t++)
            for (size_t r = 0; r < 2; r++)
              memcpy(grad + at + t * grad_step + r * W, db + (t * 2 + r) * 2 * LP_W,
                     2 * cnt * sizeof(T));
      }
    // Neurons outside every window (an odd last column or row) get no spike gradient, so
    // none flows back to their currents (written last: junk lanes may have landed there).
    for (size_t t = 0; t < writes; t++) {
      T *dp = grad + t * grad_step + q * H * W;
      if (W % 2)
        for (size_t y = 0; y < 2 * oh; y++) dp[y * W + W - 1] = 0;
      if (H % 2) memset(dp + (H - 1) * W, 0, W * sizeof(T));
    }
  }
}

#undef LP_REVERSE
#undef LP_W
