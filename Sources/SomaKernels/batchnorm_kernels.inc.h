// The batch-norm kernels for one scalar type T (S(name) appends its suffix); included by
// image_kernels.c once per type. Sums are accumulated in double.

// Σ p[i] and Σ (p[i] − m)² in eight independent double accumulators: one running sum is a
// chain of dependent additions (4 cycles each), eight keep both adders busy and vectorise.
static inline double S(bn_sum)(const T *restrict p, size_t n) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) a[l] += (double)p[i + l];
  for (; i < n; i++) a[0] += (double)p[i];
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static inline double S(bn_centred_squares)(const T *restrict p, size_t n, double m) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) {
      const double d = (double)p[i + l] - m;
      a[l] += d * d;
    }
  for (; i < n; i++) {
    const double d = (double)p[i] - m;
    a[0] += d * d;
  }
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

SOMA_CLONES
void S(soma_bn_stats)(const T *restrict x, size_t rows, size_t C, size_t Sp, size_t c0,
                      size_t c1, double *restrict mean, double *restrict var) {
  const double count = (double)(rows * Sp);
  for (size_t c = c0; c < c1; c++) {
    double sum = 0;
    for (size_t r = 0; r < rows; r++) sum += S(bn_sum)(x + (r * C + c) * Sp, Sp);
    const double m = count > 0 ? sum / count : 0;
    // Two passes: the centred squares do not cancel.
    double sq = 0;
    for (size_t r = 0; r < rows; r++) sq += S(bn_centred_squares)(x + (r * C + c) * Sp, Sp, m);
    mean[c] = m;
    var[c] = count > 0 ? sq / count : 0;
  }
}

SOMA_CLONES
void S(soma_bn_apply)(const T *restrict x, size_t rows, size_t C, size_t Sp, size_t c0,
                      size_t c1, const T *restrict scale, const T *restrict shift,
                      T *restrict y) {
  for (size_t r = 0; r < rows; r++)
    for (size_t c = c0; c < c1; c++) {
      const T a = scale[c], b = shift[c];
      const T *p = x + (r * C + c) * Sp;
      T *q = y + (r * C + c) * Sp;
      for (size_t i = 0; i < Sp; i++) q[i] = p[i] * a + b;
    }
}

SOMA_CLONES
void S(soma_bn_backward)(const T *restrict x, size_t xrows, const T *restrict g, size_t grows,
                         size_t C, size_t Sp, size_t c0, size_t c1, const double *restrict mean,
                         const double *restrict invstd, const T *restrict gamma, T *restrict dx,
                         double *restrict dgamma, double *restrict dbeta) {
  const double M = (double)(grows * Sp);
  for (size_t c = c0; c < c1; c++) {
    const double m = mean[c], is = invstd[c];
    double sg = 0, sgx = 0;
    for (size_t r = 0; r < grows; r++) {
      const T *gp = g + (r * C + c) * Sp;
      const T *xp = x + ((r % xrows) * C + c) * Sp;
      // Eight accumulators each (see bn_sum).
      double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      size_t i = 0;
      for (; i + 8 <= Sp; i += 8)
        for (int l = 0; l < 8; l++) {
          a[l] += (double)gp[i + l];
          b[l] += (double)gp[i + l] * ((double)xp[i + l] - m);
        }
      for (; i < Sp; i++) {
        a[0] += (double)gp[i];
        b[0] += (double)gp[i] * ((double)xp[i] - m);
      }
      sg += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      sgx += ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
    }
    sgx *= is;
    dbeta[c] = sg;
    dgamma[c] = sgx;
    if (!dx) continue;
    // dx = k·(g − mg − x̂·mgx) with k = γ·invstd, written as a·g + b·x + d per element.
    const double k = (double)gamma[c] * is, mg = sg / M, mgx = sgx / M;
    const T a = (T)k, b = (T)(-k * mgx * is), d = (T)(k * (mgx * is * m - mg));
    for (size_t r = 0; r < grows; r++) {
      const T *gp = g + (r * C + c) * Sp;
      const T *xp = x + ((r % xrows) * C + c) * Sp;
      T *dp = dx + (r * C + c) * Sp;
      for (size_t i = 0; i < Sp; i++) dp[i] = a * gp[i] + b * xp[i] + d;
    }
  }
}

// dx of training-mode batch norm from given per-channel means of g and g·x̂ (SyncBatchNorm: the
// means over every process's part of the batch): the second half of soma_bn_backward.
SOMA_CLONES
void S(soma_bn_backward_dx)(const T *restrict x, size_t xrows, const T *restrict g, size_t grows,
                            size_t C, size_t Sp, size_t c0, size_t c1,
                            const double *restrict mean, const double *restrict invstd,
                            const T *restrict gamma, const double *restrict mg,
                            const double *restrict mgx, T *restrict dx) {
  for (size_t c = c0; c < c1; c++) {
    const double m = mean[c], is = invstd[c], k = (double)gamma[c] * is;
    const T a = (T)k, b = (T)(-k * mgx[c] * is), d = (T)(k * (mgx[c] * is * m - mg[c]));
    for (size_t r = 0; r < grows; r++) {
      const T *gp = g + (r * C + c) * Sp;
      const T *xp = x + ((r % xrows) * C + c) * Sp;
      T *dp = dx + (r * C + c) * Sp;
      for (size_t i = 0; i < Sp; i++) dp[i] = a * gp[i] + b * xp[i] + d;
    }
  }
}
