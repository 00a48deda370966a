// JPEG and PNG codecs over libjpeg(-turbo) and libpng 1.6, for AEPSLImaging. Not API.
//
// Both libraries report errors by longjmp, which must never cross a Swift frame. Every
// function here catches them with setjmp and returns a status plus a message instead.
//
// Pixels are 8-bit, row-major, channels interleaved (HWC). Buffers handed back in
// aepsl_codec_result are malloc'd and must be released with aepsl_codec_result_free.
#ifndef AEPSL_CIMAGECODECS_H
#define AEPSL_CIMAGECODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AEPSL_CODEC_MESSAGE_CAPACITY 200

typedef enum {
  AEPSL_CODEC_OK = 0,
  /// Empty, corrupt, truncated, or not this format at all.
  AEPSL_CODEC_INVALID = 1,
  /// A valid file in a variant we deliberately do not read (CMYK JPEG, RGB or 16-bit mask).
  AEPSL_CODEC_UNSUPPORTED = 2,
  AEPSL_CODEC_OUT_OF_MEMORY = 3,
  /// The caller passed something out of range (quality, channel count, size).
  AEPSL_CODEC_BAD_ARGUMENT = 4,
} aepsl_codec_status;

typedef struct {
  /// Decoded pixels or encoded file bytes (malloc'd), or NULL for header-only calls.
  uint8_t *bytes;
  size_t count;
  int32_t width;
  int32_t height;
  int32_t channels;
  /// NUL-terminated; set whenever the status is not AEPSL_CODEC_OK.
  char message[AEPSL_CODEC_MESSAGE_CAPACITY];
} aepsl_codec_result;

void aepsl_codec_result_free(aepsl_codec_result *result);

// MARK: - JPEG

/// Reads only the header: width, height and stored channels (1 gray, 3 colour, 4 CMYK).
aepsl_codec_status aepsl_jpeg_read_header(const uint8_t *data, size_t count,
                                          aepsl_codec_result *result);

/// Decodes a baseline or progressive JPEG. `channels`: 0 keeps the stored layout
/// (gray stays 1, colour becomes 3), 1 or 3 converts. CMYK/YCCK is AEPSL_CODEC_UNSUPPORTED.
/// A truncated file (libjpeg's "premature end" warning) is an error, not a gray-filled image.
aepsl_codec_status aepsl_jpeg_decode(const uint8_t *data, size_t count, int32_t channels,
                                     aepsl_codec_result *result);

/// Encodes 1 (gray) or 3 (RGB) channel pixels; quality 1...100; progressive 0 or 1.
aepsl_codec_status aepsl_jpeg_encode(const uint8_t *pixels, int32_t width, int32_t height,
                                     int32_t channels, int32_t quality, int32_t progressive,
                                     aepsl_codec_result *result);

// MARK: - PNG

/// Reads only the header: width, height, and the channels aepsl_png_decode(.., 0, ..)
/// would return (1 for gray and gray+alpha, 3 otherwise).
aepsl_codec_status aepsl_png_read_header(const uint8_t *data, size_t count,
                                         aepsl_codec_result *result);

/// Decodes any PNG to 8-bit pixels for viewing or training. `channels`: 0 (gray stays 1,
/// everything else 3), 1 or 3. Palettes are expanded, alpha and tRNS are dropped, 16-bit
/// samples are scaled to 8 bits, gAMA/iCCP are ignored.
aepsl_codec_status aepsl_png_decode(const uint8_t *data, size_t count, int32_t channels,
                                    aepsl_codec_result *result);

/// Decodes a label mask by index, never by colour: palette PNGs give their palette indices
/// and gray PNGs (1 to 8 bits) their gray values, one byte per pixel. RGB, alpha and
/// 16-bit PNGs are AEPSL_CODEC_UNSUPPORTED.
aepsl_codec_status aepsl_png_decode_indices(const uint8_t *data, size_t count,
                                            aepsl_codec_result *result);

/// Encodes 8-bit gray (channels 1, palette NULL), RGB (channels 3), or a palette PNG
/// (channels 1 with `palette` pointing at 256 RGB triples, 768 bytes).
aepsl_codec_status aepsl_png_encode(const uint8_t *pixels, int32_t width, int32_t height,
                                    int32_t channels, const uint8_t *palette,
                                    aepsl_codec_result *result);

#ifdef __cplusplus
}
#endif

#endif
