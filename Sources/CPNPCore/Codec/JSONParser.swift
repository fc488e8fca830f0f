/// A strict RFC 8259 JSON parser for CPNP messages (docs/protocol.md §2.2).
///
/// - Accepts any JSON value at the top level (the message decoder checks that it is an
///   object), surrounded by optional whitespace, and nothing else: no comments, no
///   trailing commas, no `NaN`/`Infinity`, no leading zeros, no byte order mark.
/// - Validates UTF-8 strictly (overlong forms, UTF-8-encoded surrogates and code points
///   above U+10FFFF are ``CPNPDecodingError/Code/invalidUTF8``).
/// - A `\uXXXX` escape of an unpaired surrogate is ``CPNPDecodingError/Code/invalidValue``
///   (the text is well-formed JSON, but the string is not Unicode).
/// - Duplicate keys are ``CPNPDecodingError/Code/duplicateKey``, with the path of the
///   repeated member.
/// - Numbers keep their exact value (``CPNPDecimal``).
/// - Iterative (never recurses), linear in time and memory. Errors name the JSON path of
///   the offending value and, for syntax errors, the byte offset.
public enum JSONParser {
    /// Resource limits applied while parsing; exceeding one is an error, never a crash.
    public struct Limits: Sendable, Hashable {
        /// Maximum document size in bytes (``CPNPDecodingError/Code/documentTooLarge``).
        public var maxBytes: Int
        /// Maximum nesting of arrays and objects; the top-level container is depth 1
        /// (``CPNPDecodingError/Code/nestingTooDeep``). The parser never recurses, but
        /// releasing a ``JSONValue`` nested tens of thousands deep does: keep this small.
        public var maxDepth: Int
        /// Maximum length of a string or key in Unicode scalars
        /// (``CPNPDecodingError/Code/stringTooLong``).
        public var maxStringLength: Int
        /// Maximum length of a number literal, and of its canonical text, in characters
        /// (``CPNPDecodingError/Code/outOfRange``).
        public var maxNumberLength: Int
        /// Maximum magnitude of a number's exponent, both as written and in scientific
        /// notation (``CPNPDecodingError/Code/outOfRange``).
        public var maxExponentMagnitude: Int

        /// Limits with the given values; the defaults suit the 1 MiB stream transport.
        public init(
            maxBytes: Int = 1_048_576,
            maxDepth: Int = 32,
            maxStringLength: Int = 65_536,
            maxNumberLength: Int = 64,
            maxExponentMagnitude: Int = CPNPDecimal.maxExponentMagnitude
        ) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
            self.maxStringLength = maxStringLength
            self.maxNumberLength = maxNumberLength
            self.maxExponentMagnitude = maxExponentMagnitude
        }

        /// Limits for one UDP/DTLS datagram (16,384 bytes, docs/protocol.md §2.1).
        public static let datagram = Limits(maxBytes: 16_384)
        /// Limits for one length-prefixed TLS stream message (1 MiB, docs/protocol.md §2.1).
        public static let stream = Limits(maxBytes: 1_048_576)
    }

    /// Parses one JSON document.
    ///
    /// The size limit is checked before any parsing. Throws a ``CPNPDecodingError`` whose
    /// path names where the problem is (`$` for the document itself).
    public static func parse(
        _ bytes: some Collection<UInt8>, limits: Limits = .init()
    ) throws(CPNPDecodingError) -> JSONValue {
        let count = bytes.count
        guard count <= limits.maxBytes else {
            throw CPNPDecodingError(
                .documentTooLarge, at: .root,
                "document is \(count) bytes, at most \(limits.maxBytes) allowed")
        }
        let result: Result<JSONValue, CPNPDecodingError>
        if let r = bytes.withContiguousStorageIfAvailable({ parseBuffer($0, limits) }) {
            result = r
        } else {
            result = Array(bytes).withUnsafeBufferPointer { parseBuffer($0, limits) }
        }
        return try result.get()
    }

    private static func parseBuffer(
        _ buffer: UnsafeBufferPointer<UInt8>, _ limits: Limits
    ) -> Result<JSONValue, CPNPDecodingError> {
        var parser = Parser(bytes: buffer, limits: limits)
        do {
            return .success(try parser.parseDocument())
        } catch {
            return .failure(error)
        }
    }
}

// MARK: - Implementation

private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let minus = UInt8(ascii: "-")
}

/// One open container on the explicit parse stack.
private struct Frame {
    var isObject: Bool
    var array: [JSONValue] = []
    var object = JSONObject()
    /// For an object: the key whose value is being parsed.
    var key = ""
}

private struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    let limits: JSONParser.Limits
    var pos = 0
    var stack: [Frame] = []

    init(bytes: UnsafeBufferPointer<UInt8>, limits: JSONParser.Limits) {
        self.bytes = bytes
        self.limits = limits
    }

    // MARK: Errors and paths

    /// The path of the innermost open container (`child == false`) or of the value
    /// being parsed inside it (`child == true`).
    func path(child: Bool) -> JSONPath {
        var components: [JSONPath.Component] = []
        components.reserveCapacity(stack.count)
        for (i, frame) in stack.enumerated() where child || i < stack.count - 1 {
            components.append(frame.isObject ? .key(frame.key) : .index(frame.array.count))
        }
        return JSONPath(components)
    }

    func syntaxError(_ what: String, at offset: Int, child: Bool = true) -> CPNPDecodingError {
        CPNPDecodingError(.malformedJSON, at: path(child: child), "\(what) at byte \(offset)")
    }

    func describe(_ offset: Int) -> String {
        guard offset < bytes.count else { return "end of input" }
        let b = bytes[offset]
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    /// An error for an unexpected byte: invalid UTF-8 if it starts an invalid sequence,
    /// otherwise a syntax error.
    func unexpected(_ expected: String, child: Bool = true) -> CPNPDecodingError {
        if pos < bytes.count, bytes[pos] >= 0x80 {
            do {
                _ = try utf8SequenceLength(at: pos, child: child)
            } catch {
                return error
            }
        }
        return syntaxError("expected \(expected), found \(describe(pos))", at: pos, child: child)
    }

    // MARK: Lexing helpers

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    /// Length of the valid UTF-8 sequence starting at `i` (whose first byte is ≥ 0x80).
    func utf8SequenceLength(at i: Int, child: Bool) throws(CPNPDecodingError) -> Int {
        let b0 = bytes[i]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default:
            throw CPNPDecodingError(
                .invalidUTF8, at: path(child: child),
                "invalid UTF-8 lead byte 0x\(String(b0, radix: 16, uppercase: true)) at byte \(i)")
        }
        for k in 1..<length {
            let ok: Bool
            if i + k >= bytes.count {
                ok = false
            } else if k == 1 {
                ok = bytes[i + 1] >= low && bytes[i + 1] <= high
            } else {
                ok = bytes[i + k] & 0xC0 == 0x80
            }
            if !ok {
                throw CPNPDecodingError(
                    .invalidUTF8, at: path(child: child),
                    "invalid or truncated UTF-8 sequence at byte \(i)")
            }
        }
        return length
    }

    // MARK: Document

    mutating func parseDocument() throws(CPNPDecodingError) -> JSONValue {
        stack.reserveCapacity(min(limits.maxDepth, 64))
        outer: while true {
            // At the start of a value.
            skipWhitespace()
            guard pos < bytes.count else {
                throw syntaxError(
                    bytes.isEmpty ? "empty document" : "unexpected end of input, expected a value", at: pos)
            }
            var value: JSONValue
            switch bytes[pos] {
            case ASCII.openBrace:
                try push(isObject: true)
                pos += 1
                skipWhitespace()
                if pos < bytes.count, bytes[pos] == ASCII.closeBrace {
                    pos += 1
                    stack.removeLast()
                    value = .object(JSONObject())
                } else {
                    try parseMemberKey()
                    continue outer
                }
            case ASCII.openBracket:
                try push(isObject: false)
                pos += 1
                skipWhitespace()
                if pos < bytes.count, bytes[pos] == ASCII.closeBracket {
                    pos += 1
                    stack.removeLast()
                    value = .array([])
                } else {
                    continue outer
                }
            case ASCII.quote:
                value = .string(try parseString(child: true))
            case ASCII.minus, UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = .number(try parseNumber())
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                value = .null
            default:
                throw unexpected("a value")
            }

            // A value is complete: store it in its container, then close containers
            // as long as their closing bracket follows.
            while true {
                guard !stack.isEmpty else {
                    skipWhitespace()
                    guard pos == bytes.count else {
                        if bytes[pos] >= 0x80 { throw unexpected("end of input") }
                        throw syntaxError("unexpected data after the JSON value", at: pos)
                    }
                    return value
                }
                let top = stack.count - 1
                if stack[top].isObject {
                    let key = stack[top].key
                    stack[top].object[key] = value
                    skipWhitespace()
                    guard pos < bytes.count else {
                        throw syntaxError("unexpected end of input, expected ',' or '}'", at: pos, child: false)
                    }
                    if bytes[pos] == ASCII.comma {
                        pos += 1
                        skipWhitespace()
                        try parseMemberKey()
                        continue outer
                    } else if bytes[pos] == ASCII.closeBrace {
                        pos += 1
                        value = .object(stack.removeLast().object)
                    } else {
                        throw unexpected("',' or '}'", child: false)
                    }
                } else {
                    stack[top].array.append(value)
                    skipWhitespace()
                    guard pos < bytes.count else {
                        throw syntaxError("unexpected end of input, expected ',' or ']'", at: pos, child: false)
                    }
                    if bytes[pos] == ASCII.comma {
                        pos += 1
                        skipWhitespace()
                        if pos < bytes.count, bytes[pos] == ASCII.closeBracket {
                            throw syntaxError("trailing comma", at: pos, child: false)
                        }
                        continue outer
                    } else if bytes[pos] == ASCII.closeBracket {
                        pos += 1
                        value = .array(stack.removeLast().array)
                    } else {
                        throw unexpected("',' or ']'", child: false)
                    }
                }
            }
        }
    }

    mutating func push(isObject: Bool) throws(CPNPDecodingError) {
        guard stack.count < limits.maxDepth else {
            throw CPNPDecodingError(
                .nestingTooDeep, at: path(child: true),
                "nesting deeper than \(limits.maxDepth) levels at byte \(pos)")
        }
        stack.append(Frame(isObject: isObject))
    }

    /// Parses `"key" :` inside the innermost object (whitespace before it already skipped)
    /// and records the key; rejects duplicates.
    mutating func parseMemberKey() throws(CPNPDecodingError) {
        guard pos < bytes.count, bytes[pos] == ASCII.quote else {
            if pos < bytes.count, bytes[pos] == ASCII.closeBrace {
                throw syntaxError("trailing comma", at: pos, child: false)
            }
            throw unexpected("a string key", child: false)
        }
        let key = try parseString(child: false)
        let top = stack.count - 1
        stack[top].key = key
        if stack[top].object[key] != nil {
            throw CPNPDecodingError(.duplicateKey, at: path(child: true), "duplicate key \"\(key)\"")
        }
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == ASCII.colon else {
            throw unexpected("':' after key")
        }
        pos += 1
    }

    mutating func expectLiteral(_ literal: StaticString) throws(CPNPDecodingError) {
        let start = pos
        let count = literal.utf8CodeUnitCount
        let matches = literal.withUTF8Buffer { lit -> Bool in
            guard start + count <= bytes.count else { return false }
            for k in 0..<count where bytes[start + k] != lit[k] { return false }
            return true
        }
        guard matches else {
            throw syntaxError("invalid literal (expected \(literal))", at: start)
        }
        pos += count
    }

    mutating func parseNumber() throws(CPNPDecodingError) -> CPNPDecimal {
        do {
            let (value, end) = try CPNPDecimal.scan(
                bytes, from: pos, maxLength: limits.maxNumberLength,
                maxExponent: limits.maxExponentMagnitude)
            pos = end
            return value
        } catch {
            switch error {
            case .syntax(let what, let offset):
                throw syntaxError(what, at: offset)
            case .outOfRange(let what):
                throw CPNPDecodingError(.outOfRange, at: path(child: true), "\(what) at byte \(pos)")
            }
        }
    }

    // MARK: Strings

    /// Parses a string starting at its opening quote. `child` says whether the string is
    /// a value (its path is the child path) or a key (the object's path).
    mutating func parseString(child: Bool) throws(CPNPDecodingError) -> String {
        let start = pos
        pos += 1
        var scalars = 0
        var segmentStart = pos
        var buffer: [UInt8] = []
        var escaped = false
        let maxLength = limits.maxStringLength
        while true {
            guard pos < bytes.count else {
                throw syntaxError("unterminated string starting", at: start, child: child)
            }
            let b = bytes[pos]
            if b == ASCII.quote {
                let result: String
                if escaped {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart..<pos]))
                    result = String(decoding: buffer, as: UTF8.self)
                } else {
                    result = String(decoding: UnsafeBufferPointer(rebasing: bytes[segmentStart..<pos]), as: UTF8.self)
                }
                pos += 1
                return result
            } else if b == ASCII.backslash {
                if !escaped {
                    escaped = true
                    buffer.reserveCapacity(pos - segmentStart + 16)
                }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart..<pos]))
                try parseEscape(into: &buffer, child: child)
                segmentStart = pos
            } else if b < 0x20 {
                throw syntaxError(
                    "unescaped control character 0x\(String(b, radix: 16, uppercase: true)) in string",
                    at: pos, child: child)
            } else if b < 0x80 {
                pos += 1
            } else {
                pos += try utf8SequenceLength(at: pos, child: child)
            }
            scalars += 1
            if scalars > maxLength {
                throw CPNPDecodingError(
                    .stringTooLong, at: path(child: child),
                    "string starting at byte \(start) longer than \(maxLength) characters")
            }
        }
    }

    /// Parses one escape sequence at `pos` (the backslash) and appends its UTF-8 bytes.
    mutating func parseEscape(into buffer: inout [UInt8], child: Bool) throws(CPNPDecodingError) {
        let start = pos
        guard pos + 1 < bytes.count else {
            throw syntaxError("unterminated escape sequence", at: start, child: child)
        }
        let c = bytes[pos + 1]
        pos += 2
        switch c {
        case ASCII.quote, ASCII.backslash, ASCII.slash: buffer.append(c)
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"):
            var code = try parseHex4(escapeStart: start, child: child)
            if code >= 0xD800 && code <= 0xDBFF {
                // A high surrogate must be followed by an escaped low surrogate.
                guard pos + 1 < bytes.count, bytes[pos] == ASCII.backslash, bytes[pos + 1] == UInt8(ascii: "u")
                else { throw loneSurrogate(code, at: start, child: child) }
                let lowStart = pos
                pos += 2
                let low = try parseHex4(escapeStart: lowStart, child: child)
                guard low >= 0xDC00 && low <= 0xDFFF else { throw loneSurrogate(code, at: start, child: child) }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if code >= 0xDC00 && code <= 0xDFFF {
                throw loneSurrogate(code, at: start, child: child)
            }
            // Valid by construction: not a surrogate, at most U+10FFFF.
            let scalar = Unicode.Scalar(code)!
            buffer.append(contentsOf: UTF8.encode(scalar)!)
        default:
            throw syntaxError("invalid escape sequence", at: start, child: child)
        }
    }

    func loneSurrogate(_ code: UInt32, at offset: Int, child: Bool) -> CPNPDecodingError {
        CPNPDecodingError(
            .invalidValue, at: path(child: child),
            "unpaired surrogate escape \\u\(String(code, radix: 16, uppercase: true)) at byte \(offset)")
    }

    mutating func parseHex4(escapeStart: Int, child: Bool) throws(CPNPDecodingError) -> UInt32 {
        guard pos + 4 <= bytes.count else {
            throw syntaxError("truncated \\u escape", at: escapeStart, child: child)
        }
        var code: UInt32 = 0
        for _ in 0..<4 {
            let h = bytes[pos]
            let v: UInt8
            switch h {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = h - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = h - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = h - UInt8(ascii: "A") + 10
            default: throw syntaxError("invalid hex digit in \\u escape", at: pos, child: child)
            }
            code = code << 4 | UInt32(v)
            pos += 1
        }
        return code
    }
}
