// Not API. oneDNN 2.6 has no set-threads call in its C API; it runs on libgomp's pool,
// which omp_set_num_threads sizes. Declared here so that no OpenMP header is needed.
#include <oneapi/dnnl/dnnl.h>
int omp_get_max_threads(void);
void omp_set_num_threads(int num_threads);
