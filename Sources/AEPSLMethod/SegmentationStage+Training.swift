import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import Foundation

extension SegmentationStage {
  /// Trains `model` (only `trainable` is updated) in `TrainingLoop` and returns the mean
  /// loss terms of every epoch: resumable from `state` (a state of another `fingerprint` is
  /// not resumed), stopped cleanly by `Interruption`, by a non-finite loss or gradient, and
  /// data-parallel over `communicator`.
  static func trainSegmenter(_ model: Segmenter, trainable: [Parameter], loader: BatchLoader, schedule: TrainingSchedule,
                             loss: SegmentationLoss, stage: String, state: URL, fingerprint: String = "",
                             progress: ProgressReporter.Options, log: @escaping (String) -> Void,
                             communicator: Communicator = SingleProcess()) throws -> [SegmentationEpoch] {
    // The loss terms: classification, segmentation, online; the counts: of the cells S
    // labels, those where the online mask agrees, and all of them.
    let loop = TrainingLoop(stage: stage, loader: loader, schedule: schedule, network: model.backbone, parameters: model.parameters,
                            buffers: model.buffers, trainable: trainable, dropoutStream: "segmenter dropout by iteration",
                            terms: 3, counts: 2, state: TrainingStateFile(url: state, settings: fingerprint), progress: progress,
                            log: log, communicator: communicator)
    let globalCounts: (([Double]) -> [Double])? = communicator.isDistributed ? { communicator.allreduceSum($0) } : nil
    let grid = ScoreGrid(spec: model.spec)
    return try loop.run(step: { batch, _ in
      let (scores, logits) = model.forward(batch.images, training: true)
      let (n, h, w) = (batch.count, scores.shape[2], scores.shape[3])
      let mask = grid.downsample(batch.labelMaps!, count: n, height: batch.height, width: batch.width, toHeight: h, toWidth: w)
      let valid = grid.downsample(batch.placements.flatMap(\.imageMask), count: n, height: batch.height, width: batch.width,
                                  toHeight: h, toWidth: w)
      let result = loss(scores: scores, logits: logits, targets: batch.targets, mask: mask, imageLabels: batch.labels,
                        valid: valid, globalCounts: globalCounts)
      var labelled = 0, agree = 0
      if let online = result.onlineMask {
        for (s, o) in zip(mask, online) where s != Loss.ignoreLabel {
          labelled += 1
          if s == o { agree += 1 }
        }
      }
      return TrainingStep(loss: result.terms.total,
                          terms: [result.terms.classification, result.terms.segmentation, result.terms.online],
                          counts: [Float(agree), Float(labelled)]) {
        model.backward(dScores: result.dScores, dLogits: result.dLogits)
      }
    }, record: { totals in
      let row = SegmentationEpoch(
        epoch: totals.epoch,
        terms: SegmentationLossTerms(classification: totals.mean(0), segmentation: totals.mean(1), online: totals.mean(2)),
        onlineAgreement: loss.prohibitive ? Float(totals.counts[0]) / Float(max(totals.counts[1], 1)) : nil,
        learningRate: totals.learningRate)
      return (row, String(format: "loss %.4f (classification %.4f, segmentation %.4f, online %.4f)",
                          row.terms.total, row.terms.classification, row.terms.segmentation, row.terms.online))
    })
  }
}
