import ArgumentParser
import Testing
import AEPSLEngine
import AEPSLMethod
@testable import AEPSLCommands

/// `validate()` of every command: bad combinations are refused before anything runs, with
/// a message that names the option.
@Suite("Option validation")
struct ValidationTests {
  struct Rejection: CustomTestStringConvertible, Sendable {
    let arguments: [String]
    /// Words the message must contain.
    let message: String
    init(_ arguments: String, _ message: String) {
      self.arguments = arguments.split(separator: " ").map(String.init)
      self.message = message
    }
    var testDescription: String { "aepsl " + arguments.joined(separator: " ") }
  }

  static let erase = "erase --dataset d --run r"
  static let trainSeg = "train-seg --run r"
  static let predict = "predict --out o"
  static let crf = "crf --image i.png --probs p.npy --out o.png"

  @Test(arguments: [
    Rejection("\(erase) --net resnet", "Unknown --net 'resnet'"),
    Rejection("\(erase) --delta 1.5", "--delta must be in (0, 1)"),
    Rejection("\(erase) --stop-ratio 0.9", "--stop-ratio must be above 1"),
    Rejection("\(erase) --cam-scales 1,x", "--cam-scales must be positive numbers"),
    Rejection("\(erase) --max-steps 0", "--max-steps must be at least 1"),
    Rejection("\(erase) --epochs 0", "--epochs must be at least 1"),
    Rejection("\(erase) --threads 0", "--threads must be at least 1"),
    Rejection("\(erase) --image-side 8", "The value '8' is invalid for '--image-side"),
    Rejection("\(trainSeg) --crop-size 8", "--crop-size must be at least 16"),
    Rejection("\(trainSeg) --batch-size 0", "--batch-size must be at least 1"),
    Rejection("\(trainSeg) --lr 0", "--lr must be positive"),
    Rejection("\(trainSeg) --plus-lr 0", "--plus-lr must be positive"),
    Rejection("\(trainSeg) --plus-epochs 0", "--plus-epochs must be at least 1"),
    Rejection("\(trainSeg) --weight-decay=-1", "--weight-decay must not be negative"),
    Rejection("\(trainSeg) --min-scale 2 --max-scale 1", "--min-scale must be positive and at most --max-scale"),
    Rejection("\(trainSeg) --confidence 2", "--confidence must be in [0, 1]"),
    Rejection("\(trainSeg) --psl-plus --psl off", "--psl-plus is a second round of weakly supervised PSL"),
    Rejection("\(trainSeg) --supervision full --masks m", "--masks and --supervision full exclude each other"),
    Rejection("\(trainSeg) --gaussian-sxy 0", "CRF parameter"),
    Rejection("masks --run r --background cam --saliency-dir s", "--saliency-dir needs --background saliency"),
    Rejection("masks --run r --background-threshold 2", "masks.backgroundThreshold (--background-threshold) is 2.0, outside [0, 1]"),
    Rejection("masks --run r --steps 0", "masks.steps (--steps) is 0"),
    Rejection("masks --run r --fill-objects on --object-threshold 0", "needs an object threshold above 0"),
    Rejection("masks --run r --shard 3/2", "--shard must be i/K"),
    Rejection(predict, "Give either --dataset DIR (with --split) or --images DIR"),
    Rejection("\(predict) --dataset d --images i", "Give either --dataset DIR (with --split) or --images DIR"),
    Rejection("\(predict) --dataset d", "Give --run RUN (and optionally --model), or --checkpoint FILE"),
    Rejection("\(predict) --dataset d --checkpoint c --run r", "--checkpoint excludes --run and --model"),
    Rejection("\(predict) --dataset d --run r --confidence 1.5", "--confidence must be in [0, 1]"),
    Rejection("export --run r", "Give --onnx FILE, --pytorch FILE or both"),
    Rejection("export --onnx m.onnx", "Give --run RUN (with --model or --step), or --checkpoint FILE"),
    Rejection("export --onnx m.onnx --checkpoint c --step 1", "--checkpoint excludes --run, --model and --step"),
    Rejection("export --onnx m.onnx --run r --step 1 --model psl", "--step (a classifier) and --model (a segmenter) exclude each other"),
    Rejection("export --onnx m.onnx --run r --step 0", "--step counts from 1"),
    Rejection("export --onnx m.onnx --run r --confidence 2", "--confidence must be in [0, 1]"),
    Rejection("eval --split val", "Give --pred DIR and --dataset DIR, or --cams RUN"),
    Rejection("eval --cams r --pred p", "--cams and --pred exclude each other"),
    Rejection("crf --image i.png --probs p.npy --out o.jpg", "--out must name a .png file"),
    Rejection("\(crf) --threads 0", "--threads must be at least 1"),
    Rejection("synth out --size 16", "--size must be 32 to 2048"),
    Rejection("synth out --jpeg-quality 0", "--jpeg-quality must be 1 to 100"),
    Rejection("synth out --train 0 --val 0 --test 0", "--train, --val and --test must not be negative, and together at least 1"),
    Rejection("run --run r --image-side big", "The value 'big' is invalid for '--image-side"),
    Rejection("run --run r --net resnet", "Unknown --net 'resnet'"),
    Rejection("report --run r --samples=-1", "--samples must be 0 or more"),
    Rejection("report --run r --image-size 8", "--image-size must be at least 16"),
    Rejection("dataset bench-loader d --batch-size 0", "--batch-size, --workers, --batches and --steps must be at least 1"),
    Rejection("dataset bench-loader d --train-net resnet", "Unknown network 'resnet'"),
    Rejection("bench engine --networks tiny,resnet", "unknown network 'resnet'"),
    Rejection("bench engine --retries=-1", "--retries must be at least 0"),
    Rejection("bench crf --image a.png", "--image and --probs go together"),
    Rejection("bench crf --classes 1", "--classes must be in 2...256"),
    Rejection("bench allreduce --net resnet", "Unknown --net 'resnet'"),
    Rejection("bench allreduce --steps 0", "--batch, --allreduces and --steps must be at least 1"),
  ])
  func isRejected(_ rejection: Rejection) {
    do {
      _ = try AEPSL.parseAsRoot(rejection.arguments)
      Issue.record("accepted: \(rejection.testDescription)")
    } catch {
      let message = AEPSL.message(for: error)
      #expect(message.contains(rejection.message), "\(rejection.testDescription): \(message)")
    }
  }

  /// The same commands with good values parse, so each rejection above is the option's doing.
  @Test(arguments: [
    erase, "\(erase) --net largefov --epochs 2 --cam-scales 0.75,1,1.25 --image-side 320",
    "\(trainSeg) --psl-plus --crop-size 64 --min-scale 0.5 --max-scale 1.5",
    "\(trainSeg) --supervision full --psl off", "masks --run r --shard 1/2", "\(predict) --dataset d --run r",
    "\(predict) --images i --checkpoint c", "eval --pred p --dataset d", "eval --cams r", crf, "synth out",
    "run --run r", "report --run r", "dataset stats d --strict", "bench engine --networks tiny", "bench crf",
    "bench allreduce --net tiny",
  ])
  func isAccepted(_ arguments: String) throws {
    _ = try AEPSL.parseAsRoot(arguments.split(separator: " ").map(String.init))
  }

  /// The shared training options reach each stage's configuration.
  @Test func trainingOptionsReachTheConfiguration() throws {
    let erase = try #require(try AEPSL.parseAsRoot(
      "\(Self.erase) --net largefov --epochs 3 --batch-size 5 --lr 0.01 --crop-size 64 --cls-loss bce --image-side 200"
        .split(separator: " ").map(String.init)) as? EraseCommand)
    let e = erase.configuration
    #expect(e.net == "largefov" && e.schedule.epochs == 3 && e.schedule.minIterations == nil && e.batchSize == 5)
    #expect(e.schedule.learningRate == 0.01 && e.cropSize == 64 && e.loss == .bce && e.imageSide == .side(200))
    let seg = try #require(try AEPSL.parseAsRoot(
      "\(Self.trainSeg) --epochs 4 --batch-size 6 --lr 0.02 --crop-size 96 --weight-decay 0.001 --image-side 300"
        .split(separator: " ").map(String.init)) as? TrainSegCommand)
    let s = seg.configuration
    #expect(s.schedule.epochs == 4 && s.batchSize == 6 && s.schedule.learningRate == 0.02 && s.cropSize == 96)
    #expect(s.schedule.weightDecay == 0.001 && s.imageSide == .side(300))
  }

  /// --optimizer and --cls-loss override the network's defaults both ways.
  @Test(arguments: [
    ("", OptimizerKind?.some(.adam), ClassificationLoss.bce),
    (" --optimizer sgd --cls-loss mse", nil, .mse),
    (" --net largefov", nil, .mse),
    (" --net largefov --optimizer adam --cls-loss bce", .adam, .bce),
  ])
  func optimizerAndLossDefaultByNetwork(extra: String, optimizer: OptimizerKind?, loss: ClassificationLoss) throws {
    let erase = try #require(try AEPSL.parseAsRoot(
      "\(Self.erase)\(extra)".split(separator: " ").map(String.init)) as? EraseCommand)
    #expect(erase.configuration.schedule.optimizer == optimizer && erase.configuration.loss == loss)
  }

  /// --cam-scales and --[no-]cam-flip override the network's defaults both ways.
  @Test(arguments: [
    ("", [Float(0.5), 1, 1.5, 2], true),
    (" --cam-scales 1 --no-cam-flip", [1], false),
    (" --net largefov", [1], false),
    (" --net largefov --cam-scales 0.75,1 --cam-flip", [0.75, 1], true),
  ])
  func camScalesDefaultByNetwork(extra: String, scales: [Float], flip: Bool) throws {
    let erase = try #require(try AEPSL.parseAsRoot(
      "\(Self.erase)\(extra)".split(separator: " ").map(String.init)) as? EraseCommand)
    #expect(erase.configuration.camScales == scales && erase.configuration.camFlip == flip)
  }
}
