#include "SomaKernels.h"
