// Convolution kernels (see include/SomaConv.h): im2col and its adjoint for the GEMM path, the
// layout moves around the GEMM, and the event-driven path for sparse 0/1 input. The bodies are
// in conv_kernels.inc.h, instantiated here for float and double.
#include "SomaConv.h"
#include "cpu.h"
#include <string.h>

#define T float
#define S(name) name##_f32
#include "conv_kernels.inc.h"
#undef T
#undef S

#define T double
#define S(name) name##_f64
#include "conv_kernels.inc.h"
#undef T
#undef S
