#include "codec_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aepsl_result_reset(aepsl_codec_result *result) {
  memset(result, 0, sizeof *result);
}

void aepsl_codec_result_free(aepsl_codec_result *result) {
  if (result == NULL) return;
  free(result->bytes);
  result->bytes = NULL;
  result->count = 0;
}

aepsl_codec_status aepsl_result_fail(aepsl_codec_result *result, aepsl_codec_status status,
                                     const char *format, ...) {
  free(result->bytes);
  result->bytes = NULL;
  result->count = 0;
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(result->message, sizeof result->message, format, arguments);
  va_end(arguments);
  return status;
}

size_t aepsl_pixel_bytes(int64_t width, int64_t height, int64_t channels) {
  if (width <= 0 || height <= 0 || channels <= 0) return 0;
  // Header fields are attacker-controlled: check before the product becomes a malloc size.
  size_t w = (size_t)width, h = (size_t)height, c = (size_t)channels;
  if (w > SIZE_MAX / h) return 0;
  if (w * h > SIZE_MAX / c) return 0;
  return w * h * c;
}
