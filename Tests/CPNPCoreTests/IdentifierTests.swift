import Testing
@testable import CPNPCore

@Suite("Identifiers")
struct IdentifierTests {
    /// Provider order ids made later sort later (the store's indexes grow at their end), carry 64
    /// random bits, and are valid PROVIDER_ORDER_IDENTIFIERs (RFC 8921 §9.1.2).
    @Test func timeOrderedProviderOrderIDsSortByCreationTimeAndStayUnguessable() {
        var rng = SplitMix64(seed: 7)
        let start = CPNPTimestamp(millisecondsSinceEpoch: 1_796_541_133_024)
        var previous: ProviderOrderID?
        var randomParts = Set<String>()
        for step in 0..<2_000 {
            let time = start.adding(.milliseconds(Int64(step / 3)))
            let id = ProviderOrderID.timeOrdered(at: time, using: &rng)
            #expect(ProviderOrderID(id.rawValue) == id)
            #expect(id.rawValue.hasPrefix("po-") && id.rawValue.utf8.count == 3 + 12 + 16, "\(id)")
            #expect(id.rawValue.dropFirst(3).allSatisfy { "0123456789abcdef".contains($0) }, "\(id)")
            #expect(String(id.rawValue.dropFirst(3).prefix(12)) == String(UInt64(time.millisecondsSinceEpoch), radix: 16).leftPadded(to: 12))
            if let previous, step % 3 == 0 { #expect(previous < id, "\(previous) then \(id)") }
            randomParts.insert(String(id.rawValue.suffix(16)))
            previous = id
        }
        #expect(randomParts.count == 2_000)
        // Times before 1970 or past 2^48 ms do not break the format.
        #expect(ProviderOrderID.timeOrdered(at: CPNPTimestamp(millisecondsSinceEpoch: -5), using: &rng).rawValue.hasPrefix("po-000000000000"))
        #expect(ProviderOrderID.timeOrdered(at: CPNPTimestamp(millisecondsSinceEpoch: .max), prefix: "x-", using: &rng).rawValue.utf8.count == 30)
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}
