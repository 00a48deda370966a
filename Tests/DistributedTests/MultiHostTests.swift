import AEPSLDistributed
import AEPSLEngine
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLMethod

/// Issue 18: mpirun across hosts (network namespaces: scripts/netns-hosts.sh), one rank a
/// host, MPI over TCP only; a host lost mid-epoch (its rank killed, or its link cut).
extension MPITests {
  static let multiHostReady = mpiReady && NetnsHosts.unavailableReason == nil
  static let multiHostSkipReason = Comment(rawValue: mpiReady ? NetnsHosts.unavailableReason ?? "" : mpiSkipReason.rawValue)

  /// What these tests pass to mpirun across hosts: Open MPI's TCP keepalive set so that a
  /// host that stops answering ends the job in seconds (README: On a cluster).
  static let keepalive = Distributed.keepaliveParameters

  @Test(.enabled(if: multiHostReady, multiHostSkipReason))
  func threeHostsTrainAsOneProcessAndShardedCAMsAreTheSameFiles() throws {
    let hosts = try NetnsHosts(count: 3)
    defer { hosts.down() }
    try Self.ranksTrainAsOneProcessAndShardedCAMsAreTheSameFiles(ranks: 3, hosts: hosts)
  }

  enum HostLoss: String, CaseIterable, CustomTestStringConvertible {
    case killedRank = "rank killed (SIGKILL)"
    case cutLink = "link cut"
    var testDescription: String { rawValue }
  }

  /// Host 1's rank dies (SIGKILL), or host 1's cable is cut, in the middle of an epoch of a
  /// three-host erase: the job stops within a bounded time with an error naming the rank and
  /// the host, every file left is whole, and the same command resumes and ends with the
  /// weights of a run never interrupted.
  @Test(.enabled(if: multiHostReady, multiHostSkipReason), arguments: HostLoss.allCases)
  func aLostHostStopsTheJobAndTheSameCommandResumesToTheSameWeights(loss: HostLoss) throws {
    let hosts = try NetnsHosts(count: 3)
    defer { hosts.down() }
    let dataset = try Self.makeDataset(train: 12)
    defer { try? FileManager.default.removeItem(at: dataset) }
    let run = dataset.appendingPathComponent("run"), reference = dataset.appendingPathComponent("reference")
    let arguments = { (run: URL) in
      ["erase", "--dataset", dataset.path, "--run", run.path, "--max-steps", "1", "--epochs", "8", "--batch-size", "3",
       "--crop-size", "48", "--threads", "1", "--seed", "5", "--quiet"]
    }
    let p = try Self.launch(arguments(run), hosts: hosts, mca: Self.keepalive)
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let output = OutputCollector(pipe)

    // Rank 0 saves the state at each epoch's end: from two of them, the length of an epoch;
    // the loss comes half an epoch after the next save.
    let state = EraseLayout(run: run).trainingState(1)
    func savedEpoch() -> Int? { (try? SafetensorsFile(contentsOf: state))?.metadata["epoch"].flatMap(Int.init) }
    func waitForEpoch(_ e: Int) -> Date? {
      while p.isRunning {
        if let s = savedEpoch(), s >= e { return Date() }
        usleep(2000)
      }
      return nil
    }
    let first = try #require(waitForEpoch(2), "training ended early: \(output.text)")
    let second = try #require(waitForEpoch(3), "training ended early: \(output.text)")
    usleep(UInt32(second.timeIntervalSince(first) / 2 * 1e6))
    let victim = try #require(Self.rankProcess(1, run: run), "rank 1's process not found")
    let lost = Date()
    switch loss {
    case .killedRank: #expect(kill(victim, SIGKILL) == 0)
    case .cutLink: try hosts.link(1, up: false)
    }
    // mpirun ends the job: at once for a dead process, after the keepalive (10 s idle, then
    // 3 probes 5 s apart) for a host that went silent.
    let bound: TimeInterval = loss == .killedRank ? 20 : 60
    while p.isRunning && Date().timeIntervalSince(lost) < bound + 30 { usleep(20_000) }
    let stopped = Date().timeIntervalSince(lost)
    if p.isRunning { p.terminate() }
    p.waitUntilExit()
    let text = output.finish()
    print("multi-host, \(loss.rawValue) on \(hosts.hosts[1]) half-way through epoch 4: the job stopped after \(String(format: "%.1f", stopped)) s")
    #expect(stopped < bound, "the job took \(stopped) s to stop (bound \(bound) s): \(text)")
    #expect(p.terminationStatus != 0, "\(text)")
    #expect(text.contains("3 ranks on 3 hosts") && text.contains("\(hosts.hosts[1]): rank 1"), "the rank table: \(text)")
    switch loss {
    case .killedRank:
      #expect(text.contains("rank 1") && text.contains("node \(hosts.hosts[1])") && text.lowercased().contains("signal 9"), "\(text)")
    case .cutLink:
      #expect(text.contains("lost communication") && text.contains("node \(hosts.hosts[1])"), "\(text)")
    }
    try Self.expectWholeFiles(in: run)
    #expect(try StageManifest.read(from: EraseLayout(run: run).root) == nil)
    if loss == .cutLink { try hosts.link(1, up: true) }

    // The same command again, across the same hosts, and a run never interrupted.
    let rerun = try Self.aepsl(arguments(run).filter { $0 != "--quiet" }, hosts: hosts, mca: Self.keepalive)
    #expect(rerun.status == 0, "\(rerun.output)")
    #expect(rerun.output.contains("resuming at epoch"), "\(rerun.output)")
    let whole = try Self.aepsl(arguments(reference), hosts: hosts, mca: Self.keepalive)
    #expect(whole.status == 0, "\(whole.output)")
    let d = try Self.difference(EraseLayout(run: run).checkpoint(1), EraseLayout(run: reference).checkpoint(1))
    #expect(d.tensors > 30 && d.maxDiff == 0, "resumed vs uninterrupted: max |diff| \(d.maxDiff)")
    #expect(Self.files(run).filter { $0.hasSuffix(".tmp") }.isEmpty, "the rerun sweeps temporaries: \(Self.files(run))")
  }

  /// The process of MPI rank `rank` of the job writing `run` (it may run in another network
  /// namespace: found by its environment, not as a child of mpirun).
  static func rankProcess(_ rank: Int, run: URL) -> pid_t? {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return names.compactMap(Int32.init).first { pid in
      guard let env = try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .isoLatin1),
            env.contains("OMPI_COMM_WORLD_RANK=\(rank)\0"),
            let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .isoLatin1) else { return false }
      return cmd.contains(run.path) && !cmd.contains("mpirun")
    }
  }

  /// Every file a killed job left under `run` reads whole (checkpoints, states, CAMs, images,
  /// JSON); temporaries of interrupted writes (".name.pid.n.tmp") are allowed, since the next
  /// run removes them.
  static func expectWholeFiles(in run: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
    for name in files(run) {
      let url = run.appendingPathComponent(name)
      if url.lastPathComponent.hasPrefix(".") && name.hasSuffix(".tmp") { continue }
      switch url.pathExtension {
      case "safetensors": #expect(throws: Never.self, "\(name)", sourceLocation: sourceLocation) { _ = try SafetensorsFile(contentsOf: url) }
      case "npy": #expect(throws: Never.self, "\(name)", sourceLocation: sourceLocation) { _ = try NumPyArray.read(contentsOf: url) }
      case "png": #expect(throws: Never.self, "\(name)", sourceLocation: sourceLocation) { _ = try Image(contentsOf: url) }
      case "json": #expect(throws: Never.self, "\(name)", sourceLocation: sourceLocation) {
        _ = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
      }
      default: break
      }
    }
  }
}

/// Reads a pipe on a thread of its own while the process runs (a full pipe would block it).
final class OutputCollector: @unchecked Sendable {
  private var data = Data()
  private let lock = NSLock()
  private let done = DispatchSemaphore(value: 0)

  init(_ pipe: Pipe) {
    let handle = pipe.fileHandleForReading
    Thread.detachNewThread { [self] in
      while true {
        let chunk = handle.availableData
        if chunk.isEmpty { break }
        lock.lock()
        data.append(chunk)
        lock.unlock()
      }
      done.signal()
    }
  }

  var text: String {
    lock.lock()
    defer { lock.unlock() }
    return String(decoding: data, as: UTF8.self)
  }

  /// Everything, once the writing end is closed (or what came within `timeout` seconds: a
  /// process left on a cut-off host may hold it open until its host is removed).
  func finish(timeout: Double = 30) -> String {
    _ = done.wait(timeout: .now() + timeout)
    return text
  }
}
