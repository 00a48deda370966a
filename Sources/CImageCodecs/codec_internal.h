// Helpers shared by the JPEG and PNG codecs; private to CImageCodecs.
#ifndef AEPSL_CODEC_INTERNAL_H
#define AEPSL_CODEC_INTERNAL_H

#include "CImageCodecs.h"

/// Clears `result` so every early return leaves it in a defined state.
void aepsl_result_reset(aepsl_codec_result *result);

/// Copies a printf-style message into result->message (truncating) and returns `status`.
aepsl_codec_status aepsl_result_fail(aepsl_codec_result *result, aepsl_codec_status status,
                                     const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/// width * height * channels, or 0 when it overflows size_t or a dimension is not positive.
size_t aepsl_pixel_bytes(int64_t width, int64_t height, int64_t channels);

#endif
