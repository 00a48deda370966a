import Foundation

/// Inline SVG charts: no script, no external style, text escaped.
enum SVGPlot {
  /// Distinct line colours (matplotlib's tab10).
  static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                       "#bcbd22", "#17becf"]

  struct Series {
    var label: String
    var color: String
    var points: [LossCurve.Point]
    var dashed = false
  }

  /// "Nice" tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten.
  static func ticks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
    guard high > low, low.isFinite, high.isFinite else { return [low] }
    let raw = (high - low) / Double(max(1, count))
    let power = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? raw
    var out: [Double] = []
    var v = ceil(low / step - 1e-9) * step
    while v <= high + step * 1e-9 {
      out.append(abs(v) < step * 1e-9 ? 0 : v)
      v += step
    }
    return out
  }

  static func label(_ v: Double) -> String {
    if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
    let text = String(format: "%.4g", v)
    return text
  }

  /// A line chart of several series on shared axes, the legend on the right.
  static func lines(_ series: [Series], xLabel: String, yLabel: String, title: String) -> String {
    let width = 860.0, height = 340.0
    let left = 62.0, right = 560.0, top = 28.0, bottom = 290.0
    let all = series.flatMap(\.points)
    guard !all.isEmpty else { return "" }
    var (x0, x1) = (all.map(\.x).min()!, all.map(\.x).max()!)
    if x1 <= x0 { x0 -= 1; x1 += 1 }
    var y0 = min(0, all.map(\.y).min()!)
    var y1 = all.map(\.y).max()!
    if y1 <= y0 { y1 = y0 + 1 }
    let yTicks = ticks(y0, y1)
    y0 = min(y0, yTicks.first ?? y0)
    y1 = max(y1, yTicks.last ?? y1)
    let xTicks = ticks(x0, x1, count: 8).filter { $0 >= x0 - 1e-9 && $0 <= x1 + 1e-9 }
    func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (right - left) }
    func py(_ y: Double) -> Double { bottom - (y - y0) / (y1 - y0) * (bottom - top) }
    func f(_ v: Double) -> String { String(format: "%.1f", v) }

    var svg = "<svg class=\"plot\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"\(Markup.esc(title))\">\n"
    svg += "<title>\(Markup.esc(title))</title>\n"
    svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"#fcfcfc\" stroke=\"#999\"/>\n"
    for t in yTicks {
      let y = py(t)
      svg += "<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"#e4e4e4\"/>"
      svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" font-size=\"11\" text-anchor=\"end\">\(Markup.esc(label(t)))</text>\n"
    }
    for t in xTicks {
      let x = px(t)
      svg += "<line x1=\"\(f(x))\" x2=\"\(f(x))\" y1=\"\(f(bottom))\" y2=\"\(f(bottom + 4))\" stroke=\"#999\"/>"
      svg += "<text x=\"\(f(x))\" y=\"\(f(bottom + 17))\" font-size=\"11\" text-anchor=\"middle\">\(Markup.esc(label(t)))</text>\n"
    }
    svg += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 38))\" font-size=\"12\" text-anchor=\"middle\">\(Markup.esc(xLabel))</text>\n"
    svg += "<text x=\"14\" y=\"\(f((top + bottom) / 2))\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(f((top + bottom) / 2)))\">\(Markup.esc(yLabel))</text>\n"

    for s in series where !s.points.isEmpty {
      let path = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
      let dash = s.dashed ? " stroke-dasharray=\"6 4\"" : ""
      svg += "<polyline class=\"series\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"\(dash) points=\"\(path)\"><title>\(Markup.esc(s.label))</title></polyline>\n"
      if s.points.count <= 60 {
        for p in s.points {
          svg += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\" fill=\"\(s.color)\"><title>\(Markup.esc("\(s.label): \(label(p.x)), \(String(format: "%.4f", p.y))"))</title></circle>"
        }
        svg += "\n"
      }
    }
    // Legend.
    var ly = top + 8
    svg += "<g class=\"legend\">"
    for s in series {
      let dash = s.dashed ? " stroke-dasharray=\"6 4\"" : ""
      svg += "<line x1=\"\(f(right + 20))\" x2=\"\(f(right + 48))\" y1=\"\(f(ly))\" y2=\"\(f(ly))\" stroke=\"\(s.color)\" stroke-width=\"3\"\(dash)/>"
      svg += "<text x=\"\(f(right + 54))\" y=\"\(f(ly + 4))\" font-size=\"12\">\(Markup.esc(s.label))</text>\n"
      ly += 20
    }
    svg += "</g>\n</svg>"
    return svg
  }

  /// A confusion matrix as a heat map: rows ground truth, columns prediction, each row
  /// normalised to sum to 1; cells show the percentage, tooltips the pixel counts.
  static func confusion(_ matrix: [[Int]], names: [String], title: String) -> String {
    let n = matrix.count
    guard n > 0, matrix.allSatisfy({ $0.count == n }) else { return "" }
    let cell = n <= 8 ? 48.0 : (n <= 24 ? 32.0 : 20.0)
    // Labels at 11 px are about 6.5 px a character; column labels are turned by 60 degrees.
    let longest = min(240, 6.5 * Double(names.map(\.count).max() ?? 4))
    let left = longest + 14, top = 0.87 * longest + 16
    let width = left + cell * Double(n) + 0.5 * longest + 16, height = top + cell * Double(n) + 12
    func f(_ v: Double) -> String { String(format: "%.1f", v) }
    func name(_ i: Int) -> String { i < names.count ? names[i] : "class \(i)" }

    var svg = "<svg class=\"confusion\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"\(Markup.esc(title))\">\n"
    svg += "<title>\(Markup.esc(title))</title>\n"
    for t in 0..<n {
      let total = matrix[t].reduce(0, +)
      for p in 0..<n {
        let count = matrix[t][p]
        let share = total > 0 ? Double(count) / Double(total) : 0
        // White to dark blue.
        let (r, g, b) = (255 - share * (255 - 8), 255 - share * (255 - 48), 255 - share * (255 - 107))
        let x = left + Double(p) * cell, y = top + Double(t) * cell
        svg += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(cell))\" height=\"\(f(cell))\" fill=\"rgb(\(Int(r)),\(Int(g)),\(Int(b)))\" stroke=\"#fff\">"
        svg += "<title>\(Markup.esc("truth \(name(t)), predicted \(name(p)): \(count) pixels (\(String(format: "%.1f", share * 100))% of the row)"))</title></rect>"
        if share >= 0.005 {
          let color = share > 0.5 ? "#fff" : "#222"
          svg += "<text x=\"\(f(x + cell / 2))\" y=\"\(f(y + cell / 2 + 4))\" font-size=\"\(cell >= 30 ? 11 : 8)\" text-anchor=\"middle\" fill=\"\(color)\">\(Int((share * 100).rounded()))</text>"
        }
      }
      svg += "\n"
    }
    for i in 0..<n {
      let y = top + Double(i) * cell + cell / 2 + 4
      svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y))\" font-size=\"11\" text-anchor=\"end\">\(Markup.esc(name(i)))</text>"
      let x = left + Double(i) * cell + cell / 2 + 4
      svg += "<text x=\"\(f(x))\" y=\"\(f(top - 6))\" font-size=\"11\" transform=\"rotate(-60 \(f(x)) \(f(top - 6)))\">\(Markup.esc(name(i)))</text>\n"
    }
    svg += "</svg>"
    return svg
  }
}
