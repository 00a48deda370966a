import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP(S) download into a partial file that a later call resumes (HTTP Range).
///
/// Bytes are appended to `partial` as they arrive, so an interrupted transfer keeps what it
/// got; the next call asks for `bytes=<size>-` and appends the rest when the server answers
/// 206 with a matching Content-Range, or starts again when it answers 200 (no Range support).
/// The caller verifies the result and renames it into place.
struct HTTPDownload {
  struct Failure: Error, CustomStringConvertible {
    let description: String
  }

  /// What the transfer learnt about the file.
  struct Outcome {
    /// Total size announced by the server (Content-Length of a 200, or Content-Range's total).
    var totalSize: Int?
    /// The SHA-256 the server vouches for: the Hugging Face hub sends LFS files' as
    /// X-Linked-Etag (on the redirect to its CDN) or ETag.
    var serverSHA256: String?
    /// The partial file held this many bytes when the transfer started (0: from scratch).
    var resumedFrom: Int
  }

  let url: URL
  let partial: URL
  var timeout: TimeInterval = 60
  /// Called with (bytes so far, total when known) at most a few times a second.
  var progress: ((Int, Int?) -> Void)?

  func run() throws -> Outcome {
    let existing = (try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int) ?? 0
    if existing == 0 { _ = FileManager.default.createFile(atPath: partial.path, contents: nil) }
    guard let handle = try? FileHandle(forWritingTo: partial) else {
      throw Failure(description: "cannot write \(partial.path); check that its folder is writable")
    }
    defer { try? handle.close() }
    var request = URLRequest(url: url, timeoutInterval: timeout)
    if existing > 0 { request.setValue("bytes=\(existing)-", forHTTPHeaderField: "Range") }
    request.setValue("aepsl", forHTTPHeaderField: "User-Agent")

    let receiver = Receiver(handle: handle, existing: existing, progress: progress)
    let session = URLSession(configuration: .ephemeral, delegate: receiver, delegateQueue: nil)
    defer { session.finishTasksAndInvalidate() }
    session.dataTask(with: request).resume()
    receiver.done.wait()
    if let error = receiver.failure { throw error }
    return Outcome(totalSize: receiver.totalSize, serverSHA256: receiver.serverSHA256, resumedFrom: receiver.resumedFrom)
  }

  /// Receives the response on URLSession's queue and appends to the file.
  private final class Receiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let handle: FileHandle
    let existing: Int
    let progress: ((Int, Int?) -> Void)?
    let done = DispatchSemaphore(value: 0)
    var failure: Failure?
    var totalSize: Int?
    var serverSHA256: String?
    var resumedFrom = 0
    var written = 0
    var lastReport = Date.distantPast

    init(handle: FileHandle, existing: Int, progress: ((Int, Int?) -> Void)?) {
      self.handle = handle
      self.existing = existing
      self.progress = progress
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
      noteHash(response)
      completionHandler(request)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
      guard let http = response as? HTTPURLResponse else {
        failure = Failure(description: "the server's answer is not HTTP")
        return completionHandler(.cancel)
      }
      noteHash(http)
      let length = (http.value(forHTTPHeaderField: "Content-Length")).flatMap { Int($0) }
      switch http.statusCode {
      case 206:
        // "bytes <start>-<end>/<total>": append only when it continues our partial file.
        let range = http.value(forHTTPHeaderField: "Content-Range") ?? ""
        let numbers = range.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        guard numbers.count == 3, numbers[0] == existing else {
          failure = Failure(description: "the server resumed at '\(range)', not at byte \(existing); delete the partial file and retry")
          return completionHandler(.cancel)
        }
        totalSize = numbers[2]
        resumedFrom = existing
        handle.seekToEndOfFile()
      case 200:
        // A full answer (the server ignored Range, or there was nothing to resume): start over.
        totalSize = length
        handle.truncateFile(atOffset: 0)
      case 416 where existing > 0:
        failure = Failure(description: "the server has no bytes past \(existing) (HTTP 416): the partial file is already whole or longer than the file; delete it and retry")
        return completionHandler(.cancel)
      default:
        failure = Failure(description: "HTTP \(http.statusCode) from \(http.url?.absoluteString ?? "the server")")
        return completionHandler(.cancel)
      }
      written = resumedFrom
      completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
      handle.write(data)
      written += data.count
      if let progress, Date().timeIntervalSince(lastReport) > 0.5 {
        lastReport = Date()
        progress(written, totalSize)
      }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
      if let error, failure == nil {
        failure = Failure(description: "the transfer stopped after \(written) bytes (\(error.localizedDescription))")
      }
      try? handle.synchronize()
      done.signal()
    }

    /// Hugging Face's LFS ETags are the file's SHA-256 (64 hex digits, maybe quoted or weak).
    private func noteHash(_ response: HTTPURLResponse) {
      for field in ["X-Linked-Etag", "ETag"] {
        guard let raw = response.value(forHTTPHeaderField: field) else { continue }
        let tag = raw.replacingOccurrences(of: "W/", with: "").trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        if tag.count == 64, tag.allSatisfy(\.isHexDigit) {
          serverSHA256 = tag.lowercased()
          return
        }
      }
    }
  }
}
