import AEPSLData
import AEPSLReport
import Foundation
import Testing

/// Headless Chromium, found on PATH or through $AEPSL_CHROMIUM. `make test` installs the
/// Debian package `chromium` (scripts/install-deps.sh --with-chromium).
enum Chromium {
  static let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chromium-headless-shell"]

  static let executable: String? = {
    let environment = ProcessInfo.processInfo.environment
    if let given = environment["AEPSL_CHROMIUM"], !given.isEmpty {
      return FileManager.default.isExecutableFile(atPath: given) ? given : nil
    }
    let path = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
    for name in names {
      for dir in path {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
      }
    }
    return nil
  }()

  /// Set AEPSL_SKIP_BROWSER_TEST=1 to skip the browser test on a machine without Chromium
  /// on purpose; otherwise a missing Chromium fails the test, since `make test` installs it.
  static let skipRequested = ProcessInfo.processInfo.environment["AEPSL_SKIP_BROWSER_TEST"] == "1"

  static let missingMessage = """
    headless Chromium was not found (looked for $AEPSL_CHROMIUM, then \(names.joined(separator: ", ")) on PATH). \
    Install it with `bash scripts/install-deps.sh --with-chromium` (apt-get install chromium; `make test` does this), \
    point AEPSL_CHROMIUM at a Chromium binary, or set AEPSL_SKIP_BROWSER_TEST=1 to skip this test.
    """

  /// Runs Chromium on `page` and returns the DOM after the load event (and after at most
  /// `budget` ms of virtual time), with stderr for diagnostics. Name resolution is mapped to
  /// nowhere, so anything the page tried to fetch from a network would fail to load.
  static func dumpDOM(_ page: URL, profile: URL, width: Int = 1000, budget: Int = 5000,
                      timeout: TimeInterval = 30) throws -> (dom: String, stderr: String, status: Int32) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable!)
    process.arguments = [
      "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
      "--no-default-browser-check", "--disable-extensions", "--mute-audio", "--disable-background-networking",
      "--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=\(profile.path)",
      "--window-size=\(width),800", "--virtual-time-budget=\(budget)", "--dump-dom", page.absoluteString,
    ]
    let out = Pipe()
    let errFile = profile.deletingLastPathComponent().appendingPathComponent("chromium-stderr.txt")
    _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
    let err = try FileHandle(forWritingTo: errFile)
    defer { try? err.close() }
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    watchdog.cancel()
    let stderr = (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
    return (String(decoding: data, as: UTF8.self), stderr, process.terminationStatus)
  }
}

/// What the check script reports from inside the browser.
struct BrowserCheck: Decodable {
  var images: Int
  var loaded: Int
  var failed: [String]
  var tables: Int
  var svgs: Int
  var svgsDrawn: Int
  var sections: Int
  var notFileResources: [String]
  /// The page's width and the window's: the page fits when the first is at most the second.
  var scrollWidth: Int
  var innerWidth: Int
  /// Elements reaching past the window's right edge (tag.class), for the failure message.
  var wide: [String]
}

/// Appended to a copy of the report (the report itself carries no script): after the load
/// event it writes what it found into the DOM as JSON, which --dump-dom then prints.
let checkScript = """
  <script>
  window.addEventListener('load', function () {
    var images = Array.prototype.slice.call(document.images);
    var svgs = Array.prototype.slice.call(document.querySelectorAll('svg'));
    var resources = performance.getEntriesByType('resource').map(function (r) { return r.name; });
    var result = {
      images: images.length,
      loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
      failed: images.filter(function (i) { return !(i.naturalWidth > 0); }).map(function (i) { return i.getAttribute('src'); }),
      tables: document.querySelectorAll('table').length,
      svgs: svgs.length,
      svgsDrawn: svgs.filter(function (s) { var b = s.getBoundingClientRect(); return b.width > 0 && b.height > 0; }).length,
      sections: document.querySelectorAll('section').length,
      notFileResources: resources.filter(function (n) { return n.indexOf('file:') !== 0; }),
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      wide: Array.prototype.slice.call(document.body.querySelectorAll('*')).filter(function (e) {
        return e.getBoundingClientRect().right > window.innerWidth && !e.closest('.scroll');
      }).slice(0, 10).map(function (e) { return e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''); })
    };
    var out = document.createElement('pre');
    out.id = 'aepsl-browser-check';
    out.setAttribute('data-result', JSON.stringify(result));
    document.body.appendChild(out);
  });
  </script>
  """

/// Serialized: two browsers at once on a small CI machine only slow each other down.
@Suite("Run report in headless Chromium", .serialized)
struct BrowserTests {
  /// Writes a copy of the report with the check script and opens it in Chromium.
  func check(_ fixture: RunFixture, html: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> BrowserCheck {
    let page = fixture.reportDirectory.appendingPathComponent("browser-check.html")
    let body = try #require(html.range(of: "</body>"), "the report has no </body>", sourceLocation: sourceLocation)
    try write(html.replacingCharacters(in: body, with: checkScript + "\n</body>"), to: page)
    let started = Date()
    let (dom, stderr, status) = try Chromium.dumpDOM(page, profile: fixture.root.appendingPathComponent("chromium-profile"))
    let seconds = Date().timeIntervalSince(started)
    let json = try #require(attributeValues("data-result", in: dom).first,
                            "Chromium (exit \(status), \(Int(seconds)) s) printed no check result. stderr:\n\(stderr.suffix(3000))",
                            sourceLocation: sourceLocation)
    return try JSONDecoder().decode(BrowserCheck.self, from: Data(unescaped(json).utf8))
  }

  @Test(.enabled(if: !Chromium.skipRequested, "AEPSL_SKIP_BROWSER_TEST=1"), .timeLimit(.minutes(1)))
  func everyImageLoadsFromDiskWithoutANetwork() throws {
    guard Chromium.executable != nil else {
      Issue.record(Comment(rawValue: Chromium.missingMessage))
      return
    }
    let fixture = try RunFixture()
    defer { fixture.remove() }
    let index = try RunReport.write(run: fixture.run, options: ReportOptions(samples: 10), log: { _ in })
    let html = try String(contentsOf: index, encoding: .utf8)
    let result = try check(fixture, html: html)
    #expect(result.images == occurrences(of: "<img", in: html))
    #expect(result.images >= 20)
    #expect(result.loaded == result.images, "images that did not load: \(result.failed)")
    #expect(result.tables == occurrences(of: "<table", in: html))
    #expect(result.svgs == 3, "two loss plots and the confusion matrix")
    #expect(result.svgsDrawn == result.svgs)
    #expect(result.sections == sectionIDs.count)
    #expect(result.notFileResources.isEmpty, "the page asked the network for \(result.notFileResources)")
  }

  /// A dataset of 20 classes (PASCAL VOC's) in a 1,000 px window: the configuration and the
  /// IoU table (21 columns of classes) stay within the page; a table wider than the page
  /// scrolls inside its own container, never the page.
  @Test(.enabled(if: !Chromium.skipRequested, "AEPSL_SKIP_BROWSER_TEST=1"), .timeLimit(.minutes(1)))
  func twentyClassesFitAThousandPixelWindow() throws {
    guard Chromium.executable != nil else {
      Issue.record(Comment(rawValue: Chromium.missingMessage))
      return
    }
    let fixture = try RunFixture(classes: ClassList.voc.names)
    defer { fixture.remove() }
    let index = try RunReport.write(run: fixture.run, options: ReportOptions(samples: 4), log: { _ in })
    let html = try String(contentsOf: index, encoding: .utf8)
    #expect(html.contains("<th>tvmonitor</th>"), "the IoU table has a column per class")
    let result = try check(fixture, html: html)
    #expect(result.innerWidth == 1000)
    #expect(result.scrollWidth <= result.innerWidth,
            "the page is \(result.scrollWidth) px wide in a \(result.innerWidth) px window; past the edge: \(result.wide)")
    #expect(result.wide.isEmpty, "\(result.wide)")
    #expect(result.loaded == result.images, "images that did not load: \(result.failed)")
  }

  /// The check itself: a report whose image file is gone, and one that asks the network for
  /// an image, are caught.
  @Test(.enabled(if: !Chromium.skipRequested, "AEPSL_SKIP_BROWSER_TEST=1"), .timeLimit(.minutes(1)))
  func aMissingOrRemoteImageIsCaught() throws {
    guard Chromium.executable != nil else {
      Issue.record(Comment(rawValue: Chromium.missingMessage))
      return
    }
    let fixture = try RunFixture(stages: [.erase])
    defer { fixture.remove() }
    let index = try RunReport.write(run: fixture.run, options: ReportOptions(samples: 1), log: { _ in })
    var html = try String(contentsOf: index, encoding: .utf8)
    let sources = attributeValues("src", in: html)
    try FileManager.default.removeItem(at: fixture.reportDirectory.appendingPathComponent(unescaped(sources[0])))
    html = html.replacingOccurrences(of: "src=\"\(sources[1])\"", with: "src=\"https://example.invalid/x.png\"")
    let result = try check(fixture, html: html)
    #expect(result.images == sources.count)
    #expect(result.loaded == sources.count - 2)
    #expect(Set(result.failed) == [unescaped(sources[0]), "https://example.invalid/x.png"])
  }
}
