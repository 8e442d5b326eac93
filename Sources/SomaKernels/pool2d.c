// Max and average pooling over NCHW planes (see include/SomaConv.h); the bodies
// are in pool2d_kernels.inc.h, instantiated here for float and double.
#include "SomaConv.h"
#include "cpu.h"
#include <math.h>
#include <string.h>

#define T float
#define S(name) name##_f32
#include "pool2d_kernels.inc.h"
#undef T
#undef S

#define T double
#define S(name) name##_f64
#include "pool2d_kernels.inc.h"
#undef T
#undef S
