import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLData

@Suite("Class lists")
struct ClassListTests {
  @Test("the default is the 20 VOC classes in VOC order")
  func vocDefault() {
    #expect(ClassList.voc.count == 20)
    #expect(ClassList.voc.names.first == "aeroplane" && ClassList.voc.names.last == "tvmonitor")
    #expect(ClassList.voc.index(of: "person") == 14)
    #expect(ClassList.voc.index(of: "dog") == 11)
  }

  @Test("classes.txt: one class a line, blank lines and surrounding spaces ignored")
  func readsFile() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("classes.txt")
    try write("  cat\n\ndog \r\nbird\n", to: url)
    let list = try ClassList(contentsOf: url)
    #expect(list.names == ["cat", "dog", "bird"])
    #expect(list.fileContents == "cat\ndog\nbird\n")
  }

  struct BadList: CustomTestStringConvertible, Sendable {
    let text: String
    let complaint: String
    var testDescription: String { complaint }
  }

  @Test("bad class lists are rejected with the reason and the file", arguments: [
    BadList(text: "cat\ndog\ncat\n", complaint: "listed twice"),
    BadList(text: "background\ncat\n", complaint: "background is implicit"),
    BadList(text: "potted plant\n", complaint: "whitespace"),
    BadList(text: "\n\n", complaint: "no class names"),
  ])
  func rejects(_ bad: BadList) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("classes.txt")
    try write(bad.text, to: url)
    let error = #expect(throws: AEPSLError.self) { try ClassList(contentsOf: url) }
    #expect(error?.description.contains(bad.complaint) == true, "\(String(describing: error))")
    #expect(error?.file == url.path)
  }
}

@Suite("Annotation XML")
struct AnnotationTests {
  let classes = try! ClassList(names: ["cat", "dog", "person"])

  @Test("labels are the set of object names; difficult objects count; person parts are not objects")
  func labels() throws {
    let parts = "    <part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part>\n"
    let xml = annotationXML([("person", false), ("dog", true), ("person", false)], extra: parts)
    let a = try VOCAnnotation(xmlData: Data(xml.utf8), classes: classes)
    #expect(a.objects.map(\.name) == ["person", "dog", "person"])
    #expect(a.objects.map(\.difficult) == [false, true, false])
    #expect(a.labels == [1, 2])
    #expect(a.width == 40 && a.height == 30)
    #expect(a.objects[0].box == VOCAnnotation.Box(xmin: 2, ymin: 3, xmax: 20, ymax: 15))
  }

  @Test("names are trimmed, entities and CDATA decoded, comments skipped")
  func textHandling() throws {
    let xml = """
      <?xml version="1.0" encoding="utf-8"?>
      <!-- made by hand -->
      <annotation verified="yes">
        <filename>a&amp;b.jpg</filename>
        <object><name>
          dog
        </name><!-- a comment --></object>
        <object><name><![CDATA[cat]]></name><difficult/></object>
      </annotation>
      """
    let a = try VOCAnnotation(xmlData: Data(xml.utf8), classes: classes)
    #expect(a.filename == "a&b.jpg")
    #expect(a.objects.map(\.name) == ["dog", "cat"])
    #expect(a.labels == [0, 1])
  }

  @Test("writing and reading back gives the same annotation")
  func roundTrip() throws {
    let a = VOCAnnotation(filename: "x<1>.jpg", width: 64, height: 48, objects: [
      .init(name: "dog", classIndex: 1, difficult: true, truncated: false, box: .init(xmin: 1, ymin: 2, xmax: 30, ymax: 40)),
      .init(name: "cat", classIndex: 0, truncated: true),
    ])
    let back = try VOCAnnotation(xmlData: a.xmlData(), classes: classes)
    #expect(back == a)
  }

  struct BadXML: CustomTestStringConvertible, Sendable {
    let name: String
    let xml: String
    let complaint: String
    var testDescription: String { name }
  }

  @Test("untrusted or broken XML is refused with a clear reason", arguments: [
    BadXML(name: "DOCTYPE with an entity",
           xml: "<?xml version=\"1.0\"?>\n<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<annotation><object><name>&e;</name></object></annotation>",
           complaint: "DOCTYPE"),
    BadXML(name: "ENTITY inside the document", xml: "<annotation><!ENTITY x \"y\"></annotation>", complaint: "ENTITY"),
    BadXML(name: "undefined entity", xml: "<annotation><object><name>&xxe;</name></object></annotation>",
           complaint: "not defined"),
    BadXML(name: "mismatched tag", xml: "<annotation><object><name>cat</object></annotation>", complaint: "closes <name>"),
    BadXML(name: "unclosed root", xml: "<annotation><object><name>cat</name></object>", complaint: "never closed"),
    BadXML(name: "empty file", xml: "", complaint: "empty"),
    BadXML(name: "wrong root", xml: "<voc><object><name>cat</name></object></voc>", complaint: "not <annotation>"),
    BadXML(name: "object without name", xml: "<annotation><object><pose>Left</pose></object></annotation>",
           complaint: "has no <name>"),
    BadXML(name: "bad difficult flag", xml: "<annotation><object><name>cat</name><difficult>yes</difficult></object></annotation>",
           complaint: "not 0 or 1"),
    BadXML(name: "non-numeric box", xml: "<annotation><object><name>cat</name><bndbox><xmin>a</xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax></bndbox></object></annotation>",
           complaint: "not a number"),
  ])
  func rejects(_ bad: BadXML) {
    let error = #expect(throws: AEPSLError.self) {
      try VOCAnnotation(xmlData: Data(bad.xml.utf8), classes: classes, file: "/data/Annotations/x.xml")
    }
    #expect(error?.file == "/data/Annotations/x.xml")
    #expect(error?.description.contains(bad.complaint) == true, "\(String(describing: error))")
  }

  @Test("an unknown class name is an error naming the file, the name and the fix")
  func unknownClass() {
    let error = #expect(throws: AEPSLError.self) {
      try VOCAnnotation(xmlData: Data(annotationXML([("cat", false), ("unicorn", false)]).utf8), classes: classes,
                        file: "/data/Annotations/u.xml")
    }
    #expect(error?.kind == .unknownClass)
    #expect(error?.description.contains("/data/Annotations/u.xml") == true)
    #expect(error?.description.contains("'unicorn'") == true)
    #expect(error?.description.contains("classes.txt") == true)
  }
}

@Suite("VOC layout")
struct VOCDatasetTests {
  @Test("a fixture built here reads back with the right labels, images and masks")
  func readsFixture() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    let dataset = try VOCDataset(root: fixture.root)
    #expect(dataset.classes.names == fixture.classes)
    #expect(dataset.classesFromFile)
    #expect(try dataset.imageIDs(split: "train") == fixture.train)
    #expect(try dataset.imageIDs(split: "val") == fixture.val)

    let set = try dataset.classificationSet(split: "train")
    #expect(set.ids == ["a", "b", "d"])
    #expect(set.skippedUnlabeled == ["c"])
    for sample in set.samples { #expect(sample.labels == fixture.expectedLabels[sample.id]) }
    #expect(set.classCounts == [2, 1, 1])

    for id in fixture.train + fixture.val {
      let image = try dataset.image(id)
      #expect(image.channels == 3)
      #expect(image.width == fixture.sizes[id]!.0 && image.height == fixture.sizes[id]!.1)
    }
    // SegmentationClass wins over SegmentationClassAug; labels come back by index.
    let mask = try dataset.groundTruthMask("e")
    #expect(mask == VOCFixture.mask(width: 40, height: 32, labels: [3]))
    #expect(dataset.maskURL("e")?.path.contains("/SegmentationClass/") == true)
    try FileManager.default.removeItem(at: fixture.root.appendingPathComponent("SegmentationClass/e.png"))
    #expect(dataset.maskURL("e")?.path.contains("/SegmentationClassAug/") == true)
  }

  @Test("without classes.txt the VOC classes apply")
  func vocClassesByDefault() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    try FileManager.default.removeItem(at: fixture.root.appendingPathComponent("classes.txt"))
    let dataset = try VOCDataset(root: fixture.root)
    #expect(dataset.classes == .voc)
    #expect(!dataset.classesFromFile)
    let set = try dataset.classificationSet(split: "train")
    #expect(set.samples.map(\.labels) == [[7], [2, 11], [7]])  // cat; bird and dog; cat

    // A name outside the list stops the training set with the file and the name.
    try write(annotationXML([("cat", false), ("unicorn", false)]), to: fixture.root.appendingPathComponent("Annotations/d.xml"))
    let error = #expect(throws: AEPSLError.self) { try dataset.classificationSet(split: "train") }
    #expect(error?.kind == .unknownClass)
    #expect(error?.file?.hasSuffix("Annotations/d.xml") == true)
    #expect(error?.problem.contains("unicorn") == true)
  }

  @Test("list files: DeepLab's train_aug lines, Main lines, any path; duplicates rejected")
  func listFormats() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let aug = dir.appendingPathComponent("train_aug.txt")
    try write("/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png\n\n/JPEGImages/2007_000039.jpg /SegmentationClassAug/2007_000039.png\n", to: aug)
    #expect(try VOCDataset.readList(aug) == ["2007_000032", "2007_000039"])
    let main = dir.appendingPathComponent("dog_train.txt")
    try write("2008_000002 -1\n2008_000003  1\n", to: main)
    #expect(try VOCDataset.readList(main) == ["2008_000002", "2008_000003"])
    let twice = dir.appendingPathComponent("twice.txt")
    try write("a\nb\na\n", to: twice)
    let error = #expect(throws: AEPSLError.self) { try VOCDataset.readList(twice) }
    #expect(error?.description.contains("lines 1 and 3") == true)

    let fixture = try VOCFixture()
    defer { fixture.remove() }
    let custom = dir.appendingPathComponent("mine.txt")
    try write("d\na\n", to: custom)
    let dataset = try VOCDataset(root: fixture.root)
    #expect(try dataset.imageIDs(split: custom.path) == ["d", "a"])
    let missing = #expect(throws: AEPSLError.self) { try dataset.imageIDs(split: "trainval") }
    #expect(missing?.kind == .missingFile)
    #expect(missing?.file?.hasSuffix("ImageSets/Segmentation/trainval.txt") == true)
  }

  @Test("a missing image, a missing annotation and a corrupt image are errors naming the file")
  func missingFiles() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    let dataset = try VOCDataset(root: fixture.root)
    try FileManager.default.removeItem(at: fixture.root.appendingPathComponent("JPEGImages/b.jpg"))
    let noImage = #expect(throws: AEPSLError.self) { try dataset.classificationSet(split: "train") }
    #expect(noImage?.kind == .missingFile)
    #expect(noImage?.file?.hasSuffix("JPEGImages/b.jpg") == true)
    #expect(noImage?.problem.contains("missing image") == true)

    try FileManager.default.removeItem(at: fixture.root.appendingPathComponent("Annotations/a.xml"))
    let noXML = #expect(throws: AEPSLError.self) { try dataset.classificationSet(ids: ["a"]) }
    #expect(noXML?.kind == .missingFile)
    #expect(noXML?.file?.hasSuffix("Annotations/a.xml") == true)

    try write("not a jpeg", to: fixture.root.appendingPathComponent("JPEGImages/e.jpg"))
    let corrupt = #expect(throws: AEPSLError.self) { try dataset.image("e") }
    #expect(corrupt?.file?.hasSuffix("JPEGImages/e.jpg") == true)
  }

  @Test("the training path never opens a training image's mask")
  func trainingNeverReadsMasks() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    // Make every training mask unusable: a directory where the file was (root can read any
    // file, so permissions would prove nothing) and garbage in SegmentationClassAug.
    for id in fixture.train {
      let url = fixture.root.appendingPathComponent("SegmentationClass/\(id).png")
      try FileManager.default.removeItem(at: url)
      try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
      try write("garbage", to: fixture.root.appendingPathComponent("SegmentationClassAug/\(id).png"))
    }
    let dataset = try VOCDataset(root: fixture.root)
    let (seen, paths) = try FileReadLog.shared.paths(under: fixture.root) { () throws -> [String] in
      let set = try dataset.classificationSet(split: "train")
      let options = BatchLoader.Options(batchSize: 2, augmentation: .deepLab(crop: 24), shuffle: true, seed: 3)
      let loader = BatchLoader(source: set.source(), classes: 3, options: options)
      var ids: [String] = []
      for epoch in 0..<2 {
        let batches = loader.epoch(epoch)
        while let batch = try batches.next() { ids += batch.ids }
      }
      return ids
    }
    #expect(seen.sorted() == ["a", "a", "b", "b", "d", "d"])
    #expect(!paths.isEmpty, "the read log recorded nothing")
    #expect(paths.contains { $0.hasSuffix("JPEGImages/a.jpg") })
    #expect(paths.allSatisfy { !$0.contains("/SegmentationClass") }, "\(paths)")
    // The masks really are unreadable: evaluation, which does open them, fails.
    #expect(throws: (any Error).self) { try dataset.groundTruthMask("a") }
    #expect(try dataset.groundTruthMask("e").width == 40)
  }

  @Test("a mask with a label beyond the class list is refused")
  func maskLabelsChecked() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    try write(try VOCFixture.mask(width: 40, height: 32, labels: [9]).pngData(),
              to: fixture.root.appendingPathComponent("SegmentationClass/e.png"))
    let error = #expect(throws: AEPSLError.self) { try VOCDataset(root: fixture.root).groundTruthMask("e") }
    #expect(error?.description.contains("label 9") == true)
  }
}
