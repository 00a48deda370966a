import AEPSLFiles
import Foundation

/// The parts of a PASCAL VOC annotation file (Annotations/<id>.xml) this project uses.
///
/// The image's labels are the set of its objects' class names. Objects marked difficult
/// count: they are in the image, and the mask labels them too.
public struct VOCAnnotation: Sendable, Equatable {
  /// A pixel box, inclusive and 1-based as VOC writes it.
  public struct Box: Sendable, Equatable {
    public var xmin, ymin, xmax, ymax: Int
    public init(xmin: Int, ymin: Int, xmax: Int, ymax: Int) {
      self.xmin = xmin; self.ymin = ymin; self.xmax = xmax; self.ymax = ymax
    }
  }

  public struct Object: Sendable, Equatable {
    public var name: String
    /// The 0-based index of `name` in the class list (mask label `classIndex + 1`).
    public var classIndex: Int
    public var difficult: Bool
    public var truncated: Bool
    public var box: Box?

    public init(name: String, classIndex: Int, difficult: Bool = false, truncated: Bool = false, box: Box? = nil) {
      self.name = name; self.classIndex = classIndex; self.difficult = difficult
      self.truncated = truncated; self.box = box
    }
  }

  public var filename: String?
  /// The image size the annotation states, when it states one.
  public var width: Int?
  public var height: Int?
  public var objects: [Object]

  public init(filename: String? = nil, width: Int? = nil, height: Int? = nil, objects: [Object]) {
    self.filename = filename; self.width = width; self.height = height; self.objects = objects
  }

  /// The image's labels: the sorted, distinct class indices of its objects.
  public var labels: [Int] { Array(Set(objects.map(\.classIndex))).sorted() }

  /// Reads and checks an annotation file; every error names the file.
  public init(contentsOf url: URL, classes: ClassList) throws {
    let data = try readDatasetFile(url, what: "annotation")
    try self.init(xmlData: data, classes: classes, file: url.path)
  }

  /// Parses annotation XML. Unknown class names, malformed XML and DTDs throw.
  public init(xmlData data: Data, classes: ClassList, file: String? = nil) throws {
    func invalid(_ problem: String) -> AEPSLError {
      AEPSLError(kind: .invalidData, file: file, problem: problem,
                   fix: "Fix or regenerate the annotation (PASCAL VOC XML: <annotation> with <object><name>)")
    }
    let root: XMLNode
    do {
      root = try XMLDocumentParser.parse(data)
    } catch {
      throw invalid("unreadable XML, line \(error.line): \(error.message)")
    }
    guard root.name == "annotation" else {
      throw invalid("the root element is <\(root.name)>, not <annotation>")
    }
    func integer(_ text: String?, _ what: String) throws -> Int? {
      guard let text, !text.isEmpty else { return nil }
      if let value = Int(text) { return value }
      // A few VOC boxes are written with a fractional part ("273.5").
      if let value = Double(text), value.isFinite, abs(value) < 1e9 { return Int(value.rounded()) }
      throw invalid("\(what) is '\(text)', not a number")
    }
    func flag(_ node: XMLNode, _ name: String, _ what: String) throws -> Bool {
      guard let text = node.childText(name), !text.isEmpty else { return false }
      switch text {
      case "0": return false
      case "1": return true
      default: throw invalid("<\(name)> of \(what) is '\(text)', not 0 or 1")
      }
    }

    filename = root.childText("filename")
    let size = root.child("size")
    width = try integer(size?.childText("width"), "<size><width>")
    height = try integer(size?.childText("height"), "<size><height>")

    var objects: [Object] = []
    // Only direct <object> children with their direct <name>: person objects carry <part>
    // elements (head, hand, foot) whose <name> is not a class.
    for (number, node) in root.children.filter({ $0.name == "object" }).enumerated() {
      let what = "object \(number + 1)"
      guard let name = node.childText("name"), !name.isEmpty else {
        throw invalid("\(what) has no <name>")
      }
      guard let index = classes.index(of: name) else {
        throw AEPSLError(
          kind: .unknownClass, file: file,
          problem: "\(what) is a '\(name)', which is not one of the \(classes.count) classes (\(classes))",
          fix: "Correct the name, or list the class in classes.txt at the dataset root")
      }
      var box: Box?
      if let b = node.child("bndbox") {
        guard let xmin = try integer(b.childText("xmin"), "xmin of \(what)"),
              let ymin = try integer(b.childText("ymin"), "ymin of \(what)"),
              let xmax = try integer(b.childText("xmax"), "xmax of \(what)"),
              let ymax = try integer(b.childText("ymax"), "ymax of \(what)")
        else { throw invalid("<bndbox> of \(what) lacks a coordinate") }
        box = Box(xmin: xmin, ymin: ymin, xmax: xmax, ymax: ymax)
      }
      objects.append(Object(name: name, classIndex: index,
                            difficult: try flag(node, "difficult", what),
                            truncated: try flag(node, "truncated", what), box: box))
    }
    self.objects = objects
  }

  /// The annotation as VOC XML (what `aepsl synth` writes).
  public func xmlData(folder: String = "VOC") -> Data {
    func escape(_ s: String) -> String {
      s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;")
    }
    var xml = "<annotation>\n\t<folder>\(escape(folder))</folder>\n"
    if let filename { xml += "\t<filename>\(escape(filename))</filename>\n" }
    if let width, let height {
      xml += "\t<size>\n\t\t<width>\(width)</width>\n\t\t<height>\(height)</height>\n\t\t<depth>3</depth>\n\t</size>\n"
    }
    xml += "\t<segmented>1</segmented>\n"
    for object in objects {
      xml += "\t<object>\n\t\t<name>\(escape(object.name))</name>\n\t\t<pose>Unspecified</pose>\n"
      xml += "\t\t<truncated>\(object.truncated ? 1 : 0)</truncated>\n"
      xml += "\t\t<difficult>\(object.difficult ? 1 : 0)</difficult>\n"
      if let b = object.box {
        xml += "\t\t<bndbox>\n\t\t\t<xmin>\(b.xmin)</xmin>\n\t\t\t<ymin>\(b.ymin)</ymin>\n"
        xml += "\t\t\t<xmax>\(b.xmax)</xmax>\n\t\t\t<ymax>\(b.ymax)</ymax>\n\t\t</bndbox>\n"
      }
      xml += "\t</object>\n"
    }
    xml += "</annotation>\n"
    return Data(xml.utf8)
  }
}
