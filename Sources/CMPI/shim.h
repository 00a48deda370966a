// Not API. Open MPI defines its handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM...) as macros
// that cast addresses of globals, which Swift cannot import: these functions return them.
#include <mpi.h>

static inline MPI_Comm aepsl_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype aepsl_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype aepsl_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype aepsl_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op aepsl_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Errhandler aepsl_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline void *aepsl_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *aepsl_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
