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
  // Blocks of 64 with 32-bit counts and flags, which the compiler turns into vector compares
  // (a size_t count and an int flag per element stayed scalar: 0.8 ns an element).
  size_t k = 0, i = 0;
  unsigned other = 0;
  for (; i + 64 <= n; i += 64) {
    unsigned c = 0;
    for (size_t j = 0; j < 64; j++) {
      const T v = x[i + j];
      c += v != 0;
      other |= (v != 0) & (v != 1);
    }
    k += c;
  }
  for (; i < n; i++) {
    k += x[i] != 0;
    other |= (x[i] != 0) & (x[i] != 1);
  }
  if (other) *binary = 0;
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

// ---------------------------------------------------------------- Winograd F(2×2, 3×3)
// A 3 × 3, stride-1 convolution computed on 4 × 4 input tiles that each give a 2 × 2 output
// tile: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A. The channel sums become 16 GEMMs (one per tile
// position ξ) of 16/36 the multiplications of im2col's one. Transforms:
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1].

SOMA_CLONES
void S(soma_wino_weight)(const T *restrict w, size_t K, size_t C, T *restrict u) {
  for (size_t k = 0; k < K; k++)
    for (size_t c = 0; c < C; c++) {
      const T *g = w + (k * C + c) * 9;
      T t[4][3];  // G g
      for (int j = 0; j < 3; j++) {
        const T a = g[j], b = g[3 + j], d = g[6 + j];
        t[0][j] = a;
        t[1][j] = (a + b + d) * (T)0.5;
        t[2][j] = (a - b + d) * (T)0.5;
        t[3][j] = d;
      }
      for (int i = 0; i < 4; i++) {  // (G g) Gᵀ
        const T a = t[i][0], b = t[i][1], d = t[i][2];
        const T r[4] = {a, (a + b + d) * (T)0.5, (a - b + d) * (T)0.5, d};
        for (int j = 0; j < 4; j++) u[((size_t)(i * 4 + j) * K + k) * C + c] = r[j];
      }
    }
}

SOMA_CLONES
void S(soma_wino_input)(const soma_conv_shape *s, const T *restrict x, size_t n0, size_t n1,
                        T *restrict v) {
  const size_t H = s->height, W = s->width, C = s->channels;
  const size_t th = (s->out_height + 1) / 2, tw = (s->out_width + 1) / 2, tiles = th * tw;
  const size_t ld = (n1 - n0) * tiles, xs = C * ld;
  const long ph = (long)s->pad_h, pw = (long)s->pad_w;
  for (size_t n = n0; n < n1; n++)
    for (size_t c = 0; c < C; c++) {
      const T *xp = x + (n * C + c) * H * W;
      T *vp = v + c * ld + (n - n0) * tiles;
      for (size_t ty = 0; ty < th; ty++) {
        const long y0 = (long)(2 * ty) - ph;
        for (size_t tx = 0; tx < tw; tx++) {
          const long x0 = (long)(2 * tx) - pw;
          T d[4][4];
          if (y0 >= 0 && x0 >= 0 && y0 + 4 <= (long)H && x0 + 4 <= (long)W) {
            for (int i = 0; i < 4; i++)
              for (int j = 0; j < 4; j++) d[i][j] = xp[(y0 + i) * (long)W + x0 + j];
          } else {
            for (int i = 0; i < 4; i++)
              for (int j = 0; j < 4; j++) {
                const long yy = y0 + i, xx = x0 + j;
                d[i][j] = (yy >= 0 && yy < (long)H && xx >= 0 && xx < (long)W)
                              ? xp[yy * (long)W + xx]
                              : 0;
              }
          }
          T t[4][4];  // Bᵀ d
          for (int j = 0; j < 4; j++) {
            t[0][j] = d[0][j] - d[2][j];
            t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j];
            t[3][j] = d[1][j] - d[3][j];
          }
          T *o = vp + ty * tw + tx;
          for (int i = 0; i < 4; i++) {  // (Bᵀ d) B
            o[(size_t)(i * 4 + 0) * xs] = t[i][0] - t[i][2];
            o[(size_t)(i * 4 + 1) * xs] = t[i][1] + t[i][2];
            o[(size_t)(i * 4 + 2) * xs] = t[i][2] - t[i][1];
            o[(size_t)(i * 4 + 3) * xs] = t[i][1] - t[i][3];
          }
        }
      }
    }
}

SOMA_CLONES
void S(soma_wino_output)(const soma_conv_shape *s, size_t K, const T *restrict m, size_t n0,
                         size_t n1, const T *restrict bias, T *restrict out) {
  const size_t oh = s->out_height, ow = s->out_width;
  const size_t th = (oh + 1) / 2, tw = (ow + 1) / 2, tiles = th * tw;
  const size_t ld = (n1 - n0) * tiles, ms = K * ld;
  for (size_t n = n0; n < n1; n++)
    for (size_t k = 0; k < K; k++) {
      const T *mp = m + k * ld + (n - n0) * tiles;
      T *op = out + (n * K + k) * oh * ow;
      const T b = bias ? bias[k] : (T)0;
      for (size_t ty = 0; ty < th; ty++)
        for (size_t tx = 0; tx < tw; tx++) {
          const T *q = mp + ty * tw + tx;
          T a[4][4];
          for (int i = 0; i < 16; i++) a[i / 4][i % 4] = q[(size_t)i * ms];
          T r[2][4];  // Aᵀ M
          for (int j = 0; j < 4; j++) {
            r[0][j] = a[0][j] + a[1][j] + a[2][j];
            r[1][j] = a[1][j] - a[2][j] - a[3][j];
          }
          const size_t y = 2 * ty, xx = 2 * tx;
          for (int i = 0; i < 2; i++) {  // (Aᵀ M) A
            if (y + i >= oh) break;
            T *row = op + (y + i) * ow + xx;
            row[0] = r[i][0] + r[i][1] + r[i][2] + b;
            if (xx + 1 < ow) row[1] = r[i][1] - r[i][2] - r[i][3] + b;
          }
        }
    }
}

// The output gradient's tiles for the weight gradient: z[ξ, K, (n1 − n0)·tiles] = A dY Aᵀ of
// each 2 × 2 tile of g [n, K, out_h, out_w] (zeros past the edge), A = [1 0; 1 1; 1 −1; 0 −1].
SOMA_CLONES
void S(soma_wino_grad_tiles)(const soma_conv_shape *s, size_t K, const T *restrict g,
                             size_t n0, size_t n1, T *restrict z) {
  const size_t oh = s->out_height, ow = s->out_width;
  const size_t th = (oh + 1) / 2, tw = (ow + 1) / 2, tiles = th * tw;
  const size_t ld = (n1 - n0) * tiles, zs = K * ld;
  for (size_t n = n0; n < n1; n++)
    for (size_t k = 0; k < K; k++) {
      const T *gp = g + (n * K + k) * oh * ow;
      T *zp = z + k * ld + (n - n0) * tiles;
      for (size_t ty = 0; ty < th; ty++)
        for (size_t tx = 0; tx < tw; tx++) {
          const size_t y = 2 * ty, x = 2 * tx;
          const int down = y + 1 < oh, right = x + 1 < ow;
          const T y00 = gp[y * ow + x], y01 = right ? gp[y * ow + x + 1] : 0;
          const T y10 = down ? gp[(y + 1) * ow + x] : 0;
          const T y11 = down && right ? gp[(y + 1) * ow + x + 1] : 0;
          const T r[4][2] = {{y00, y01}, {y00 + y10, y01 + y11}, {y00 - y10, y01 - y11},
                             {-y10, -y11}};  // A dY
          T *q = zp + ty * tw + tx;
          for (int i = 0; i < 4; i++) {  // (A dY) Aᵀ
            q[(size_t)(i * 4 + 0) * zs] = r[i][0];
            q[(size_t)(i * 4 + 1) * zs] = r[i][0] + r[i][1];
            q[(size_t)(i * 4 + 2) * zs] = r[i][0] - r[i][1];
            q[(size_t)(i * 4 + 3) * zs] = -r[i][1];
          }
        }
    }
}

// dW[k, c] = Gᵀ du[·, k, c] G: the weight gradient [K, C, 3, 3] from du[ξ, K, C].
SOMA_CLONES
void S(soma_wino_weight_grad)(const T *restrict du, size_t K, size_t C, T *restrict dw) {
  for (size_t k = 0; k < K; k++)
    for (size_t c = 0; c < C; c++) {
      T a[4][4];
      for (int i = 0; i < 16; i++) a[i / 4][i % 4] = du[((size_t)i * K + k) * C + c];
      T t[3][4];  // Gᵀ a, Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1]
      for (int j = 0; j < 4; j++) {
        t[0][j] = a[0][j] + (a[1][j] + a[2][j]) * (T)0.5;
        t[1][j] = (a[1][j] - a[2][j]) * (T)0.5;
        t[2][j] = (a[1][j] + a[2][j]) * (T)0.5 + a[3][j];
      }
      T *o = dw + (k * C + c) * 9;
      for (int i = 0; i < 3; i++) {  // (Gᵀ a) G
        o[i * 3 + 0] = t[i][0] + (t[i][1] + t[i][2]) * (T)0.5;
        o[i * 3 + 1] = (t[i][1] - t[i][2]) * (T)0.5;
        o[i * 3 + 2] = (t[i][1] + t[i][2]) * (T)0.5 + t[i][3];
      }
    }
}

// ---------------------------------------------------------------- the tile GEMMs
// c[i, j] (+)= Σ_p a[i·as + p·ap]·b[p·bs + j] for i < M, j < N. The Winograd forward GEMMs are
// many and small ([~100, 128]·[128, 128]); OpenBLAS packs both operands for each, this neither:
// a 6-row block of a is read as broadcasts (as and ap are strides), a 2-vector-wide column
// block of b is read in place and stays in L1, and the 12 sums stay in registers. On 49
// products [81, 128]·[128, 128] one core ran 72–74 GFLOP/s, OpenBLAS (with the product
// cleared first) 63–71.

#define TG_LANES (32 / sizeof(T))
typedef T S(tg_vec) __attribute__((vector_size(32), aligned(sizeof(T))));
#define TG_INLINE static inline __attribute__((always_inline))

// Rows [0, R) (R ≤ 6, a constant after inlining) of a block of V vectors (1 or 2) wide.
TG_INLINE void S(tg_block)(const int R, const int V, size_t kc, const T *restrict a, size_t as,
                           size_t ap, const T *restrict b, size_t bs, T *restrict c, size_t ldc,
                           int accumulate) {
  enum { L = TG_LANES };
  S(tg_vec) sum[6][2];
  for (int i = 0; i < R; i++)
    for (int v = 0; v < V; v++) sum[i][v] = (S(tg_vec)){0};
  for (size_t p = 0; p < kc; p++) {
    S(tg_vec) bv[2];
    for (int v = 0; v < V; v++) bv[v] = *(const S(tg_vec) *)(b + p * bs + v * L);
    for (int i = 0; i < R; i++) {
      const T x = a[i * as + p * ap];
      for (int v = 0; v < V; v++) sum[i][v] += x * bv[v];
    }
  }
  for (int i = 0; i < R; i++)
    for (int v = 0; v < V; v++) {
      S(tg_vec) *o = (S(tg_vec) *)(c + i * ldc + v * L);
      *o = accumulate ? *o + sum[i][v] : sum[i][v];
    }
}

TG_INLINE void S(tg_rows)(const int V, size_t M, size_t kc, const T *restrict a, size_t as,
                          size_t ap, const T *restrict b, size_t bs, T *restrict c, size_t ldc,
                          int accumulate) {
  size_t i = 0;
  for (; i + 6 <= M; i += 6)
    S(tg_block)(6, V, kc, a + i * as, as, ap, b, bs, c + i * ldc, ldc, accumulate);
  const T *ai = a + i * as;
  T *ci = c + i * ldc;
  switch (M - i) {
    case 1: S(tg_block)(1, V, kc, ai, as, ap, b, bs, ci, ldc, accumulate); break;
    case 2: S(tg_block)(2, V, kc, ai, as, ap, b, bs, ci, ldc, accumulate); break;
    case 3: S(tg_block)(3, V, kc, ai, as, ap, b, bs, ci, ldc, accumulate); break;
    case 4: S(tg_block)(4, V, kc, ai, as, ap, b, bs, ci, ldc, accumulate); break;
    case 5: S(tg_block)(5, V, kc, ai, as, ap, b, bs, ci, ldc, accumulate); break;
    default: break;
  }
}

SOMA_CLONES
void S(soma_tile_gemm)(size_t M, size_t N, size_t kc, const T *restrict a, size_t as, size_t ap,
                       const T *restrict b, size_t bs, T *restrict c, size_t ldc,
                       int accumulate) {
  enum { L = TG_LANES };
  size_t j = 0;
  for (; j + 2 * L <= N; j += 2 * L)
    S(tg_rows)(2, M, kc, a, as, ap, b + j, bs, c + j, ldc, accumulate);
  if (j + L <= N) {
    S(tg_rows)(1, M, kc, a, as, ap, b + j, bs, c + j, ldc, accumulate);
    j += L;
  }
  for (; j < N; j++)  // the last columns, fewer than a vector
    for (size_t i = 0; i < M; i++) {
      T sum = 0;
      for (size_t p = 0; p < kc; p++) sum += a[i * as + p * ap] * b[p * bs + j];
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
    }
}

#undef TG_INLINE
#undef TG_LANES

// ------------------------------------------------- Winograd F(4×4, 3×3) and F(5×5, 3×3)
// The same on n × n input tiles (n = m + 2) that each give an m × m output tile: n² GEMMs,
// n²/(9m²) of im2col's multiplications per whole tile. The exported functions take m = 4 or
// 5 and run one body specialised for it (the transforms below, fully unrolled).
//
// F(4×4, 3×3), the interpolation points 0, ±1, ±2, ∞:
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0;
//         0 4 0 −5 0 1],
//   G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1],
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
// F(5×5, 3×3), the points 0, 1, −1, 2, −2, ½, ∞ (Bᵀ's rows scaled to integers, G's rows by the
// inverse; scripts/winograd.py derives and checks both):
//   Bᵀ = [4 −8 −5 10 1 −2 0; 0 4 −4 −9 1 2 0; 0 −4 12 −7 −3 2 0; 0 2 −3 −4 3 2 0;
//         0 −2 5 0 −5 2 0; 0 4 0 −5 0 1 0; 0 −4 8 5 −10 −1 2],
//   G = [¼ 0 0; −⅙ −⅙ −⅙; 1/18 −1/18 1/18; 1/72 1/36 1/18; −1/120 1/60 −1/30;
//        32/45 16/45 8/45; 0 0 ½],
//   Aᵀ = [1 1 1 1 1 1 0; 0 1 −1 2 −2 ½ 0; 0 1 1 4 4 ¼ 0; 0 1 −1 8 −8 ⅛ 0;
//         0 1 1 16 16 1/16 1].
// On 14 × 14 outputs F(5×5) needs 9 tiles × 49 = 441 products per channel pair, F(4×4) 16 ×
// 36 = 576. In Float F(5×5)'s results differ from the exact ones about twice as much.
// The tile matrices are channel-minor, v[ξ·xs + column·cs + c] with cs the channels rounded
// up to 8, so that a transform works on 8 channels at once: the 8 planes are interleaved into
// a scratch plane (pixel-major, 8 lanes a pixel), every tile is transformed as vectors of 8
// lanes, and each of the n² results is one 8-wide store.

#define WINOM_LANES 8
#define WINOM_INLINE static inline __attribute__((always_inline))
typedef T S(winom_vec) __attribute__((vector_size(WINOM_LANES * sizeof(T)), aligned(sizeof(T))));
#define WINOM_AT(p) (*(S(winom_vec) *)(p))

// r[j] ← column j of the 8 × 8 block r (row l, lane j → row j, lane l): the AVX 8 × 8
// transpose's three rounds of shuffles, written with the vector extension.
WINOM_INLINE void S(winom_transpose8)(S(winom_vec) r[8]) {
  S(winom_vec) t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 2; i++)
    for (int h = 0; h < 2; h++) {
      const S(winom_vec) a = t[4 * i + h], b = t[4 * i + 2 + h];
      u[4 * i + 2 * h] = __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13);
      u[4 * i + 2 * h + 1] = __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int j = 0; j < 4; j++) {
    r[j] = __builtin_shufflevector(u[j], u[4 + j], 0, 1, 2, 3, 8, 9, 10, 11);
    r[4 + j] = __builtin_shufflevector(u[j], u[4 + j], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// n pixels of 8 planes (plane l at base + l · ps) into the pixel-major scratch row dst
// (dst[j · 8 + l] = base[l · ps + j]), 8 pixels a transpose; a row's last 8 overlap the ones
// before (a copy, so rewriting a pixel is harmless).
WINOM_INLINE void S(winom_to_pixels)(const T *base, size_t ps, size_t n, T *dst) {
  if (n < 8) {
    for (size_t j = 0; j < n; j++)
      for (size_t l = 0; l < 8; l++) dst[j * 8 + l] = base[l * ps + j];
    return;
  }
  for (size_t j0 = 0;; j0 += 8) {
    if (j0 + 8 > n) j0 = n - 8;
    S(winom_vec) r[8];
    for (int l = 0; l < 8; l++) memcpy(&r[l], base + l * ps + j0, sizeof r[l]);
    S(winom_transpose8)(r);
    for (int j = 0; j < 8; j++) memcpy(dst + (j0 + j) * 8, &r[j], sizeof r[j]);
    if (j0 + 8 == n) break;
  }
}

// The reverse: base[l · ps + j] = src[j · 8 + l] for j < n.
WINOM_INLINE void S(winom_from_pixels)(const T *src, size_t n, T *base, size_t ps) {
  if (n < 8) {
    for (size_t j = 0; j < n; j++)
      for (size_t l = 0; l < 8; l++) base[l * ps + j] = src[j * 8 + l];
    return;
  }
  for (size_t j0 = 0;; j0 += 8) {
    if (j0 + 8 > n) j0 = n - 8;
    S(winom_vec) r[8];
    for (int j = 0; j < 8; j++) memcpy(&r[j], src + (j0 + j) * 8, sizeof r[j]);
    S(winom_transpose8)(r);
    for (int l = 0; l < 8; l++) memcpy(base + l * ps + j0, &r[l], sizeof r[l]);
    if (j0 + 8 == n) break;
  }
}

// G g for a column (or row) g of 3 lane vectors: the m + 2 interpolated values.
WINOM_INLINE void S(winom_g)(const int m, const S(winom_vec) g[3], S(winom_vec) r[7]) {
  if (m == 4) {
    const T sixth = (T)1 / 6;
    const S(winom_vec) ad = (g[0] + g[2]) * sixth, b6 = g[1] * sixth;
    const S(winom_vec) a24 = g[0] * ((T)1 / 24), b12 = g[1] * ((T)1 / 12), d6 = g[2] * sixth;
    r[0] = g[0] * (T)0.25;
    r[1] = -ad - b6;
    r[2] = b6 - ad;
    r[3] = a24 + b12 + d6;
    r[4] = a24 - b12 + d6;
    r[5] = g[2];
  } else {
    const S(winom_vec) s = g[0] + g[2];
    r[0] = g[0] * (T)0.25;
    r[1] = (s + g[1]) * ((T)-1 / 6);
    r[2] = (s - g[1]) * ((T)1 / 18);
    r[3] = g[0] * ((T)1 / 72) + g[1] * ((T)1 / 36) + g[2] * ((T)1 / 18);
    r[4] = g[0] * ((T)-1 / 120) + g[1] * ((T)1 / 60) - g[2] * ((T)1 / 30);
    r[5] = (g[0] * (T)4 + g[1] * (T)2 + g[2]) * ((T)8 / 45);
    r[6] = g[2] * (T)0.5;
  }
}

WINOM_INLINE void S(winom_weight_body)(const int m, const T *restrict w, size_t K, size_t C,
                                       T *restrict u) {
  enum { L = WINOM_LANES };
  const int n = m + 2;
  // Eight output channels a vector, so that each of the n² results is one store into a row
  // [ξ, c] of u. Those rows are C·K apart: one element at a time, every store of a kernel
  // fell in the same L1 set (128 × 128 channels took 2.8 ms, now 0.3).
  for (size_t c = 0; c < C; c++)
    for (size_t k0 = 0; k0 < K; k0 += L) {
      const size_t lanes = K - k0 < L ? K - k0 : L;
      S(winom_vec) g[9] = {{0}};
      for (size_t l = 0; l < lanes; l++)
        for (int e = 0; e < 9; e++) g[e][l] = w[((k0 + l) * C + c) * 9 + e];
      S(winom_vec) t[3][7];  // (G g)ᵀ: t[j] is column j of g interpolated
      for (int j = 0; j < 3; j++) {
        const S(winom_vec) col[3] = {g[j], g[3 + j], g[6 + j]};
        S(winom_g)(m, col, t[j]);
      }
      for (int i = 0; i < n; i++) {  // (G g) Gᵀ
        const S(winom_vec) row[3] = {t[0][i], t[1][i], t[2][i]};
        S(winom_vec) r[7];
        S(winom_g)(m, row, r);
        for (int j = 0; j < n; j++) {
          T *o = u + ((size_t)(i * n + j) * C + c) * K + k0;
          if (lanes == L) {
            WINOM_AT(o) = r[j];
          } else {
            for (size_t l = 0; l < lanes; l++) o[l] = r[j][l];
          }
        }
      }
    }
}

SOMA_CLONES
void S(soma_winom_weight)(size_t m, const T *restrict w, size_t K, size_t C, T *restrict u) {
  if (m == 5)
    S(winom_weight_body)(5, w, K, C, u);
  else
    S(winom_weight_body)(4, w, K, C, u);
}

size_t S(soma_winom_scratch)(const soma_conv_shape *s, size_t m) {
  return (m * ((s->out_height + m - 1) / m) + 2) * (m * ((s->out_width + m - 1) / m) + 2) *
         WINOM_LANES;
}

// Bᵀ applied to a column d of m + 2 lane vectors (also to a row: B is Bᵀ transposed).
// Vectors pass by pointer: by value they would change the baseline clone's calling convention.
WINOM_INLINE void S(winom_bt)(const int m, const S(winom_vec) d[7], S(winom_vec) r[7]) {
  if (m == 4) {
    const S(winom_vec) a = d[4] - (T)4 * d[2], b = d[3] - (T)4 * d[1];
    const S(winom_vec) c = d[4] - d[2], e = (T)2 * (d[3] - d[1]);
    r[0] = (T)4 * d[0] - (T)5 * d[2] + d[4];
    r[1] = a + b;
    r[2] = a - b;
    r[3] = c + e;
    r[4] = c - e;
    r[5] = (T)4 * d[1] - (T)5 * d[3] + d[5];
  } else {
    // Rows ±1 and ±2 share their parts: with a = d₁ − 2d₂, b = 2d₄ − d₃ (and a', b' the same
    // one place on), row ±1 is (4a' + b') ± (4a + b), row ±2 is (a' + b') ± 2(a + b);
    // rows 0 and ∞ are 4a₀ − 5a' − b' and its mirror.
    const S(winom_vec) a0 = d[0] - (T)2 * d[1], a = d[1] - (T)2 * d[2];
    const S(winom_vec) a1 = d[2] - (T)2 * d[3], b = (T)2 * d[4] - d[3];
    const S(winom_vec) b1 = (T)2 * d[5] - d[4], b2 = (T)2 * d[6] - d[5];
    const S(winom_vec) qo = (T)4 * a + b, qe = (T)4 * a1 + b1, po = a + b, pe = a1 + b1;
    r[0] = (T)4 * a0 - (T)5 * a1 - b1;
    r[1] = qe + qo;
    r[2] = qe - qo;
    r[3] = pe + (T)2 * po;
    r[4] = pe - (T)2 * po;
    r[5] = (T)4 * d[1] - (T)5 * d[3] + d[5];
    r[6] = b2 - (T)4 * a - (T)5 * b;
  }
}

WINOM_INLINE void S(winom_input_body)(const int m, const soma_conv_shape *s, const T *restrict x,
                                      size_t n0, size_t n1, T *restrict v, size_t xs,
                                      T *restrict scratch) {
  enum { L = WINOM_LANES };
  const int n = m + 2;
  const size_t H = s->height, W = s->width, C = s->channels, cs = (C + L - 1) / L * L;
  const size_t th = (s->out_height + m - 1) / m, tw = (s->out_width + m - 1) / m;
  const size_t tiles = th * tw, ph = s->pad_h, pw = s->pad_w, PH = m * th + 2, PW = m * tw + 2;
  // The input rows and columns inside the tiles' reach.
  const size_t rows = H + ph < PH ? H : PH - ph, cols = W + pw < PW ? W : PW - pw;
  T *p = scratch;  // [PH, PW, L], the padding stays zero
  memset(p, 0, PH * PW * L * sizeof(T));
  for (size_t im = n0; im < n1; im++)
    for (size_t c0 = 0; c0 < C; c0 += L) {
      const size_t lanes = C - c0 < L ? C - c0 : L;
      if (lanes < L) memset(p, 0, PH * PW * L * sizeof(T));
      if (lanes == L) {
        const T *xp = x + (im * C + c0) * H * W;
        for (size_t yy = 0; yy < rows; yy++)
          S(winom_to_pixels)(xp + yy * W, H * W, cols, p + ((yy + ph) * PW + pw) * L);
      } else {
        for (size_t l = 0; l < lanes; l++) {
          const T *xp = x + (im * C + c0 + l) * H * W;
          for (size_t yy = 0; yy < rows; yy++)
            for (size_t xx = 0; xx < cols; xx++)
              p[((yy + ph) * PW + xx + pw) * L + l] = xp[yy * W + xx];
        }
      }
      T *vp = v + (im - n0) * tiles * cs + c0;
      for (size_t ty = 0; ty < th; ty++)
        for (size_t tx = 0; tx < tw; tx++) {
          const T *d = p + (m * ty * PW + m * tx) * L;
          S(winom_vec) t[7][7];  // Bᵀ d, stored transposed: t[j] is column j
          for (int j = 0; j < n; j++) {
            S(winom_vec) col[7];
            for (int i = 0; i < n; i++) col[i] = WINOM_AT(d + (i * PW + j) * L);
            S(winom_bt)(m, col, t[j]);
          }
          T *o = vp + (ty * tw + tx) * cs;
          for (int i = 0; i < n; i++) {  // (Bᵀ d) B
            S(winom_vec) row[7], r[7];
            for (int j = 0; j < n; j++) row[j] = t[j][i];
            S(winom_bt)(m, row, r);
            for (int j = 0; j < n; j++) WINOM_AT(o + (size_t)(i * n + j) * xs) = r[j];
          }
        }
    }
}

SOMA_CLONES
void S(soma_winom_input)(const soma_conv_shape *s, size_t m, const T *restrict x, size_t n0,
                         size_t n1, T *restrict v, size_t xs, T *restrict scratch) {
  if (m == 5)
    S(winom_input_body)(5, s, x, n0, n1, v, xs, scratch);
  else
    S(winom_input_body)(4, s, x, n0, n1, v, xs, scratch);
}

// Aᵀ applied to a column a of m + 2 lane vectors: the m outputs.
WINOM_INLINE void S(winom_at)(const int m, const S(winom_vec) a[7], S(winom_vec) r[5]) {
  const S(winom_vec) s12 = a[1] + a[2], d12 = a[1] - a[2], s34 = a[3] + a[4], d34 = a[3] - a[4];
  if (m == 4) {
    r[0] = a[0] + s12 + s34;
    r[1] = d12 + (T)2 * d34;
    r[2] = s12 + (T)4 * s34;
    r[3] = d12 + (T)8 * d34 + a[5];
  } else {
    r[0] = a[0] + s12 + s34 + a[5];
    r[1] = d12 + (T)2 * d34 + (T)0.5 * a[5];
    r[2] = s12 + (T)4 * s34 + (T)0.25 * a[5];
    r[3] = d12 + (T)8 * d34 + (T)0.125 * a[5];
    r[4] = s12 + (T)16 * s34 + (T)0.0625 * a[5] + a[6];
  }
}

WINOM_INLINE void S(winom_output_body)(const int m, const soma_conv_shape *s, size_t K,
                                       const T *restrict mt, size_t ms, size_t n0, size_t n1,
                                       const T *restrict bias, T *restrict out,
                                       T *restrict scratch) {
  enum { L = WINOM_LANES };
  const int n = m + 2;
  const size_t oh = s->out_height, ow = s->out_width, ks = (K + L - 1) / L * L;
  const size_t th = (oh + m - 1) / m, tw = (ow + m - 1) / m, tiles = th * tw, PW = m * tw;
  T *p = scratch;  // [m·th, PW, L]
  for (size_t im = n0; im < n1; im++)
    for (size_t k0 = 0; k0 < K; k0 += L) {
      const size_t lanes = K - k0 < L ? K - k0 : L;
      S(winom_vec) b = {0};
      if (bias)
        for (size_t l = 0; l < lanes; l++) b[l] = bias[k0 + l];
      const T *mp = mt + (im - n0) * tiles * ks + k0;
      for (size_t ty = 0; ty < th; ty++)
        for (size_t tx = 0; tx < tw; tx++) {
          const T *q = mp + (ty * tw + tx) * ks;
          S(winom_vec) r[7][5];  // (Aᵀ M)ᵀ: r[j] is column j
          for (int j = 0; j < n; j++) {
            S(winom_vec) col[7];
            for (int i = 0; i < n; i++) col[i] = WINOM_AT(q + (size_t)(i * n + j) * ms);
            S(winom_at)(m, col, r[j]);
          }
          T *o = p + (m * ty * PW + m * tx) * L;
          for (int i = 0; i < m; i++) {  // (Aᵀ M) A
            S(winom_vec) row[7], y[5];
            for (int j = 0; j < n; j++) row[j] = r[j][i];
            S(winom_at)(m, row, y);
            for (int j = 0; j < m; j++) WINOM_AT(o + (i * PW + j) * L) = y[j] + b;
          }
        }
      if (lanes == L) {
        T *op = out + (im * K + k0) * oh * ow;
        for (size_t yy = 0; yy < oh; yy++)
          S(winom_from_pixels)(p + yy * PW * L, ow, op + yy * ow, oh * ow);
      } else {
        for (size_t l = 0; l < lanes; l++) {
          T *op = out + (im * K + k0 + l) * oh * ow;
          for (size_t yy = 0; yy < oh; yy++)
            for (size_t xx = 0; xx < ow; xx++) op[yy * ow + xx] = p[(yy * PW + xx) * L + l];
        }
      }
    }
}

SOMA_CLONES
void S(soma_winom_output)(const soma_conv_shape *s, size_t m, size_t K, const T *restrict mt,
                          size_t ms, size_t n0, size_t n1, const T *restrict bias,
                          T *restrict out, T *restrict scratch) {
  if (m == 5)
    S(winom_output_body)(5, s, K, mt, ms, n0, n1, bias, out, scratch);
  else
    S(winom_output_body)(4, s, K, mt, ms, n0, n1, bias, out, scratch);
}

// A applied to a column d of m lane vectors: the m + 2 values (A = (Aᵀ)ᵀ).
WINOM_INLINE void S(winom_a)(const int m, const S(winom_vec) d[5], S(winom_vec) r[7]) {
  if (m == 4) {
    const S(winom_vec) s02 = d[0] + d[2], s13 = d[1] + d[3];
    const S(winom_vec) f02 = d[0] + (T)4 * d[2], f13 = (T)2 * d[1] + (T)8 * d[3];
    r[0] = d[0];
    r[1] = s02 + s13;
    r[2] = s02 - s13;
    r[3] = f02 + f13;
    r[4] = f02 - f13;
    r[5] = d[3];
  } else {
    const S(winom_vec) e1 = d[0] + d[2] + d[4], o1 = d[1] + d[3];
    const S(winom_vec) e2 = d[0] + (T)4 * d[2] + (T)16 * d[4], o2 = (T)2 * d[1] + (T)8 * d[3];
    r[0] = d[0];
    r[1] = e1 + o1;
    r[2] = e1 - o1;
    r[3] = e2 + o2;
    r[4] = e2 - o2;
    r[5] = d[0] + (T)0.5 * d[1] + (T)0.25 * d[2] + (T)0.125 * d[3] + (T)0.0625 * d[4];
    r[6] = d[4];
  }
}

WINOM_INLINE void S(winom_grad_tiles_body)(const int m, const soma_conv_shape *s, size_t K,
                                           const T *restrict g, size_t n0, size_t n1,
                                           T *restrict z, size_t zs, T *restrict scratch) {
  enum { L = WINOM_LANES };
  const int n = m + 2;
  const size_t oh = s->out_height, ow = s->out_width, ks = (K + L - 1) / L * L;
  const size_t th = (oh + m - 1) / m, tw = (ow + m - 1) / m, tiles = th * tw, PW = m * tw;
  T *p = scratch;  // [m·th, PW, L], zero past the edge
  memset(p, 0, m * th * PW * L * sizeof(T));
  for (size_t im = n0; im < n1; im++)
    for (size_t k0 = 0; k0 < K; k0 += L) {
      const size_t lanes = K - k0 < L ? K - k0 : L;
      if (lanes < L) memset(p, 0, m * th * PW * L * sizeof(T));
      if (lanes == L) {
        const T *gp = g + (im * K + k0) * oh * ow;
        for (size_t yy = 0; yy < oh; yy++)
          S(winom_to_pixels)(gp + yy * ow, oh * ow, ow, p + yy * PW * L);
      } else {
        for (size_t l = 0; l < lanes; l++) {
          const T *gp = g + (im * K + k0 + l) * oh * ow;
          for (size_t yy = 0; yy < oh; yy++)
            for (size_t xx = 0; xx < ow; xx++) p[(yy * PW + xx) * L + l] = gp[yy * ow + xx];
        }
      }
      T *zp = z + (im - n0) * tiles * ks + k0;
      for (size_t ty = 0; ty < th; ty++)
        for (size_t tx = 0; tx < tw; tx++) {
          const T *d = p + (m * ty * PW + m * tx) * L;
          S(winom_vec) r[5][7];  // (A dY)ᵀ: r[j] is column j
          for (int j = 0; j < m; j++) {
            S(winom_vec) col[5];
            for (int i = 0; i < m; i++) col[i] = WINOM_AT(d + (i * PW + j) * L);
            S(winom_a)(m, col, r[j]);
          }
          T *q = zp + (ty * tw + tx) * ks;
          for (int i = 0; i < n; i++) {  // (A dY) Aᵀ
            S(winom_vec) row[5], y[7];
            for (int j = 0; j < m; j++) row[j] = r[j][i];
            S(winom_a)(m, row, y);
            for (int j = 0; j < n; j++) WINOM_AT(q + (size_t)(i * n + j) * zs) = y[j];
          }
        }
    }
}

SOMA_CLONES
void S(soma_winom_grad_tiles)(const soma_conv_shape *s, size_t m, size_t K, const T *restrict g,
                              size_t n0, size_t n1, T *restrict z, size_t zs,
                              T *restrict scratch) {
  if (m == 5)
    S(winom_grad_tiles_body)(5, s, K, g, n0, n1, z, zs, scratch);
  else
    S(winom_grad_tiles_body)(4, s, K, g, n0, n1, z, zs, scratch);
}

// Gᵀ applied to m + 2 lane vectors a[0], a[stride], …: the three of a kernel row or column.
WINOM_INLINE void S(winom_gt)(const int m, const S(winom_vec) *a, int stride, S(winom_vec) r[3]) {
  if (m == 4) {
    const T sixth = (T)1 / 6;
    const S(winom_vec) s12 = (a[stride] + a[2 * stride]) * sixth;
    const S(winom_vec) s34 = (a[3 * stride] + a[4 * stride]) * sixth;
    r[0] = a[0] * (T)0.25 - s12 + s34 * (T)0.25;
    r[1] = (a[2 * stride] - a[stride]) * sixth + (a[3 * stride] - a[4 * stride]) * ((T)1 / 12);
    r[2] = s34 - s12 + a[5 * stride];
  } else {
    const S(winom_vec) a1 = a[stride], a2 = a[2 * stride], a3 = a[3 * stride];
    const S(winom_vec) a4 = a[4 * stride], a5 = a[5 * stride];
    const S(winom_vec) h1 = a1 * ((T)-1 / 6), h5 = a5 * ((T)8 / 45);
    r[0] = a[0] * (T)0.25 + h1 + a2 * ((T)1 / 18) + a3 * ((T)1 / 72) - a4 * ((T)1 / 120) +
           (T)4 * h5;
    r[1] = h1 - a2 * ((T)1 / 18) + a3 * ((T)1 / 36) + a4 * ((T)1 / 60) + (T)2 * h5;
    r[2] = h1 + a2 * ((T)1 / 18) + a3 * ((T)1 / 18) - a4 * ((T)1 / 30) + h5 +
           a[6 * stride] * (T)0.5;
  }
}

WINOM_INLINE void S(winom_weight_grad_body)(const int m, const T *restrict du, size_t K,
                                            size_t C, T *restrict dw) {
  enum { L = WINOM_LANES };
  const int n = m + 2;
  // Eight input channels a vector: each of the n² loads is a piece of a row [ξ, k] of du.
  for (size_t k = 0; k < K; k++)
    for (size_t c0 = 0; c0 < C; c0 += L) {
      const size_t lanes = C - c0 < L ? C - c0 : L;
      S(winom_vec) a[49];
      for (int i = 0; i < n * n; i++) {
        const T *p = du + ((size_t)i * K + k) * C + c0;
        if (lanes == L) {
          a[i] = WINOM_AT(p);
        } else {
          a[i] = (S(winom_vec)){0};
          for (size_t l = 0; l < lanes; l++) a[i][l] = p[l];
        }
      }
      S(winom_vec) t[3][7];  // Gᵀ a
      for (int j = 0; j < n; j++) {
        S(winom_vec) r[3];
        S(winom_gt)(m, a + j, n, r);
        for (int i = 0; i < 3; i++) t[i][j] = r[i];
      }
      S(winom_vec) o[3][3];  // (Gᵀ a) G
      for (int i = 0; i < 3; i++) S(winom_gt)(m, t[i], 1, o[i]);
      for (size_t l = 0; l < lanes; l++)
        for (int e = 0; e < 9; e++) dw[(k * C + c0 + l) * 9 + e] = o[e / 3][e % 3][l];
    }
}

SOMA_CLONES
void S(soma_winom_weight_grad)(size_t m, const T *restrict du, size_t K, size_t C,
                               T *restrict dw) {
  if (m == 5)
    S(winom_weight_grad_body)(5, du, K, C, dw);
  else
    S(winom_weight_grad_body)(4, du, K, C, dw);
}

#undef WINOM_AT
#undef WINOM_INLINE
#undef WINOM_LANES
