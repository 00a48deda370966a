import Foundation
import Testing

/// Every document the README, the sources and the messages cite is in the repository (the
/// README and an error message once cited a DESIGN.md that was not).
@Suite("Cited documents exist")
struct DocumentationTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  /// Markdown files named in `text`: "docs/METHOD.md", "RESULTS.md", ...
  static func citations(in text: String) -> Set<String> {
    let pattern = try! NSRegularExpression(pattern: "(?<![\\w/.-])((?:docs/)?[A-Z][A-Za-z_-]*\\.md)")
    let range = NSRange(text.startIndex..., in: text)
    return Set(pattern.matches(in: text, range: range).compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } })
  }

  static func sourceFiles() -> [URL] {
    let walker = FileManager.default.enumerator(at: root.appendingPathComponent("Sources"), includingPropertiesForKeys: nil)
    return (walker?.allObjects as? [URL] ?? []).filter { $0.pathExtension == "swift" }
  }

  @Test func everyCitedDocumentExists() throws {
    var cited: [String: String] = [:]
    for file in [Self.root.appendingPathComponent("README.md")] + Self.sourceFiles() {
      let text = try String(contentsOf: file, encoding: .utf8)
      for name in Self.citations(in: text) { cited[name] = file.lastPathComponent }
    }
    #expect(cited["docs/METHOD.md"] != nil, "the README or a source names the method document")
    for (name, file) in cited.sorted(by: { $0.key < $1.key }) {
      #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(name).path),
              "\(file) cites \(name), which is not in the repository")
    }
  }

  @Test func theCitationPatternFindsWhatItShould() {
    #expect(Self.citations(in: "see docs/METHOD.md 1.3 and RESULTS.md, not x/DESIGN.md") == ["docs/METHOD.md", "RESULTS.md"])
  }
}
