import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLTestSupport
import Foundation
import Testing
@testable import AEPSLMethod

/// Issue 8: `mpirun -np 2` on this machine (oversubscribed, loopback only) against one
/// process, through the `aepsl` binary built beside this test bundle.
@Suite("Data-parallel training and sharded stages", .serialized)
struct MPITests {
  static var binary: URL? { builtAEPSLBinary }

  static var mpirun: URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
      let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("mpirun")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return nil
  }

  static let mpiReady = Distributed.mpiBuilt && mpirun != nil
  static let mpiSkipReason: Comment = Distributed.mpiBuilt
    ? "mpirun not found: install openmpi-bin (scripts/install-deps.sh --with-mpi)"
    : "built without the MPI trait: swift test ... --traits MPI (make test does)"

  /// Runs `aepsl arguments`, alone or under `mpirun -np ranks` (on this machine over
  /// loopback, or one rank a host across `hosts`); returns the status and the output
  /// (stdout and stderr).
  static func aepsl(_ arguments: [String], ranks: Int? = nil, hosts: NetnsHosts? = nil,
                    mca: [(String, String)] = []) throws -> (status: Int32, output: String) {
    try runMerged(try launch(arguments, ranks: ranks, hosts: hosts, mca: mca))
  }

  /// The process that runs `aepsl arguments` as `aepsl` does, not yet started.
  static func launch(_ arguments: [String], ranks: Int? = nil, hosts: NetnsHosts? = nil,
                     mca: [(String, String)] = []) throws -> Process {
    let exe = try #require(binary, "the aepsl binary is not beside the test bundle; build it (swift build)")
    if let hosts { return hosts.mpirun(ranks: ranks ?? hosts.hosts.count, command: [exe.path] + arguments, mca: mca) }
    let p = Process()
    if let ranks {
      p.executableURL = try #require(mpirun)
      // Several ranks on however few cores, over TCP on the loopback interface only.
      var launch = ["--oversubscribe", "-np", "\(ranks)", "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
                    "--mca", "oob_tcp_if_include", "lo"]
      for (k, v) in mca { launch += ["--mca", k, v] }
      if getuid() == 0 { launch.append("--allow-run-as-root") }
      p.arguments = launch + [exe.path] + arguments
    } else {
      p.executableURL = exe
      p.arguments = arguments
    }
    return p
  }

  static func makeDataset(train: Int) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-mpi-\(UUID().uuidString)")
    try SyntheticDataset(configuration: .init(seed: 8, trainCount: train, valCount: 2, size: 40)).write(to: dir, threads: 1)
    return dir
  }

  /// One erasing step of a few short epochs: 8 images, batch 4, 48-pixel crops, one thread.
  /// SGD, not tiny's default Adam: Adam's first updates are about lr x sign(gradient), so a
  /// gradient near zero whose summation order flips its sign moves a weight by a whole step,
  /// and the ranks-against-one-process comparison would measure that instead of the reduction.
  static func eraseArguments(dataset: URL, run: URL, batch: Int = 4) -> [String] {
    ["erase", "--dataset", dataset.path, "--run", run.path, "--max-steps", "1", "--epochs", "2", "--batch-size", "\(batch)",
     "--crop-size", "48", "--optimizer", "sgd", "--lr", "0.1", "--cls-loss", "mse", "--threads", "1", "--seed", "5", "--quiet"]
  }

  /// The largest |a - b| over every tensor of two checkpoints, and the largest |a|.
  static func difference(_ a: URL, _ b: URL) throws -> (maxDiff: Float, maxValue: Float, tensors: Int) {
    let x = try SafetensorsFile(contentsOf: a), y = try SafetensorsFile(contentsOf: b)
    #expect(x.order == y.order)
    var maxDiff: Float = 0, maxValue: Float = 0
    for name in x.order {
      let (u, v) = (try #require(x.tensors[name]), try #require(y.tensors[name]))
      #expect(u.shape == v.shape, "\(name)")
      for i in 0..<min(u.count, v.count) {
        maxDiff = max(maxDiff, abs(u.data[i] - v.data[i]))
        maxValue = max(maxValue, abs(u.data[i]))
      }
    }
    return (maxDiff, maxValue, x.order.count)
  }

  /// Relative files under `dir`, sorted.
  static func files(_ dir: URL) -> [String] {
    let e = FileManager.default.enumerator(atPath: dir.path)
    var out: [String] = []
    while let f = e?.nextObject() as? String {
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path, isDirectory: &isDirectory), !isDirectory.boolValue {
        out.append(f)
      }
    }
    return out.sorted()
  }

  @Test(.enabled(if: mpiReady, mpiSkipReason))
  func twoRanksTrainAsOneProcessAndShardedCAMsAreTheSameFiles() throws {
    try Self.ranksTrainAsOneProcessAndShardedCAMsAreTheSameFiles(ranks: 2, hosts: nil)
  }

  /// K ranks (on this machine, or one a host across `hosts`) against one process: erase and
  /// train-seg end with the same weights, and CAMs split across the ranks are the same files.
  static func ranksTrainAsOneProcessAndShardedCAMsAreTheSameFiles(ranks: Int, hosts: NetnsHosts?) throws {
    let dataset = try Self.makeDataset(train: 8)
    defer { try? FileManager.default.removeItem(at: dataset) }
    let layout = { (name: String) in EraseLayout(run: dataset.appendingPathComponent(name)) }

    // One process, global batch 4: 2 iterations an epoch, 4 updates (tiny: batch norm).
    let single = try Self.aepsl(Self.eraseArguments(dataset: dataset, run: dataset.appendingPathComponent("single")))
    #expect(single.status == 0, "\(single.output)")
    // K ranks, the same global batch of 4: its shares, sync batch norm, summed gradients.
    let two = try Self.aepsl(Self.eraseArguments(dataset: dataset, run: dataset.appendingPathComponent("two")), ranks: ranks, hosts: hosts)
    #expect(two.status == 0, "\(two.output)")
    // What two ranks training alone on halves would resemble: batch 2.
    let half = try Self.aepsl(Self.eraseArguments(dataset: dataset, run: dataset.appendingPathComponent("half"), batch: 2))
    #expect(half.status == 0, "\(half.output)")

    let same = try Self.difference(layout("single").checkpoint(1), layout("two").checkpoint(1))
    let other = try Self.difference(layout("single").checkpoint(1), layout("half").checkpoint(1))
    // Weights, biases and batch-norm running statistics, after 4 updates at lr 0.1: equal up
    // to float summation order; a different batch split is far outside that.
    #expect(same.tensors > 30)
    #expect(same.maxDiff <= 1e-4 * max(1, same.maxValue), "\(ranks) ranks vs one process: max |diff| \(same.maxDiff)")
    #expect(other.maxDiff > 100 * 1e-4, "batch 2 vs batch 4 differ by only \(other.maxDiff): the comparison cannot tell")
    // Rank 0 alone logs: each line once.
    #expect(two.output.components(separatedBy: "erase: 8 images").count == 2, "\(two.output)")
    let losses = (try String(contentsOf: layout("single").lossCurve(1), encoding: .utf8),
                  try String(contentsOf: layout("two").lossCurve(1), encoding: .utf8))
    #expect(losses.0.split(separator: "\n").count == losses.1.split(separator: "\n").count)

    // The segmenter (PSL: online mask, classification branch, pixel losses normalised by the
    // labelled cells of the whole batch): one epoch, 2 updates, on the single run's masks.
    let masks = dataset.appendingPathComponent("single/masks")
    #expect(try Self.aepsl(["masks", "--run", dataset.appendingPathComponent("single").path, "--quiet"]).status == 0)
    let seg = { (name: String) in
      ["train-seg", "--run", dataset.appendingPathComponent(name).path, "--dataset", dataset.path, "--masks", masks.path,
       "--epochs", "1", "--batch-size", "4", "--crop-size", "48", "--threads", "1", "--seed", "5", "--quiet"]
    }
    let segSingle = try Self.aepsl(seg("seg-single")), segTwo = try Self.aepsl(seg("seg-two"), ranks: ranks, hosts: hosts)
    #expect(segSingle.status == 0 && segTwo.status == 0, "\(segSingle.output)\n\(segTwo.output)")
    let segmenters = try Self.difference(SegmentationLayout(run: dataset.appendingPathComponent("seg-single")).checkpoint(.psl),
                                         SegmentationLayout(run: dataset.appendingPathComponent("seg-two")).checkpoint(.psl))
    #expect(segmenters.maxDiff <= 1e-4 * max(1, segmenters.maxValue), "segmenter, \(ranks) ranks vs one: max |diff| \(segmenters.maxDiff)")

    // Sharded CAMs: the single run's trained classifier, its CAMs and regions redone by K
    // ranks (image j on rank j % K), byte for byte the same files.
    let resharded = dataset.appendingPathComponent("resharded")
    try FileManager.default.copyItem(at: dataset.appendingPathComponent("single"), to: resharded)
    let step = layout("resharded").step(1)
    for gone in ["cams", "erased", "manifest.json"] { try FileManager.default.removeItem(at: step.appendingPathComponent(gone)) }
    try FileManager.default.removeItem(at: layout("resharded").root.appendingPathComponent("manifest.json"))
    let cams = try Self.aepsl(Self.eraseArguments(dataset: dataset, run: resharded), ranks: ranks, hosts: hosts)
    #expect(cams.status == 0, "\(cams.output)")
    #expect(cams.output.contains("classifier already trained"), "\(cams.output)")
    for sub in ["cams", "erased"] {
      let a = layout("single").step(1).appendingPathComponent(sub), b = step.appendingPathComponent(sub)
      let names = Self.files(a)
      #expect(names.count == 8 && Self.files(b) == names, "\(sub): \(names) vs \(Self.files(b))")
      let identical = try names.allSatisfy { try Data(contentsOf: a.appendingPathComponent($0)) == Data(contentsOf: b.appendingPathComponent($0)) }
      #expect(identical, "\(sub): the sharded files differ from one process's")
    }
    #expect(try StageManifest.read(from: layout("resharded").root) != nil, "rank 0 writes the stage's manifest")
  }

  @Test(.enabled(if: mpiReady, mpiSkipReason))
  func anErrorStopsEveryRankWithAClearMessage() throws {
    let dataset = try Self.makeDataset(train: 8)
    defer { try? FileManager.default.removeItem(at: dataset) }
    // A global batch of 2 cannot give each of 3 ranks an image.
    let r = try Self.aepsl(Self.eraseArguments(dataset: dataset, run: dataset.appendingPathComponent("run"), batch: 2), ranks: 3)
    #expect(r.status != 0)
    #expect(r.output.contains("of 3 on host \(Distributed.hostName): a batch of 2 images cannot be split across 3 ranks"), "\(r.output)")
    #expect(r.output.contains("MPI_ABORT"), "\(r.output)")
  }

  /// The processes whose parent is `pid` (from /proc).
  static func children(of pid: Int32) -> [Int32] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return names.compactMap(Int32.init).filter { child in
      guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")") else { return false }
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      return fields.count > 2 && Int32(fields[1]) == pid
    }
  }

  @Test(.enabled(if: mpiReady, mpiSkipReason))
  func aKilledRankStopsTheJobAndARerunResumesFromTheLastState() throws {
    let dataset = try Self.makeDataset(train: 8)
    defer { try? FileManager.default.removeItem(at: dataset) }
    let run = dataset.appendingPathComponent("run")
    var arguments = Self.eraseArguments(dataset: dataset, run: run)
    arguments[arguments.firstIndex(of: "--epochs")! + 1] = "20"
    let exe = try #require(Self.binary)
    let p = Process()
    p.executableURL = try #require(Self.mpirun)
    p.arguments = ["--oversubscribe", "-np", "2", "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
                   "--mca", "oob_tcp_if_include", "lo"] + (getuid() == 0 ? ["--allow-run-as-root"] : []) + [exe.path] + arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    // Wait for a saved state (rank 0 writes one per epoch), then kill rank 1's process.
    let state = EraseLayout(run: run).trainingState(1)
    var killed = false
    while p.isRunning && !killed {
      if let file = try? SafetensorsFile(contentsOf: state), let e = file.metadata["epoch"].flatMap(Int.init), e >= 3 {
        let ranks = Self.children(of: p.processIdentifier).filter { child in
          (try? String(contentsOfFile: "/proc/\(child)/environ", encoding: .isoLatin1))?.contains("OMPI_COMM_WORLD_RANK=1\0") ?? false
        }
        if let victim = ranks.first { killed = kill(victim, SIGKILL) == 0 }
      }
      usleep(2000)
    }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(killed, "training ended before rank 1 could be killed: \(output)")
    #expect(p.terminationStatus != 0, "\(output)")
    // mpirun names the rank that died and ends the job.
    #expect(output.contains("rank 1") && output.lowercased().contains("signal 9"), "\(output)")
    #expect(try StageManifest.read(from: EraseLayout(run: run).root) == nil)

    let rerun = try Self.aepsl(arguments.filter { $0 != "--quiet" }, ranks: 2)
    #expect(rerun.status == 0, "\(rerun.output)")
    #expect(rerun.output.contains("resuming at epoch"), "\(rerun.output)")
    #expect(try StageManifest.read(from: EraseLayout(run: run).root) != nil)
  }

  @Test func independentShardsWriteTheMasksOfOneProcessAndTheLastWritesTheManifest() throws {
    let dataset = try Self.makeDataset(train: 6)
    defer { try? FileManager.default.removeItem(at: dataset) }
    let run = dataset.appendingPathComponent("run")
    let erase = try Self.aepsl(["erase", "--dataset", dataset.path, "--run", run.path, "--max-steps", "1", "--epochs", "1",
                                "--batch-size", "3", "--crop-size", "48", "--threads", "1", "--quiet"])
    #expect(erase.status == 0, "\(erase.output)")
    let whole = dataset.appendingPathComponent("masks-whole"), sharded = dataset.appendingPathComponent("masks-sharded")
    #expect(try Self.aepsl(["masks", "--run", run.path, "--out", whole.path, "--quiet"]).status == 0)
    let first = try Self.aepsl(["masks", "--run", run.path, "--out", sharded.path, "--shard", "0/2", "--quiet"])
    #expect(first.status == 0, "\(first.output)")
    #expect(try StageManifest.read(from: sharded) == nil, "one shard of two cannot finish the stage")
    #expect(Self.files(sharded).filter { $0.hasSuffix(".png") }.count == 3)
    let second = try Self.aepsl(["masks", "--run", run.path, "--out", sharded.path, "--shard", "1/2", "--quiet"])
    #expect(second.status == 0, "\(second.output)")
    #expect(try StageManifest.read(from: sharded) != nil, "the last shard writes the manifest")
    let names = Self.files(whole).filter { $0.hasSuffix(".png") }
    #expect(names.count == 6 && Self.files(sharded).filter { $0.hasSuffix(".png") } == names)
    let identical = try names.allSatisfy { try Data(contentsOf: whole.appendingPathComponent($0)) == Data(contentsOf: sharded.appendingPathComponent($0)) }
    #expect(identical, "sharded masks differ from one process's")
    let bad = try Self.aepsl(["masks", "--run", run.path, "--shard", "2/2"])
    #expect(bad.status != 0 && bad.output.contains("--shard must be i/K"), "\(bad.output)")
  }
}

@Suite("Shares and shards")
struct ShardTests {
  @Test func sharesOfAGlobalBatchConcatenateToIt() {
    for size in 1...5 {
      for count in size...13 {
        let shares = (0..<size).map { DataParallel.share(rank: $0, size: size, count: count) }
        #expect(shares.first!.lowerBound == 0 && shares.last!.upperBound == count)
        #expect(zip(shares, shares.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect(shares.allSatisfy { $0.count == count / size || $0.count == count / size + 1 })
      }
    }
  }

  @Test func shardsSplitAgainAcrossRanksCoverEveryImageOnce() {
    #expect(Shard(parsing: "1/3") == Shard(index: 1, count: 3))
    #expect(Shard(parsing: "3/3") == nil && Shard(parsing: "1") == nil && Shard(parsing: "-1/2") == nil)
    // Shard i of 3, each run by a job of 2 ranks (as split(across:) composes them).
    var owners = [Int](repeating: 0, count: 30)
    for i in 0..<3 {
      for r in 0..<2 {
        let s = Shard(index: i + 3 * r, count: 6)
        for j in 0..<30 where s.contains(j) {
          #expect(j % 3 == i)
          owners[j] += 1
        }
      }
    }
    #expect(owners.allSatisfy { $0 == 1 })
  }

  @Test func dropoutOfASplitBatchDrawsTheMasksOfTheWholeBatch() {
    let whole = Dropout(name: "d", p: 0.5), part = Dropout(name: "d", p: 0.5)
    let x = Tensor(shape: [4, 16, 3, 3], repeating: 1)
    let tail = Tensor(shape: [2, 16, 3, 3], repeating: 1)
    whole.reseed(7)
    part.reseed(7, firstSample: 2)
    let (a, b) = (whole.forward(x, training: true), part.forward(tail, training: true))
    let per = 16 * 9
    #expect((0..<(2 * per)).allSatisfy { a.data[2 * per + $0] == b.data[$0] })
  }
}
