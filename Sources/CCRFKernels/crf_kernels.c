// AVX2/FMA versions of DenseCRF's splat, slice, blur and softmax (see CCRFKernels.h). The
// Swift versions in AEPSLCRF stay the path for CPUs without AVX2 and the reference the tests
// hold these to; the arithmetic is the same but for fused multiply-adds (one rounding
// instead of two).
#include "CCRFKernels.h"

#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

int crf_kernels_have_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// The 3-vector case (17 to 24 labels: VOC's 21) with its rows in registers; the compiler
// unrolls the k loops of the general case for it when `vectors` is the constant 3.
// The point's rows are loaded once into registers (they cannot alias the lattice buffer).
static inline AVX2 void splat_rows(const float *restrict rows, int vectors, long lower, long upper,
                                   const int32_t *restrict vc, const float *restrict wc, int d1,
                                   const float *restrict pre, float *restrict buffer) {
  for (long i = lower; i < upper; i++) {
    const float *q = rows + (i - lower) * vectors * 8;
    __m256 qv[8];  // vectors <= 8 here (64 labels); the caller falls back beyond
    for (int k = 0; k < vectors; k++) qv[k] = _mm256_load_ps(q + 8 * k);
    float scale = pre ? pre[i] : 1.0f;
    const int32_t *cv = vc + i * d1;
    const float *cw = wc + i * d1;
    for (int r = 0; r < d1; r++) {
      __m256 w = _mm256_set1_ps(cw[r] * scale);
      float *row = buffer + (long)cv[r] * vectors * 8;
      for (int k = 0; k < vectors; k++) {
        _mm256_store_ps(row + 8 * k, _mm256_fmadd_ps(w, qv[k], _mm256_load_ps(row + 8 * k)));
      }
    }
  }
}

AVX2 void crf_splat_avx2(const float *rows, int vectors, long lower, long upper, const int32_t *vc,
                         const float *wc, int d1, const float *pre, float *buffer) {
  if (vectors == 3) {
    splat_rows(rows, 3, lower, upper, vc, wc, d1, pre, buffer);
  } else {
    splat_rows(rows, vectors, lower, upper, vc, wc, d1, pre, buffer);
  }
}

static inline AVX2 void slice_rows(const float *restrict values, int vectors, long lower, long upper,
                                   const int32_t *restrict vc, const float *restrict wc, int d1,
                                   const float *restrict post, float factor, float *out, const float *base) {
  for (long i = lower; i < upper; i++) {
    __m256 s[8];  // vectors <= 8 here (64 labels); the caller falls back beyond
    for (int k = 0; k < vectors; k++) s[k] = _mm256_setzero_ps();
    const int32_t *cv = vc + i * d1;
    const float *cw = wc + i * d1;
    for (int r = 0; r < d1; r++) {
      __m256 w = _mm256_set1_ps(cw[r]);
      const float *row = values + (long)cv[r] * vectors * 8;
      for (int k = 0; k < vectors; k++) s[k] = _mm256_fmadd_ps(w, _mm256_load_ps(row + 8 * k), s[k]);
    }
    __m256 f = _mm256_set1_ps(factor * (post ? post[i] : 1.0f));
    float *o = out + (i - lower) * vectors * 8;
    const float *b = base ? base + (i - lower) * vectors * 8 : o;
    for (int k = 0; k < vectors; k++) _mm256_store_ps(o + 8 * k, _mm256_fmadd_ps(f, s[k], _mm256_load_ps(b + 8 * k)));
  }
}

AVX2 void crf_slice_avx2(const float *values, int vectors, long lower, long upper, const int32_t *vc,
                         const float *wc, int d1, const float *post, float factor, float *out, const float *base) {
  if (vectors == 3) {
    slice_rows(values, 3, lower, upper, vc, wc, d1, post, factor, out, base);
  } else {
    slice_rows(values, vectors, lower, upper, vc, wc, d1, post, factor, out, base);
  }
}

static inline AVX2 void blur_rows(const float *src, float *dst, const int32_t *pairs, long lower, long upper,
                                  int vectors) {
  const __m256 half = _mm256_set1_ps(0.5f);
  for (long v = lower; v < upper; v++) {
    const float *p = src + v * vectors * 8;
    const float *n1 = src + (long)pairs[2 * v] * vectors * 8;
    const float *n2 = src + (long)pairs[2 * v + 1] * vectors * 8;
    float *o = dst + v * vectors * 8;
    for (int k = 0; k < vectors; k++) {
      __m256 n = _mm256_add_ps(_mm256_load_ps(n1 + 8 * k), _mm256_load_ps(n2 + 8 * k));
      _mm256_store_ps(o + 8 * k, _mm256_fmadd_ps(half, n, _mm256_load_ps(p + 8 * k)));
    }
  }
}

AVX2 void crf_blur_avx2(const float *src, float *dst, const int32_t *pairs, long lower, long upper, int vectors) {
  if (vectors == 3) {
    blur_rows(src, dst, pairs, lower, upper, 3);
  } else {
    blur_rows(src, dst, pairs, lower, upper, vectors);
  }
}

AVX2 void crf_add_avx2(float *dst, const float *src, long lower, long upper) {
  for (long e = lower; e < upper; e++) {
    _mm256_store_ps(dst + 8 * e, _mm256_add_ps(_mm256_load_ps(dst + 8 * e), _mm256_load_ps(src + 8 * e)));
  }
}

// e^x as VectorMath.swift's vectorExp: x log2(e) = k + f, 2^f by a degree-5 polynomial,
// 2^k into the exponent bits.
static inline AVX2 __m256 exp_avx2(__m256 x) {
  const __m256 shifter = _mm256_set1_ps(12582912.0f + 127.0f);
  __m256 t = _mm256_mul_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(1.44269504f));
  __m256 biased = _mm256_add_ps(t, shifter);
  __m256 f = _mm256_sub_ps(t, _mm256_sub_ps(biased, shifter));
  __m256 p = _mm256_set1_ps(1.3333558e-3f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504109e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022651e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  __m256i bits = _mm256_slli_epi32(_mm256_castps_si256(biased), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

static inline AVX2 float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline AVX2 float hmax_avx2(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline AVX2 void softmax_rows(const float *logits, float *out, long pixels, int vectors, __m256 last_mask,
                                     const float *shifts) {
  for (long p = 0; p < pixels; p++) {
    const float *a = logits + p * vectors * 8;
    float *o = out + p * vectors * 8;
    float mx = shifts ? shifts[p] : NAN;
    if (isnan(mx)) {
      __m256 m = _mm256_load_ps(a);
      for (int k = 1; k < vectors; k++) m = _mm256_max_ps(m, _mm256_load_ps(a + 8 * k));
      mx = hmax_avx2(m);
    }
    __m256 shift = _mm256_set1_ps(mx), total = _mm256_setzero_ps();
    __m256 e[8];
    for (int k = 0; k < vectors; k++) {
      e[k] = exp_avx2(_mm256_sub_ps(_mm256_load_ps(a + 8 * k), shift));
      if (k == vectors - 1) e[k] = _mm256_and_ps(e[k], last_mask);
      total = _mm256_add_ps(total, e[k]);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum_avx2(total));
    for (int k = 0; k < vectors; k++) _mm256_store_ps(o + 8 * k, _mm256_mul_ps(e[k], inv));
  }
}

AVX2 void crf_softmax_avx2(const float *logits, float *out, long pixels, int vectors, int labels,
                           const float *shifts) {
  int used = labels - (vectors - 1) * 8;
  int32_t lanes[8];
  for (int k = 0; k < 8; k++) lanes[k] = k < used ? -1 : 0;
  __m256 mask = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)lanes));
  if (vectors == 3) {
    softmax_rows(logits, out, pixels, 3, mask, shifts);
  } else {
    softmax_rows(logits, out, pixels, vectors, mask, shifts);
  }
}

// ln x as VectorMath.swift's vectorLog: x = 2^e m, m in [sqrt(1/2), sqrt(2)), and
// ln(1 + f) = f - f^2/2 + f^3 P(f) with the same degree-7 P.
static inline AVX2 __m256 log_avx2(__m256 x) {
  __m256i bits = _mm256_castps_si256(x);
  __m256i exponent_bits = _mm256_or_si256(_mm256_srai_epi32(bits, 23), _mm256_set1_epi32(0x4B000000));
  __m256 e = _mm256_sub_ps(_mm256_castsi256_ps(exponent_bits), _mm256_set1_ps(8388608.0f + 127.0f));
  __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F800000)));
  __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.41421356f), m);  // sign set where m > sqrt(2)
  m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
  e = _mm256_blendv_ps(e, _mm256_add_ps(e, _mm256_set1_ps(1.0f)), big);
  __m256 f = _mm256_sub_ps(m, _mm256_set1_ps(1.0f));
  __m256 p = _mm256_set1_ps(-0.0799513434f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.125472989f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-0.129410458f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.14220431f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-0.166460221f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.200009533f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-0.250002246f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.333333309f));
  __m256 f2 = _mm256_mul_ps(f, f);
  __m256 poly = _mm256_fmadd_ps(_mm256_mul_ps(f2, f), p, _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), f2, f));
  return _mm256_fmadd_ps(e, _mm256_set1_ps(0.69314718f), poly);
}

AVX2 int crf_unary_rows_avx2(float *rows, long pixels, int vectors, int labels, float floor) {
  int used = labels - (vectors - 1) * 8;
  int32_t lanes[8];
  for (int k = 0; k < 8; k++) lanes[k] = k < used ? -1 : 0;
  __m256 mask = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)lanes));
  __m256 low = _mm256_set1_ps(floor), one = _mm256_set1_ps(1.0f), pad = _mm256_set1_ps(-1e30f);
  __m256 zero = _mm256_setzero_ps(), probe = _mm256_setzero_ps();
  for (long i = 0; i < pixels; i++) {
    float *row = rows + i * vectors * 8;
    for (int k = 0; k < vectors; k++) {
      __m256 x = _mm256_load_ps(row + 8 * k);
      __m256 y = floor > 0 ? log_avx2(_mm256_min_ps(_mm256_max_ps(x, low), one)) : _mm256_sub_ps(zero, x);
      // x * 0 is 0 for finite x and NaN otherwise.
      probe = _mm256_add_ps(probe, _mm256_add_ps(_mm256_mul_ps(x, zero), _mm256_mul_ps(y, zero)));
      if (k == vectors - 1) y = _mm256_blendv_ps(pad, y, mask);
      _mm256_store_ps(row + 8 * k, y);
    }
  }
  return isfinite(hsum_avx2(probe)) ? 0 : 1;
}

#else

// Not x86-64: AEPSLCRF never calls the kernels (crf_kernels_have_avx2 is 0).
int crf_kernels_have_avx2(void) { return 0; }
void crf_splat_avx2(const float *rows, int vectors, long lower, long upper, const int32_t *vc, const float *wc,
                    int d1, const float *pre, float *buffer) {}
void crf_slice_avx2(const float *values, int vectors, long lower, long upper, const int32_t *vc, const float *wc,
                    int d1, const float *post, float factor, float *out, const float *base) {}
void crf_blur_avx2(const float *src, float *dst, const int32_t *pairs, long lower, long upper, int vectors) {}
void crf_add_avx2(float *dst, const float *src, long lower, long upper) {}
void crf_softmax_avx2(const float *logits, float *out, long pixels, int vectors, int labels, const float *shifts) {}
int crf_unary_rows_avx2(float *rows, long pixels, int vectors, int labels, float floor) { return 0; }

#endif
