#include "codec_internal.h"

#include <setjmp.h>
#include <stdio.h>  // jpeglib.h needs FILE and size_t declared first
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

// MARK: - Errors

// libjpeg calls error_exit on a fatal error and must not return; we longjmp back to the
// entry point. Everything allocated after setjmp lives here, in memory, so the cleanup
// path sees its current value (locals changed after setjmp would be indeterminate).
typedef struct {
  struct jpeg_error_mgr manager;  // first, so a j_common_ptr's err casts to this struct
  jmp_buf jump;
  aepsl_codec_result *result;
  aepsl_codec_status status;
  int encoding;
  uint8_t *pixels;       // decode output
  uint8_t *encoded;      // encode output (see the destination manager below)
  size_t encoded_capacity;
} jpeg_context;

static void jpeg_fail(j_common_ptr cinfo) {
  jpeg_context *context = (jpeg_context *)cinfo->err;
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF) {
    context->status = AEPSL_CODEC_INVALID;
    snprintf(context->result->message, AEPSL_CODEC_MESSAGE_CAPACITY,
             "the JPEG data is truncated (%s)", text);
  } else if (code == JERR_OUT_OF_MEMORY) {
    context->status = AEPSL_CODEC_OUT_OF_MEMORY;
    snprintf(context->result->message, AEPSL_CODEC_MESSAGE_CAPACITY, "%s", text);
  } else {
    context->status = AEPSL_CODEC_INVALID;
    snprintf(context->result->message, AEPSL_CODEC_MESSAGE_CAPACITY,
             context->encoding ? "libjpeg could not encode the image (%s)" : "the JPEG is corrupt (%s)",
             text);
  }
  longjmp(context->jump, 1);
}

// Warnings (level -1) are mostly benign ("extraneous bytes before marker" is common in
// real photos), but at end of input libjpeg warns and pads the rest of the image with
// gray. A truncated file must not turn silently into a half-gray training image.
static void jpeg_emit(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
  cinfo->err->num_warnings++;
}

// Never print to stderr from a library.
static void jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

// Makes `context` the error manager `*err` of a compress or decompress struct.
static void jpeg_context_init(jpeg_context *context, aepsl_codec_result *result, int encoding,
                              struct jpeg_error_mgr **err) {
  memset(context, 0, sizeof *context);
  jpeg_std_error(&context->manager);
  context->manager.error_exit = jpeg_fail;
  context->manager.emit_message = jpeg_emit;
  context->manager.output_message = jpeg_silent;
  context->result = result;
  context->status = AEPSL_CODEC_INVALID;
  context->encoding = encoding;
  *err = &context->manager;
}

// Where a call lands after jpeg_fail's longjmp: frees libjpeg's state and any output, and
// returns the status jpeg_fail chose (it wrote the message).
static aepsl_codec_status jpeg_abandon(j_common_ptr cinfo, jpeg_context *context) {
  jpeg_destroy(cinfo);
  free(context->pixels);
  free(context->encoded);
  return context->status;
}

// MARK: - Decode

static aepsl_codec_status jpeg_check_input(const uint8_t *data, size_t count,
                                           aepsl_codec_result *result) {
  if (data == NULL || count == 0)
    return aepsl_result_fail(result, AEPSL_CODEC_INVALID, "the data is empty (0 bytes)");
  return AEPSL_CODEC_OK;
}

// After the header: the pixels as `channels` (0: as stored) into context->pixels, and the
// result's fields. Errors inside libjpeg longjmp to the caller's setjmp.
static aepsl_codec_status jpeg_read_pixels(struct jpeg_decompress_struct *cinfo, jpeg_context *context,
                                           int32_t channels, aepsl_codec_result *result) {
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK)
    return aepsl_result_fail(result, AEPSL_CODEC_UNSUPPORTED, "CMYK JPEG is not supported");
  int wanted = channels != 0 ? channels : (cinfo->num_components == 1 ? 1 : 3);
  cinfo->out_color_space = wanted == 1 ? JCS_GRAYSCALE : JCS_RGB;

  jpeg_start_decompress(cinfo);
  size_t row_bytes = (size_t)cinfo->output_width * (size_t)cinfo->output_components;
  size_t total = aepsl_pixel_bytes(cinfo->output_width, cinfo->output_height,
                                   cinfo->output_components);
  if (total == 0)
    return aepsl_result_fail(result, AEPSL_CODEC_INVALID, "the JPEG header has an invalid size %ux%u",
                             cinfo->output_width, cinfo->output_height);
  context->pixels = malloc(total);
  if (context->pixels == NULL)
    return aepsl_result_fail(result, AEPSL_CODEC_OUT_OF_MEMORY,
                             "out of memory for a %ux%u JPEG", cinfo->output_width, cinfo->output_height);

  // Ask for several rows per call: libjpeg-turbo's upsampler emits rec_outbuf_height rows
  // at a time and one-row calls make it buffer internally.
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW rows[4];
    JDIMENSION left = cinfo->output_height - cinfo->output_scanline;
    JDIMENSION batch = left < 4 ? left : 4;
    for (JDIMENSION i = 0; i < batch; i++)
      rows[i] = context->pixels + (size_t)(cinfo->output_scanline + i) * row_bytes;
    jpeg_read_scanlines(cinfo, rows, batch);
  }
  jpeg_finish_decompress(cinfo);

  result->bytes = context->pixels;
  result->count = total;
  result->width = (int32_t)cinfo->output_width;
  result->height = (int32_t)cinfo->output_height;
  result->channels = (int32_t)cinfo->output_components;
  return AEPSL_CODEC_OK;
}

// Reads the header (size and stored channels) and, unless header_only, the pixels. One
// setjmp for both: every libjpeg error of either lands here.
static aepsl_codec_status jpeg_read_memory(const uint8_t *data, size_t count, int32_t channels, int header_only,
                                    aepsl_codec_result *result) {
  aepsl_codec_status status = jpeg_check_input(data, count, result);
  if (status != AEPSL_CODEC_OK) return status;

  struct jpeg_decompress_struct cinfo;
  jpeg_context context;
  jpeg_context_init(&context, result, 0, &cinfo.err);
  jpeg_create_decompress(&cinfo);
  if (setjmp(context.jump)) return jpeg_abandon((j_common_ptr)&cinfo, &context);
  jpeg_mem_src(&cinfo, data, (unsigned long)count);
  jpeg_read_header(&cinfo, TRUE);
  if (header_only) {
    result->width = (int32_t)cinfo.image_width;
    result->height = (int32_t)cinfo.image_height;
    result->channels = (int32_t)cinfo.num_components;
    status = AEPSL_CODEC_OK;
  } else {
    status = jpeg_read_pixels(&cinfo, &context, channels, result);
  }
  jpeg_destroy_decompress(&cinfo);
  return status;
}

aepsl_codec_status aepsl_jpeg_read_header(const uint8_t *data, size_t count,
                                          aepsl_codec_result *result) {
  aepsl_result_reset(result);
  return jpeg_read_memory(data, count, 0, 1, result);
}

aepsl_codec_status aepsl_jpeg_decode(const uint8_t *data, size_t count, int32_t channels,
                                     aepsl_codec_result *result) {
  aepsl_result_reset(result);
  if (channels != 0 && channels != 1 && channels != 3)
    return aepsl_result_fail(result, AEPSL_CODEC_BAD_ARGUMENT,
                             "cannot decode a JPEG to %d channels (use 1 or 3)", channels);
  return jpeg_read_memory(data, count, channels, 0, result);
}

// MARK: - Encode

// A growable in-memory destination. libjpeg-turbo's jpeg_mem_dest frees and replaces its
// buffer as it grows, so after an error the caller cannot tell which pointer to free; this
// one keeps the only pointer in the context.
typedef struct {
  struct jpeg_destination_mgr manager;
  jpeg_context *context;
} memory_destination;

static void destination_init(j_compress_ptr cinfo) {
  memory_destination *destination = (memory_destination *)cinfo->dest;
  jpeg_context *context = destination->context;
  // A typical JPEG is well under a byte per pixel; start there and grow by doubling.
  size_t capacity = (size_t)cinfo->image_width * cinfo->image_height / 2 + 4096;
  context->encoded = malloc(capacity);
  if (context->encoded == NULL) ERREXIT(cinfo, JERR_OUT_OF_MEMORY);
  context->encoded_capacity = capacity;
  destination->manager.next_output_byte = context->encoded;
  destination->manager.free_in_buffer = capacity;
}

static boolean destination_grow(j_compress_ptr cinfo) {
  memory_destination *destination = (memory_destination *)cinfo->dest;
  jpeg_context *context = destination->context;
  size_t used = context->encoded_capacity;  // libjpeg calls this only when the buffer is full
  size_t capacity = used * 2;
  uint8_t *grown = realloc(context->encoded, capacity);
  if (grown == NULL) ERREXIT(cinfo, JERR_OUT_OF_MEMORY);
  context->encoded = grown;
  context->encoded_capacity = capacity;
  destination->manager.next_output_byte = grown + used;
  destination->manager.free_in_buffer = capacity - used;
  return TRUE;
}

static void destination_term(j_compress_ptr cinfo) { (void)cinfo; }

aepsl_codec_status aepsl_jpeg_encode(const uint8_t *pixels, int32_t width, int32_t height,
                                     int32_t channels, int32_t quality, int32_t progressive,
                                     aepsl_codec_result *result) {
  aepsl_result_reset(result);
  if (channels != 1 && channels != 3)
    return aepsl_result_fail(result, AEPSL_CODEC_BAD_ARGUMENT,
                             "cannot encode %d channels as JPEG (use 1 or 3)", channels);
  if (quality < 1 || quality > 100)
    return aepsl_result_fail(result, AEPSL_CODEC_BAD_ARGUMENT,
                             "JPEG quality %d is out of range 1...100", quality);
  if (width <= 0 || height <= 0 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION ||
      pixels == NULL)
    return aepsl_result_fail(result, AEPSL_CODEC_BAD_ARGUMENT,
                             "cannot encode a %dx%d image as JPEG (1...%d pixels a side)", width,
                             height, (int)JPEG_MAX_DIMENSION);

  struct jpeg_compress_struct cinfo;
  jpeg_context context;
  jpeg_context_init(&context, result, 1, &cinfo.err);
  jpeg_create_compress(&cinfo);
  if (setjmp(context.jump)) return jpeg_abandon((j_common_ptr)&cinfo, &context);

  memory_destination destination;
  destination.manager.init_destination = destination_init;
  destination.manager.empty_output_buffer = destination_grow;
  destination.manager.term_destination = destination_term;
  destination.context = &context;
  cinfo.dest = &destination.manager;

  cinfo.image_width = (JDIMENSION)width;
  cinfo.image_height = (JDIMENSION)height;
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);

  jpeg_start_compress(&cinfo, TRUE);
  size_t row_bytes = (size_t)width * (size_t)channels;
  while (cinfo.next_scanline < cinfo.image_height) {
    // libjpeg takes non-const rows but only reads them.
    JSAMPROW row = (JSAMPROW)(uintptr_t)(pixels + (size_t)cinfo.next_scanline * row_bytes);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);

  result->bytes = context.encoded;
  result->count = context.encoded_capacity - destination.manager.free_in_buffer;
  result->width = width;
  result->height = height;
  result->channels = channels;
  jpeg_destroy_compress(&cinfo);
  return AEPSL_CODEC_OK;
}
