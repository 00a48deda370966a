// Not API.
#include <cblas.h>
