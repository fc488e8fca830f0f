/// Deterministic JSON encoding of ``JSONValue`` (RFC 8259, UTF-8; docs/protocol.md §2.3).
///
/// The same value always gives the same bytes: object members in the ``JSONObject``'s key
/// order; numbers in ``CPNPDecimal``'s canonical text; strings escaped minimally (`"`, `\`
/// and control characters only, as `\n \t \r \b \f` or lowercase `\u00xx`; `/` and
/// non-ASCII characters are written raw). Compact by default (no whitespace at all).
/// Iterative, so arbitrarily deep values cannot overflow the stack.
public enum JSONSerializer {
    /// Encodes `value` to UTF-8 bytes; `pretty` indents with two spaces for human display.
    public static func serialize(_ value: JSONValue, pretty: Bool = false) -> [UInt8] {
        var writer = Writer(pretty: pretty)
        writer.write(value)
        return writer.out
    }

    /// Encodes `value` as a `String`; `pretty` indents with two spaces for human display.
    public static func serializeString(_ value: JSONValue, pretty: Bool = false) -> String {
        String(decoding: serialize(value, pretty: pretty), as: UTF8.self)
    }

    /// Appends `value`'s compact encoding to `out` (``JSONWriter``).
    static func append(_ value: JSONValue, to out: inout [UInt8]) {
        var writer = Writer(pretty: false)
        swap(&writer.out, &out)
        writer.write(value)
        swap(&writer.out, &out)
    }

    /// Appends `text` as a JSON string, escaped minimally.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escape: scanned and copied in one piece from their bytes.
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if copied == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case 0x08: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "b"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x00..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

private struct Writer {
    let pretty: Bool
    var out: [UInt8] = []

    init(pretty: Bool) {
        self.pretty = pretty
        out.reserveCapacity(256)
    }

    /// An open, non-empty container and the index of its next member.
    private enum Frame {
        case array([JSONValue], next: Int)
        case object(JSONObject, next: Int)
    }

    mutating func write(_ root: JSONValue) {
        var stack: [Frame] = []
        var pending: JSONValue? = root
        while true {
            if let value = pending {
                pending = nil
                switch value {
                case .null: out.append(contentsOf: "null".utf8)
                case .bool(let boolean): out.append(contentsOf: (boolean ? "true" : "false").utf8)
                case .number(let decimal): decimal.appendCanonical(to: &out)
                case .string(let text): writeString(text)
                case .array(let elements):
                    out.append(UInt8(ascii: "["))
                    if elements.isEmpty {
                        out.append(UInt8(ascii: "]"))
                    } else {
                        stack.append(.array(elements, next: 0))
                    }
                case .object(let object):
                    out.append(UInt8(ascii: "{"))
                    if object.isEmpty {
                        out.append(UInt8(ascii: "}"))
                    } else {
                        stack.append(.object(object, next: 0))
                    }
                }
            }
            // Pick the next member of the innermost open container, or close it.
            guard let top = stack.popLast() else { return }
            switch top {
            case .array(let elements, let next):
                if next == elements.count {
                    newline(depth: stack.count)
                    out.append(UInt8(ascii: "]"))
                } else {
                    if next > 0 { out.append(UInt8(ascii: ",")) }
                    newline(depth: stack.count + 1)
                    stack.append(.array(elements, next: next + 1))
                    pending = elements[next]
                }
            case .object(let object, let next):
                if next == object.members.count {
                    newline(depth: stack.count)
                    out.append(UInt8(ascii: "}"))
                } else {
                    if next > 0 { out.append(UInt8(ascii: ",")) }
                    newline(depth: stack.count + 1)
                    let member = object.members[next]
                    writeString(member.key)
                    out.append(UInt8(ascii: ":"))
                    if pretty { out.append(UInt8(ascii: " ")) }
                    stack.append(.object(object, next: next + 1))
                    pending = member.value
                }
            }
        }
    }

    mutating func newline(depth: Int) {
        guard pretty else { return }
        out.append(UInt8(ascii: "\n"))
        for _ in 0..<depth * 2 { out.append(UInt8(ascii: " ")) }
    }

    mutating func writeString(_ text: String) { JSONSerializer.appendString(text, to: &out) }
}
