import Foundation

/// Text for HTML: every string that comes from a file (class names, ids, manifest values,
/// file paths, error messages) goes through `escape` before it reaches the page.
public enum HTMLText {
  /// Escapes `& < > " '` (safe in element content and in double- or single-quoted
  /// attributes) and drops control characters other than tab and newline.
  public static func escape(_ text: String) -> String {
    var out = String.UnicodeScalarView()
    out.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": out.append(contentsOf: "&amp;".unicodeScalars)
      case "<": out.append(contentsOf: "&lt;".unicodeScalars)
      case ">": out.append(contentsOf: "&gt;".unicodeScalars)
      case "\"": out.append(contentsOf: "&quot;".unicodeScalars)
      case "'": out.append(contentsOf: "&#39;".unicodeScalars)
      case "\t", "\n": out.append(scalar)
      default:
        if scalar.value < 0x20 || scalar.value == 0x7F { continue }
        out.append(scalar)
      }
    }
    return String(out)
  }
}

/// Small builders for the page's markup. Plain-text arguments are escaped here; arguments
/// named `html` (and table cells) are markup built by these helpers.
enum Markup {
  static func esc(_ text: String) -> String { HTMLText.escape(text) }

  /// A section with an id (the navigation links to it), a heading and its body.
  static func section(id: String, title: String, html body: String) -> String {
    "<section id=\"\(esc(id))\">\n<h2>\(esc(title))</h2>\n\(body)\n</section>\n"
  }

  /// The sentence every section shows when its stage has not produced its files.
  static func notRun(_ what: String, hint: String) -> String {
    "<p class=\"notrun\"><strong>Not run yet:</strong> \(esc(what)). \(esc(hint))</p>"
  }

  static func note(_ text: String) -> String { "<p class=\"note\">\(esc(text))</p>" }

  static func warning(_ text: String) -> String { "<p class=\"warning\">\(esc(text))</p>" }

  /// A table from a header row and rows of ready markup cells, in a container that scrolls
  /// sideways when the table is wider than the page (the page itself never does).
  static func table(class cls: String, header: [String], rows: [[String]]) -> String {
    var out = "<div class=\"scroll\"><table class=\"\(esc(cls))\">\n<thead><tr>"
    out += header.map { "<th>\(esc($0))</th>" }.joined()
    out += "</tr></thead>\n<tbody>\n"
    for row in rows { out += "<tr>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>\n" }
    return out + "</tbody>\n</table></div>"
  }

  /// A definition list of (term, markup) pairs.
  static func definitions(_ items: [(String, String)]) -> String {
    "<dl class=\"facts\">" + items.map { "<dt>\(esc($0.0))</dt><dd>\($0.1)</dd>" }.joined() + "</dl>"
  }

  /// The palette colour of a label as CSS.
  static func rgb(_ c: (red: UInt8, green: UInt8, blue: UInt8)) -> String { "rgb(\(c.red),\(c.green),\(c.blue))" }

  /// The page's only style sheet: inline, system fonts, nothing fetched.
  static let styleSheet = """
    :root { color-scheme: light; }
    body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0 auto;
           padding: 1em 2em 4em; max-width: 1200px; color: #1a1a1a; background: #fff; line-height: 1.4; }
    h1 { margin-bottom: 0.2em; }
    h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
    h3 { margin: 1.4em 0 0.4em; font-size: 1.05em; }
    nav a { margin-right: 1em; }
    code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em; }
    .notrun { background: #f6f6f6; border-left: 4px solid #aaa; padding: 0.5em 0.8em; color: #444; }
    .warning { background: #fff4e5; border-left: 4px solid #e08a00; padding: 0.5em 0.8em; }
    .note { color: #555; font-size: 0.92em; }
    dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.2em; }
    dl.facts dt { font-weight: 600; }
    dl.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
    .scroll { overflow-x: auto; max-width: 100%; }
    table { border-collapse: collapse; margin: 0.5em 0; }
    th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
    thead th { background: #f3f3f3; }
    table.numbers td { text-align: right; font-variant-numeric: tabular-nums; }
    table.numbers td:first-child { text-align: left; }
    table.numbers tr.bound td { border-top: 3px double #999; font-style: italic; }
    table.numbers td.unscorable { text-align: left; color: #555; font-style: italic; }
    .warnings { background: #fff4e5; border: 2px solid #e08a00; border-radius: 4px; padding: 0.3em 1em; margin: 1em 0; }
    .warnings h2 { border: none; margin: 0.4em 0; color: #8a4b00; }
    .warnings li { margin-bottom: 0.5em; }
    table.config td:first-child { font-weight: 600; }
    table.config td .mono { overflow-wrap: anywhere; }
    table.numbers th:first-child, table.numbers td:first-child { position: sticky; left: 0; z-index: 1; background: #fff;
                                                                 box-shadow: 1px 0 0 #ddd; }
    table.numbers thead th:first-child { background: #f3f3f3; }
    table.timings td:nth-child(3) { text-align: right; font-variant-numeric: tabular-nums; }
    table.tiles { border: none; }
    table.tiles th, table.tiles td { border: none; padding: 2px 4px; }
    table.tiles th[scope=row] { width: 7.5em; font-weight: 600; vertical-align: middle; }
    figure { display: inline-block; margin: 2px 6px 6px 0; vertical-align: top; }
    figure img { display: block; width: 160px; height: auto; border: 1px solid #ccc; }
    figure img.labels { image-rendering: pixelated; }
    img, svg { max-width: 100%; }
    figcaption { font-size: 0.8em; color: #444; max-width: 160px; overflow-wrap: anywhere; }
    .placeholder { width: 160px; height: 120px; display: flex; align-items: center; justify-content: center;
                   text-align: center; font-size: 0.8em; color: #777; background: #f4f4f4; border: 1px dashed #bbb; }
    .sample { border-top: 1px solid #eee; padding-top: 0.4em; }
    .strip { margin-top: 0.4em; }
    .swatch { display: inline-block; width: 0.9em; height: 0.9em; border: 1px solid #888; vertical-align: -0.1em;
              margin-right: 0.3em; }
    .legend span.item { margin-right: 1em; white-space: nowrap; }
    svg { max-width: 100%; height: auto; font-family: inherit; }
    .merged { color: #1b7a1b; }
    .notmerged { color: #b00020; }
    """
}

/// Numbers as the page prints them (C locale, fixed digits).
enum Format {
  static func percent(_ v: Double?, digits: Int = 1) -> String {
    guard let v, v.isFinite else { return "—" }
    return String(format: "%.\(digits)f", v * 100)
  }

  static func number(_ v: Double, digits: Int = 4) -> String { String(format: "%.\(digits)f", v) }

  static func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "—" }
    if seconds < 60 { return String(format: "%.1f s", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%d:%02d", s / 60, s % 60) }
    return String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60)
  }
}
