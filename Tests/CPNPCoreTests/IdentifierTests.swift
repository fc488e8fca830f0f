import Testing
@testable import CPNPCore

@Suite("Identifiers")
struct IdentifierTests {
    /// Ids `make` gives for 2,000 times, three per millisecond: each is `prefix`, the time in 12 hex
    /// characters, then 16 hex characters of randomness, all distinct; later times sort later.
    static func checkTimeOrdered(prefix: String, _ make: (CPNPTimestamp, inout SplitMix64) -> String) {
        var rng = SplitMix64(seed: 7)
        let start = CPNPTimestamp(millisecondsSinceEpoch: 1_796_541_133_024)
        var previous: String?
        var randomParts = Set<String>()
        for step in 0..<2_000 {
            let time = start.adding(.milliseconds(Int64(step / 3)))
            let id = make(time, &rng)
            #expect(id.hasPrefix(prefix) && id.utf8.count == prefix.utf8.count + 12 + 16, "\(id)")
            #expect(id.dropFirst(prefix.count).allSatisfy { "0123456789abcdef".contains($0) }, "\(id)")
            #expect(String(id.dropFirst(prefix.count).prefix(12)) == String(UInt64(time.millisecondsSinceEpoch), radix: 16).leftPadded(to: 12))
            if let previous, step % 3 == 0 { #expect(previous < id, "\(previous) then \(id)") }
            randomParts.insert(String(id.suffix(16)))
            previous = id
        }
        #expect(randomParts.count == 2_000)
    }

    /// Provider order ids made later sort later (the store's indexes grow at their end), carry 64
    /// random bits, and are valid PROVIDER_ORDER_IDENTIFIERs (RFC 8921 §9.1.2).
    @Test func timeOrderedProviderOrderIDsSortByCreationTimeAndStayUnguessable() {
        Self.checkTimeOrdered(prefix: "po-") { time, rng in
            let id = ProviderOrderID.timeOrdered(at: time, using: &rng)
            #expect(ProviderOrderID(id.rawValue) == id)
            return id.rawValue
        }
        var rng = SplitMix64(seed: 7)
        // Times before 1970 or past 2^48 ms do not break the format.
        #expect(ProviderOrderID.timeOrdered(at: CPNPTimestamp(millisecondsSinceEpoch: -5), using: &rng).rawValue.hasPrefix("po-000000000000"))
        #expect(ProviderOrderID.timeOrdered(at: CPNPTimestamp(millisecondsSinceEpoch: .max), prefix: "x-", using: &rng).rawValue.utf8.count == 30)
    }

    /// Customer order ids made later sort later too (a server's index keyed by the client and its
    /// customer order ids grows at its end), and are valid CUSTOMER_ORDER_IDENTIFIERs (RFC 8921 §9.1.1).
    @Test func timeOrderedCustomerOrderIDsSortByCreationTime() {
        Self.checkTimeOrdered(prefix: "co-") { time, rng in
            let id = CustomerOrderID.timeOrdered(at: time, using: &rng)
            #expect(CustomerOrderID(id.rawValue) == id)
            return id.rawValue
        }
        var counting = CountingGenerator(words: [0x0123_4567_89ab_cdef])
        #expect(
            CustomerOrderID.timeOrdered(at: CPNPTimestamp(millisecondsSinceEpoch: 0x1_0000), prefix: "ng-", using: &counting).rawValue
                == "ng-000000010000efcdab8967452301")
        #expect(counting.draws == 1)
    }

    /// A generator that counts its draws and gives the words it was told to.
    struct CountingGenerator: RandomNumberGenerator {
        var words: [UInt64]
        var draws = 0
        mutating func next() -> UInt64 {
            defer { draws += 1 }
            return words[draws % words.count]
        }
    }

    /// Random identifiers take 8 bytes from each draw, lowest byte first: a draw from the system's
    /// generator is a system call, and a 16-byte id took 16 of them.
    @Test func randomIdentifiersTakeEightBytesPerDraw() {
        var rng = CountingGenerator(words: [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210])
        #expect(TransactionID.random(using: &rng).rawValue == "efcdab89674523011032547698badcfe")
        #expect(rng.draws == 2)
        #expect(Nonce.random(using: &rng).rawValue == "efcdab89674523011032547698badcfe")
        #expect(rng.draws == 4)
        #expect(CustomerOrderID.random(using: &rng).rawValue == "co-efcdab8967452301")
        #expect(rng.draws == 5)
        let start = CPNPTimestamp(millisecondsSinceEpoch: 0x1_0000)
        #expect(ProviderOrderID.timeOrdered(at: start, using: &rng).rawValue == "po-0000000100001032547698badcfe")
        #expect(rng.draws == 6)
        // From the system's generator: well formed and distinct.
        var system = SystemRandomNumberGenerator()
        let ids = (0..<1_000).map { _ in TransactionID.random(using: &system) }
        #expect(Set(ids).count == 1_000)
        #expect(ids.allSatisfy { TransactionID($0.rawValue) == $0 })
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}
