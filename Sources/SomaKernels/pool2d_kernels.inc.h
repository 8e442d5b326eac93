// The pooling kernels for one scalar type T (S(name) appends its suffix); included by
// image_kernels.c once per type.

// Outputs [ox0, ox0 + count) of one row of a 2 × 2, stride-2 max pool (see soma_maxpool2d).
static inline __attribute__((always_inline)) void S(pool2_run)(const T *restrict r0,
    const T *restrict r1, size_t ox0, size_t count, T *restrict o, int32_t *restrict a,
    int32_t top, int32_t w) {
#pragma clang loop vectorize(enable) interleave(disable)
  for (size_t ox = ox0; ox < ox0 + count; ox++) {
    const T p0 = r0[2 * ox], p1 = r0[2 * ox + 1], p2 = r1[2 * ox], p3 = r1[2 * ox + 1];
    T best = p0;
    int32_t at = 0;
    at = p1 > best ? 1 : at;
    best = p1 > best ? p1 : best;
    at = p2 > best ? w : at;
    best = p2 > best ? p2 : best;
    at = p3 > best ? w + 1 : at;
    best = p3 > best ? p3 : best;
    o[ox] = best;
    a[ox] = top + 2 * (int32_t)ox + at;
  }
}

SOMA_CLONES
void S(soma_maxpool2d)(const soma_conv_shape *s, const T *restrict x, size_t q0, size_t q1,
                       T *restrict out, int32_t *restrict argmax) {
  const size_t H = s->height, W = s->width, oh = s->out_height, ow = s->out_width;
  const int plain2 = s->kernel_h == 2 && s->kernel_w == 2 && s->stride_h == 2 &&
                     s->stride_w == 2 && s->pad_h == 0 && s->pad_w == 0 &&
                     s->dilation_h == 1 && s->dilation_w == 1;
  for (size_t q = q0; q < q1; q++) {
    const T *xp = x + q * H * W;
    T *op = out + q * oh * ow;
    int32_t *ap = argmax + q * oh * ow;
    if (plain2) {
      // The common 2 × 2, stride 2 window: four reads, ties to the first in row-major order.
      // Selects instead of branches (spike maps make the comparisons unpredictable), 8
      // outputs at a time so the loop vectorises; a row's last 8 overlap the ones before.
      for (size_t oy = 0; oy < oh; oy++) {
        const T *r0 = xp + 2 * oy * W, *r1 = r0 + W;
        const int32_t top = (int32_t)(2 * oy * W);
        if (ow >= 8) {
          for (size_t ox0 = 0;; ox0 += 8) {
            if (ox0 + 8 > ow) ox0 = ow - 8;
            S(pool2_run)(r0, r1, ox0, 8, op + oy * ow, ap + oy * ow, top, (int32_t)W);
            if (ox0 + 8 == ow) break;
          }
        } else {
          S(pool2_run)(r0, r1, 0, ow, op + oy * ow, ap + oy * ow, top, (int32_t)W);
        }
      }
      continue;
    }
    for (size_t oy = 0; oy < oh; oy++)
      for (size_t ox = 0; ox < ow; ox++) {
        T best = -INFINITY;
        int32_t at = -1;
        for (size_t ky = 0; ky < s->kernel_h; ky++) {
          const long iy = (long)(oy * s->stride_h + ky * s->dilation_h) - (long)s->pad_h;
          if (iy < 0 || iy >= (long)H) continue;
          for (size_t kx = 0; kx < s->kernel_w; kx++) {
            const long ix = (long)(ox * s->stride_w + kx * s->dilation_w) - (long)s->pad_w;
            if (ix < 0 || ix >= (long)W) continue;
            const T v = xp[iy * (long)W + ix];
            // NaN propagates, as in PyTorch.
            if (v > best || isnan(v) || at < 0) {
              best = v;
              at = (int32_t)(iy * (long)W + ix);
              if (isnan(v)) goto done;
            }
          }
        }
      done:
        op[oy * ow + ox] = best;
        ap[oy * ow + ox] = at;
      }
  }
}

void S(soma_maxpool2d_backward)(const soma_conv_shape *s, const T *restrict g,
                                const int32_t *restrict argmax, size_t q0, size_t q1,
                                T *restrict dx) {
  const size_t plane = s->height * s->width, P = s->out_height * s->out_width;
  for (size_t q = q0; q < q1; q++) {
    T *dp = dx + q * plane;
    memset(dp, 0, plane * sizeof(T));
    const T *gp = g + q * P;
    const int32_t *ap = argmax + q * P;
    for (size_t p = 0; p < P; p++)
      if (ap[p] >= 0) dp[ap[p]] += gp[p];
  }
}

// The window of output (oy, ox) clipped to the plane, [y0, y1) × [x0, x1) in input
// coordinates, and the divisor.
static inline T S(avg_window)(const soma_conv_shape *s, size_t oy, size_t ox, int count_pad,
                              long *y0, long *y1, long *x0, long *x1) {
  const long H = (long)s->height, W = (long)s->width;
  long ys = (long)(oy * s->stride_h) - (long)s->pad_h;
  long xs = (long)(ox * s->stride_w) - (long)s->pad_w;
  long ye = ys + (long)s->kernel_h, xe = xs + (long)s->kernel_w;
  // PyTorch counts the window clipped to the padded plane.
  long pye = ye < H + (long)s->pad_h ? ye : H + (long)s->pad_h;
  long pxe = xe < W + (long)s->pad_w ? xe : W + (long)s->pad_w;
  const long padded = (pye - ys) * (pxe - xs);
  *y0 = ys < 0 ? 0 : ys;
  *x0 = xs < 0 ? 0 : xs;
  *y1 = ye < H ? ye : H;
  *x1 = xe < W ? xe : W;
  return (T)(count_pad ? padded : (*y1 - *y0) * (*x1 - *x0));
}

SOMA_CLONES
void S(soma_avgpool2d)(const soma_conv_shape *s, const T *restrict x, size_t q0, size_t q1,
                       int count_pad, T *restrict out) {
  const size_t H = s->height, W = s->width, oh = s->out_height, ow = s->out_width;
  for (size_t q = q0; q < q1; q++) {
    const T *xp = x + q * H * W;
    T *op = out + q * oh * ow;
    for (size_t oy = 0; oy < oh; oy++)
      for (size_t ox = 0; ox < ow; ox++) {
        long y0, y1, x0, x1;
        const T div = S(avg_window)(s, oy, ox, count_pad, &y0, &y1, &x0, &x1);
        T sum = 0;
        for (long iy = y0; iy < y1; iy++)
          for (long ix = x0; ix < x1; ix++) sum += xp[iy * (long)W + ix];
        op[oy * ow + ox] = sum / div;
      }
  }
}

void S(soma_avgpool2d_backward)(const soma_conv_shape *s, const T *restrict g, size_t q0,
                                size_t q1, int count_pad, T *restrict dx) {
  const size_t H = s->height, W = s->width, oh = s->out_height, ow = s->out_width;
  for (size_t q = q0; q < q1; q++) {
    T *dp = dx + q * H * W;
    memset(dp, 0, H * W * sizeof(T));
    const T *gp = g + q * oh * ow;
    for (size_t oy = 0; oy < oh; oy++)
      for (size_t ox = 0; ox < ow; ox++) {
        long y0, y1, x0, x1;
        const T div = S(avg_window)(s, oy, ox, count_pad, &y0, &y1, &x0, &x1);
        const T v = gp[oy * ow + ox] / div;
        for (long iy = y0; iy < y1; iy++)
          for (long ix = x0; ix < x1; ix++) dp[iy * (long)W + ix] += v;
      }
  }
}
