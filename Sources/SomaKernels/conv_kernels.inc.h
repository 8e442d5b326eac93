// The convolution kernels for one scalar type T, with S(name) appending its suffix. No include
// guard: image_kernels.c includes it once per type.

// The input row read by output row oy at kernel row ky, or −1 in the padding.
static inline long S(conv_in_row)(const soma_conv_shape *s, size_t o, size_t k) {
  return (long)(o * s->stride_h + k * s->dilation_h) - (long)s->pad_h;
}
static inline long S(conv_in_col)(const soma_conv_shape *s, size_t o, size_t k) {
  return (long)(o * s->stride_w + k * s->dilation_w) - (long)s->pad_w;
}

SOMA_CLONES
void S(soma_im2col)(const soma_conv_shape *s, const T *restrict x, size_t n0, size_t n1,
                    size_t r0, size_t r1, T *restrict cols) {
  const size_t kk = s->kernel_h * s->kernel_w, ow = s->out_width, oh = s->out_height;
  const size_t P = oh * ow, plane = s->height * s->width, img = s->channels * plane;
  const size_t ld = (n1 - n0) * P;
  for (size_t r = r0; r < r1; r++) {
    const size_t c = r / kk, ky = (r % kk) / s->kernel_w, kx = r % s->kernel_w;
    // The output columns whose input column lies inside the image: [lo, hi).
    const long off = (long)(kx * s->dilation_w) - (long)s->pad_w;
    size_t lo = 0, hi = ow;
    while (lo < ow && off + (long)(lo * s->stride_w) < 0) lo++;
    while (hi > lo && off + (long)((hi - 1) * s->stride_w) >= (long)s->width) hi--;
    T *row = cols + (r - r0) * ld;
    for (size_t n = n0; n < n1; n++) {
      const T *xp = x + n * img + c * plane;
      T *dst = row + (n - n0) * P;
      for (size_t oy = 0; oy < oh; oy++) {
        T *d = dst + oy * ow;
        const long iy = S(conv_in_row)(s, oy, ky);
        if (iy < 0 || iy >= (long)s->height) {
          for (size_t ox = 0; ox < ow; ox++) d[ox] = 0;
          continue;
        }
        const T *src = xp + (size_t)iy * s->width;
        for (size_t ox = 0; ox < lo; ox++) d[ox] = 0;
        if (s->stride_w == 1) {
          const T *sp = src + (long)lo + off;
          for (size_t ox = lo; ox < hi; ox++) d[ox] = sp[ox - lo];
        } else {
          for (size_t ox = lo; ox < hi; ox++) d[ox] = src[off + (long)(ox * s->stride_w)];
        }
        for (size_t ox = hi; ox < ow; ox++) d[ox] = 0;
      }
    }
  }
}

SOMA_CLONES
void S(soma_col2im)(const soma_conv_shape *s, const T *restrict cols, size_t n0, size_t n1,
                    size_t c0, size_t c1, T *restrict dx) {
  const size_t kk = s->kernel_h * s->kernel_w, ow = s->out_width, oh = s->out_height;
  const size_t P = oh * ow, plane = s->height * s->width, img = s->channels * plane;
  const size_t ld = (n1 - n0) * P;
  for (size_t c = c0; c < c1; c++) {
    for (size_t k = 0; k < kk; k++) {
      const size_t ky = k / s->kernel_w, kx = k % s->kernel_w;
      const long off = (long)(kx * s->dilation_w) - (long)s->pad_w;
      size_t lo = 0, hi = ow;
      while (lo < ow && off + (long)(lo * s->stride_w) < 0) lo++;
      while (hi > lo && off + (long)((hi - 1) * s->stride_w) >= (long)s->width) hi--;
      const T *row = cols + (c * kk + k) * ld;
      for (size_t n = n0; n < n1; n++) {
        T *xp = dx + n * img + c * plane;
        const T *srcn = row + (n - n0) * P;
        for (size_t oy = 0; oy < oh; oy++) {
          const long iy = S(conv_in_row)(s, oy, ky);
          if (iy < 0 || iy >= (long)s->height) continue;
          T *d = xp + (size_t)iy * s->width;
          const T *sp = srcn + oy * ow;
          if (s->stride_w == 1) {
            T *dp = d + (long)lo + off;
            for (size_t ox = lo; ox < hi; ox++) dp[ox - lo] += sp[ox];
          } else {
            for (size_t ox = lo; ox < hi; ox++) d[off + (long)(ox * s->stride_w)] += sp[ox];
          }
        }
      }
    }
  }
}

void S(soma_conv_scatter)(const T *restrict buf, size_t channels, size_t P, size_t n0,
                          size_t n1, const T *restrict bias, T *restrict out) {
  const size_t ld = (n1 - n0) * P;
  for (size_t n = n0; n < n1; n++)
    for (size_t o = 0; o < channels; o++) {
      const T *src = buf + o * ld + (n - n0) * P;
      T *dst = out + (n * channels + o) * P;
      if (bias) {
        const T b = bias[o];
        for (size_t p = 0; p < P; p++) dst[p] = src[p] + b;
      } else {
        memcpy(dst, src, P * sizeof(T));
      }
    }
}

void S(soma_conv_gather)(const T *restrict g, size_t channels, size_t P, size_t n0, size_t n1,
                         T *restrict buf) {
  const size_t ld = (n1 - n0) * P;
  for (size_t n = n0; n < n1; n++)
    for (size_t o = 0; o < channels; o++)
      memcpy(buf + o * ld + (n - n0) * P, g + (n * channels + o) * P, P * sizeof(T));
}

SOMA_CLONES
size_t S(soma_conv_count_active)(const T *restrict x, size_t n, int *binary) {
  size_t k = 0;
  int bin = 1;
  for (size_t i = 0; i < n; i++) {
    k += x[i] != 0;
    bin &= (x[i] == 0) | (x[i] == 1);
  }
  if (!bin) *binary = 0;
  return k;
}

SOMA_CLONES
size_t S(soma_conv_events)(const T *restrict x, size_t r0, size_t r1, size_t cols,
                           int32_t *restrict list, size_t k0, int64_t *restrict begin,
                           int64_t *restrict end, int *binary) {
  size_t k = k0;
  int bin = 1;
  for (size_t r = r0; r < r1; r++) {
    const T *row = x + r * cols;
    begin[r] = (int64_t)k;
    for (size_t j = 0; j < cols; j++) {
      const T v = row[j];
      // Branch-free append: the slot is written every time, the count moves on a non-zero.
      list[k] = (int32_t)j;
      k += v != 0;
      bin &= (v == 0) | (v == 1);
    }
    end[r] = (int64_t)k;
  }
  if (!bin) *binary = 0;
  return k - k0;
}

// out[0..<n] += w[0..<n].
static inline void S(conv_add_row)(T *restrict out, const T *restrict w, size_t n) {
  for (size_t j = 0; j < n; j++) out[j] += w[j];
}

SOMA_CLONES
void S(soma_conv_events_forward)(const soma_conv_shape *s, size_t groups, size_t out_channels,
                                 const int32_t *restrict list, const int64_t *restrict begin,
                                 const int64_t *restrict end, size_t n0, size_t n1,
                                 const T *restrict wt, T *restrict out) {
  const size_t C = s->channels, W = s->width, oh = s->out_height, ow = s->out_width;
  const size_t kh = s->kernel_h, kw = s->kernel_w, P = oh * ow;
  const size_t cg = C / groups, og = out_channels / groups;
  for (size_t n = n0; n < n1; n++) {
    T *on = out + n * P * out_channels;
    memset(on, 0, P * out_channels * sizeof(T));
    for (size_t c = 0; c < C; c++) {
      const size_t r = n * C + c, goff = (c / cg) * og;
      const T *wc = wt + c * kh * kw * og;
      for (int64_t e = begin[r]; e < end[r]; e++) {
        const size_t iy = (size_t)list[e] / W, ix = (size_t)list[e] % W;
        for (size_t ky = 0; ky < kh; ky++) {
          const long ny = (long)(iy + s->pad_h) - (long)(ky * s->dilation_h);
          if (ny < 0 || ny % (long)s->stride_h) continue;
          const size_t oy = (size_t)ny / s->stride_h;
          if (oy >= oh) continue;
          for (size_t kx = 0; kx < kw; kx++) {
            const long nx = (long)(ix + s->pad_w) - (long)(kx * s->dilation_w);
            if (nx < 0 || nx % (long)s->stride_w) continue;
            const size_t ox = (size_t)nx / s->stride_w;
            if (ox >= ow) continue;
            S(conv_add_row)(on + (oy * ow + ox) * out_channels + goff, wc + (ky * kw + kx) * og,
                            og);
          }
        }
      }
    }
  }
}

SOMA_CLONES
void S(soma_conv_events_weight_grad)(const soma_conv_shape *s, size_t groups,
                                     size_t out_channels, const int32_t *restrict list,
                                     const int64_t *restrict begin, const int64_t *restrict end,
                                     size_t images, size_t c0, size_t c1, const T *restrict g,
                                     T *restrict dwt) {
  const size_t C = s->channels, W = s->width, oh = s->out_height, ow = s->out_width;
  const size_t kh = s->kernel_h, kw = s->kernel_w, P = oh * ow;
  const size_t cg = C / groups, og = out_channels / groups;
  for (size_t c = c0; c < c1; c++) {
    const size_t goff = (c / cg) * og;
    T *dc = dwt + c * kh * kw * og;
    memset(dc, 0, kh * kw * og * sizeof(T));
    for (size_t n = 0; n < images; n++) {
      const size_t r = n * C + c;
      const T *gn = g + n * P * out_channels + goff;
      for (int64_t e = begin[r]; e < end[r]; e++) {
        const size_t iy = (size_t)list[e] / W, ix = (size_t)list[e] % W;
        for (size_t ky = 0; ky < kh; ky++) {
          const long ny = (long)(iy + s->pad_h) - (long)(ky * s->dilation_h);
          if (ny < 0 || ny % (long)s->stride_h) continue;
          const size_t oy = (size_t)ny / s->stride_h;
          if (oy >= oh) continue;
          for (size_t kx = 0; kx < kw; kx++) {
            const long nx = (long)(ix + s->pad_w) - (long)(kx * s->dilation_w);
            if (nx < 0 || nx % (long)s->stride_w) continue;
            const size_t ox = (size_t)nx / s->stride_w;
            if (ox >= ow) continue;
            S(conv_add_row)(dc + (ky * kw + kx) * og, gn + (oy * ow + ox) * out_channels, og);
          }
        }
      }
    }
  }
}

SOMA_CLONES
void S(soma_nhwc_to_nchw)(const T *restrict in, size_t channels, size_t P, size_t n0, size_t n1,
                          const T *restrict bias, T *restrict out) {
  // Tiles of 16 pixels × 16 channels keep both sides' cache lines in use.
  for (size_t n = n0; n < n1; n++) {
    const T *src = in + n * P * channels;
    T *dst = out + n * P * channels;
    for (size_t p0 = 0; p0 < P; p0 += 16) {
      const size_t p1 = p0 + 16 < P ? p0 + 16 : P;
      for (size_t c0 = 0; c0 < channels; c0 += 16) {
        const size_t c1 = c0 + 16 < channels ? c0 + 16 : channels;
        for (size_t c = c0; c < c1; c++) {
          const T b = bias ? bias[c] : 0;
          for (size_t p = p0; p < p1; p++) dst[c * P + p] = src[p * channels + c] + b;
        }
      }
    }
  }
}

SOMA_CLONES
void S(soma_nchw_to_nhwc)(const T *restrict in, size_t channels, size_t P, size_t n0, size_t n1,
                          T *restrict out) {
  for (size_t n = n0; n < n1; n++) {
    const T *src = in + n * P * channels;
    T *dst = out + n * P * channels;
    for (size_t p0 = 0; p0 < P; p0 += 16) {
      const size_t p1 = p0 + 16 < P ? p0 + 16 : P;
      for (size_t c0 = 0; c0 < channels; c0 += 16) {
        const size_t c1 = c0 + 16 < channels ? c0 + 16 : channels;
        for (size_t p = p0; p < p1; p++)
          for (size_t c = c0; c < c1; c++) dst[p * channels + c] = src[c * P + p];
      }
    }
  }
}
