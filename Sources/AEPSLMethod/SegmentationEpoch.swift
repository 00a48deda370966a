import AEPSLEngine
import AEPSLFiles
import Foundation

/// The mean loss terms of one epoch.
public struct SegmentationEpoch: Sendable, Equatable {
  public var epoch: Int
  public var terms: SegmentationLossTerms
  /// Of the cells S labels (not 255), the fraction where the online mask S' agrees (PSL).
  public var onlineAgreement: Float?
  public var learningRate: Float

  static let csvHeader = "epoch,total,classification,segmentation,online,online_agreement,learning_rate"

  var csvRow: String {
    "\(epoch),\(terms.total),\(terms.classification),\(terms.segmentation),\(terms.online),"
      + "\(onlineAgreement.map { "\($0)" } ?? ""),\(learningRate)"
  }

  init(epoch: Int, terms: SegmentationLossTerms, onlineAgreement: Float?, learningRate: Float) {
    self.epoch = epoch
    self.terms = terms
    self.onlineAgreement = onlineAgreement
    self.learningRate = learningRate
  }

  init?(csvRow row: Substring) {
    let f = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard f.count == 7, let e = Int(f[0]), let c = Float(f[2]), let s = Float(f[3]), let o = Float(f[4]),
          let lr = Float(f[6]) else { return nil }
    self.init(epoch: e, terms: SegmentationLossTerms(classification: c, segmentation: s, online: o),
              onlineAgreement: Float(f[5]), learningRate: lr)
  }
}

/// One trained network of the stage.
public struct SegmentationRound: Sendable {
  public var variant: ModelVariant
  public var directory: URL
  public var checkpoint: URL
  public var curve: [SegmentationEpoch]
}

extension SegmentationStage {
  static func writeLossCurve(_ curve: [SegmentationEpoch], to url: URL) throws {
    let text = ([SegmentationEpoch.csvHeader] + curve.map(\.csvRow)).joined(separator: "\n") + "\n"
    try writeFileAtomically(Data(text.utf8), to: url)
  }

  public static func readLossCurve(_ url: URL) throws -> [SegmentationEpoch] {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
      throw AEPSLError(file: url.path, problem: "cannot be read", fix: "Delete its directory to retrain that network.")
    }
    return text.split(separator: "\n").dropFirst().compactMap { SegmentationEpoch(csvRow: $0) }
  }
}
