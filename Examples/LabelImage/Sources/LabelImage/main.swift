// label-image CHECKPOINT IMAGE OUT.png
//
// Labels every pixel of IMAGE with a segmenter trained by aepsl (RUN/seg/<model>/
// segmenter.safetensors) and writes the label map as a palette PNG: what `aepsl predict
// --checkpoint CHECKPOINT --crf on` writes for that image.
import AEPSLData
import AEPSLImaging
import AEPSLMethod
import AEPSLPipeline
import Foundation

let arguments = CommandLine.arguments.dropFirst().map { URL(fileURLWithPath: $0) }
guard arguments.count == 3 else {
  FileHandle.standardError.write(Data("usage: label-image CHECKPOINT IMAGE OUT.png\n".utf8))
  exit(2)
}
let (checkpoint, imageFile, output) = (arguments[0], arguments[1], arguments[2])

do {
  // The network, its class names and the resolution it was trained at, from the checkpoint.
  let segmenter = try SegmenterInfo(checkpoint: checkpoint)
  let inference = try segmenter.inference(from: checkpoint, threshold: 0.1)
  // Scores, confidence weighting, then the dense CRF with DeepLab's parameters.
  let image = try readRGBImage(imageFile)
  let labels = try inference.labelMap(image, refiner: Refinement.denseCRF().refine)
  try labels.write(to: output)

  // Which classes got how many pixels (label 0 is the background).
  let names = ["background"] + segmenter.classNames
  var counts = [Int](repeating: 0, count: names.count)
  for label in labels.labels { counts[Int(label)] += 1 }
  for (name, count) in zip(names, counts) where count > 0 {
    print("\(name): \(count) pixels")
  }
} catch {
  FileHandle.standardError.write(Data("label-image: \(error)\n".utf8))
  exit(1)
}
