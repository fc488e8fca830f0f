import CPNPCore
import Testing
@testable import CPNPPolicy

/// Random requests against random networks and inventories (seeded, reproducible): offers
/// never hold more than is free, are always concrete and valid, and failures are only the
/// resource and presence ones a permissive profile can get.
@Suite("Decision engine properties")
struct DecisionPropertyTests {
    struct Scenario {
        var config: ServerConfiguration
        var reservations: [Reservation]
        var request: CPD
        var profile: CustomerProfile
    }

    static func decimal(_ g: inout SplitMix64, upTo max: Int) -> CPNPDecimal {
        // Whole or one-decimal values, exact.
        let tenths = Int64.random(in: 0...Int64(max * 10), using: &g)
        return Bool.random(using: &g)
            ? CPNPDecimal(tenths / 10) : CPNPDecimal(isNegative: false, digits: String(tenths).utf8.map { $0 - 0x30 }, exponent: -1)
    }

    static func negotiable(_ g: inout SplitMix64) -> Negotiable<CPNPDecimal>? {
        switch Int.random(in: 0...7, using: &g) {
        case 0: return nil
        case 1: return .fixed(decimal(&g, upTo: 600))
        case 2:
            let lo = decimal(&g, upTo: 400)
            return .range(min: lo, max: lo + decimal(&g, upTo: 400))
        case 3: return .range(min: decimal(&g, upTo: 600), max: nil)
        case 4: return .range(min: nil, max: decimal(&g, upTo: 600))
        case 5: return .oneOf((0..<Int.random(in: 1...3, using: &g)).map { _ in decimal(&g, upTo: 800) })
        case 6: return .any
        default: return .fixed(0)
        }
    }

    static func scenario(_ g: inout SplitMix64) -> Scenario {
        var config = ServerConfiguration()
        let peCount = Int.random(in: 1...4, using: &g)
        for i in 0..<peCount {
            let countries = Bool.random(using: &g) ? ["FR"] : []
            config.policy.networkPresence.append(ProviderEdge(id: "P\(i)", sites: ["S\(i)"], countries: countries))
            for j in 0..<Int.random(in: 0...2, using: &g) {
                let cap =
                    Bool.random(using: &g)
                    ? LinkCapacity(symmetric: decimal(&g, upTo: 1000) + 1)
                    : LinkCapacity(incoming: decimal(&g, upTo: 1000) + 1, outgoing: decimal(&g, upTo: 1000) + 1)
                config.policy.links.append(ProviderLink(id: "P\(i):l\(j)", pe: "P\(i)", capacity: cap))
            }
        }
        config.policy.counterOffers = CounterOfferPolicy(
            dropUnservedSites: Bool.random(using: &g),
            dropExhaustedSites: Bool.random(using: &g))
        config.policy.defaults.bandwidthMbps = decimal(&g, upTo: 200) + 1
        config.policy.qos.defaultQoS.oneWayDelayMs = Bool.random(using: &g) ? 10 : 25  // 25: a looser QoS than asked
        var reservations: [Reservation] = []
        for l in config.policy.links {
            for dir in [CPDDirection.incoming, .outgoing] where Bool.random(using: &g) {
                // Sometimes everything, sometimes a part, sometimes more than the link (overbooked).
                let mbps: CPNPDecimal =
                    switch Int.random(in: 0...3, using: &g) {
                    case 0: l.capacity[dir]
                    case 1: l.capacity[dir] + 5
                    default: decimal(&g, upTo: 1000)
                    }
                reservations.append(Reservation(linkID: l.id, direction: dir, mbps: mbps))
            }
        }
        var profile = CustomerProfile(identity: "p")
        if Bool.random(using: &g) { profile.entitlements.maxBandwidthMbps = decimal(&g, upTo: 500) + 1 }

        var nodes: [CPDCustomerNode] = []
        var capacity: [CPDCapacityEntry] = []
        for n in 0..<Int.random(in: 1...4, using: &g) {
            let id = "N\(n)"
            let pe = Int.random(in: 0..<peCount, using: &g)
            let peLinks = config.policy.links(at: "P\(pe)")
            var node = CPDCustomerNode(identifier: id, localization: CPDLocalization(siteID: "S\(pe)", country: "FR"))
            switch Int.random(in: 0...5, using: &g) {
            case 0: node.linkIdentifiers = peLinks.randomElement(using: &g).map { [$0.id] } ?? ["P\(pe)"]
            case 1: node.linkIdentifiers = ["P\(pe)"]
            case 2: node.localization.siteID = "S-unknown"  // served through the country, when a PE takes FR
            case 3: node.linkIdentifiers = Bool.random(using: &g) ? ["nowhere"] : []
            default: break
            }
            nodes.append(node)
            if Int.random(in: 0...4, using: &g) > 0 {
                var i = negotiable(&g)
                let o = negotiable(&g)
                if i == nil && o == nil { i = .any }
                capacity.append(CPDCapacityEntry(customerNode: id, incomingBandwidthMbps: i, outgoingBandwidthMbps: o))
            }
        }
        let qos = CPDQoSGuarantees(
            kind: .quantitative,
            entries: nodes.map {
                CPDQoSEntry(
                    from: $0.identifier, to: "*", statistic: .average, oneWayDelayMs: .range(min: nil, max: 20),
                    lossPercent: .any)
            })
        let request = Fixture.cpd(
            nodes, capacity: capacity.isEmpty ? nil : capacity, qos: qos,
            availability: CPDAvailability(availabilityPercent: .range(min: 99, max: nil), statistic: .average))
        return Scenario(config: config, reservations: reservations, request: request, profile: profile)
    }

    @Test func offersNeverExceedFreeCapacityAndAreAlwaysConcrete() throws {
        var g = SplitMix64(seed: 0x8921)
        var counts: [String: Int] = [:]
        for iteration in 0..<400 {
            let s = Self.scenario(&g)
            let inventory = s.config.inventory(reservations: s.reservations)
            let engine = DecisionEngine(configuration: s.config)
            let d = engine.decide(
                request: s.request, informationElements: Fixture.options(cost: true), profile: s.profile,
                identityPresent: true, inventory: inventory, now: Fixture.now)
            // Pure: the same inputs, the same decision.
            #expect(
                d
                    == engine.decide(
                        request: s.request, informationElements: Fixture.options(cost: true), profile: s.profile,
                        identityPresent: true, inventory: inventory, now: Fixture.now))
            switch d {
            case .fail(let code, let diagnostic):
                counts["fail \(code.rawValue)", default: 0] += 1
                #expect([FailStatusCode.outOfResources, .networkPresenceError].contains(code), "iteration \(iteration): \(diagnostic)")
                #expect(!diagnostic.isEmpty && diagnostic.unicodeScalars.count <= 256)
            case .needsApproval:
                Issue.record("iteration \(iteration): no approval rule is configured")
            case .offer(let o):
                counts[o.satisfiesRequest ? "full" : "partial", default: 0] += 1
                #expect(inventory.fits(o.reservations), "iteration \(iteration): \(o.reservations)")
                for r in o.reservations {
                    #expect(!(inventory.free(r.linkID, r.direction) < r.mbps), "iteration \(iteration): \(r)")
                    #expect(CPNPDecimal(0) < r.mbps)
                }
                #expect(o.cpd.isConcrete, "iteration \(iteration): \(o.cpd.looseFields)")
                #expect(o.cpd.validate().errors == [], "iteration \(iteration)")
                #expect(o.satisfiesRequest == o.gaps.isEmpty)
                #expect(o.gaps == o.cpd.comparison(against: s.request).gaps)
                // What is offered is what is reserved.
                #expect(
                    OfferMetrics.totalBandwidth(o.cpd) == o.reservations.reduce(CPNPDecimal(0)) { $0 + $1.mbps },
                    "iteration \(iteration)")
                if let max = s.profile.entitlements.maxBandwidthMbps {
                    #expect(OfferMetrics.bandwidths(o.cpd).allSatisfy { !(max < $0) })
                }
                // Exact price: base 0 + 0 × Mbps + no premium configured.
                #expect(o.cost == Cost(amount: 0, currency: "EUR", period: "month"))
            }
        }
        // The generator exercises every outcome.
        #expect(counts["full", default: 0] > 20)
        #expect(counts["partial", default: 0] > 20)
        #expect(counts["fail 5", default: 0] > 5)
        #expect(counts["fail 6", default: 0] > 5)
    }

    @Test func requestsThatFitAreSatisfied() {
        // Fixed bandwidths on an empty inventory large enough: always a full offer.
        var g = SplitMix64(seed: 42)
        for _ in 0..<100 {
            let mbps = Self.decimal(&g, upTo: 1000)
            let d = Fixture.decide(Fixture.single(.fixed(mbps), site: "PARIS-HQ"))
            #expect(d.offer?.satisfiesRequest == true, "\(mbps): \(d)")
            #expect(d.offer?.reservations.map(\.mbps) == (mbps.isZero ? [] : [mbps, mbps]))
        }
    }
}
