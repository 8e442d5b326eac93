// Times the phases of a Winograd convolution as Conv2d runs it (the blocks and the split over
// the cores of Sources/SomaNN/Conv2d.swift): the input transform, the (tile + 2)² products and
// the output transform of the forward pass (the input gradient is the same pass with the
// flipped kernel; products by soma_tile_gemm), and the transforms and products (OpenBLAS at
// one thread in each part, z read transposed) of the weight gradient, for F(4×4, 3×3) and
// F(5×5, 3×3). Defaults: csnn-fmnist's conv2 (256 images of 128 channels, 14 × 14,
// padding 1), 2 parts.
//
//   clang -O2 -ISources/SomaKernels/include -ISources/SomaKernels scripts/winograd-bench.c \
//     Sources/SomaKernels/image_kernels.c -lopenblas -lpthread -lm -o /tmp/winograd-bench
//   /tmp/winograd-bench [images channels size parts]
//
// Each line is the median of 7 passes: wall time, then each phase summed over the parts
// (so with 2 parts the phases add up to about twice the wall time) and the products' rate per
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
static float *x, *g, *y, *u[6], *du;

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
  const size_t m = (size_t)j->tile, pts = (m + 2) * (m + 2), cs = (C + 7) / 8 * 8, ks = cs;
  const size_t tiles = ((shape.out_height + m - 1) / m) * ((shape.out_width + m - 1) / m);
  size_t chunk = (1 << 20) / (pts * (cs + ks) * tiles);
  if (chunk < 1) chunk = 1;
  const size_t n = (chunk < b - a ? chunk : b - a) * tiles;
  const size_t vs = stride(n * cs), ms = stride(n * ks);
  float *v = aligned_alloc(64, pts * vs * 4 + 64), *mt = aligned_alloc(64, pts * ms * 4 + 64);
  float *scratch = malloc(soma_winom_scratch_f32(&shape, m) * 4);
  float *acc = du + j->part * pts * K * C;
  for (size_t n0 = a; n0 < b; n0 += chunk) {
    const size_t n1 = n0 + chunk < b ? n0 + chunk : b, ld = (n1 - n0) * tiles;
    const double t0 = now();
    soma_winom_input_f32(&shape, m, x, n0, n1, v, vs, scratch);
    if (j->weight_grad) soma_winom_grad_tiles_f32(&shape, m, K, g, n0, n1, mt, ms, scratch);
    const double t1 = now();
    for (size_t i = 0; i < pts; i++) {
      if (!j->weight_grad)
        soma_tile_gemm_f32(ld, K, C, v + i * vs, cs, 1, u[m] + i * C * K, K, mt + i * ms, ks, 0);
      else
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, C, ld, 1, mt + i * ms, ks,
                    v + i * vs, cs, 1, acc + i * K * C, C);
    }
    const double t2 = now();
    if (!j->weight_grad) soma_winom_output_f32(&shape, m, K, mt, ms, n0, n1, NULL, y, scratch);
    j->in += t1 - t0, j->gemm += t2 - t1, j->out += now() - t2;
  }
  free(v), free(mt), free(scratch);
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
  u[4] = malloc(36 * C * C * 4), u[5] = malloc(49 * C * C * 4);
  du = calloc(PARTS * 49 * C * C, 4);
  srand(1);
  for (size_t i = 0; i < plane; i++) x[i] = rand() % 3 == 0, g[i] = rand() / (float)RAND_MAX - .5f;
  for (size_t i = 0; i < C * C * 9; i++) w[i] = (rand() / (float)RAND_MAX - .5f) / 20;
  soma_winom_weight_f32(4, w, C, C, u[4]);
  soma_winom_weight_f32(5, w, C, C, u[5]);
  for (int tile = 4; tile <= 5; tile++)
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
