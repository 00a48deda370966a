// The dense CRF's hot loops with AVX2 and FMA, for AEPSLCRF (not API).
//
// The package compiles Swift for baseline x86-64 (SSE2), where a SIMD8<Float> operation is
// two 128-bit instructions and a multiply-add two. These functions are compiled for AVX2 and
// FMA by a target attribute on each of them, so the rest of the binary still runs on any
// x86-64; AEPSLCRF calls them only when crf_kernels_have_avx2() says the CPU has both.
// Every buffer holds rows of `vectors` x 8 floats (the labels of one pixel or lattice
// vertex, padded), 32-byte aligned.
#ifndef CCRFKERNELS_H
#define CCRFKERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the CPU and the OS run AVX2 and FMA, else 0 (also 0 off x86-64).
int crf_kernels_have_avx2(void);

/// Splat: buffer[vertex] += weight * pre[i] * rows[i - lower] over the d1 corners of every
/// point i in lower..<upper (pre NULL: 1).
void crf_splat_avx2(const float *rows, int vectors, long lower, long upper, const int32_t *vertex_of_corner,
                    const float *weight_of_corner, int d1, const float *pre, float *buffer);

/// Slice: out[i - lower] = base[i - lower] + factor * post[i] * sum over corners of weight *
/// values[vertex] (base NULL: out itself; post NULL: 1).
void crf_slice_avx2(const float *values, int vectors, long lower, long upper, const int32_t *vertex_of_corner,
                    const float *weight_of_corner, int d1, const float *post, float factor, float *out,
                    const float *base);

/// One blur direction over vertices lower..<upper: dst[v] = src[v] + (src[n1] + src[n2]) / 2,
/// with pairs[2v], pairs[2v + 1] the neighbours n1, n2.
void crf_blur_avx2(const float *src, float *dst, const int32_t *pairs, long lower, long upper, int vectors);

/// dst[e] += src[e] for e in lower..<upper (8-float vectors): summing per-thread splats.
void crf_add_avx2(float *dst, const float *src, long lower, long upper);

/// Row-wise softmax of `pixels` rows: each row shifted by shifts[p] (NULL, or NaN: its max),
/// exponentiated as DenseCRF's vectorExp, padding lanes (labels and up) set to 0, normalised.
void crf_softmax_avx2(const float *logits, float *out, long pixels, int vectors, int labels, const float *shifts);

/// -U from the rows of `pixels` pixels holding probabilities (floor > 0: ln(clamp(p, floor,
/// 1)), as VectorMath.swift's vectorLog) or energies (floor 0: their negation), in place;
/// padding lanes (labels and up) get -1e30. Returns 1 if a value was not finite, else 0.
int crf_unary_rows_avx2(float *rows, long pixels, int vectors, int labels, float floor);

#ifdef __cplusplus
}
#endif

#endif
