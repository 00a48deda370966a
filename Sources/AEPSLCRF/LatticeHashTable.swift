/// A point's simplex, compactly: the key of corner 0 and, 4 bits per step, the coordinate
/// that wraps at each next corner (corner r = corner r-1 + 1 in every coordinate, minus
/// d + 1 in coordinate wraps[r-1]; d stands for the implicit last coordinate).
struct PointSimplex {
  var corner0: LatticeKey
  var wraps: UInt32
}

/// d <= 7 lattice coordinates of 16 bits, packed.
struct LatticeKey: Equatable {
  var lo: UInt64
  var hi: UInt64

  /// Coordinates are stored plus this bias, as unsigned 16-bit lanes: in range (|c| < 32000)
  /// they never borrow from or carry into a neighbouring lane when stepped by small amounts.
  static let bias = 32_768

  /// One in each of the d lanes.
  static func ones(_ d: Int) -> (UInt64, UInt64) {
    var lo: UInt64 = 0, hi: UInt64 = 0
    for k in 0..<d { if k < 4 { lo |= 1 << UInt64(16 * k) } else { hi |= 1 << UInt64(16 * (k - 4)) } }
    return (lo, hi)
  }

  /// d + 1 in lane k, for k in 0...d (none for k = d, the implicit last coordinate): the
  /// step from a vertex to its neighbour along direction k, and the wrap of a simplex corner.
  static func steps(_ d: Int) -> (lo: [UInt64], hi: [UInt64]) {
    let d1 = UInt64(d + 1)
    let lo = (0...d).map { k in k < min(d, 4) ? d1 << UInt64(16 * k) : 0 }
    let hi = (0...d).map { k in k >= 4 && k < d ? d1 << UInt64(16 * (k - 4)) : 0 }
    return (lo, hi)
  }

  @inline(__always) var hash: UInt64 {
    var h = lo &* 0x9E37_79B9_7F4A_7C15 ^ (hi &+ 0x632B_E59B_D9B4_E019) &* 0xC2B2_AE3D_27D4_EB4F
    h ^= h >> 31
    h = h &* 0xD6E8_FEB8_6659_FD93
    h ^= h >> 32
    return h
  }
}

/// Open addressing with linear probing; slots keep the key inline so a probe reads one line.
/// Slot arithmetic wraps (&+): positions are masked to the capacity, counts stay below it.
/// The stored properties skip the runtime exclusivity checks (a swift_beginAccess per probe
/// and insert without -Ounchecked): one thread inserts, and threads only read after that.
final class LatticeHashTable {
  private struct Slot { var key: LatticeKey; var vertex: Int32 }
  @exclusivity(unchecked) private var slots: UnsafeMutablePointer<Slot>
  @exclusivity(unchecked) private var mask: Int
  @exclusivity(unchecked) private(set) var count = 0
  @exclusivity(unchecked) private(set) var keysByVertex: [LatticeKey] = []

  init(expected: Int) {
    var capacity = 64
    while capacity < 2 * expected { capacity <<= 1 }
    mask = capacity - 1
    slots = .allocate(capacity: capacity)
    slots.initialize(repeating: Slot(key: LatticeKey(lo: 0, hi: 0), vertex: -1), count: capacity)
    keysByVertex.reserveCapacity(expected)
  }

  deinit { slots.deallocate() }

  @inline(__always) func find(_ key: LatticeKey, hash: UInt64) -> Int32 {
    var h = Int(truncatingIfNeeded: hash) & mask
    while true {
      let s = slots[h]
      if s.vertex < 0 { return -1 }
      if s.key == key { return s.vertex }
      h = (h &+ 1) & mask
    }
  }

  func findOrInsert(_ key: LatticeKey, hash: UInt64) -> Int32 {
    if 2 &* (count &+ 1) > mask &+ 1 { grow() }
    var h = Int(truncatingIfNeeded: hash) & mask
    while true {
      let s = slots[h]
      if s.vertex < 0 {
        let v = Int32(truncatingIfNeeded: count)
        slots[h] = Slot(key: key, vertex: v)
        keysByVertex.append(key)
        count &+= 1
        return v
      }
      if s.key == key { return s.vertex }
      h = (h &+ 1) & mask
    }
  }

  private func grow() {
    let old = slots, oldCapacity = mask + 1
    let capacity = oldCapacity * 2
    mask = capacity - 1
    slots = .allocate(capacity: capacity)
    slots.initialize(repeating: Slot(key: LatticeKey(lo: 0, hi: 0), vertex: -1), count: capacity)
    for i in 0..<oldCapacity where old[i].vertex >= 0 {
      var h = Int(truncatingIfNeeded: old[i].key.hash) & mask
      while slots[h].vertex >= 0 { h = (h &+ 1) & mask }
      slots[h] = old[i]
    }
    old.deallocate()
  }
}
