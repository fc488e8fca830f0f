import CPNPTesting
import Testing
@testable import CPNPCore

/// ``JSONWriter`` writes member by member the bytes ``JSONSerializer`` gives for the same tree.
@Suite struct JSONWriterTests {
    /// Writes `value` through the writer's calls, integers through ``JSONWriter/integer(_:)``.
    private func write(_ value: JSONValue, _ writer: inout JSONWriter) {
        switch value {
        case .null: writer.null()
        case .bool(let boolean): writer.bool(boolean)
        case .string(let text): writer.string(text)
        case .number(let decimal):
            if let integer = decimal.int64Value { writer.integer(integer) } else { writer.value(value) }
        case .array(let elements):
            writer.beginArray()
            for element in elements { write(element, &writer) }
            writer.endArray()
        case .object(let object):
            writer.beginObject()
            for member in object.members {
                writer.key(member.key)
                write(member.value, &writer)
            }
            writer.endObject()
        }
    }

    @Test func writesWhatTheSerializerWrites() throws {
        for text in FuzzCorpus.cpnpMessages + [
            #"{"a":[[],{},[{}],-0,9223372036854775807,-9223372036854775808,1.5e+30,"\n\u0001é"]}"#, "[]", "{}", "7",
        ] {
            let value = try JSONParser.parse(Array(text.utf8))
            var writer = JSONWriter()
            write(value, &writer)
            #expect(writer.bytes == JSONSerializer.serialize(value), "\(text)")
        }
        var rng = SplitMix64(seed: 11)
        for _ in 0..<2_000 {
            let integer = Int64.random(in: .min ... .max, using: &rng) >> Int64.random(in: 0...63, using: &rng)
            var writer = JSONWriter()
            writer.integer(integer)
            #expect(writer.bytes == JSONSerializer.serialize(.number(CPNPDecimal(integer))), "\(integer)")
        }
    }

    /// A CPD's compact JSON is written straight from its model: the bytes are those of its tree
    /// (``ConnectivityProvisioningDocument/json``), for the examples, the CPD of every kind of
    /// message, and thousands of mutations of them that still decode (numbers, strings with escapes,
    /// negotiable forms, members removed or added).
    @Test func aCPDIsWrittenAsItsTreeIsSerialized() async throws {
        /// Nil when the written bytes are the tree's, else what differs.
        @Sendable func mismatch(_ cpd: CPD, _ what: String) -> String? {
            let fresh = CPD(components: cpd.components)
            let written = String(decoding: fresh.compactJSON, as: UTF8.self)
            let serialized = String(decoding: JSONSerializer.serialize(fresh.json), as: UTF8.self)
            return written == serialized ? nil : "\(what): written \(written), serialized \(serialized)"
        }
        func check(_ cpd: CPD, _ what: String) {
            if let difference = mismatch(cpd, what) { Issue.record(Comment(rawValue: difference)) }
        }
        let examples = [
            "l3vpn-3-sites.json", "l3vpn-3-sites-offer.json", "l3vpn-3-sites-partial-offer.json", "as-interconnect-upgrade.json",
            "cdn-footprint-extension.json", "testing-purpose-order.json",
        ]
        for name in examples { check(try loadExample(name), name) }
        let messages = try CodecTests.everyKind().filter { $0.carriedCPD.map { !$0.isEmpty } ?? false }
        var quotations: [CPNPMessage] = []
        for case .quotation(var quotation) in messages {
            for name in examples {
                quotation.requestedCPD = try loadExample(name)
                quotations.append(.quotation(quotation))
            }
        }
        #expect(quotations.count >= examples.count)
        let corpus = (messages + quotations).map { CPNPCodec.encode($0) }
        // Off the pool (``computeOffThePool(_:)``); the issues are recorded here, on the test's task.
        let (checked, differences) = await computeOffThePool {
            var mutator = JSONMutator(seed: 0xB17E5, corpus: corpus)
            var checked = 0
            var differences: [String] = []
            for round in 0..<10_000 {
                var bytes = corpus[round % corpus.count]
                mutator.mutate(&bytes)
                guard let message = try? CPNPCodec.decode(bytes), let cpd = message.carriedCPD else { continue }
                if let difference = mismatch(cpd, "round \(round)") { differences.append(difference) }
                checked += 1
            }
            return (checked, differences)
        }
        for difference in differences.prefix(5) { Issue.record(Comment(rawValue: difference)) }
        #expect(differences.isEmpty, "\(differences.count) mutated CPDs written differently")
        #expect(checked > 1_500, "\(checked) mutated CPDs decoded")
    }

    @Test func membersAndNesting() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("s", "x\"y")
        writer.member("absent", ifPresent: nil)
        writer.member("n", UInt32.max)
        writer.member("b", false)
        writer.member("t", time: nil)
        writer.object("o") { inner in
            inner.member("t", time: CPNPTimestamp(millisecondsSinceEpoch: 0))
            inner.key("a")
            inner.beginArray()
            inner.raw(Array(#"{"k":1}"#.utf8))
            inner.null()
            inner.endArray()
        }
        writer.endObject()
        #expect(
            String(decoding: writer.bytes, as: UTF8.self)
                == #"{"s":"x\"y","n":4294967295,"b":false,"t":null,"o":{"t":"1970-01-01T00:00:00Z","a":[{"k":1},null]}}"#)
    }
}
