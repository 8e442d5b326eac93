// Times MPI_Allreduce (sum, in place) of float buffers: 4 bytes, 4 KB, the default network's
// gradients as one soma train step sends them (79,403 floats) and 4 MB. Each call starts
// after a barrier, so the time is the reduction's, not a wait for a late process.
//
//   mpicc -O2 scripts/allreduce-bench.c -o /tmp/allreduce-bench
//   mpirun -np 2 /tmp/allreduce-bench
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank; MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int sizes[] = {1, 1024, 79403, 1 << 20};
  for (int s = 0; s < 4; s++) {
    int n = sizes[s];
    float *buf = calloc(n, sizeof(float));
    int iters = n > 100000 ? 200 : 2000;
    double total = 0;
    for (int i = 0; i < iters + 20; i++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      if (i >= 20) total += MPI_Wtime() - t;
    }
    if (rank == 0) printf("%d floats (%d bytes): %.1f us per allreduce\n", n, n * 4, 1e6 * total / iters);
    free(buf);
  }
  MPI_Finalize();
}
