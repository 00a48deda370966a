import AEPSLMethod
@testable import AEPSLReport
import Foundation
import Testing

/// The values of every `name="..."` attribute in `html`.
func attributeValues(_ name: String, in html: String) -> [String] {
  let regex = try! NSRegularExpression(pattern: "\\s\(name)=\"([^\"]*)\"")
  let range = NSRange(html.startIndex..., in: html)
  return regex.matches(in: html, range: range).map { String(html[Range($0.range(at: 1), in: html)!]) }
}

/// The markup of `<section id="id">` up to its end.
func section(_ id: String, in html: String) -> String? {
  guard let start = html.range(of: "<section id=\"\(id)\">") else { return nil }
  guard let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex) else { return nil }
  return String(html[start.lowerBound..<end.upperBound])
}

func occurrences(of needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

/// Undoes the page's escaping of attribute values.
func unescaped(_ s: String) -> String {
  s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
    .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
    .replacingOccurrences(of: "&amp;", with: "&")
}

func writeReport(_ fixture: RunFixture, samples: Int = 10, dataset: String? = nil) throws -> String {
  let index = try RunReport.write(run: fixture.run, options: ReportOptions(dataset: dataset, samples: samples), log: { _ in })
  #expect(index == fixture.reportDirectory.appendingPathComponent("index.html"))
  return try String(contentsOf: index, encoding: .utf8)
}

let sectionIDs = ["samples", "losses", "predictions", "iou", "confusion", "timings"]

@Suite("Run report")
struct ReportTests {
  @Test func aFullRunHasEverySectionAndNothingSaysNotRun() throws {
    let fixture = try RunFixture()
    defer { fixture.remove() }
    let html = try writeReport(fixture)
    #expect(html.hasPrefix("<!DOCTYPE html>"))
    for id in sectionIDs {
      let body = try #require(section(id, in: html), "section \(id) is missing")
      #expect(!body.contains("Not run yet"), "section \(id) says not run yet")
    }
    // Header: dataset, classes, configuration (config.json), version.
    #expect(html.contains(fixture.dataset.path))
    #expect(html.contains("cat"))
    #expect(html.contains("From RUN/config.json."))
    #expect(html.contains("report by aepsl "))

    let samples = try #require(section("samples", in: html))
    // Every training image, each erasing step's CAM per label and erased region.
    for (id, _) in RunFixture.train { #expect(samples.contains("<h3>\(HTMLText.escape(id))")) }
    let maps = RunFixture.train.reduce(0) { $0 + $1.labels.count }
    for step in 1...2 { #expect(occurrences(of: "alt=\"step \(step) CAM: ", in: samples) == maps) }
    #expect(occurrences(of: "alt=\"erased after step 1\"", in: samples) == RunFixture.train.count)
    #expect(occurrences(of: "alt=\"pseudo mask\"", in: samples) == RunFixture.train.count)
    #expect(occurrences(of: "alt=\"ground truth\"", in: samples) == RunFixture.train.count)
    #expect(samples.contains("did not converge"))

    // Loss curves: erasing (3 steps, which merged) and segmentation (psl, psl-plus, full).
    let losses = try #require(section("losses", in: html))
    #expect(occurrences(of: "<svg", in: losses) == 2)
    #expect(occurrences(of: "<polyline class=\"series\"", in: losses) == 3 + 3)
    #expect(losses.contains("step 1: merged") && losses.contains("step 2: merged"))
    #expect(losses.contains("step 3: did not converge: not merged"))
    #expect(losses.contains("after step 1 11.7%, after step 2 14.5% (+2.8)"), "the share of pixels erased step by step")
    #expect(losses.contains(">psl-plus<"))
    #expect(!losses.contains("psl-plus-masks"), "the second round's masks are no variant")
    #expect(losses.contains("unreadable rows of loss.csv") == false)

    let predictions = try #require(section("predictions", in: html))
    #expect(occurrences(of: "alt=\"prediction\"", in: predictions) == RunFixture.val.count)
    #expect(predictions.contains("by the psl-plus segmenter"))

    let confusion = try #require(section("confusion", in: html))
    #expect(confusion.contains("RUN/metrics/predict.json"))
    #expect(occurrences(of: "<rect", in: confusion) == 9, "3x3 cells for background and two classes")

    let timings = try #require(section("timings", in: html))
    for dir in ["erase", "erase/step-1", "erase/step-3", "masks", "seg/psl", "seg/psl-plus", "seg/psl-plus-masks", "predict"] {
      #expect(timings.contains(">\(dir)<") || timings.contains("\u{2003}\(dir)<"), "no timing row for \(dir)")
    }
    #expect(timings.contains("3:20"), "erase took 200 s")
  }

  @Test func everyImageIsAFileInsideTheReportAndNothingIsFetched() throws {
    let fixture = try RunFixture()
    defer { fixture.remove() }
    let html = try writeReport(fixture)
    let sources = attributeValues("src", in: html)
    #expect(sources.count == occurrences(of: "<img", in: html))
    #expect(sources.count >= 4 * 2 * 2 + 4 * 3 + 3 * 3)
    for raw in sources {
      let src = unescaped(raw)
      #expect(!src.contains(":") && !src.hasPrefix("/") && !src.contains(".."), "\(src) is not a relative path inside the report")
      let file = fixture.reportDirectory.appendingPathComponent(src)
      #expect(FileManager.default.fileExists(atPath: file.path), "\(src) does not exist")
    }
    for href in attributeValues("href", in: html) { #expect(href.hasPrefix("#"), "link \(href) leaves the page") }
    for banned in ["<script", "<link", "<iframe", "@import", "url(", "http://", "https://"] {
      #expect(!html.contains(banned), "the page contains \(banned)")
    }
    // The ids with markup characters became safe file names.
    let names = try FileManager.default.contentsOfDirectory(atPath: fixture.reportDirectory.appendingPathComponent("img").path)
    #expect(names.allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) } })
  }

  @Test func stringsFromFilesAreEscaped() throws {
    let fixture = try RunFixture()
    defer { fixture.remove() }
    let html = try writeReport(fixture)
    #expect(!html.contains("<i>dog"), "a class name reached the page unescaped")
    #expect(html.contains("&lt;i&gt;dog&amp;co&lt;/i&gt;"))
    #expect(!html.contains("<script>alert"))
    #expect(html.contains(HTMLText.escape(RunFixture.configNote)))
    #expect(!html.contains("t4&<x>"))
    #expect(html.contains("t4&amp;&lt;x&gt;"))
  }

  @Test(arguments: [
    ("a<b", "a&lt;b"), ("x & y", "x &amp; y"), ("\"q\" 'r'", "&quot;q&quot; &#39;r&#39;"), ("é\u{7}z", "éz"), ("a\tb\nc", "a\tb\nc"),
  ])
  func escape(_ input: String, _ expected: String) {
    #expect(HTMLText.escape(input) == expected)
  }

  @Test func anEmptyRunSaysNotRunYetEverywhere() throws {
    let fixture = try RunFixture(stages: [])
    defer { fixture.remove() }
    let html = try writeReport(fixture, dataset: fixture.dataset.path)
    for id in sectionIDs {
      let body = try #require(section(id, in: html), "section \(id) is missing")
      #expect(body.contains("Not run yet"), "section \(id) does not say not run yet")
    }
    #expect(attributeValues("src", in: html).isEmpty)
    let iou = try #require(section("iou", in: html))
    #expect(occurrences(of: "<td>—</td>", in: iou) == 6 * (4 + 3), "6 rows of dashes: split, images, mIoU, accuracy, 3 classes")
    #expect(html.contains("Fully supervised (upper bound)"))
  }

  @Test func onlyErasingDoneShowsErasingAndSaysTheRestIsNotRun() throws {
    let fixture = try RunFixture(stages: [.erase])
    defer { fixture.remove() }
    // No --dataset: the report finds it through RUN/erase/manifest.json.
    let html = try writeReport(fixture, samples: 2)
    for id in ["samples", "timings"] { #expect(!(section(id, in: html) ?? "").contains("Not run yet")) }
    for id in ["predictions", "iou", "confusion"] { #expect((section(id, in: html) ?? "").contains("Not run yet"), "\(id)") }
    let losses = try #require(section("losses", in: html))
    #expect(occurrences(of: "<svg", in: losses) == 1)
    #expect(losses.contains("Not run yet:</strong> no RUN/seg/"))
    let samples = try #require(section("samples", in: html))
    #expect(samples.contains("not run yet: aepsl masks"))
    #expect(occurrences(of: "<div class=\"sample\">", in: samples) == 2)
    let timings = try #require(section("timings", in: html))
    #expect(timings.contains("masks</td><td></td><td><em>not run yet</em>"))
  }

  @Test func missingMetricsAreRowsOfDashes() throws {
    let fixture = try RunFixture()
    defer { fixture.remove() }
    let html = try writeReport(fixture)
    let iou = try #require(section("iou", in: html))
    let rows = iou.components(separatedBy: "<tr").dropFirst().filter { $0.contains(".json</span>") }
    #expect(rows.count == 6)
    for row in rows {
      let missing = ["metrics/psl.json", "metrics/deeplab.json", "metrics/full.json"].contains { row.contains($0) }
      let dashes = occurrences(of: "<td>—</td>", in: row)
      if missing { #expect(dashes == 4 + 3, "\(row)") } else { #expect(dashes == 0, "\(row)") }
    }
    #expect(iou.contains("class=\"bound\""))
    #expect(iou.contains("aepsl eval --pred PREDICTIONS --dataset DATASET --split val --json RUN/metrics/psl.json"))
  }

  @Test func aSecondReportRemovesImagesTheFirstWroteAndNoLongerUses() throws {
    let fixture = try RunFixture()
    defer { fixture.remove() }
    _ = try writeReport(fixture, samples: 4)
    let img = fixture.reportDirectory.appendingPathComponent("img")
    let before = try FileManager.default.contentsOfDirectory(atPath: img.path).count
    let html = try writeReport(fixture, samples: 1)
    let after = try FileManager.default.contentsOfDirectory(atPath: img.path)
    #expect(after.count < before)
    #expect(Set(after) == Set(attributeValues("src", in: html).map { String(unescaped($0).dropFirst(4)) }))
    #expect(!after.contains { $0.hasPrefix(".") }, "no temporary file left behind")
  }

  @Test func aMissingRunDirectoryIsAnError() throws {
    let root = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    #expect(throws: (any Error).self) { try RunReport.write(run: root.appendingPathComponent("nope"), log: { _ in }) }
  }
}

@Suite("Loss curves read defensively")
struct LossCurveTests {
  @Test func erasingStepFile() {
    let c = LossCurve.parse("epoch,loss\n1,0.6\n2,0.5\n")
    #expect(c.xLabel == "epoch" && c.yLabel == "loss")
    #expect(c.points == [.init(x: 1, y: 0.6), .init(x: 2, y: 0.5)])
  }

  @Test func trainSegFileUsesTheTotalColumn() {
    let c = LossCurve.parse("epoch,total,classification,segmentation\r\n1,2.5,0.1,1.2\r\n2,2.0,0.1,1.0\r\n")
    #expect(c.yLabel == "total")
    #expect(c.points.map(\.y) == [2.5, 2.0])
  }

  @Test func junkRowsAreSkippedAndCounted() {
    let c = LossCurve.parse("# comment\niteration,a,b\n10,1,0.9\nx,y,z\n20,1,inf\n30,1\n40,1,0.5\n")
    #expect(c.yLabel == "b")
    #expect(c.points == [.init(x: 10, y: 0.9), .init(x: 40, y: 0.5)])
    #expect(c.skippedRows == 3)
  }

  @Test func noHeaderAndOneColumn() {
    #expect(LossCurve.parse("0.9\n0.8\n").points == [.init(x: 1, y: 0.9), .init(x: 2, y: 0.8)])
    #expect(LossCurve.parse("1,0.9\n2,0.8\n").points == [.init(x: 1, y: 0.9), .init(x: 2, y: 0.8)])
    #expect(LossCurve.parse("").points.isEmpty)
  }
}

/// Which rows of the IoU table no command can fill in this run.
@Suite("Unscorable rows")
struct UnscorableRowsTests {
  @Test func theRowsTheEvaluationCouldNotScoreAreUnscorableWithItsReason() throws {
    let run = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-unscorable-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: run) }
    let metrics = RunLayout(run: run).metrics
    try FileManager.default.createDirectory(at: metrics, withIntermediateDirectories: true)
    try StageManifest(stage: "eval", parameters: [:], inputs: [], startedAt: Date(),
                      notes: ["not_scored": "ae-masks: no image of split 'train' has a ground-truth mask\ncam: no image of split 'train' has a ground-truth mask"])
      .write(to: metrics)
    let rows = RunContents.unscorableRows(run: run, dataset: nil, trainSplit: "train")
    #expect(rows == ["cam": "no image of split 'train' has a ground-truth mask",
                     "ae-masks": "no image of split 'train' has a ground-truth mask"])
    #expect(RunContents.unscorableRows(run: run.appendingPathComponent("none"), dataset: nil, trainSplit: "train").isEmpty)
  }
}
