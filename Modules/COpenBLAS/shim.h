#include <cblas.h>
#include <lapacke.h>
typedef lapack_int soma_lapack_int;
