import Foundation

/// An element of a parsed XML document: its name, child elements and character data.
/// Attributes are checked for well-formedness and dropped (VOC annotations use none).
struct XMLNode: Sendable {
  var name: String
  var children: [XMLNode] = []
  var text = ""

  /// The first direct child called `name`.
  func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }

  /// The trimmed text of the first direct child called `name`.
  func childText(_ name: String) -> String? {
    child(name)?.text.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}

/// A deliberately small, strict XML parser for the subset annotation files use: elements,
/// attributes, character data, CDATA, comments, processing instructions and the five
/// predefined entities plus numeric character references.
///
/// Annotation files are untrusted input, so any document type declaration (`<!DOCTYPE`,
/// and with it `<!ENTITY`) is rejected outright: no entity expansion, no external
/// resources. Nesting deeper than 64 elements and files over 4 MiB are rejected too.
struct XMLDocumentParser {
  struct Failure: Error {
    var line: Int
    var message: String
  }

  static let maximumDepth = 64
  static let maximumBytes = 4 << 20

  private let bytes: [UInt8]
  private var position = 0

  private init(bytes: [UInt8]) { self.bytes = bytes }

  /// Parses a whole document and returns its root element.
  static func parse(_ data: Data) throws(Failure) -> XMLNode {
    guard data.count <= maximumBytes else {
      throw Failure(line: 1, message: "the file is \(data.count) bytes; annotations are at most \(maximumBytes)")
    }
    var parser = XMLDocumentParser(bytes: [UInt8](data))
    return try parser.document()
  }

  private func line(at offset: Int) -> Int {
    var count = 1
    for i in 0..<min(offset, bytes.count) where bytes[i] == 0x0A { count += 1 }
    return count
  }

  private func fail(_ message: String) -> Failure { Failure(line: line(at: position), message: message) }

  private func starts(with literal: String) -> Bool {
    var i = position
    for b in literal.utf8 {
      guard i < bytes.count, bytes[i] == b else { return false }
      i += 1
    }
    return true
  }

  private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

  private mutating func skipSpace() {
    while position < bytes.count, Self.isSpace(bytes[position]) { position += 1 }
  }

  /// Skips past the next occurrence of `terminator`, failing with `what` if there is none.
  private mutating func skip(past terminator: String, what: String) throws(Failure) {
    while position < bytes.count {
      if starts(with: terminator) {
        position += terminator.utf8.count
        return
      }
      position += 1
    }
    throw fail("unterminated \(what)")
  }

  /// Comments, processing instructions and white space between elements; rejects DTDs.
  private mutating func skipMisc() throws(Failure) {
    while true {
      skipSpace()
      if starts(with: "<!--") {
        position += 4
        try skip(past: "-->", what: "comment")
      } else if starts(with: "<?") {
        position += 2
        try skip(past: "?>", what: "processing instruction")
      } else if starts(with: "<!DOCTYPE") || starts(with: "<!ENTITY") {
        throw fail("document type and entity declarations (<!DOCTYPE, <!ENTITY) are not accepted in annotation files")
      } else {
        return
      }
    }
  }

  private mutating func document() throws(Failure) -> XMLNode {
    if starts(with: "\u{FEFF}") { position += 3 }  // UTF-8 byte order mark
    try skipMisc()
    guard position < bytes.count, bytes[position] == UInt8(ascii: "<") else {
      throw fail(position >= bytes.count ? "the file is empty" : "expected an element, found text")
    }
    let root = try element(depth: 1)
    try skipMisc()
    guard position == bytes.count else { throw fail("content after the root element") }
    return root
  }

  private mutating func name() throws(Failure) -> String {
    let start = position
    while position < bytes.count {
      let b = bytes[position]
      let isNameByte = (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
        || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
        || b == UInt8(ascii: ":") || b >= 0x80
      guard isNameByte else { break }
      position += 1
    }
    guard position > start else { throw fail("expected a name") }
    return String(decoding: bytes[start..<position], as: UTF8.self)
  }

  /// Parses `<name attr="..."> content </name>` or `<name/>` at `position`.
  private mutating func element(depth: Int) throws(Failure) -> XMLNode {
    guard depth <= Self.maximumDepth else { throw fail("elements nested deeper than \(Self.maximumDepth)") }
    position += 1  // "<"
    var node = XMLNode(name: try name())
    // Attributes: name = "value" or 'value'.
    while true {
      let hadSpace = position < bytes.count && Self.isSpace(bytes[position])
      skipSpace()
      guard position < bytes.count else { throw fail("unterminated start tag <\(node.name)>") }
      if starts(with: "/>") {
        position += 2
        return node
      }
      if bytes[position] == UInt8(ascii: ">") {
        position += 1
        break
      }
      guard hadSpace else { throw fail("malformed start tag <\(node.name)>") }
      _ = try name()
      skipSpace()
      guard position < bytes.count, bytes[position] == UInt8(ascii: "=") else {
        throw fail("attribute in <\(node.name)> has no value")
      }
      position += 1
      skipSpace()
      guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") || bytes[position] == UInt8(ascii: "'") else {
        throw fail("attribute value in <\(node.name)> is not quoted")
      }
      let quote = bytes[position]
      position += 1
      while position < bytes.count, bytes[position] != quote {
        if bytes[position] == UInt8(ascii: "<") { throw fail("'<' inside an attribute value") }
        position += 1
      }
      guard position < bytes.count else { throw fail("unterminated attribute value in <\(node.name)>") }
      position += 1
    }
    // Content.
    var text: [UInt8] = []
    while true {
      guard position < bytes.count else { throw fail("element <\(node.name)> is never closed") }
      let b = bytes[position]
      if b == UInt8(ascii: "<") {
        if starts(with: "</") {
          position += 2
          let closing = try name()
          guard closing == node.name else {
            throw fail("</\(closing)> closes <\(node.name)>")
          }
          skipSpace()
          guard position < bytes.count, bytes[position] == UInt8(ascii: ">") else {
            throw fail("malformed end tag </\(closing)>")
          }
          position += 1
          node.text = String(decoding: text, as: UTF8.self)
          return node
        } else if starts(with: "<!--") {
          position += 4
          try skip(past: "-->", what: "comment")
        } else if starts(with: "<![CDATA[") {
          position += 9
          let start = position
          try skip(past: "]]>", what: "CDATA section")
          text.append(contentsOf: bytes[start..<(position - 3)])
        } else if starts(with: "<?") {
          position += 2
          try skip(past: "?>", what: "processing instruction")
        } else if starts(with: "<!") {
          throw fail("declarations (<!DOCTYPE, <!ENTITY) are not accepted in annotation files")
        } else {
          node.children.append(try element(depth: depth + 1))
        }
      } else if b == UInt8(ascii: "&") {
        text.append(contentsOf: try reference())
      } else {
        text.append(b)
        position += 1
      }
    }
  }

  /// `&lt;` `&gt;` `&amp;` `&quot;` `&apos;` `&#N;` `&#xH;`; any other entity is an error.
  private mutating func reference() throws(Failure) -> [UInt8] {
    let start = position
    position += 1
    while position < bytes.count, bytes[position] != UInt8(ascii: ";"), position - start < 12 {
      position += 1
    }
    guard position < bytes.count, bytes[position] == UInt8(ascii: ";") else {
      position = start
      throw fail("a bare '&' (write &amp;)")
    }
    let body = String(decoding: bytes[(start + 1)..<position], as: UTF8.self)
    position += 1
    switch body {
    case "lt": return Array("<".utf8)
    case "gt": return Array(">".utf8)
    case "amp": return Array("&".utf8)
    case "quot": return Array("\"".utf8)
    case "apos": return Array("'".utf8)
    default:
      var scalar: Unicode.Scalar?
      if body.hasPrefix("#x") {
        scalar = UInt32(body.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
      } else if body.hasPrefix("#") {
        scalar = UInt32(body.dropFirst(1)).flatMap(Unicode.Scalar.init)
      } else {
        position = start
        throw fail("entity '&\(body);' is not defined (only the five predefined XML entities are)")
      }
      guard let scalar, scalar.value != 0 else {
        position = start
        throw fail("invalid character reference '&\(body);'")
      }
      return Array(String(Character(scalar)).utf8)
    }
  }
}
