import Testing
@testable import CPNPCore

private func parse(_ text: String, limits: JSONParser.Limits = .init()) throws(CPNPDecodingError) -> JSONValue {
    try JSONParser.parse(Array(text.utf8), limits: limits)
}

private func parseError(_ bytes: [UInt8], limits: JSONParser.Limits = .init()) -> CPNPDecodingError? {
    do {
        _ = try JSONParser.parse(bytes, limits: limits)
        return nil
    } catch {
        return error
    }
}

private func parseError(_ text: String, limits: JSONParser.Limits = .init()) -> CPNPDecodingError? {
    parseError(Array(text.utf8), limits: limits)
}

private func dec(_ s: String) -> CPNPDecimal { CPNPDecimal(parsing: s)! }

@Suite struct JSONParserTests {
    // MARK: Valid documents

    @Test func parsesAllValueKinds() throws {
        let v = try parse(#" {"a":[1,-2.5,true,false,null,"x",{},[]],"b":{"c":"d"}} "#)
        let o = try v.object(at: .root)
        #expect(o.keys == ["a", "b"])
        #expect(
            o["a"]
                == .array([
                    .number(1), .number(dec("-2.5")), .bool(true), .bool(false), .null, .string("x"),
                    .object(JSONObject()), .array([]),
                ]))
        #expect(o["b"] == .object(JSONObject([("c", .string("d"))])))
    }

    @Test(arguments: ["0", "-0", "1", "\"s\"", "true", "false", "null", "[]", "{}", " \t\r\n1\n "])
    func acceptsAnyTopLevelValue(text: String) throws {
        _ = try parse(text)
    }

    @Test func keepsKeyOrder() throws {
        let o = try parse(#"{"z":1,"a":2,"m":3}"#).object(at: .root)
        #expect(o.keys == ["z", "a", "m"])
    }

    @Test func decodesEscapes() throws {
        let v = try parse(#"["\"\\\/\b\f\n\r\t","\u00e9\u4E2D","\ud83d\ude00","\u0000"]"#)
        #expect(
            v
                == .array([
                    .string("\"\\/\u{08}\u{0C}\n\r\t"), .string("é中"), .string("😀"), .string("\u{0}"),
                ]))
    }

    @Test func acceptsRawUTF8() throws {
        #expect(try parse("\"é中😀\u{7F}\u{10FFFF}\"") == .string("é中😀\u{7F}\u{10FFFF}"))
    }

    @Test func acceptsStringViewAndSlices() throws {
        let text = #"{"k":[1,2]}"#
        #expect(try JSONParser.parse(text.utf8) == JSONParser.parse(Array(text.utf8)[...]))
    }

    @Test func numbersAreExact() throws {
        #expect(try parse("-0") == .number(0))
        #expect(try parse("1E2") == .number(100))
        #expect(try parse("1e+2") == parse("100.00"))
        #expect(try parse("0.1") == .number(CPNPDecimal(isNegative: false, digits: [1], exponent: -1)))
        #expect(try parse("1e-30") == .number(CPNPDecimal(isNegative: false, digits: [1], exponent: -30)))
        #expect(try parse("1e400") == .number(CPNPDecimal(isNegative: false, digits: [1], exponent: 400)))
        #expect(try parse("123456789012345678901234567890") != parse("123456789012345678901234567891"))
    }

    // MARK: Syntax errors (malformedJSON)

    @Test(arguments: [
        "", "   ", "[1,2,]", #"{"a":1,}"#, "[1 2]", #"{"a" 1}"#, #"{a:1}"#, "[1]]", "[1] x", "{} {}",
        "01", "-", "-a", "+1", ".5", "1.", "1.e5", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity",
        "tru", "nul", "True", "[", "{", "[1,", #"{"a":"#, #""abc"#, #""\x""#, #""\u12""#, #""\u12G4""#,
        "/* c */ 1", "1 // c", "[1,,2]", "[,]", "{,}", #"{"a":1 "b":2}"#, "'a'", "\u{FEFF}1",
        "\"a\tb\"", "\"a\nb\"", "\"\u{1F}\"", "\u{0C}1",
    ])
    func rejectsMalformed(text: String) {
        let error = parseError(text)
        #expect(error?.code == .malformedJSON, "\(text): \(String(describing: error))")
        #expect(error?.reason.contains("byte") == true)
    }

    @Test func syntaxErrorsNamePathAndOffset() {
        let e1 = parseError(#"{"cpd":{"components":[{"name":01}]}}"#)
        #expect(e1?.code == .malformedJSON)
        #expect(e1?.path.description == "cpd.components[0].name")
        #expect(e1?.reason.contains("byte 31") == true)

        let e2 = parseError(#"{"a":[1,2 3]}"#)
        #expect(e2?.path.description == "a")
        #expect(e2?.reason.contains("byte 10") == true)

        let e3 = parseError(#"{"a":{"b":tru}}"#)
        #expect(e3?.path.description == "a.b")

        let e4 = parseError(#"[0,{"x":"unterminated]"#)
        #expect(e4?.path.description == "[1].x")

        #expect(parseError("[1] x")?.path == .root)
    }

    @Test func rawControlCharacterInString() {
        let e = parseError("{\"k\":[\"a\u{01}b\"]}")
        #expect(e?.code == .malformedJSON)
        #expect(e?.path.description == "k[0]")
        #expect(e?.reason.contains("control") == true)
    }

    // MARK: Invalid UTF-8

    @Test(
        arguments: [
            [0x80],  // lone continuation byte
            [0xBF],
            [0xC0, 0xAF],  // overlong "/"
            [0xC1, 0xBF],  // overlong
            [0xE0, 0x80, 0xAF],  // overlong 3-byte
            [0xF0, 0x80, 0x80, 0xAF],  // overlong 4-byte
            [0xED, 0xA0, 0x80],  // UTF-8 encoded surrogate U+D800
            [0xED, 0xBF, 0xBF],  // U+DFFF
            [0xF4, 0x90, 0x80, 0x80],  // U+110000
            [0xF5, 0x80, 0x80, 0x80],
            [0xFE], [0xFF],
            [0xC3],  // truncated 2-byte
            [0xE4, 0xB8],  // truncated 3-byte
            [0xF0, 0x9F, 0x98],  // truncated 4-byte
            [0xC3, 0x41],  // bad continuation
        ] as [[UInt8]])
    func rejectsInvalidUTF8InStrings(sequence: [UInt8]) {
        let doc = Array(#"{"a":["x"#.utf8) + sequence + Array(#"y"]}"#.utf8)
        let e = parseError(doc)
        #expect(e?.code == .invalidUTF8, "\(sequence): \(String(describing: e))")
        #expect(e?.path.description == "a[0]")
    }

    @Test func rejectsInvalidUTF8OutsideStrings() {
        #expect(parseError([0xFF])?.code == .invalidUTF8)
        #expect(parseError(Array("[1,".utf8) + [0xC0, 0x80] + Array("]".utf8))?.code == .invalidUTF8)
        #expect(parseError(Array("[1]".utf8) + [0xED, 0xA0, 0x80])?.code == .invalidUTF8)
        // Valid UTF-8 in the wrong place is a syntax error, not an encoding error.
        #expect(parseError("[é]")?.code == .malformedJSON)
        #expect(parseError("{\"a\":1 é}")?.code == .malformedJSON)
    }

    @Test func rejectsInvalidUTF8InKeys() {
        let e = parseError(Array(#"{"a":{"k"#.utf8) + [0xC0] + Array(#"":1}}"#.utf8))
        #expect(e?.code == .invalidUTF8)
        #expect(e?.path.description == "a")
    }

    // MARK: Surrogate escapes (invalidValue)

    @Test(arguments: [
        #"\ud800"#, #"\uDBFF"#, #"\udc00"#, #"\uDFFF"#, #"\ud800x"#, #"\ud800\u0041"#, #"\ud800\ud800"#,
        #"\udc00\ud800"#, #"\ud800\n"#,
    ])
    func loneSurrogatesAreInvalidValues(escape: String) {
        let e = parseError(#"{"x":{"name":""# + escape + #""}}"#)
        #expect(e?.code == .invalidValue, "\(escape): \(String(describing: e))")
        #expect(e?.path.description == "x.name")
        #expect(e?.reason.contains("surrogate") == true)
    }

    @Test func surrogatePairsDecode() throws {
        #expect(try parse(#""\uD834\uDD1E""#) == .string("\u{1D11E}"))
        #expect(try parse(#""\udbff\udfff""#) == .string("\u{10FFFF}"))
    }

    // MARK: Duplicate keys

    @Test func duplicateKeysNameTheirPath() {
        let e = parseError(#"{"cpd":{"components":[{"profiles":[],"name":"a","profiles":[1]}]}}"#)
        #expect(e?.code == .duplicateKey)
        #expect(e?.path.description == "cpd.components[0].profiles")

        let top = parseError(#"{"version":1,"version":1}"#)
        #expect(top?.code == .duplicateKey)
        #expect(top?.path.description == "version")
        // Escapes are decoded before comparing keys.
        #expect(parseError(#"{"A":1,"\u0041":2}"#)?.code == .duplicateKey)
        #expect(parseError(#"{"":1,"":2}"#)?.code == .duplicateKey)
    }

    /// Past 16 members an object keeps a key index; the parser appends each member once, so the index
    /// must follow every append for the duplicate check and the lookups.
    @Test func duplicatesAndLookupsPastTheKeyIndexThreshold() throws {
        let members = (0..<20).map { "\"k\($0)\":\($0)" }
        let parsed = try parse("{" + members.joined(separator: ",") + "}")
        guard case .object(let object) = parsed else { Issue.record("not an object: \(parsed)"); return }
        #expect(object.count == 20 && object.keys == (0..<20).map { "k\($0)" })
        for i in [0, 15, 16, 17, 19] { #expect(object["k\(i)"] == .number(CPNPDecimal(Int64(i)))) }
        #expect(object["k20"] == nil)
        for duplicate in ["k3", "k17", "k19"] {
            let error = parseError("{" + (members + ["\"\(duplicate)\":0"]).joined(separator: ",") + "}")
            #expect(error?.code == .duplicateKey && error?.path.description == duplicate)
        }
    }

    @Test func sameKeyInDifferentObjectsIsFine() throws {
        _ = try parse(#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#)
    }

    @Test func manyKeysParseInLinearTime() throws {
        // 20,000 distinct keys: a quadratic duplicate check would take seconds.
        var text = "{"
        for i in 0..<20_000 { text += (i == 0 ? "" : ",") + "\"k\(i)\":\(i)" }
        text += "}"
        let o = try parse(text).object(at: .root)
        #expect(o.count == 20_000)
        #expect(parseError(String(text.dropLast()) + #","k19999":0}"#)?.path.description == "k19999")
    }

    // MARK: Limits

    @Test func nestingLimit() throws {
        let ok = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        _ = try parse(ok)
        let tooDeep = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        let e = parseError(tooDeep)
        #expect(e?.code == .nestingTooDeep)
        #expect(e?.path.components.count == 32)

        let objects = String(repeating: #"{"a":"#, count: 33) + "1" + String(repeating: "}", count: 33)
        #expect(parseError(objects)?.code == .nestingTooDeep)
        #expect(parseError(objects, limits: .init(maxDepth: 33)) == nil)
        #expect(parseError("[[1]]", limits: .init(maxDepth: 1))?.path.description == "[0]")
    }

    @Test func hugeNestingDoesNotOverflowTheStack() {
        let e = parseError([UInt8](repeating: UInt8(ascii: "["), count: 100_000))
        #expect(e?.code == .nestingTooDeep)
        // Even with an absurd depth limit the parser itself is iterative. (The input is left
        // unclosed: a 200,000-deep JSONValue could not be released without deep recursion.)
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 200_000)
        let unclosed = parseError(deep, limits: .init(maxDepth: 1_000_000))
        #expect(unclosed?.code == .malformedJSON)
        #expect(unclosed?.path.components.count == 200_000)
    }

    @Test func documentSizeLimit() {
        let big = [UInt8](repeating: UInt8(ascii: " "), count: 2 * 1_048_576)
        let e = parseError(big)
        #expect(e?.code == .documentTooLarge)
        #expect(e?.path == .root)
        // Checked before parsing: garbage of the right size is still "too large".
        #expect(parseError([UInt8](repeating: 0xFF, count: 16_385), limits: .datagram)?.code == .documentTooLarge)
        #expect(parseError([UInt8](repeating: 0x20, count: 16_383) + [0x31], limits: .datagram) == nil)
        #expect(JSONParser.Limits.datagram.maxBytes == 16_384)
        #expect(JSONParser.Limits.stream.maxBytes == 1_048_576)
    }

    @Test func stringLengthLimitCountsScalars() throws {
        let limits = JSONParser.Limits(maxStringLength: 3)
        _ = try parse(#"["abc","é😀x","\u00e9\ud83d\ude00\n"]"#, limits: limits)
        let e = parseError(#"{"a":{"b":[{"c":"abcd"}]}}"#, limits: limits)
        #expect(e?.code == .stringTooLong)
        #expect(e?.path.description == "a.b[0].c")
        let key = parseError(#"{"a":{"long":1}}"#, limits: limits)
        #expect(key?.code == .stringTooLong)
        #expect(key?.path.description == "a")
    }

    @Test func numberLimits() {
        let e = parseError(#"{"q":[1,1e10001]}"#)
        #expect(e?.code == .outOfRange)
        #expect(e?.path.description == "q[1]")
        #expect(parseError("1e-10001")?.code == .outOfRange)
        #expect(parseError("100e9999")?.code == .outOfRange)  // value 1e10001
        #expect(parseError("1e10000") == nil)
        #expect(parseError("0e99999")?.code == .outOfRange)
        let long = "1" + String(repeating: "0", count: 63)  // 64 characters, canonical "1e+63"
        #expect(parseError(long) == nil)
        #expect(parseError(long + "1")?.code == .outOfRange)
        #expect(parseError("[" + String(repeating: "9", count: 10_000) + "]")?.code == .outOfRange)
        // Valid literals whose canonical form would exceed the limit are refused too, so that
        // every accepted value re-serializes within the limit.
        #expect(parseError(String(repeating: "7", count: 64))?.code == .outOfRange)  // 7.77…e+63
        #expect(parseError("0." + String(repeating: "1", count: 62))?.code == .outOfRange)  // 1.11…e-1
        #expect(parseError("1", limits: .init(maxNumberLength: 0))?.code == .outOfRange)
    }

    // MARK: Round trips

    @Test(arguments: FuzzCorpus.cpnpMessages + FuzzCorpus.generic)
    func roundTrips(text: String) throws {
        let value = try parse(text)
        let bytes = JSONSerializer.serialize(value)
        #expect(JSONSerializer.serialize(value) == bytes)
        let again = try JSONParser.parse(bytes)
        #expect(again == value)
        #expect(JSONSerializer.serialize(again) == bytes)
        #expect(try JSONParser.parse(JSONSerializer.serialize(value, pretty: true)) == value)
    }

    @Test func everyParserErrorCodeIsCovered() {
        // The codes the parser itself can produce (the others belong to the message decoder).
        let produced: Set<CPNPDecodingError.Code> = [
            parseError("[")?.code, parseError([0xFF])?.code, parseError(#"{"a":1,"a":2}"#)?.code,
            parseError(String(repeating: "[", count: 40))?.code,
            parseError("1", limits: .init(maxBytes: 0))?.code,
            parseError(#""ab""#, limits: .init(maxStringLength: 1))?.code,
            parseError("1e99999")?.code, parseError(#""\udc00""#)?.code,
        ].compactMap { $0 }.reduce(into: []) { $0.insert($1) }
        #expect(
            produced == [
                .malformedJSON, .invalidUTF8, .duplicateKey, .nestingTooDeep, .documentTooLarge,
                .stringTooLong, .outOfRange, .invalidValue,
            ])
    }
}
