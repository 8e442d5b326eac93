// Times the phases of a Winograd convolution as Conv2d runs it (the blocks and the split over
// the cores of Sources/SomaNN/Conv2d.swift, OpenBLAS at one thread in each part): the input
// transform, the GEMMs and the output transform of the forward pass (the input gradient is
// the same pass with the flipped kernel), and the transforms and GEMMs of the weight
// gradient, for F(2×2, 3×3) and F(4×4, 3×3). Defaults: csnn-fmnist's conv2 (256 images of
// 128 channels, 14 × 14, padding 1), 2 parts.
//
//   clang -O2 -ISources/SomaKernels/include -ISources/SomaKernels scripts/winograd-bench.c \
//     Sources/SomaKernels/image_kernels.c -lopenblas -lpthread -lm -o /tmp/winograd-bench
//   /tmp/winograd-bench [images channels size parts]
//
// Each line is the median of 7 passes: wall time, then each phase summed over the parts
// (so with 2 parts the phases add up to about twice the wall time) and the GEMMs' rate per
// core.
#include "SomaConv.h"
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Thread_local int soma_portable_only = 0;
void openblas_set_num_threads(int);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static size_t N, C, HW, PARTS;
static soma_conv_shape shape;
static float *x, *g, *y, *u2, *u4, *du;

typedef struct {
  size_t part;
  int tile, weight_grad;
  double in, gemm, out;
} job;

// Conv2d's stride between tile matrices: an odd number of 64-byte lines.
static size_t stride(size_t n) { return (((n + 15) / 16) | 1) * 16; }

static void *run(void *arg) {
  job *j = arg;
  const size_t a = N * j->part / PARTS, b = N * (j->part + 1) / PARTS, K = C;
  const size_t oh = shape.out_height, ow = shape.out_width;
  const int four = j->tile == 4;
  const size_t xi = four ? 36 : 16, cs = (C + 7) / 8 * 8;
  const size_t tiles = four ? ((oh + 3) / 4) * ((ow + 3) / 4) : ((oh + 1) / 2) * ((ow + 1) / 2);
  size_t chunk = (1 << 20) / (xi * (four ? 2 * cs : 2 * C) * tiles);
  if (chunk < 1) chunk = 1;
  const size_t n = (chunk < b - a ? chunk : b - a) * tiles;
  const size_t vs = four ? stride(n * cs) : C * n;
  float *v = aligned_alloc(64, xi * vs * 4 + 64), *m = aligned_alloc(64, xi * vs * 4 + 64);
  float *scratch = malloc(soma_wino4_scratch_f32(&shape) * 4);
  float *acc = du + j->part * xi * K * C;
  memset(m, 0, xi * vs * 4);
  for (size_t n0 = a; n0 < b; n0 += chunk) {
    const size_t n1 = n0 + chunk < b ? n0 + chunk : b, ld = (n1 - n0) * tiles;
    const size_t s = four ? vs : C * ld;
    const double t0 = now();
    if (four) {
      soma_wino4_input_f32(&shape, x, n0, n1, v, s, scratch);
      if (j->weight_grad) soma_wino4_grad_tiles_f32(&shape, K, g, n0, n1, m, s, scratch);
    } else {
      soma_wino_input_f32(&shape, x, n0, n1, v);
      if (j->weight_grad) soma_wino_grad_tiles_f32(&shape, K, g, n0, n1, m);
    }
    const double t1 = now();
    for (size_t i = 0; i < xi; i++) {
      if (four && !j->weight_grad) {  // the product zeroed, then added to (as Conv2d does)
        memset(m + i * s, 0, ld * cs * sizeof *m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ld, K, C, 1, v + i * s, cs,
                    u4 + i * C * K, K, 1, m + i * s, cs);
      } else if (four) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, C, ld, 1, m + i * s, cs,
                    v + i * s, cs, 1, acc + i * K * C, C);
      } else if (!j->weight_grad) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, ld, C, 1, u2 + i * K * C, C,
                    v + i * s, ld, 0, m + i * s, ld);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, C, ld, 1, m + i * s, ld,
                    v + i * s, ld, 1, acc + i * K * C, C);
      }
    }
    const double t2 = now();
    if (!j->weight_grad) {
      if (four) soma_wino4_output_f32(&shape, K, m, s, n0, n1, NULL, y, scratch);
      else soma_wino_output_f32(&shape, K, m, n0, n1, NULL, y);
    }
    j->in += t1 - t0, j->gemm += t2 - t1, j->out += now() - t2;
  }
  free(v), free(m), free(scratch);
  return NULL;
}

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  N = argc > 1 ? strtoul(argv[1], 0, 10) : 256;
  C = argc > 2 ? strtoul(argv[2], 0, 10) : 128;
  HW = argc > 3 ? strtoul(argv[3], 0, 10) : 14;
  PARTS = argc > 4 ? strtoul(argv[4], 0, 10) : 2;
  if (PARTS < 1 || PARTS > 16) PARTS = 1;
  openblas_set_num_threads(1);
  shape = (soma_conv_shape){C, HW, HW, HW, HW, 3, 3, 1, 1, 1, 1, 1, 1};
  const size_t plane = N * C * HW * HW;
  x = malloc(plane * 4), g = malloc(plane * 4), y = malloc(plane * 4);
  float *w = malloc(C * C * 9 * 4);
  u2 = malloc(16 * C * C * 4), u4 = malloc(36 * C * C * 4), du = calloc(PARTS * 36 * C * C, 4);
  srand(1);
  for (size_t i = 0; i < plane; i++) x[i] = rand() % 3 == 0, g[i] = rand() / (float)RAND_MAX - .5f;
  for (size_t i = 0; i < C * C * 9; i++) w[i] = (rand() / (float)RAND_MAX - .5f) / 20;
  soma_wino_weight_f32(w, C, C, u2);
  soma_wino4_weight_f32(w, C, C, u4);
  for (int tile = 2; tile <= 4; tile += 2)
    for (int wg = 0; wg <= 1; wg++) {
      double wall[7], in[7], gemm[7], out[7];
      for (int r = 0; r < 7; r++) {
        job jobs[16];
        pthread_t th[16];
        const double t0 = now();
        for (size_t p = 0; p < PARTS; p++) {
          jobs[p] = (job){.part = p, .tile = tile, .weight_grad = wg};
          pthread_create(&th[p], 0, run, &jobs[p]);
        }
        in[r] = gemm[r] = out[r] = 0;
        for (size_t p = 0; p < PARTS; p++) {
          pthread_join(th[p], 0);
          in[r] += jobs[p].in, gemm[r] += jobs[p].gemm, out[r] += jobs[p].out;
        }
        wall[r] = now() - t0;
      }
      qsort(wall, 7, sizeof *wall, by_value), qsort(in, 7, sizeof *in, by_value);
      qsort(gemm, 7, sizeof *gemm, by_value), qsort(out, 7, sizeof *out, by_value);
      const size_t t = (HW + tile - 1) / tile;  // tiles a side
      const double flop = 2.0 * C * C * (tile + 2) * (tile + 2) * t * t * N;
      printf("F(%d×%d) %s: wall %6.1f ms | transforms in %5.1f, GEMMs %6.1f "
             "(%.0f GFLOP/s per core), out %5.1f ms\n",
             tile, tile, wg ? "weight gradient" : "forward        ",
             wall[3] * 1e3, in[3] * 1e3, gemm[3] * 1e3, flop / gemm[3] / 1e9, out[3] * 1e3);
    }
  return 0;
}
