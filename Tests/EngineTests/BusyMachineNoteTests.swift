import AEPSLEngine
import Testing

/// Issue 18, contention: when a job is told that the cores it asks for are taken.
@Suite("Busy machine note")
struct BusyMachineNoteTests {
  struct Case: CustomTestStringConvertible, Sendable {
    var busy: Double
    var threads: Int
    var cores: Int
    /// The --threads the note advises; nil when there is no note.
    var advice: Int?
    var testDescription: String { "\(threads) threads on \(cores) cores, \(busy) busy" }
  }

  @Test(arguments: [
    Case(busy: 0.1, threads: 2, cores: 2, advice: nil),   // a quiet machine
    Case(busy: 0.4, threads: 2, cores: 2, advice: nil),   // an editor, a shell
    Case(busy: 2.0, threads: 2, cores: 2, advice: 1),     // another job of 2 threads
    Case(busy: 1.0, threads: 1, cores: 2, advice: nil),   // one core left, one thread asked
    Case(busy: 3.0, threads: 4, cores: 8, advice: nil),   // enough cores left
    Case(busy: 6.0, threads: 8, cores: 8, advice: 2),
    Case(busy: 9.0, threads: 2, cores: 8, advice: 1),     // more than full: at least one thread
  ])
  func noteAdvisesTheCoresLeft(_ c: Case) {
    let note = ComputeThreads.busyMachineNote(threads: c.threads, busy: c.busy, cores: c.cores)
    if let advice = c.advice {
      #expect(note?.contains("Give this job --threads \(advice),") == true, "\(note ?? "no note")")
    } else {
      #expect(note == nil, "\(note ?? "")")
    }
  }

  @Test func busyCoresReadsProc() {
    let busy = ComputeThreads.busyCores()
    #expect(busy != nil && busy! >= 0)
  }
}
