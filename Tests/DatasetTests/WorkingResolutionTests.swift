import Foundation
import Testing
import AEPSLData

@Suite("Working resolution")
struct WorkingResolutionTests {
  /// A config file writes "crop", "own" or a number; each reads back as itself.
  @Test(arguments: [(WorkingResolution.crop, #""crop""#), (.own, #""own""#), (.side(200), "200")])
  func roundTripsThroughJSON(value: WorkingResolution, json: String) throws {
    #expect(String(decoding: try JSONEncoder().encode([value]), as: UTF8.self) == "[\(json)]")
    #expect(try JSONDecoder().decode([WorkingResolution].self, from: Data("[\(json)]".utf8)) == [value])
  }

  @Test(arguments: ["8", #""big""#, "null", "1.5"])
  func rejectsWhatIsNoResolution(json: String) {
    #expect(throws: DecodingError.self) { try JSONDecoder().decode([WorkingResolution].self, from: Data("[\(json)]".utf8)) }
  }

  /// The default follows the crop: a crop of 128 shows the whole of a 256-pixel image resized to 128.
  @Test func theLongerSideFollowsTheCrop() {
    #expect(WorkingResolution.crop.longerSide(crop: 128) == 128)
    #expect(WorkingResolution.crop.longerSide(crop: 321) == 321)
    #expect(WorkingResolution.own.longerSide(crop: 128) == nil)
    #expect(WorkingResolution.side(300).longerSide(crop: 128) == 300)
    #expect(WorkingResolution(text: "crop") == .crop && WorkingResolution(text: "15") == nil && WorkingResolution(text: "16") == .side(16))
  }
}
