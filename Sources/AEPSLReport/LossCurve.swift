import Foundation

/// A training loss curve read from a `loss.csv`.
///
/// Read defensively, since several stages write these files: a header line is optional
/// (without one the columns are "x" and "loss"); the first column is the x axis (epoch or
/// iteration) unless the file has a single column, in which case x is the row number; the y
/// column is the one named `loss` (or `total`, `total_loss`, `train_loss`), else the last.
/// Blank lines, comment lines (#), rows too short and values that are not finite numbers are
/// skipped.
public struct LossCurve: Sendable, Equatable {
  public struct Point: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) { self.x = x; self.y = y }
  }

  public var xLabel: String
  public var yLabel: String
  public var points: [Point]
  /// Rows that could not be read (for a note on the page).
  public var skippedRows: Int

  public init(xLabel: String, yLabel: String, points: [Point], skippedRows: Int = 0) {
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.points = points
    self.skippedRows = skippedRows
  }

  static let lossColumnNames = ["loss", "total", "total_loss", "train_loss"]

  public static func parse(_ text: String) -> LossCurve {
    let lines = text.split(whereSeparator: \.isNewline)
      .map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    guard let first = lines.first else { return LossCurve(xLabel: "x", yLabel: "loss", points: []) }
    let split = { (line: String) in line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }
    let firstFields = split(first)
    let hasHeader = firstFields.contains { Double($0) == nil }
    let header = hasHeader ? firstFields : []
    let rows = (hasHeader ? Array(lines.dropFirst()) : lines).map(split)
    let columns = max(header.count, rows.first?.count ?? 0)
    guard columns > 0 else { return LossCurve(xLabel: "x", yLabel: "loss", points: []) }

    let yColumn: Int
    let xColumn: Int?
    if columns == 1 {
      xColumn = nil
      yColumn = 0
    } else {
      xColumn = 0
      let lowered = header.map { $0.lowercased() }
      yColumn = lossColumnNames.lazy.compactMap { name in lowered.firstIndex(of: name) }.first(where: { $0 != 0 })
        ?? (columns - 1)
    }
    var points: [Point] = []
    var skipped = 0
    for (i, row) in rows.enumerated() {
      guard row.count > yColumn, let y = Double(row[yColumn]), y.isFinite else { skipped += 1; continue }
      if let xColumn {
        guard row.count > xColumn, let x = Double(row[xColumn]), x.isFinite else { skipped += 1; continue }
        points.append(Point(x: x, y: y))
      } else {
        points.append(Point(x: Double(i + 1), y: y))
      }
    }
    let xLabel = xColumn.flatMap { header.indices.contains($0) ? header[$0] : nil } ?? (xColumn == nil ? "row" : "x")
    let yLabel = header.indices.contains(yColumn) ? header[yColumn] : "loss"
    return LossCurve(xLabel: xLabel.isEmpty ? "x" : xLabel, yLabel: yLabel.isEmpty ? "loss" : yLabel,
                     points: points, skippedRows: skipped)
  }

  /// At most `limit` points, evenly strided, keeping the last (for long iteration logs).
  func thinned(to limit: Int) -> [Point] {
    guard points.count > limit, limit > 1 else { return points }
    let step = Double(points.count - 1) / Double(limit - 1)
    return (0..<limit).map { points[min(points.count - 1, Int((Double($0) * step).rounded()))] }
  }
}
