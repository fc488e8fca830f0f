// Negotiation strategies (RFC 8921 §7, §8.10) on hand-made rounds: no network.
import CPNPClient
import CPNPCore
import CPNPTransport
import CPNPTesting
import Testing

struct StrategyTests {
    func gap(_ requested: JSONValue?, _ offered: JSONValue?, kind: CPDGap.Kind = .notSatisfied, path: String = "capacity") -> CPDGap {
        CPDGap(path: JSONPath([.key(path)]), kind: kind, requested: requested, offered: offered)
    }

    func range(_ min: Int64?, _ max: Int64?) -> JSONValue {
        var o = JSONObject()
        if let min { o["min"] = .number(CPNPDecimal(min)) }
        if let max { o["max"] = .number(CPNPDecimal(max)) }
        return .object(o)
    }

    @Test func shortfallIsRelativeToTheMissedBound() {
        #expect(OfferTolerances.shortfall(gap(.number(100), .number(80))) == 0.2)
        #expect(OfferTolerances.shortfall(gap(range(80, 100), .number(60))) == 0.25)
        #expect(OfferTolerances.shortfall(gap(range(nil, 20), .number(25))) == 0.25)
        #expect(OfferTolerances.shortfall(gap(range(80, 100), .number(90))) == 0)
        #expect(OfferTolerances.shortfall(gap(.string("gold"), .string("silver"))) == nil)
        #expect(OfferTolerances.shortfall(gap(.number(100), nil, kind: .missing)) == nil)
    }

    @Test func tolerancesAcceptOnlyNumericShortfallsWithinTheBoundOrIgnoredPaths() {
        let t = OfferTolerances(relative: 0.2)
        #expect(t.tolerates(gap(.number(100), .number(80))))
        #expect(!t.tolerates(gap(.number(100), .number(79))))
        #expect(!t.tolerates(gap(.number(100), nil, kind: .missing)))
        #expect(!OfferTolerances.exact.tolerates(gap(.number(100), .number(99))))
        let ignoring = OfferTolerances(ignoredPaths: ["components[0].profiles[0].notifications"])
        let notification = CPDGap(
            path: JSONPath([.key("components"), .index(0), .key("profiles"), .index(0), .key("notifications"), .index(0)]),
            kind: .missing, requested: .string("x"), offered: nil)
        #expect(ignoring.tolerates(notification))
        #expect(!ignoring.tolerates(gap(.number(100), .number(80))))
    }

    func candidate(_ n: Int, cost: Int64?, currency: String = "EUR", gaps: [CPDGap]) throws -> NegotiationCandidate {
        let offer = OfferMessage(
            sequenceNumber: 1, transactionID: TransactionID("transaction-000000\(n)")!, customerOrderID: CustomerOrderID("co-\(n)")!,
            providerOrderID: ProviderOrderID("po-\(n)")!, nonce: Nonce(String(repeating: "a", count: 31) + "\(n)")!,
            validityOfferTime: CPNPTimestamp(millisecondsSinceEpoch: 4_000_000_000_000), offeredCPD: .empty,
            informationElements: cost.map { InformationElements(cost: Cost(amount: CPNPDecimal($0), currency: currency)) })
        return NegotiationCandidate(
            server: try CPNPPeer.server(host: "127.0.0.\(n)", port: 8921), customerOrderID: CustomerOrderID("co-\(n)")!,
            offer: offer, comparison: CPDComparison(gaps: gaps))
    }

    func round(_ candidates: [NegotiationCandidate], number: Int = 1) -> NegotiationRound {
        NegotiationRound(number: number, request: .empty, informationElements: nil, candidates: candidates)
    }

    @Test func bestOfNPrefersLowestCostThenSmallestGapThenServerOrder() throws {
        let within = OfferTolerances(relative: 0.3)
        let a = try candidate(1, cost: 1_200, gaps: [])
        let b = try candidate(2, cost: 900, gaps: [gap(.number(100), .number(80))])
        let c = try candidate(3, cost: 900, gaps: [])
        let d = try candidate(4, cost: 500, gaps: [gap(.number(100), .number(10))])  // cheapest, but outside the tolerance
        #expect(BestOfN(tolerances: within).decide(round([a, b, c, d])) == .accept(CustomerOrderID("co-3")!))
        #expect(BestOfN(tolerances: within).decide(round([a, b, d])) == .accept(CustomerOrderID("co-2")!))
        #expect(BestOfN().decide(round([a, b, d])) == .accept(CustomerOrderID("co-1")!))
        let noCost = try candidate(5, cost: nil, gaps: [])
        #expect(BestOfN().decide(round([noCost, a])) == .accept(CustomerOrderID("co-1")!))
        let e = try candidate(6, cost: nil, gaps: [])
        #expect(BestOfN().decide(round([noCost, e])) == .accept(CustomerOrderID("co-5")!))
        guard case .stop = BestOfN().decide(round([d])) else { Issue.record("an unacceptable offer must not be accepted"); return }
    }

    @Test func acceptIfSatisfiesTakesTheFirstAcceptableOffer() throws {
        let partial = try candidate(1, cost: 100, gaps: [gap(.number(100), .number(90))])
        let full = try candidate(2, cost: 900, gaps: [])
        #expect(AcceptIfSatisfies().decide(round([partial, full])) == .accept(CustomerOrderID("co-2")!))
        #expect(AcceptIfSatisfies(tolerances: OfferTolerances(relative: 0.1)).decide(round([partial, full])) == .accept(CustomerOrderID("co-1")!))
        guard case .stop(let why) = AcceptIfSatisfies().decide(round([partial])) else { Issue.record("expected stop"); return }
        #expect(why.contains("none within the tolerances"))
    }

    @Test func multiRoundRequotesUntilItsLimit() throws {
        var json = try loadExample("l3vpn-3-sites.json").json
        let edited = json.setValue(at: "components[0].profiles[0].capacity[2].incoming-bandwidth-mbps", .object(JSONObject([("min", .number(300))])))
        #expect(edited)
        let cpd = try CPD(json: json, at: .root)
        let path = JSONPath([
            .key("components"), .index(0), .key("profiles"), .index(0), .key("capacity"), .index(2), .key("incoming-bandwidth-mbps"),
        ])
        var partial = try candidate(1, cost: 100, gaps: [])
        partial.comparison = CPDComparison(gaps: [
            CPDGap(path: path, kind: .notSatisfied, requested: .object(JSONObject([("min", .number(300))])), offered: .number(200))
        ])
        let strategy = MultiRound(base: AcceptIfSatisfies(), maximumRounds: 2, adjust: RelaxTowardsOffer(floor: 0.5))
        let first = NegotiationRound(number: 1, request: cpd, informationElements: nil, candidates: [partial])
        guard case .requote(let next, _) = strategy.decide(first) else { Issue.record("expected a second round"); return }
        #expect(next.components[0].profiles[0].capacity?[2].json != cpd.components[0].profiles[0].capacity?[2].json)
        #expect(next.components[0].profiles[0].capacity?[0].json == cpd.components[0].profiles[0].capacity?[0].json)
        guard case .object(let capacity) = next.components[0].profiles[0].capacity?[2].json else { Issue.record("capacity"); return }
        #expect(capacity["incoming-bandwidth-mbps"] == JSONValue.number(200))
        let second = NegotiationRound(number: 2, request: next, informationElements: nil, candidates: [partial])
        guard case .stop = strategy.decide(second) else { Issue.record("the round limit must stop"); return }
        // A shortfall beyond the floor is not relaxed.
        guard case .stop = MultiRound(base: AcceptIfSatisfies(), maximumRounds: 3, adjust: RelaxTowardsOffer(floor: 0.2)).decide(first) else {
            Issue.record("a 33% shortfall must not be relaxed with a 20% floor"); return
        }
    }
}
