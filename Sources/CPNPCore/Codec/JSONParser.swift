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
        /// Limits for a value a store wrote (an order snapshot, a stored document): bigger and deeper than one message.
        public static let stored = Limits(maxBytes: 64 << 20, maxDepth: 128, maxStringLength: 1 << 20)
    }

    /// Parses one JSON document.
    ///
    /// The size limit is checked before any parsing. Throws a ``CPNPDecodingError`` whose
    /// path names where the problem is (`$` for the document itself).
    public static func parse(
        _ bytes: some Collection<UInt8>, limits: Limits = .init()
    ) throws(CPNPDecodingError) -> JSONValue {
        try withDocument(bytes, limits) { parseBuffer($0, limits) }
    }

    /// Checks the size limit, then runs `body` on the bytes, made contiguous if they are not.
    private static func withDocument<T>(
        _ bytes: some Collection<UInt8>, _ limits: Limits, _ body: (UnsafeBufferPointer<UInt8>) -> Result<T, CPNPDecodingError>
    ) throws(CPNPDecodingError) -> T {
        let count = bytes.count
        guard count <= limits.maxBytes else {
            throw CPNPDecodingError(
                .documentTooLarge, at: .root,
                "document is \(count) bytes, at most \(limits.maxBytes) allowed")
        }
        if let parsed = bytes.withContiguousStorageIfAvailable(body) { return try parsed.get() }
        return try Array(bytes).withUnsafeBufferPointer(body).get()
    }

    /// A document parsed with a recognised member (``parse(_:limits:recognizing:candidates:)``).
    public struct Recognized: Sendable {
        /// The document, without the recognised member.
        public var value: JSONValue
        /// The index, among the candidates, of the bytes found as the member's value; nil when none was.
        public var candidate: Int?
    }

    /// Parses one JSON document whose top-level member `key` may hold bytes the caller has already:
    /// an ACCEPT carries the CPD of the OFFER it accepts (docs/performance.md, round 9).
    ///
    /// When the parser reaches `key` in the top-level object, it asks `candidates` (given the members
    /// read before it) for the byte strings the value may be. If the input there starts with one of
    /// them, the parser steps over it without building its tree, leaves the member out of the value
    /// it returns and reports which candidate it found. Everything else is parsed as by
    /// ``parse(_:limits:)``, a repeated `key` included.
    ///
    /// Each candidate must be the compact JSON of an object or array that ``parse(_:limits:)`` would
    /// accept at that member: equal bytes then mean an equal value. A candidate that does not start
    /// with `{` or `[` is never found. `more` are candidates known before the parse, tried after
    /// those `candidates` gives and numbered after them.
    public static func parse(
        _ bytes: some Collection<UInt8>, limits: Limits = .init(), recognizing key: String, more: [[UInt8]] = [],
        candidates: (JSONObject) -> [[UInt8]]
    ) throws(CPNPDecodingError) -> Recognized {
        try withoutActuallyEscaping(candidates) { candidates throws(CPNPDecodingError) -> Recognized in
            let recognition = Recognition(key: key, candidates: candidates, more: more)
            return try withDocument(bytes, limits) { parseBuffer($0, limits, recognition) }
        }
    }

    private static func parseBuffer(
        _ buffer: UnsafeBufferPointer<UInt8>, _ limits: Limits, _ recognition: Recognition
    ) -> Result<Recognized, CPNPDecodingError> {
        var parser = Parser(bytes: buffer, limits: limits, recognition: recognition)
        do {
            var value = try parser.parseDocument()
            guard let candidate = parser.recognizedCandidate else { return .success(Recognized(value: value, candidate: nil)) }
            if case .object(var object) = value {
                value = .null
                object[recognition.key] = nil
                value = .object(object)
            }
            return .success(Recognized(value: value, candidate: candidate))
        } catch {
            return .failure(error)
        }
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

/// The member a parse may recognise, and where to ask for its candidates.
private struct Recognition {
    let key: String
    let candidates: (JSONObject) -> [[UInt8]]
    let more: [[UInt8]]
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
    var position = 0
    var stack: [Frame] = []
    let recognition: Recognition?
    /// The candidate found at the recognised member, once found.
    var recognizedCandidate: Int?

    init(bytes: UnsafeBufferPointer<UInt8>, limits: JSONParser.Limits, recognition: Recognition? = nil) {
        self.bytes = bytes
        self.limits = limits
        self.recognition = recognition
    }

    /// At the start of the top-level member ``Recognition/key``: steps over the first candidate the
    /// input starts with, returning true. Asked once: a repeated key is a duplicate anyway.
    mutating func recognizeMember() -> Bool {
        guard let recognition, stack.count == 1, recognizedCandidate == nil, stack[0].isObject, stack[0].key == recognition.key else {
            return false
        }
        let candidates = recognition.candidates(stack[0].object)
        for index in candidates.indices where startsWith(candidates[index]) {
            position += candidates[index].count
            recognizedCandidate = index
            return true
        }
        for index in recognition.more.indices where startsWith(recognition.more[index]) {
            position += recognition.more[index].count
            recognizedCandidate = candidates.count + index
            return true
        }
        return false
    }

    /// Whether the input at ``position`` starts with `candidate`, an object or array.
    private func startsWith(_ candidate: [UInt8]) -> Bool {
        guard let first = candidate.first, first == ASCII.openBrace || first == ASCII.openBracket, candidate.count <= bytes.count - position
        else { return false }
        let start = UnsafeRawPointer(bytes.baseAddress! + position)
        // Documents written from one template share long prefixes: their last bytes tell most of them
        // apart at once, so those are compared first.
        return candidate.withUnsafeBytes { held in
            let tail = min(candidate.count, 16)
            let tailOffset = candidate.count - tail
            return Self.equalBytes(held.baseAddress! + tailOffset, start + tailOffset, count: tail)
                && Self.equalBytes(held.baseAddress!, start, count: tailOffset)
        }
    }

    /// Whether the `count` bytes at `first` and at `second` are equal, compared eight at a time.
    static func equalBytes(_ first: UnsafeRawPointer, _ second: UnsafeRawPointer, count: Int) -> Bool {
        var offset = 0
        while offset + 8 <= count {
            guard first.loadUnaligned(fromByteOffset: offset, as: UInt64.self) == second.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            else { return false }
            offset += 8
        }
        while offset < count {
            guard first.load(fromByteOffset: offset, as: UInt8.self) == second.load(fromByteOffset: offset, as: UInt8.self) else { return false }
            offset += 1
        }
        return true
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
        let byte = bytes[offset]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    /// An error for an unexpected byte: invalid UTF-8 if it starts an invalid sequence,
    /// otherwise a syntax error.
    func unexpected(_ expected: String, child: Bool = true) -> CPNPDecodingError {
        if position < bytes.count, bytes[position] >= 0x80 {
            do {
                _ = try utf8SequenceLength(at: position, child: child)
            } catch {
                return error
            }
        }
        return syntaxError("expected \(expected), found \(describe(position))", at: position, child: child)
    }

    // MARK: Lexing helpers

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// Length of the valid UTF-8 sequence starting at `start` (whose first byte is ≥ 0x80).
    func utf8SequenceLength(at start: Int, child: Bool) throws(CPNPDecodingError) -> Int {
        let leadByte = bytes[start]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch leadByte {
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
                "invalid UTF-8 lead byte 0x\(String(leadByte, radix: 16, uppercase: true)) at byte \(start)")
        }
        for offset in 1..<length {
            let valid: Bool
            if start + offset >= bytes.count {
                valid = false
            } else if offset == 1 {
                valid = bytes[start + 1] >= low && bytes[start + 1] <= high
            } else {
                valid = bytes[start + offset] & 0xC0 == 0x80
            }
            if !valid {
                throw CPNPDecodingError(
                    .invalidUTF8, at: path(child: child),
                    "invalid or truncated UTF-8 sequence at byte \(start)")
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
            guard position < bytes.count else {
                throw syntaxError(
                    bytes.isEmpty ? "empty document" : "unexpected end of input, expected a value", at: position)
            }
            var value: JSONValue
            if recognition != nil, recognizeMember() {
                // Stands in for the recognised value until the end (a repeated key is still found).
                value = .null
            } else {
                switch bytes[position] {
                case ASCII.openBrace:
                    try push(isObject: true)
                    position += 1
                    skipWhitespace()
                    if position < bytes.count, bytes[position] == ASCII.closeBrace {
                        position += 1
                        stack.removeLast()
                        value = .object(JSONObject())
                    } else {
                        try parseMemberKey()
                        continue outer
                    }
                case ASCII.openBracket:
                    try push(isObject: false)
                    position += 1
                    skipWhitespace()
                    if position < bytes.count, bytes[position] == ASCII.closeBracket {
                        position += 1
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
            }

            // A value is complete: store it in its container, then close containers
            // as long as their closing bracket follows.
            while true {
                guard !stack.isEmpty else {
                    skipWhitespace()
                    guard position == bytes.count else {
                        if bytes[position] >= 0x80 { throw unexpected("end of input") }
                        throw syntaxError("unexpected data after the JSON value", at: position)
                    }
                    return value
                }
                let top = stack.count - 1
                if stack[top].isObject {
                    // parseMemberKey refused a duplicate of this key.
                    stack[top].object.append(newKey: stack[top].key, value)
                    skipWhitespace()
                    guard position < bytes.count else {
                        throw syntaxError("unexpected end of input, expected ',' or '}'", at: position, child: false)
                    }
                    if bytes[position] == ASCII.comma {
                        position += 1
                        skipWhitespace()
                        try parseMemberKey()
                        continue outer
                    } else if bytes[position] == ASCII.closeBrace {
                        position += 1
                        value = .object(stack.removeLast().object)
                    } else {
                        throw unexpected("',' or '}'", child: false)
                    }
                } else {
                    stack[top].array.append(value)
                    skipWhitespace()
                    guard position < bytes.count else {
                        throw syntaxError("unexpected end of input, expected ',' or ']'", at: position, child: false)
                    }
                    if bytes[position] == ASCII.comma {
                        position += 1
                        skipWhitespace()
                        if position < bytes.count, bytes[position] == ASCII.closeBracket {
                            throw syntaxError("trailing comma", at: position, child: false)
                        }
                        continue outer
                    } else if bytes[position] == ASCII.closeBracket {
                        position += 1
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
                "nesting deeper than \(limits.maxDepth) levels at byte \(position)")
        }
        stack.append(Frame(isObject: isObject))
    }

    /// Parses `"key" :` inside the innermost object (whitespace before it already skipped)
    /// and records the key; rejects duplicates.
    mutating func parseMemberKey() throws(CPNPDecodingError) {
        guard position < bytes.count, bytes[position] == ASCII.quote else {
            if position < bytes.count, bytes[position] == ASCII.closeBrace {
                throw syntaxError("trailing comma", at: position, child: false)
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
        guard position < bytes.count, bytes[position] == ASCII.colon else {
            throw unexpected("':' after key")
        }
        position += 1
    }

    mutating func expectLiteral(_ literal: StaticString) throws(CPNPDecodingError) {
        let start = position
        let count = literal.utf8CodeUnitCount
        let matches = literal.withUTF8Buffer { literalBytes -> Bool in
            guard start + count <= bytes.count else { return false }
            for index in 0..<count where bytes[start + index] != literalBytes[index] { return false }
            return true
        }
        guard matches else {
            throw syntaxError("invalid literal (expected \(literal))", at: start)
        }
        position += count
    }

    mutating func parseNumber() throws(CPNPDecodingError) -> CPNPDecimal {
        do {
            let (value, end) = try CPNPDecimal.scan(
                bytes, from: position, maxLength: limits.maxNumberLength,
                maxExponent: limits.maxExponentMagnitude)
            position = end
            return value
        } catch {
            switch error {
            case .syntax(let what, let offset):
                throw syntaxError(what, at: offset)
            case .outOfRange(let what):
                throw CPNPDecodingError(.outOfRange, at: path(child: true), "\(what) at byte \(position)")
            }
        }
    }

    // MARK: Strings

    /// Parses a string starting at its opening quote. `child` says whether the string is
    /// a value (its path is the child path) or a key (the object's path).
    mutating func parseString(child: Bool) throws(CPNPDecodingError) -> String {
        let start = position
        position += 1
        var scalars = 0
        var segmentStart = position
        var buffer: [UInt8] = []
        var escaped = false
        let maxLength = limits.maxStringLength
        while true {
            guard position < bytes.count else {
                throw syntaxError("unterminated string starting", at: start, child: child)
            }
            let byte = bytes[position]
            if byte == ASCII.quote {
                let result: String
                if escaped {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart..<position]))
                    result = String(decoding: buffer, as: UTF8.self)
                } else {
                    result = String(decoding: UnsafeBufferPointer(rebasing: bytes[segmentStart..<position]), as: UTF8.self)
                }
                position += 1
                return result
            } else if byte == ASCII.backslash {
                if !escaped {
                    escaped = true
                    buffer.reserveCapacity(position - segmentStart + 16)
                }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart..<position]))
                try parseEscape(into: &buffer, child: child)
                segmentStart = position
            } else if byte < 0x20 {
                throw syntaxError(
                    "unescaped control character 0x\(String(byte, radix: 16, uppercase: true)) in string",
                    at: position, child: child)
            } else if byte < 0x80 {
                position += 1
            } else {
                position += try utf8SequenceLength(at: position, child: child)
            }
            scalars += 1
            if scalars > maxLength {
                throw CPNPDecodingError(
                    .stringTooLong, at: path(child: child),
                    "string starting at byte \(start) longer than \(maxLength) characters")
            }
        }
    }

    /// Parses one escape sequence at `position` (the backslash) and appends its UTF-8 bytes.
    mutating func parseEscape(into buffer: inout [UInt8], child: Bool) throws(CPNPDecodingError) {
        let start = position
        guard position + 1 < bytes.count else {
            throw syntaxError("unterminated escape sequence", at: start, child: child)
        }
        let escaped = bytes[position + 1]
        position += 2
        switch escaped {
        case ASCII.quote, ASCII.backslash, ASCII.slash: buffer.append(escaped)
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"):
            var code = try parseHex4(escapeStart: start, child: child)
            if code >= 0xD800 && code <= 0xDBFF {
                // A high surrogate must be followed by an escaped low surrogate.
                guard position + 1 < bytes.count, bytes[position] == ASCII.backslash, bytes[position + 1] == UInt8(ascii: "u")
                else { throw loneSurrogate(code, at: start, child: child) }
                let lowStart = position
                position += 2
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
        guard position + 4 <= bytes.count else {
            throw syntaxError("truncated \\u escape", at: escapeStart, child: child)
        }
        var code: UInt32 = 0
        for _ in 0..<4 {
            let digit = bytes[position]
            let digitValue: UInt8
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digitValue = digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digitValue = digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digitValue = digit - UInt8(ascii: "A") + 10
            default: throw syntaxError("invalid hex digit in \\u escape", at: position, child: child)
            }
            code = code << 4 | UInt32(digitValue)
            position += 1
        }
        return code
    }
}
