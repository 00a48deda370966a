import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLFiles
import Foundation

extension ProgressReporter.Options {
  /// These options on rank 0; quiet with no JSON log on the other ranks, so that a job
  /// reports each line once.
  public func onlyOn(_ communicator: Communicator) -> ProgressReporter.Options {
    communicator.isRoot ? self : .init(quiet: true, jsonLog: nil)
  }
}

/// Copies rank 0's values of `tensors` to every other rank (one broadcast each).
func broadcast(_ tensors: [Tensor], from communicator: Communicator) {
  guard communicator.isDistributed else { return }
  for t in tensors {
    communicator.broadcast(UnsafeMutableRawBufferPointer(start: t.data, count: t.count * MemoryLayout<Float>.stride), root: 0)
  }
}

/// How a per-image stage (masks, prediction) splits its images: across the ranks of an
/// mpirun job, and across independent jobs with `--shard i/K`. Each process writes the
/// files of its images and records the images it skipped in DIR/.shards/<i>-of-<K>.json;
/// the stage's manifest is written once every image of the stage has its file or a record
/// says why not: by rank 0 of a job after all its ranks are done, by whichever `--shard` job
/// finds the others done, or by a rerun without --shard (which finds every file written).
public struct StageSharding: Sendable {
  public var communicator: Communicator
  /// `--shard i/K`; `.whole` for all the images.
  public var shard: Shard

  public init(communicator: Communicator = SingleProcess(), shard: Shard = .whole) {
    self.communicator = communicator
    self.shard = shard
  }

  public static let single = StageSharding()

  /// The images this process handles.
  public var mine: Shard { shard.split(across: communicator) }

  var isSharded: Bool { !mine.isWhole }

  static func recordDirectory(_ out: URL) -> URL { out.appendingPathComponent(".shards", isDirectory: true) }

  struct Record: Codable {
    var parameters: [String: String]
    var skipped: [SkippedImage]
  }

  /// After this process's images: records its skipped images, waits for the job's other
  /// ranks and returns, on the process that is to write the manifest, every record's
  /// skipped images; nil when the stage is not complete yet (other shards still to run),
  /// or on a rank other than 0.
  func finish(out: URL, parameters: [String: String], skipped: [SkippedImage],
              done: (_ skipped: Set<String>) -> Bool) throws -> [SkippedImage]? {
    guard isSharded else { return skipped }
    let dir = Self.recordDirectory(out)
    try makeDirectory(dir)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeFileAtomically(try encoder.encode(Record(parameters: parameters, skipped: skipped)),
                            to: dir.appendingPathComponent("\(mine.index)-of-\(mine.count).json"))
    communicator.barrier()
    guard communicator.isRoot else { return nil }
    var all: [SkippedImage] = []
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
    for name in names.sorted() where name.hasSuffix(".json") {
      guard let data = try? Data(contentsOf: dir.appendingPathComponent(name)),
            let record = try? JSONDecoder().decode(Record.self, from: data), record.parameters == parameters else { continue }
      all += record.skipped
    }
    var seen = Set<String>()
    all = all.filter { seen.insert($0.id).inserted }
    return done(seen) ? all : nil
  }
}
