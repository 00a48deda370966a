@testable import AEPSLCRF
import Foundation
import Testing

@Test func zzTiming() throws {
  let (w, h, labels) = (500, 375, 21)
  let n = w * h
  var random = FixtureRandom(seed: 1)
  let probs = (0..<(labels * n)).map { _ in random.uniform() * 0.1 + 0.001 }
  let image = (0..<(n * 3)).map { i in UInt8(((i / 3) % w / 50 * 37 + (i / 3) / w / 40 * 23 + i % 3 * 50) % 200) &+ UInt8(random.uniform() * 30) }
  func time(_ name: String, _ body: () throws -> Void) rethrows {
    var best = Double.infinity
    for _ in 0..<5 {
      let t0 = DispatchTime.now().uptimeNanoseconds
      try body()
      best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
    }
    print(name, best, "ms")
  }
  let crf = try DenseCRF(width: w, height: h, labels: labels, threads: 1)
  try time("setUnary") { try crf.setUnary(probabilities: probs) }
  var features = [Float](repeating: 0, count: n * 5)
  for i in 0..<n { features[i * 5] = Float(i % w) / 80; features[i * 5 + 1] = Float(i / w) / 80
    for c in 0..<3 { features[i * 5 + 2 + c] = Float(image[i * 3 + c]) / 13 } }
  var pos = [Float](repeating: 0, count: n * 2)
  for i in 0..<n { pos[i * 2] = Float(i % w) / 3; pos[i * 2 + 1] = Float(i / w) / 3 }
  try time("lattice d=5") { _ = try PermutohedralLattice(features: features, dimensions: 5, threads: 1) }
  try time("lattice d=2") { _ = try PermutohedralLattice(features: pos, dimensions: 2, threads: 1) }
  let lattice = try PermutohedralLattice(features: features, dimensions: 5, threads: 1)
  time("norm filter d=5") { _ = LatticeFilter(lattice: lattice, normalization: .symmetric, vectors: 3, threads: 1) }
  print("vertices d=5", lattice.vertexCount)
  try time("addPairwiseBilateral") { try crf.addPairwiseBilateral(sxy: 80, srgb: 13, image: image, compatibility: .potts(weight: 10)) }
}

@Test func zzLogTiming() {
  let count = 562_500
  let buffer = VectorBuffer(count: count)
  for i in 0..<count { buffer.base[i] = SIMD8<Float>(repeating: 0.01 + Float(i % 100) * 0.001) }
  for _ in 0..<3 {
    let t0 = DispatchTime.now().uptimeNanoseconds
    for i in 0..<count { buffer.base[i] = vectorLog(vmin(vmax(buffer.base[i], SIMD8(repeating: 1e-5)), SIMD8(repeating: 1))) }
    print("log pass", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6, "ms")
    for i in 0..<count { buffer.base[i] = SIMD8<Float>(repeating: 0.01 + Float(i % 100) * 0.001) }
    let t1 = DispatchTime.now().uptimeNanoseconds
    for i in 0..<count { buffer.base[i] = vectorExp(buffer.base[i] - 1) }
    print("exp pass", Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e6, "ms")
  }
}

@Test func zzSoftmaxTiming() {
  let pixels = 187_500
  let logits = VectorBuffer(count: pixels * 3), out = VectorBuffer(count: pixels * 3)
  var random = FixtureRandom(seed: 2)
  for i in 0..<(pixels * 3) { logits.base[i] = SIMD8<Float>((0..<8).map { _ in random.uniform() * 10 - 12 }) }
  let mask = DenseCRF.laneMask(labels: 21)
  for _ in 0..<4 {
    let t0 = DispatchTime.now().uptimeNanoseconds
    DenseCRF.softmax(logits.base, into: out.base, pixels: pixels, vectors: 3, lastMask: mask)
    print("softmax pass", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6, "ms")
  }
  for _ in 0..<3 {
    let t0 = DispatchTime.now().uptimeNanoseconds
    for i in 0..<(pixels * 3) { out.base[i] = vectorExp(logits.base[i]) }
    print("exp only", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6, "ms")
  }
}

@Test func zzSoftmaxVariants() {
  let pixels = 187_500
  let logits = VectorBuffer(count: pixels * 3), out = VectorBuffer(count: pixels * 3)
  var random = FixtureRandom(seed: 2)
  for i in 0..<(pixels * 3) { logits.base[i] = SIMD8<Float>((0..<8).map { _ in random.uniform() * 10 - 12 }) }
  let mask = DenseCRF.laneMask(labels: 21)
  for _ in 0..<3 {
    let t0 = DispatchTime.now().uptimeNanoseconds
    for p in 0..<pixels {
      let a = logits.base + p * 3
      let mx: Float = 0
      let e0 = vectorExp(a[0] - mx), e1 = vectorExp(a[1] - mx), e2 = blend(mask, vectorExp(a[2] - mx), .zero)
      let inv = 1 / hsum(e0 + e1 + e2)
      let o = out.base + p * 3
      o[0] = e0 * inv; o[1] = e1 * inv; o[2] = e2 * inv
    }
    print("softmax fixed shift", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6, "ms")
    let t1 = DispatchTime.now().uptimeNanoseconds
    for p in 0..<pixels {
      let a = logits.base + p * 3
      let mx: Float = 0
      let e0 = vectorExp(a[0] - mx), e1 = vectorExp(a[1] - mx), e2 = blend(mask, vectorExp(a[2] - mx), .zero)
      let o = out.base + p * 3
      o[0] = e0; o[1] = e1; o[2] = e2
    }
    print("exp3 + mask", Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e6, "ms")
  }
}

@Test func zzInsertCalls() throws {
  let (w, h) = (500, 375)
  let n = w * h
  var random = FixtureRandom(seed: 1)
  let image = (0..<(n * 3)).map { i in UInt8(((i / 3) % w / 50 * 37 + (i / 3) / w / 40 * 23 + i % 3 * 50) % 200) &+ UInt8(random.uniform() * 30) }
  var features = [Float](repeating: 0, count: n * 5)
  for i in 0..<n { features[i * 5] = Float(i % w) / 80; features[i * 5 + 1] = Float(i / w) / 80
    for c in 0..<3 { features[i * 5 + 2 + c] = Float(image[i * 3 + c]) / 13 } }
  LatticeHashTable.calls = 0
  let l = try PermutohedralLattice(features: features, dimensions: 5, threads: 1)
  print("calls", LatticeHashTable.calls, "corners", n * 6, "vertices", l.vertexCount)
}
