// The image layers' kernels (see include/SomaConv.h): convolution (im2col and its adjoint for
// the GEMM path, the layout moves around the GEMM, the event-driven path for sparse 0/1
// input), max and average pooling over NCHW planes, and batch normalisation. The bodies are in
// the *_kernels.inc.h files, instantiated here once for float and once for double.
#include "SomaConv.h"
#include "cpu.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T float
#define S(name) name##_f32
#include "conv_kernels.inc.h"
#include "pool2d_kernels.inc.h"
#include "batchnorm_kernels.inc.h"
#undef T
#undef S

#define T double
#define S(name) name##_f64
#include "conv_kernels.inc.h"
#include "pool2d_kernels.inc.h"
#include "batchnorm_kernels.inc.h"
#undef T
#undef S

int soma_conv_winograd_enabled(void) {
  const char *v = getenv("SOMA_CONV_WINOGRAD");
  if (v && (v[0] == '0' || v[0] == '2' || v[0] == '4') && v[1] == 0) return v[0] - '0';
  return 1;
}
