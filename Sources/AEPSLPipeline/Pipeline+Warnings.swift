import AEPSLMethod
import Foundation

/// The run's warnings (`RunWarnings`): recomputed from the run's files after every stage, so
/// that RUN/warnings.json always matches what is on disk.
extension Pipeline {
  /// Rewrites RUN/warnings.json and prints each warning it did not already hold (erasing's
  /// after erase, the final model's after eval).
  func updateWarnings() throws {
    let url = layout.warningsFile
    let before = (try? RunWarnings.read(from: url)) ?? nil
    let now = RunWarnings.collect(run: run, finalModel: finalVariant)
    for warning in now where !(before ?? []).contains(warning) { log(warning.description) }
    if before != now { try RunWarnings.write(now, to: url) }
  }

  /// The lines the run summary ends with: every warning, or nothing.
  var warningLines: [String] {
    guard let warnings = (try? RunWarnings.read(from: layout.warningsFile)) ?? nil, !warnings.isEmpty else { return [] }
    return ["", "\(warnings.count) warning\(warnings.count == 1 ? "" : "s") (\(layout.warningsFile.path)):"] + warnings.map(\.description)
  }
}
