import AEPSLEngine
import COpenBLAS
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Measures this machine's floating-point peak, for GFLOP/s figures (BENCHMARKS.md).
///
/// Two measurements:
/// - `kernel`: a tight loop of independent fused multiply-adds (12 accumulators, so the FMA
///   units never wait on a result) on every thread, for a vector width the CPU has (AVX2
///   ymm, AVX-512 zmm). The package compiles Swift for baseline x86-64 (SSE2, no FMA), and
///   Swift has no per-function target attribute, so a `SIMD8<Float>` loop would not reach
///   the FMA units: the loop is instead emitted as x86 machine code into an executable page
///   (about 200 bytes; see `emitLoop`) and called through a C function pointer.
/// - `sgemm`: a large single-precision GEMM through OpenBLAS, what a tuned library reaches.
public enum FMAPeak {
  /// A SIMD instruction set the peak loop can use.
  public enum ISA: String, Sendable, CaseIterable {
    case avx2 = "avx2-fma-ymm"
    case avx512 = "avx512-fma-zmm"

    /// Floats per register.
    public var lanes: Int { self == .avx2 ? 8 : 16 }
  }

  /// Instruction sets the CPU and the kernel support (from /proc/cpuinfo's flags).
  public static var supportedISAs: [ISA] {
    #if arch(x86_64) && os(Linux)
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return [] }
    let flags = Set(line.split(separator: " ").map(String.init))
    var out: [ISA] = []
    if flags.contains("avx2") && flags.contains("fma") { out.append(.avx2) }
    if flags.contains("avx512f") { out.append(.avx512) }
    return out
    #else
    return []
    #endif
  }

  /// The CPU model name (from /proc/cpuinfo), or "unknown".
  public static var cpuModel: String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
          let colon = line.firstIndex(of: ":")
    else { return "unknown" }
    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
  }

  // MARK: FMA loop

  /// FMA instructions per loop iteration (12 accumulators, twice).
  static let accumulators = 12
  static let fmasPerIteration = 24

  /// x86-64 machine code of `void loop(long iterations)` (System V: iterations in rdi):
  ///
  ///     vzeroall
  ///     1: vfmadd231ps {y,z}mm_i, {y,z}mm14, {y,z}mm15   ; i = 0..11, twice
  ///        dec rdi
  ///        jnz 1b
  ///     vzeroupper
  ///     ret
  static func emitLoop(_ isa: ISA) -> [UInt8] {
    var code: [UInt8] = [0xC5, 0xFC, 0x77]  // vzeroall
    var body: [UInt8] = []
    for k in 0..<fmasPerIteration {
      let dst = k % accumulators
      let rExt: UInt8 = dst < 8 ? 0x80 : 0  // inverted REX.R
      let modrm = UInt8(0xC0 | ((dst & 7) << 3) | 7)  // reg = dst, rm = 15 (low bits 7, B = 1)
      switch isa {
      case .avx2:
        // VEX.256.66.0F38.W0 B8 /r; byte1: R X(1) B(0, inverted 1) mmmmm = 00010;
        // byte2: W0 vvvv = ~14 = 0001, L = 1, pp = 01.
        body += [0xC4, rExt | 0x40 | 0x02, 0x0D, 0xB8, modrm]
      case .avx512:
        // EVEX.512.66.0F38.W0 B8 /r; P0: R X(1) B(0) R'(1) 00 mm = 10;
        // P1: W0 vvvv = 0001, 1, pp = 01; P2: z0 L'L = 10 b0 V'(1) aaa = 000.
        body += [0x62, rExt | 0x40 | 0x10 | 0x02, 0x0D, 0x48, 0xB8, modrm]
      }
    }
    body += [0x48, 0xFF, 0xCF]  // dec rdi
    let rel = Int32(-(body.count + 6))
    body += [0x0F, 0x85] + withUnsafeBytes(of: rel.littleEndian, Array.init)  // jnz rel32
    code += body
    code += [0xC5, 0xF8, 0x77, 0xC3]  // vzeroupper; ret
    return code
  }

  typealias LoopFunction = @convention(c) (Int) -> Void

  /// The loop in an executable page; nil when the system refuses executable memory.
  final class CompiledLoop: @unchecked Sendable {
    let page: UnsafeMutableRawPointer
    let size: Int
    let function: LoopFunction

    init?(_ code: [UInt8]) {
      size = 4096
      guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            p != MAP_FAILED else { return nil }
      code.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: code.count) }
      guard mprotect(p, size, PROT_READ | PROT_EXEC) == 0 else {
        munmap(p, size)
        return nil
      }
      page = p
      function = unsafeBitCast(p, to: LoopFunction.self)
    }

    deinit { munmap(page, size) }
  }

  /// Runs `body(threadIndex)` on `threads` threads started together; returns the wall time
  /// from the common start to the last thread's end, in seconds.
  static func timeOnThreads(_ threads: Int, _ body: @escaping @Sendable (Int) -> Void) -> Double {
    let ready = DispatchGroup(), done = DispatchGroup()
    let go = DispatchSemaphore(value: 0)
    for t in 0..<threads {
      ready.enter(); done.enter()
      let thread = Thread {
        ready.leave()
        go.wait()
        body(t)
        done.leave()
      }
      thread.stackSize = 1 << 20
      thread.start()
    }
    ready.wait()
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<threads { go.signal() }
    done.wait()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
  }

  /// GFLOP/s of the FMA loop on `threads` threads (one FMA = 2 FLOPs per lane), the best of
  /// `repeats` runs of about `seconds` each; nil when the ISA is missing or the system
  /// refuses executable memory.
  public static func kernel(_ isa: ISA, threads: Int, seconds: Double = 0.4, repeats: Int = 3) -> Double? {
    #if arch(x86_64) && os(Linux)
    guard supportedISAs.contains(isa), let loop = CompiledLoop(emitLoop(isa)) else { return nil }
    let f = loop.function
    // Calibrate on one thread (the first calls also wake the clock up from idle).
    var iterations = 1 << 16
    while true {
      let count = iterations
      let t = timeOnThreads(1) { _ in f(count) }
      if t > 0.05 {
        iterations = max(1, Int(Double(iterations) * seconds / t))
        break
      }
      iterations *= 4
    }
    var best = 0.0
    let n = iterations
    for _ in 0..<repeats {
      let t = timeOnThreads(threads) { _ in f(n) }
      let flops = Double(threads) * Double(n) * Double(fmasPerIteration * isa.lanes * 2)
      best = max(best, flops / t / 1e9)
    }
    withExtendedLifetime(loop) {}
    return best
    #else
    return nil
    #endif
  }

  /// GFLOP/s of OpenBLAS sgemm on square matrices of side `size` (2 size^3 FLOPs a call),
  /// on the threads `ComputeThreads` set; the best of `repeats` calls after one warm-up.
  public static func sgemm(size: Int = 2048, repeats: Int = 8) -> Double {
    let a = Tensor(shape: [size, size]), b = Tensor(shape: [size, size]), c = Tensor(shape: [size, size])
    for i in 0..<a.count {
      a.data[i] = Float(i % 17) * 0.01
      b.data[i] = Float(i % 13) * 0.01
    }
    let n = Int32(size)
    var best = 0.0
    for r in 0...repeats {
      let start = DispatchTime.now().uptimeNanoseconds
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a.data, n, b.data, n, 0, c.data, n)
      let t = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
      if r > 0 { best = max(best, 2 * Double(size * size * size) / t / 1e9) }
    }
    return best
  }
}
