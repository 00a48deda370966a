import AEPSLFiles
import Foundation
import Testing
@testable import AEPSLMethod

/// A bad mask given to train-seg is reported as that mask, never as its image: every reader
/// throws `AEPSLError` naming its own file, so nothing has to guess which file was at fault.
@Suite("Training masks name themselves in errors", .serialized)
struct TrainingMaskErrorTests {
  struct BadMask: CustomStringConvertible, Sendable {
    let description: String
    let bytes: Data
    /// Words the problem must contain.
    let phrases: [String]
  }

  static let cases = [
    BadMask(description: "an empty mask file", bytes: Data(), phrases: ["empty"]),
    BadMask(description: "a corrupt mask file", bytes: Data("not a PNG at all".utf8), phrases: ["not a JPEG or PNG"]),
    BadMask(description: "a truncated mask file", bytes: Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]),
            phrases: []),
  ]

  @Test(arguments: cases)
  func aBadMaskIsNamedAndSkippedByItsOwnPath(_ bad: BadMask) throws {
    let f = try SegmentationStageTests.fixture("mask\(bad.description)")
    defer { try? FileManager.default.removeItem(at: f.root) }
    let ids = try SegmentationStageTests.pngs(f.masks).map { String($0.dropLast(4)) }
    let mask = f.masks.appendingPathComponent("\(ids[3]).png")
    try bad.bytes.write(to: mask)

    var config = SegmentationStageTests.configuration(f, epochs: 1)
    let error = #expect(throws: AEPSLError.self) {
      try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: { _ in })
    }
    #expect(error?.file == mask.path, "\(String(describing: error))")
    for phrase in bad.phrases { #expect(error?.problem.contains(phrase) == true, "\(String(describing: error))") }
    #expect(error?.fix?.contains("--on-bad-image skip") == true, "\(String(describing: error))")

    config.onBadImage = .skip
    let rounds = try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: { _ in })
    let manifest = try #require(try StageManifest.read(from: rounds[0].directory))
    #expect(manifest.skippedIDs == [ids[3]])
    #expect(manifest.notes["skipped_images"]?.contains(mask.path) == true, "\(manifest.notes)")
  }
}
