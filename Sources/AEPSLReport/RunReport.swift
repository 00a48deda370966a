import AEPSLFiles
import AEPSLMethod
import Foundation

/// What `aepsl report` can be asked.
public struct ReportOptions: Sendable {
  /// The dataset (VOC layout) for images and ground truth. Default: the one the erasing
  /// stage records (or config.json's "dataset").
  public var dataset: String?
  /// Training images shown step by step, and validation images with their predictions.
  public var samples = 6
  /// Images are scaled down to at most this size on their longer side.
  public var maxImageSide = 256

  public init(dataset: String? = nil, samples: Int = 6, maxImageSide: Int = 256) {
    self.dataset = dataset
    self.samples = samples
    self.maxImageSide = maxImageSide
  }
}

/// The run report (docs/METHOD.md section 4): RUN/report/index.html, one page that opens from
/// disk with no server and no network. Plots and the confusion matrix are inline SVG; the
/// images are PNG files in RUN/report/img/, referenced relatively, so the report directory
/// can be copied anywhere as a whole. Every section is shown only when its stage has written
/// its files, and says "Not run yet" otherwise.
///
/// Files read (all optional): RUN/config.json; RUN/erase/manifest.json,
/// RUN/erase/mean_pixel.json and RUN/erase/step-N/{manifest.json, loss.csv, cams/<id>.npy,
/// erased/<id>.png}; RUN/masks/<id>.png and manifest.json; RUN/seg/<variant>/{loss.csv,
/// manifest.json}; RUN/predict/<id>.png; RUN/metrics/<name>.json for the names in
/// `MetricsEntry.rows`, `MetricsEntry.testRows` and `MetricsEntry.predict`; RUN/warnings.json;
/// every manifest.json one or two levels
/// below RUN for the timings.
public enum RunReport {
  /// Writes the report and returns the URL of its index.html. Throws only when the run
  /// directory does not exist or the report cannot be written; an unreadable artefact
  /// becomes a note on the page.
  @discardableResult
  public static func write(run: URL, options: ReportOptions = .init(), log: (String) -> Void = { print($0) }) throws -> URL {
    guard RunContents.isDirectory(run) else {
      throw AEPSLError(file: run.path, problem: "is not a run directory", fix: "Give the --run directory of `aepsl erase` (or `aepsl run`).")
    }
    let directory = run.appendingPathComponent("report", isDirectory: true)
    let tiles = try TileWriter(directory: directory.appendingPathComponent("img", isDirectory: true), maxSide: options.maxImageSide)
    let contents = RunContents(run: run, datasetOverride: options.dataset)
    let page = ReportPage(contents: contents, tiles: tiles, options: options)
    let html = page.html()
    let index = directory.appendingPathComponent("index.html")
    try writeFileAtomically(Data(html.utf8), to: index)
    tiles.removeStale()
    for problem in page.problems { log("report: \(problem)") }
    log("report: \(index.path) (\(tiles.written.count) images)")
    return index
  }
}
