/// Vector maths on SIMD8<Float> written with operations that lower to SSE2 instructions
/// (the standard library's pointwiseMin/Max and reductions run lane by lane).

/// All ones in the lanes where x is negative (its sign bit, spread by an arithmetic shift).
/// Comparisons (.<, .>) produce SIMDMask values, which Swift 6.3 lowers lane by lane through
/// general registers; this stays in vector registers.
@inline(__always)
func signMask(_ x: SIMD8<Float>) -> SIMD8<Int32> {
  unsafeBitCast(x, to: SIMD8<Int32>.self) &>> 31
}

/// mask ? a : b, lane by lane, for masks of all ones or all zeros.
@inline(__always)
func blend(_ mask: SIMD8<Int32>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
  let ai = unsafeBitCast(a, to: SIMD8<Int32>.self), bi = unsafeBitCast(b, to: SIMD8<Int32>.self)
  return unsafeBitCast((ai & mask) | (bi & ~mask), to: SIMD8<Float>.self)
}

/// The larger of a and b per lane (for finite a - b).
@inline(__always)
func vmax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { blend(signMask(a - b), b, a) }

/// The smaller of a and b per lane (for finite a - b).
@inline(__always)
func vmin(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { blend(signMask(a - b), a, b) }

/// The largest lane.
@inline(__always)
func hmax(_ v: SIMD8<Float>) -> Float {
  let a = Swift.max(Swift.max(v[0], v[1]), Swift.max(v[2], v[3]))
  let b = Swift.max(Swift.max(v[4], v[5]), Swift.max(v[6], v[7]))
  return Swift.max(a, b)
}

/// The sum of the lanes.
@inline(__always)
func hsum(_ v: SIMD8<Float>) -> Float {
  let halves = unsafeBitCast(v, to: (SIMD4<Float>, SIMD4<Float>).self)
  let s = halves.0 + halves.1
  return (s[0] + s[2]) + (s[1] + s[3])
}

/// e^x for a vector x <= 88, |relative error| < 1e-5 (inputs below -87 count as -87):
/// x log2(e) = k + f with k an integer and |f| <= 1/2, 2^f by its degree-5 Taylor series,
/// 2^k put in the exponent bits. Plain SIMD operations, so it vectorises on SSE2.
@inline(__always)
func vectorExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
  let t = vmax(x, SIMD8(repeating: -87)) * 1.442_695_04
  // Adding 1.5 * 2^23 rounds to an integer in the low mantissa bits; +127 biases it.
  let shifter: Float = 12_582_912 + 127
  let biased = t + shifter
  let k = biased - shifter
  let f = t - k
  var p = SIMD8<Float>(repeating: 1.333_355_8e-3)
  p = p * f + 9.618_129_1e-3
  p = p * f + 5.550_410_9e-2
  p = p * f + 2.402_265_1e-1
  p = p * f + 6.931_471_8e-1
  p = p * f + 1
  let bits = unsafeBitCast(biased, to: SIMD8<UInt32>.self) &<< 23
  return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
}

/// ln x for a vector of positive normal floats, |error| < 3e-7 max(1, |ln x|), without a
/// division: x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1, and
/// ln(1 + f) = f - f^2/2 + f^3 P(f) with P a degree-7 least-squares Chebyshev fit on that
/// interval (fitted for this file; 5e-8 in float arithmetic).
@inline(__always)
func vectorLog(_ x: SIMD8<Float>) -> SIMD8<Float> {
  let bits = unsafeBitCast(x, to: SIMD8<Int32>.self)
  // The biased exponent as a float: 2^23 + e in the mantissa of 2^23, minus 2^23 + 127.
  let exponentBits = (bits &>> 23) | 0x4B00_0000
  var e = unsafeBitCast(exponentBits, to: SIMD8<Float>.self) - (8_388_608 + 127)
  var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F80_0000, to: SIMD8<Float>.self)
  let big = signMask(1.414_213_56 - m)
  m = blend(big, m * 0.5, m)
  e = blend(big, e + 1, e)
  let f = m - 1
  var p = SIMD8<Float>(repeating: -0.079_951_343_4)
  p = p * f + 0.125_472_989
  p = p * f - 0.129_410_458
  p = p * f + 0.142_204_31
  p = p * f - 0.166_460_221
  p = p * f + 0.200_009_533
  p = p * f - 0.250_002_246
  p = p * f + 0.333_333_309
  let f2 = f * f
  return e * 0.693_147_18 + (f - 0.5 * f2 + f2 * f * p)
}
