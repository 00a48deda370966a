#include "codec_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

// MARK: - Errors and I/O

// libpng calls the error function on a fatal error; it must not return, so it longjmps to
// the setjmp(png_jmpbuf(png)) of the entry point. Allocations made after setjmp live in
// this context (in memory), so the cleanup path sees them.
typedef struct {
  aepsl_codec_result *result;
  aepsl_codec_status status;
  int writing;
  int own_message;  // set before our own png_error calls, whose text needs no prefix
  // Reading: the whole file is in memory.
  const uint8_t *data;
  size_t count;
  size_t offset;
  // Output pixels (decode) or file bytes (encode), plus scratch for decode conversions.
  uint8_t *output;
  size_t output_capacity;
  size_t output_count;
  uint8_t *scratch;
  png_bytep *rows;
} png_context;

static void png_fail(png_structp png, png_const_charp text) {
  png_context *context = png_get_error_ptr(png);
  const char *format = context->own_message ? "%s"
                       : context->writing   ? "libpng could not encode the image (%s)"
                                            : "the PNG is corrupt (%s)";
  snprintf(context->result->message, AEPSL_CODEC_MESSAGE_CAPACITY, format, text);
  png_longjmp(png, 1);
}

// Warnings are benign by libpng's definition (an sRGB profile it does not know, extra
// zlib bytes); a library must not print them.
static void png_warn(png_structp png, png_const_charp text) {
  (void)png;
  (void)text;
}

/// Raises a libpng error with our own status and message (no "corrupt" prefix).
__attribute__((noreturn)) static void png_raise(png_structp png, png_context *context,
                                                aepsl_codec_status status, const char *text) {
  context->status = status;
  context->own_message = 1;
  png_error(png, text);
}

static void png_read_memory(png_structp png, png_bytep out, size_t length) {
  png_context *context = png_get_io_ptr(png);
  if (length > context->count - context->offset) {
    png_raise(png, context, AEPSL_CODEC_INVALID,
              "the PNG data is truncated (unexpected end of data)");
  }
  memcpy(out, context->data + context->offset, length);
  context->offset += length;
}

static void png_write_memory(png_structp png, png_bytep bytes, size_t length) {
  png_context *context = png_get_io_ptr(png);
  if (length > context->output_capacity - context->output_count) {
    size_t capacity = context->output_capacity ? context->output_capacity : 4096;
    while (capacity - context->output_count < length) capacity *= 2;
    uint8_t *grown = realloc(context->output, capacity);
    if (grown == NULL) {
      png_raise(png, context, AEPSL_CODEC_OUT_OF_MEMORY, "out of memory while encoding a PNG");
    }
    context->output = grown;
    context->output_capacity = capacity;
  }
  memcpy(context->output + context->output_count, bytes, length);
  context->output_count += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

static void png_context_free(png_context *context) {
  free(context->output);
  free(context->scratch);
  free(context->rows);
  context->output = NULL;
  context->scratch = NULL;
  context->rows = NULL;
}

// MARK: - Reading

typedef aepsl_codec_status (*png_read_body)(png_structp png, png_infop info,
                                             png_context *context, int32_t channels);

/// Checks the input, sets up libpng with error handling, reads the header, and hands over
/// to `body`. All decoding entry points share this so each has one cleanup path.
static aepsl_codec_status png_read(const uint8_t *data, size_t count, int32_t channels,
                                   aepsl_codec_result *result, png_read_body body) {
  aepsl_result_reset(result);
  if (data == NULL || count == 0)
    return aepsl_result_fail(result, AEPSL_CODEC_INVALID, "the data is empty (0 bytes)");
  if (count < 8 || png_sig_cmp(data, 0, 8) != 0)
    return aepsl_result_fail(result, AEPSL_CODEC_INVALID, "not a PNG file (bad signature)");

  png_context context;
  memset(&context, 0, sizeof context);
  context.result = result;
  context.status = AEPSL_CODEC_INVALID;
  context.data = data;
  context.count = count;

  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context, png_fail, png_warn);
  if (png == NULL)
    return aepsl_result_fail(result, AEPSL_CODEC_OUT_OF_MEMORY, "out of memory reading a PNG");
  png_infop info = png_create_info_struct(png);
  if (info == NULL) {
    png_destroy_read_struct(&png, NULL, NULL);
    return aepsl_result_fail(result, AEPSL_CODEC_OUT_OF_MEMORY, "out of memory reading a PNG");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    png_context_free(&context);
    return context.status;  // png_fail wrote the message
  }
  png_set_read_fn(png, &context, png_read_memory);
  // A bad CRC anywhere means the file is damaged; libpng's default only warns for
  // ancillary chunks.
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_read_info(png, info);

  aepsl_codec_status status = body(png, info, &context, channels);
  if (status == AEPSL_CODEC_OK) {
    result->bytes = context.output;
    result->count = context.output_count;
    context.output = NULL;
  }
  png_destroy_read_struct(&png, &info, NULL);
  png_context_free(&context);
  return status;
}

/// Allocates context->rows pointing into `pixels`, one per image row.
static void png_make_rows(png_structp png, png_context *context, uint8_t *pixels,
                          png_uint_32 height, size_t row_bytes) {
  context->rows = malloc(sizeof(png_bytep) * height);
  if (context->rows == NULL) {
    png_raise(png, context, AEPSL_CODEC_OUT_OF_MEMORY, "out of memory reading a PNG");
  }
  for (png_uint_32 y = 0; y < height; y++) context->rows[y] = pixels + (size_t)y * row_bytes;
}

/// Allocates `bytes` or raises a libpng error that the entry point turns into a status.
static uint8_t *png_allocate(png_structp png, png_context *context, size_t bytes) {
  uint8_t *memory = bytes ? malloc(bytes) : NULL;
  if (memory == NULL) {
    if (bytes == 0)
      png_raise(png, context, AEPSL_CODEC_INVALID, "the PNG header has an invalid size");
    png_raise(png, context, AEPSL_CODEC_OUT_OF_MEMORY, "out of memory reading a PNG");
  }
  return memory;
}

static int png_stored_channels(int color_type) {
  return (color_type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
}

static aepsl_codec_status png_header_body(png_structp png, png_infop info, png_context *context,
                                          int32_t channels) {
  (void)channels;
  context->result->width = (int32_t)png_get_image_width(png, info);
  context->result->height = (int32_t)png_get_image_height(png, info);
  context->result->channels = png_stored_channels(png_get_color_type(png, info));
  return AEPSL_CODEC_OK;
}

/// Converts 8-bit pixels with `from` channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) to
/// `to` channels (1 or 3). Alpha is dropped; colour to gray uses the ITU-R 601 weights
/// that libjpeg (and PIL) use, so gray decodes of PNG and JPEG agree.
static void convert_channels(const uint8_t *source, int from, uint8_t *target, int to,
                             size_t pixels) {
  for (size_t i = 0; i < pixels; i++) {
    const uint8_t *s = source + i * (size_t)from;
    uint8_t *t = target + i * (size_t)to;
    if (from <= 2) {
      uint8_t gray = s[0];
      t[0] = gray;
      if (to == 3) t[1] = t[2] = gray;
    } else if (to == 3) {
      t[0] = s[0];
      t[1] = s[1];
      t[2] = s[2];
    } else {
      t[0] = (uint8_t)((299u * s[0] + 587u * s[1] + 114u * s[2] + 500u) / 1000u);
    }
  }
}

static aepsl_codec_status png_pixels_body(png_structp png, png_infop info, png_context *context,
                                          int32_t channels) {
  png_uint_32 width = png_get_image_width(png, info);
  png_uint_32 height = png_get_image_height(png, info);
  int color_type = png_get_color_type(png, info);
  int bit_depth = png_get_bit_depth(png, info);

  // Expand palettes and sub-byte gray to 8-bit samples; scale (not truncate) 16 to 8 bits.
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (bit_depth == 16) png_set_scale_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  int stored = png_get_channels(png, info);  // 1...4, alpha included
  if (png_get_bit_depth(png, info) != 8 || stored < 1 || stored > 4) {
    png_raise(png, context, AEPSL_CODEC_UNSUPPORTED,
              "unsupported PNG sample layout after conversion to 8 bits");
  }
  int wanted = channels != 0 ? channels : png_stored_channels(color_type);
  size_t total = aepsl_pixel_bytes(width, height, wanted);
  context->output = png_allocate(png, context, total);
  context->output_count = total;

  size_t stored_row = (size_t)width * (size_t)stored;
  if (png_get_rowbytes(png, info) != stored_row) {
    png_raise(png, context, AEPSL_CODEC_UNSUPPORTED, "unexpected PNG row size");
  }
  if (stored == wanted) {
    png_make_rows(png, context, context->output, height, stored_row);
    png_read_image(png, context->rows);
  } else {
    context->scratch = png_allocate(png, context, aepsl_pixel_bytes(width, height, stored));
    png_make_rows(png, context, context->scratch, height, stored_row);
    png_read_image(png, context->rows);
    convert_channels(context->scratch, stored, context->output, wanted, (size_t)width * height);
  }
  png_read_end(png, NULL);  // checks the last CRCs; a file cut before IEND is truncated

  context->result->width = (int32_t)width;
  context->result->height = (int32_t)height;
  context->result->channels = wanted;
  return AEPSL_CODEC_OK;
}

static aepsl_codec_status png_indices_body(png_structp png, png_infop info, png_context *context,
                                           int32_t channels) {
  (void)channels;
  png_uint_32 width = png_get_image_width(png, info);
  png_uint_32 height = png_get_image_height(png, info);
  int color_type = png_get_color_type(png, info);
  int bit_depth = png_get_bit_depth(png, info);

  if (color_type != PNG_COLOR_TYPE_PALETTE && color_type != PNG_COLOR_TYPE_GRAY) {
    const char *name = color_type == PNG_COLOR_TYPE_RGB          ? "RGB"
                       : color_type == PNG_COLOR_TYPE_RGB_ALPHA  ? "RGBA"
                       : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? "gray+alpha"
                                                                 : "unknown";
    return aepsl_result_fail(context->result, AEPSL_CODEC_UNSUPPORTED,
                             "the mask PNG is %s, so its pixels are colours, not class indices",
                             name);
  }
  if (bit_depth == 16)
    return aepsl_result_fail(context->result, AEPSL_CODEC_UNSUPPORTED,
                             "the mask PNG is 16-bit gray; label masks must be 8-bit "
                             "(class indices 0...255)");
  // One byte per index, values unchanged (expand_gray would rescale 1-bit 1 to 255).
  if (bit_depth < 8) png_set_packing(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (size_t)width) {
    png_raise(png, context, AEPSL_CODEC_UNSUPPORTED, "unexpected PNG row size for a mask");
  }

  size_t total = aepsl_pixel_bytes(width, height, 1);
  context->output = png_allocate(png, context, total);
  context->output_count = total;
  png_make_rows(png, context, context->output, height, width);
  png_read_image(png, context->rows);
  png_read_end(png, NULL);

  context->result->width = (int32_t)width;
  context->result->height = (int32_t)height;
  context->result->channels = 1;
  return AEPSL_CODEC_OK;
}

aepsl_codec_status aepsl_png_read_header(const uint8_t *data, size_t count,
                                         aepsl_codec_result *result) {
  return png_read(data, count, 0, result, png_header_body);
}

aepsl_codec_status aepsl_png_decode(const uint8_t *data, size_t count, int32_t channels,
                                    aepsl_codec_result *result) {
  if (channels != 0 && channels != 1 && channels != 3) {
    aepsl_result_reset(result);
    return aepsl_result_fail(result, AEPSL_CODEC_BAD_ARGUMENT,
                             "cannot decode a PNG to %d channels (use 1 or 3)", channels);
  }
  return png_read(data, count, channels, result, png_pixels_body);
}

aepsl_codec_status aepsl_png_decode_indices(const uint8_t *data, size_t count,
                                            aepsl_codec_result *result) {
  return png_read(data, count, 1, result, png_indices_body);
}

// MARK: - Writing

aepsl_codec_status aepsl_png_encode(const uint8_t *pixels, int32_t width, int32_t height,
                                    int32_t channels, const uint8_t *palette,
                                    aepsl_codec_result *result) {
  aepsl_result_reset(result);
  if (channels != 1 && channels != 3)
    return aepsl_result_fail(result, AEPSL_CODEC_BAD_ARGUMENT,
                             "cannot encode %d channels as PNG (use 1 or 3)", channels);
  if (palette != NULL && channels != 1)
    return aepsl_result_fail(result, AEPSL_CODEC_BAD_ARGUMENT,
                             "a palette PNG takes 1 channel of indices, not %d", channels);
  if (width <= 0 || height <= 0 || pixels == NULL ||
      aepsl_pixel_bytes(width, height, channels) == 0)
    return aepsl_result_fail(result, AEPSL_CODEC_BAD_ARGUMENT,
                             "cannot encode a %dx%d image as PNG", width, height);

  png_context context;
  memset(&context, 0, sizeof context);
  context.result = result;
  context.status = AEPSL_CODEC_INVALID;
  context.writing = 1;

  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &context, png_fail, png_warn);
  if (png == NULL)
    return aepsl_result_fail(result, AEPSL_CODEC_OUT_OF_MEMORY, "out of memory writing a PNG");
  png_infop info = png_create_info_struct(png);
  if (info == NULL) {
    png_destroy_write_struct(&png, NULL);
    return aepsl_result_fail(result, AEPSL_CODEC_OUT_OF_MEMORY, "out of memory writing a PNG");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    png_context_free(&context);
    return context.status;  // png_fail wrote the message
  }
  png_set_write_fn(png, &context, png_write_memory, png_flush_memory);

  int color_type = palette != NULL ? PNG_COLOR_TYPE_PALETTE
                   : channels == 1 ? PNG_COLOR_TYPE_GRAY
                                   : PNG_COLOR_TYPE_RGB;
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (palette != NULL) {
    png_color colors[256];
    for (int i = 0; i < 256; i++) {
      colors[i].red = palette[3 * i];
      colors[i].green = palette[3 * i + 1];
      colors[i].blue = palette[3 * i + 2];
    }
    png_set_PLTE(png, info, colors, 256);
  }
  png_write_info(png, info);
  size_t row_bytes = (size_t)width * (size_t)channels;
  // libpng takes non-const rows but only reads them when writing.
  png_make_rows(png, &context, (uint8_t *)(uintptr_t)pixels, (png_uint_32)height, row_bytes);
  png_write_image(png, context.rows);
  png_write_end(png, NULL);

  result->bytes = context.output;
  result->count = context.output_count;
  result->width = width;
  result->height = height;
  result->channels = channels;
  context.output = NULL;
  png_destroy_write_struct(&png, &info);
  png_context_free(&context);
  return AEPSL_CODEC_OK;
}
