// Deterministic mutation fuzzing support, shared by the JSON parser fuzz test and the
// message decoder fuzz tests. Internal (not private) on purpose: reuse it.

import CPNPCore

/// Byte-level mutations of JSON documents: bit flips, byte insertion/deletion/replacement,
/// truncation, slice duplication/deletion, splicing two corpus documents, and insertion of
/// JSON-significant tokens (`[`, `{`, `"`, `\u`, lone surrogate escapes, invalid UTF-8…).
struct JSONMutator {
    /// The kinds of mutation, chosen uniformly.
    enum Kind: CaseIterable {
        case bitFlip, insertByte, deleteByte, replaceByte, truncate, duplicateSlice, deleteSlice
        case splice, insertToken, replaceWithToken, swapBytes
    }

    /// Byte sequences that tend to reach interesting parser states.
    static let tokens: [[UInt8]] =
        [
            "[", "{", "]", "}", "\"", ",", ":", "\\", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00",
            "\\u0000", "\\x", "-", "0", "-0", "01", "1e", "1e400", "1e99999", "0.", ".5", "1.5e+30",
            "99999999999999999999999999999999999999999999999999999999999999999", "true", "fals", "null", "NaN",
            " ", "\n", "\t", "[[[[[[[[[[[[[[[[", "{\"a\":{\"a\":{\"a\":", "\"\":", "\"a\":1,\"a\":2", ",]", ",}",
            "/*", "//", "é", "😀", "\u{7F}",
        ].map { Array($0.utf8) } + [
            [0x00], [0x1F], [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC3], [0xE0, 0x80, 0x80],
            [0xED, 0xA0, 0x80], [0xF0, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5], [0xFE], [0xFF],
            [0xEF, 0xBB, 0xBF],
        ]

    var rng: SplitMix64
    /// Documents used for splicing (and by ``next()`` as starting points).
    let corpus: [[UInt8]]

    init(seed: UInt64, corpus: [[UInt8]]) {
        precondition(!corpus.isEmpty)
        rng = SplitMix64(seed: seed)
        self.corpus = corpus
    }

    /// A random corpus document with `count` mutations applied.
    mutating func next(mutations count: Int = 1) -> [UInt8] {
        var doc = corpus[rng.below(corpus.count)]
        for _ in 0..<count { mutate(&doc) }
        return doc
    }

    /// Applies one random mutation to `doc` in place.
    mutating func mutate(_ doc: inout [UInt8]) {
        let kinds = Kind.allCases
        mutate(&doc, kind: kinds[rng.below(kinds.count)])
    }

    /// Applies one mutation of the given kind to `doc` in place.
    mutating func mutate(_ doc: inout [UInt8], kind: Kind) {
        if doc.isEmpty {
            doc = Self.tokens[rng.below(Self.tokens.count)]
            return
        }
        let n = doc.count
        switch kind {
        case .bitFlip:
            doc[rng.below(n)] ^= UInt8(1) << UInt8(rng.below(8))
        case .insertByte:
            doc.insert(UInt8(truncatingIfNeeded: rng.next()), at: rng.below(n + 1))
        case .deleteByte:
            doc.remove(at: rng.below(n))
        case .replaceByte:
            doc[rng.below(n)] = UInt8(truncatingIfNeeded: rng.next())
        case .truncate:
            doc.removeSubrange(rng.below(n)...)
        case .duplicateSlice:
            let (lo, hi) = slice(in: n)
            doc.insert(contentsOf: doc[lo..<hi], at: rng.below(n + 1))
        case .deleteSlice:
            let (lo, hi) = slice(in: n)
            doc.removeSubrange(lo..<hi)
        case .splice:
            let other = corpus[rng.below(corpus.count)]
            let cut = rng.below(n + 1)
            let from = rng.below(other.count + 1)
            doc.replaceSubrange(cut..., with: other[from...])
        case .insertToken:
            doc.insert(contentsOf: Self.tokens[rng.below(Self.tokens.count)], at: rng.below(n + 1))
        case .replaceWithToken:
            let (lo, hi) = slice(in: n, maxLength: 4)
            doc.replaceSubrange(lo..<hi, with: Self.tokens[rng.below(Self.tokens.count)])
        case .swapBytes:
            doc.swapAt(rng.below(n), rng.below(n))
        }
    }

    /// A random non-empty range of at most `maxLength` bytes inside `0..<n` (n > 0).
    private mutating func slice(in n: Int, maxLength: Int = 32) -> (Int, Int) {
        let lo = rng.below(n)
        let hi = lo + 1 + rng.below(min(maxLength, n - lo))
        return (lo, hi)
    }
}

/// Seed documents for fuzzing: realistic CPNP messages (docs/protocol.md §3) plus nested
/// and Unicode-heavy JSON.
enum FuzzCorpus {
    static let cpnpMessages: [String] = [
        #"{"version":1,"method":1,"sequence-number":1804289383,"transaction-id":"9f2c1e0b7a5d4c3b2a1908f7e6d5c4b3","customer-order-id":"acme-2026-0042","expected-response-time":"2026-11-21T10:05:00Z","cpd":{"components":[{"profiles":[{"customer-nodes":[{"identifier":"ce1","link-identifiers":[],"localization":{"site-id":"paris-1","country":"FR"}}],"scope":[{"customer-node":"ce1","direction":"outgoing","reachability":"global","source-prefixes":["192.0.2.0/24"]}],"qos-guarantees":{"kind":"quantitative","entries":[{"from":"ce1","to":"*","statistic":"percentile","percentile":99.9,"one-way-delay-ms":{"max":20},"loss-percent":0.1}]}}]}]},"information-elements":{"negotiation-options":{"cost":null}}}"#,
        #"{"version":1,"method":2,"sequence-number":846930886,"transaction-id":"9f2c1e0b7a5d4c3b2a1908f7e6d5c4b3","customer-order-id":"acme-2026-0042","provider-order-id":"pa-000117","expected-offer-time":"2026-11-21T10:15:00.250Z","processing-subcode":2}"#,
        #"{"version":1,"method":3,"sequence-number":846930887,"transaction-id":"9f2c1e0b7a5d4c3b2a1908f7e6d5c4b3","customer-order-id":"acme-2026-0042","provider-order-id":"pa-000117","nonce":"0123456789abcdef0123456789abcdef","validity-offer-time":"2026-11-22T10:00:00Z","cpd":{"components":[{"profiles":[{"customer-nodes":[{"identifier":"ce1","link-identifiers":["pe1-ge-0/0/1"],"localization":{"latitude":48.8566,"longitude":2.3522}}],"capacity":[{"customer-node":"ce1","incoming-bandwidth-mbps":100,"outgoing-bandwidth-mbps":1E2}],"availability":{"availability-percent":99.95,"statistic":"average"}}]}]},"information-elements":{"cost":{"amount":"1250.00","currency":"EUR","period":"month"}}}"#,
        #"{"version":1,"method":5,"sequence-number":1,"transaction-id":"abcdef0123456789abcdef0123456789","customer-order-id":"c-1","provider-order-id":"p-1","nonce":"ffffffffffffffffffffffffffffffff","reasons":[1,2,3]}"#,
        #"{"version":1,"method":10,"sequence-number":846930886,"transaction-id":"9f2c1e0b7a5d4c3b2a1908f7e6d5c4b3","customer-order-id":"acme-2026-0042","provider-order-id":"pa-000117","status-code":5,"diagnostic":"no capacity on link pe1-pe2"}"#,
        #"{"version":1,"method":11,"sequence-number":7,"transaction-id":"0000000000000000","customer-order-id":"x","provider-order-id":"y","nonce":"00000000000000000000000000000000","activation-schedule":null,"information-elements":{"customer-description":{"name":"ACME Corp","contact":{"email":"noc@acme.example","telephone-numbers":["+33 1 23 45 67 89"]}}}}"#,
        #"{"version":1,"method":6,"sequence-number":2147483647,"transaction-id":"9f2c1e0b7a5d4c3b2a1908f7e6d5c4b3","customer-order-id":"acme","provider-order-id":"pa","cpd":{"components":[]},"information-elements":{"negotiation-options":{"purpose":"testing","test-period-end":"2026-12-01T00:00:00Z","activation-type":"explicit","local-only":true}}}"#,
        #"{"version":1,"method":9,"sequence-number":3,"transaction-id":"t-t-t-t-t-t-t-t-t","customer-order-id":"é","provider-order-id":"p","nonce":"0","expected-response-time":"2026-02-29T23:59:60+01:00","activation-schedule":0,"provider-description":{"name":"Provider A","as-number":64500}}"#,
    ]

    static let generic: [String] = [
        #"[[[[[[[[[[[[[[[[{"a":[[[[[[[[{"b":[[]]}]]]]]]]]}]]]]]]]]]]]]]]]]"#,
        #"{"ascii":"tab\there \"quoted\" back\\slash \/ \b\f\n\r","u":"\u00e9\u4e2d\ud83d\ude00\u0000\u001F","raw":"é中😀\#u{7F}"}"#,
        #" [ -0 , 0.1 , -1.5e-7 , 1E2 , 123456789012345678901234567890 , 1e-30 , 0.000001 , true , false , null , "" , {} , [] ] "#,
        #"{"":"","a":{"":{"":[{"k\u0041":"v"},{"kA":1}]}},"nested":{"x":{"y":{"z":[1,[2,[3,[4]]]]}}}}"#,
    ]

    /// All seed documents as UTF-8 bytes.
    static var all: [[UInt8]] { (cpnpMessages + generic).map { Array($0.utf8) } }
}
