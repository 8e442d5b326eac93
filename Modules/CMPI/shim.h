// Open MPI's C API, plus inline functions for the handles and constants that mpi.h defines as
// macros (Swift imports no macro that expands to an expression or a cast, such as
// MPI_COMM_WORLD, which is `((MPI_Comm)&ompi_mpi_comm_world)` in Open MPI).
#include <mpi.h>

static inline MPI_Comm soma_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype soma_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype soma_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype soma_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op soma_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op soma_mpi_max(void) { return MPI_MAX; }
static inline void *soma_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int soma_mpi_success(void) { return MPI_SUCCESS; }
static inline int soma_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int soma_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline MPI_Request soma_mpi_request_null(void) { return MPI_REQUEST_NULL; }
/// MPI_Testall and MPI_Waitall without statuses (MPI_STATUSES_IGNORE is a macro).
static inline int soma_mpi_testall(int count, MPI_Request *requests, int *done) {
  return MPI_Testall(count, requests, done, MPI_STATUSES_IGNORE);
}
static inline int soma_mpi_waitall(int count, MPI_Request *requests) {
  return MPI_Waitall(count, requests, MPI_STATUSES_IGNORE);
}
/// Makes errors on MPI_COMM_WORLD return codes instead of aborting the job, so the caller can
/// report them in its own words.
static inline void soma_mpi_errors_return(void) {
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}
