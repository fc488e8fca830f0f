import Testing
@testable import CPNPCore

@Suite struct JSONSerializerTests {
    private func json(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func compactAndInKeyOrder() throws {
        let v = try json(#" { "z" : 1 , "a" : [ true , null , { } , [ ] ] , "m" : "x" } "#)
        #expect(JSONSerializer.serializeString(v) == #"{"z":1,"a":[true,null,{},[]],"m":"x"}"#)
    }

    @Test func programmaticObjectsKeepInsertionOrder() {
        var o = JSONObject()
        o["version"] = .number(1)
        o["method"] = .number(10)
        o["diagnostic"] = .string("no capacity")
        o["method"] = .number(3)  // replacing keeps the position
        #expect(JSONSerializer.serializeString(.object(o)) == #"{"version":1,"method":3,"diagnostic":"no capacity"}"#)
    }

    @Test func escapesMinimally() {
        let s = "q\" b\\ s/ \u{08}\u{0C}\n\r\t \u{0}\u{1F}\u{7F} é😀 \u{2028}"
        #expect(
            JSONSerializer.serializeString(.string(s))
                == "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0000\\u001f\u{7F} é😀 \u{2028}\"")
    }

    @Test func numbersUseCanonicalText() throws {
        let v = try json("[100.0,1E2,-0,0.050,1.5e30,1e-30,-3,99.95]")
        #expect(JSONSerializer.serializeString(v) == "[100,100,0,0.05,1.5e+30,1e-30,-3,99.95]")
    }

    @Test func deterministic() throws {
        for text in FuzzCorpus.cpnpMessages {
            let v = try json(text)
            let a = JSONSerializer.serialize(v)
            let b = JSONSerializer.serialize(try JSONParser.parse(a))
            #expect(a == b)
            #expect(String(decoding: a, as: UTF8.self) == JSONSerializer.serializeString(v))
        }
    }

    @Test func prettyPrinting() throws {
        let v = try json(#"{"a":[1,{"b":[],"c":{}}],"d":"x"}"#)
        let expected = """
            {
              "a": [
                1,
                {
                  "b": [],
                  "c": {}
                }
              ],
              "d": "x"
            }
            """
        #expect(JSONSerializer.serializeString(v, pretty: true) == expected)
        #expect(JSONSerializer.serializeString(.array([]), pretty: true) == "[]")
        #expect(JSONSerializer.serializeString(.number(7), pretty: true) == "7")
    }

    @Test func scalars() {
        #expect(JSONSerializer.serializeString(.null) == "null")
        #expect(JSONSerializer.serializeString(.bool(true)) == "true")
        #expect(JSONSerializer.serializeString(.bool(false)) == "false")
        #expect(JSONSerializer.serializeString(.string("")) == "\"\"")
    }

    @Test func deepValuesDoNotOverflowTheStack() {
        var v = JSONValue.null
        for _ in 0..<100_000 { v = .array([v]) }
        let bytes = JSONSerializer.serialize(v)
        #expect(bytes.count == 200_004)
        #expect(bytes.prefix(3) == [0x5B, 0x5B, 0x5B])
        // Tear down iteratively too (a deep enum's recursive deinit would blow the stack).
        while case .array(let inner) = v, let first = inner.first { v = first }
    }
}
