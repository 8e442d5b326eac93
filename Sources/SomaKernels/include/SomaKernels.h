#ifndef SOMA_KERNELS_H
#define SOMA_KERNELS_H
#include <stddef.h>
#endif
