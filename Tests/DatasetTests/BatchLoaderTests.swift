import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLData

/// An in-memory source of `count` images of varying content; image i carries class i % 3.
func memorySource(count: Int, width: Int = 24, height: Int = 20, maps: Bool = false, delay: Bool = false) -> SampleSource {
  let ids = (0..<count).map { "img\($0)" }
  let labels = (0..<count).map { [$0 % 3] + ($0 % 4 == 0 ? [3] : []) }
  return SampleSource(ids: ids, labels: labels) { i in
    if delay { usleep(UInt32(((i * 7919) % 5) * 300)) }  // uneven decode times shuffle completion order
    let image = AugmentationTests.image(width, height, seed: UInt64(i))
    let map = maps ? LabelMap(width: width, height: height, repeating: UInt8(i % 3 + 1)) : nil
    return Sample(id: ids[i], image: image, labels: labels[i], labelMap: map)
  }
}

func collect(_ loader: BatchLoader, epoch: Int) throws -> [Batch] {
  let stream = loader.epoch(epoch)
  var batches: [Batch] = []
  while let batch = try stream.next() { batches.append(batch) }
  return batches
}

@Suite("Batch loader")
struct BatchLoaderTests {
  @Test("same seed, same batches, whatever the number of workers and the thread timing")
  func reproducible() throws {
    let source = memorySource(count: 23, maps: true, delay: true)
    func run(workers: Int, seed: UInt64) throws -> [Batch] {
      let options = BatchLoader.Options(batchSize: 4, augmentation: .deepLab(crop: 16), shuffle: true, labelMaps: true,
                                        seed: seed, workers: workers, prefetch: 2)
      return try collect(BatchLoader(source: source, classes: 4, options: options), epoch: 1)
    }
    let one = try run(workers: 1, seed: 5)
    let three = try run(workers: 3, seed: 5)
    let other = try run(workers: 3, seed: 6)
    #expect(one.count == 6)
    #expect(one.map(\.ids) == three.map(\.ids))
    #expect(one.map(\.images.values) == three.map(\.images.values))
    #expect(one.map(\.labelMaps) == three.map(\.labelMaps))
    #expect(one.map(\.placements) == three.map(\.placements))
    #expect(one.map(\.ids) != other.map(\.ids))
    #expect(one.map(\.images.values) != other.map(\.images.values))
  }

  @Test("an epoch serves every sample once, in batches of the right shape, with matching targets")
  func shapesAndTargets() throws {
    let source = memorySource(count: 10, maps: true)
    let options = BatchLoader.Options(batchSize: 4, augmentation: .deepLab(crop: 16), shuffle: true, labelMaps: true, seed: 1)
    let loader = BatchLoader(source: source, classes: 4, options: options)
    let batches = try collect(loader, epoch: 0)
    #expect(batches.map(\.count) == [4, 4, 2])
    #expect(batches.map(\.number) == [0, 1, 2])
    #expect(batches.flatMap(\.indices) == loader.order(epoch: 0))
    #expect(Set(batches.flatMap(\.ids)) == Set(source.ids))
    #expect(loader.order(epoch: 0) != loader.order(epoch: 1), "each epoch has its own order")
    for batch in batches {
      #expect(batch.images.shape == [batch.count, 3, 16, 16])
      #expect(batch.targets.shape == [batch.count, 4])
      #expect(batch.labelMaps?.count == batch.count * 256)
      for (n, index) in batch.indices.enumerated() {
        let row = (0..<4).map { batch.targets[n, $0] }
        #expect(row == (0..<4).map { source.labels[index].contains($0) ? 1 : 0 })
        #expect(batch.labels[n] == source.labels[index])
        // Label maps follow their image: its class or 255 (padding), nothing else.
        let plane = batch.labelMaps![(n * 256)..<((n + 1) * 256)]
        #expect(Set(plane).isSubset(of: [UInt8(index % 3 + 1), 255]))
        #expect(plane.contains(UInt8(index % 3 + 1)))
      }
    }
    let dropped = BatchLoader(source: source, classes: 4, options: .init(batchSize: 4, dropLast: true))
    #expect(try collect(dropped, epoch: 0).map(\.count) == [4, 4])
    #expect(dropped.batchesPerEpoch == 2)
  }

  @Test("without shuffling or augmentation, batches are the images in order, normalised")
  func plainOrder() throws {
    let source = memorySource(count: 5)
    let loader = BatchLoader(source: source, classes: 4, options: .init(batchSize: 2))
    let batches = try collect(loader, epoch: 3)
    #expect(batches.flatMap(\.ids) == source.ids)
    let expected = PixelNormalization.imageNet.tensor(try source.load(2).image)
    let first = batches[1]
    #expect(Array(first.images.values[0..<(3 * 24 * 20)]) == expected.values)
  }

  @Test("a failing sample surfaces as an error from next(), naming the file")
  func errorsPropagate() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    let set = try VOCDataset(root: fixture.root).classificationSet(split: "train")
    try write("broken", to: fixture.root.appendingPathComponent("JPEGImages/b.jpg"))
    let loader = BatchLoader(source: set.source(), classes: 3, options: .init(batchSize: 1, augmentation: .deepLab(crop: 8)))
    let error = #expect(throws: AEPSLError.self) { _ = try collect(loader, epoch: 0) }
    #expect(error?.file?.hasSuffix("JPEGImages/b.jpg") == true)
  }

  @Test("images of different sizes in one test batch are refused with the fix")
  func mixedSizes() throws {
    let a = memorySource(count: 2, width: 24, height: 20), b = memorySource(count: 2, width: 16, height: 16)
    let source = SampleSource(ids: ["a", "b"], labels: [[0], [1]]) { i in try (i == 0 ? a : b).load(i) }
    let loader = BatchLoader(source: source, classes: 4, options: .init(batchSize: 2))
    let error = #expect(throws: AEPSLError.self) { _ = try collect(loader, epoch: 0) }
    #expect(error?.description.contains("batch size 1") == true)
    let single = BatchLoader(source: source, classes: 4, options: .init(batchSize: 1))
    #expect(try collect(single, epoch: 0).map { $0.images.shape } == [[1, 3, 20, 24], [1, 3, 16, 16]])
  }

  @Test("dropping the batches early stops the workers; mapSamples and subset compose")
  func cancelAndCompose() throws {
    let source = memorySource(count: 40).mapSamples { _, sample in
      var s = sample
      s.image = Image(width: 24, height: 20, channels: 3, repeating: 0)
      return s
    }.subset([5, 6, 7, 8])
    #expect(source.ids == ["img5", "img6", "img7", "img8"])
    let loader = BatchLoader(source: source, classes: 4, options: .init(batchSize: 2, prefetch: 1))
    do {
      let stream = loader.epoch(0)
      let batch = try #require(try stream.next())
      let black = (0 - PixelNormalization.imageNet.mean[0]) / PixelNormalization.imageNet.std[0]
      #expect(batch.images[0, 0, 3, 3] == black)
      stream.cancel()
      #expect(try stream.next() == nil)
    }
    #expect(try collect(loader, epoch: 0).count == 2)
  }
}
