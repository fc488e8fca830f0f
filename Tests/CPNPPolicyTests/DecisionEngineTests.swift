import CPNPCore
import Testing
@testable import CPNPPolicy

@Suite("Decision engine")
struct DecisionEngineTests {

    static func path(_ s: String) -> String { "components[0].profiles[0].\(s)" }

    // MARK: full offers

    @Test func fullOfferSatisfiesTheL3VPNRequest() throws {
        let request = try Fixture.example("l3vpn-3-sites.json")
        let d = Fixture.decide(request, ies: Fixture.options(cost: true))
        guard case .offer(let o) = d else {
            Issue.record("expected an offer, got \(d)")
            return
        }
        #expect(o.satisfiesRequest)
        #expect(o.gaps == [])
        #expect(o.cpd.comparison(against: request).satisfies)
        #expect(o.cpd.isConcrete)
        #expect(o.cpd.validate().errors == [])
        #expect(o.notes == [])
        #expect(
            o.reservations == [
                Reservation(linkID: "PE-LYS-1:ge-0/0/3", direction: .incoming, mbps: 100),
                Reservation(linkID: "PE-LYS-1:ge-0/0/3", direction: .outgoing, mbps: 100),
                Reservation(linkID: "PE-MRS-1:xe-1/0/0", direction: .incoming, mbps: 20),
                Reservation(linkID: "PE-MRS-1:xe-1/0/0", direction: .outgoing, mbps: 20),
                Reservation(linkID: "PE-PAR-2:ge-0/0/1", direction: .incoming, mbps: 100),
                Reservation(linkID: "PE-PAR-2:ge-0/0/1", direction: .outgoing, mbps: 100),
            ])
        let p = o.profile
        // The largest value each request admits that is free; an open upper bound → its minimum.
        #expect(p.capacity?.map(\.incomingBandwidthMbps) == [.fixed(100), .fixed(100), .fixed(20)])
        // The provider chose the Lyon link; the others keep what the client named.
        #expect(p.customerNodes.map(\.linkIdentifiers) == [["PE-PAR-2:ge-0/0/1"], ["PE-LYS-1:ge-0/0/3"], ["PE-MRS-1:xe-1/0/0"]])
        // QoS: the achievable values (PE pair PAR-2/LYS-1, else the default for "*").
        let q = try #require(p.qosGuarantees).entries
        #expect(q[0].oneWayDelayMs == .fixed(12) && q[0].delayVariationMs == .fixed(3) && q[0].lossPercent == .fixed(dec("0.05")))
        #expect(q[2].oneWayDelayMs == .fixed(30) && q[2].delayVariationMs == .fixed(8) && q[2].lossPercent == .fixed(dec("0.3")))
        #expect(p.availability?.availabilityPercent == .fixed(dec("99.95")))
        #expect(p.conformanceTraffic?.mtuBytes == .fixed(1500))
        #expect(p.notifications?[0].intervalSeconds == .fixed(300))
        // Price: 500 + 2.50 × 440 Mbit/s + 150 (quantitative) = 1750.00 EUR per month.
        #expect(o.cost == Cost(amount: 1750, currency: "EUR", period: "month"))
        #expect(o.cost?.amount.plainString(minimumFractionDigits: 2) == "1750.00")
        #expect(o.informationElements.cost == o.cost)
        #expect(o.informationElements.providerDescription?.asNumber == 64500)
        #expect(o.informationElements.negotiationOptions?.costRequested == false)
    }

    @Test func noCostUnlessAsked() throws {
        let o = try #require(Fixture.decide(Fixture.single(.fixed(10))).offer)
        #expect(o.cost == nil && o.informationElements.cost == nil)
    }

    @Test(arguments: [
        (Negotiable<CPNPDecimal>.range(min: 80, max: 100), CPNPDecimal(100)),
        (.range(min: 20, max: nil), 20),
        (.range(min: nil, max: 300), 300),
        (.oneOf([50, 100, 2000]), 100),
        (.any, 10),
        (.fixed(42), 42),
    ])
    func bandwidthChoice(requested: Negotiable<CPNPDecimal>, offered: CPNPDecimal) throws {
        let d = Fixture.decide(Fixture.single(requested))
        let o = try #require(d.offer)
        #expect(d.isPlainOffer)
        #expect(o.capacity[0].incomingBandwidthMbps == .fixed(offered))
        #expect(o.satisfiesRequest)
        #expect(o.reservations.map(\.mbps) == [offered, offered])
    }

    // MARK: counter-offers

    @Test func counterOfferWithWhatIsFree() throws {
        let d = Fixture.decide(Fixture.single(.fixed(100)), reservations: Fixture.leaving(80, on: "PE-PAR-2:ge-0/0/1"))
        let o = try #require(d.offer)
        #expect(d.isPlainOffer)
        #expect(!o.satisfiesRequest)
        #expect(o.capacity[0].incomingBandwidthMbps == .fixed(80) && o.capacity[0].outgoingBandwidthMbps == .fixed(80))
        #expect(
            o.gaps.map(\.description) == [
                Self.path("capacity[0].incoming-bandwidth-mbps: requested 100, offered 80"),
                Self.path("capacity[0].outgoing-bandwidth-mbps: requested 100, offered 80"),
            ])
        #expect(
            o.reservations == [
                Reservation(linkID: "PE-PAR-2:ge-0/0/1", direction: .incoming, mbps: 80),
                Reservation(linkID: "PE-PAR-2:ge-0/0/1", direction: .outgoing, mbps: 80),
            ])
        #expect(o.notes.first == #"customer node CE-1 incoming: 80 Mbps offered, 100 requested (80 Mbps free on PE-PAR-2:ge-0/0/1)"#)
        #expect(o.cpd.isConcrete)
    }

    @Test func rangeStaysInsideWhenEnoughIsFree() throws {
        let o = try #require(
            Fixture.decide(Fixture.single(.range(min: 80, max: 100)), reservations: Fixture.leaving(90, on: "PE-PAR-2:ge-0/0/1")).offer)
        #expect(o.capacity[0].incomingBandwidthMbps == .fixed(90))
        #expect(o.satisfiesRequest)
    }

    @Test func entitlementCapsBandwidth() throws {
        let o = try #require(Fixture.decide(Fixture.single(.fixed(800)), profile: Fixture.globex).offer)
        #expect(o.capacity[0].incomingBandwidthMbps == .fixed(500))
        #expect(!o.satisfiesRequest && o.gaps.count == 2)
        #expect(o.notes.first?.hasSuffix("(customer globex is entitled to at most 500 Mbps)") == true)
    }

    @Test func subsetOfSitesWhenOneSiteIsExhausted() throws {
        let request = try Fixture.example("l3vpn-3-sites.json")
        let d = Fixture.decide(request, reservations: Fixture.leaving(0, on: "PE-MRS-1:xe-1/0/0"))
        let o = try #require(d.offer)
        #expect(d.isPlainOffer)
        #expect(!o.satisfiesRequest)
        #expect(o.profile.customerNodes.map(\.identifier) == ["CE-PAR-1", "CE-LYS-1"])
        #expect(o.profile.scope.count == 4 && o.profile.qosGuarantees?.entries.count == 2)
        #expect(!o.reservations.contains { $0.linkID == "PE-MRS-1:xe-1/0/0" })
        #expect(o.cpd.isConcrete && o.cpd.validate().errors == [])
        #expect(o.gaps.contains { $0.path.description == Self.path("customer-nodes[2]") && $0.kind == .missing })
        #expect(o.notes.contains { $0.contains("PE-MRS-1:xe-1/0/0 has 0 Mbps free") })
    }

    @Test func exhaustedSiteIsAFailureWhenSubsetsAreOff() throws {
        var config = Fixture.demo
        config.policy.counterOffers.dropExhaustedSites = false
        let d = Fixture.decide(try Fixture.example("l3vpn-3-sites.json"), config: config, reservations: Fixture.leaving(0, on: "PE-MRS-1:xe-1/0/0"))
        #expect(d.failure?.code == .outOfResources)
        #expect(d.failure?.diagnostic.contains("CE-MRS-1") == true)
    }

    @Test func looserQoSIsACounterOffer() throws {
        let qos = CPDQoSGuarantees(
            kind: .quantitative,
            entries: [
                CPDQoSEntry(
                    from: "CE-P", to: "CE-M", statistic: .average, oneWayDelayMs: .range(min: nil, max: 5),
                    delayVariationMs: .fixed(10), lossPercent: .oneOf([dec("0.01"), dec("0.5")])),
                CPDQoSEntry(from: "CE-M", to: "*", statistic: .average, oneWayDelayMs: .any, throughputMbps: .any),
            ])
        let request = Fixture.cpd(
            [Fixture.node("CE-P", site: "PARIS-HQ"), Fixture.node("CE-M", site: "MARSEILLE-BR")], qos: qos,
            availability: CPDAvailability(availabilityPercent: .fixed(dec("99.99")), statistic: .average))
        let o = try #require(Fixture.decide(request).offer)
        let e = try #require(o.profile.qosGuarantees).entries
        #expect(e[0].oneWayDelayMs == .fixed(18))  // PE-PAR-2 ↔ PE-MRS-1 achieves 18 ms: looser
        #expect(e[0].delayVariationMs == .fixed(10))  // achieves 4 ≤ 10: the requested bound
        #expect(e[0].lossPercent == .fixed(dec("0.5")))  // the first member the network meets
        #expect(e[1].oneWayDelayMs == .fixed(30))  // "*": the default
        #expect(e[1].throughputMbps == .fixed(10))  // "any": the provider's default
        #expect(o.profile.availability?.availabilityPercent == .fixed(dec("99.95")))
        #expect(
            o.gaps.map(\.description) == [
                Self.path("qos-guarantees.entries[0].one-way-delay-ms: requested {\"max\":5}, offered 18"),
                Self.path("availability.availability-percent: requested 99.99, offered 99.95"),
            ])
        #expect(o.cpd.isConcrete)
    }

    @Test func qualitativeClassNotOffered() throws {
        let qos = CPDQoSGuarantees(
            kind: .qualitative,
            entries: [
                CPDQoSEntry(from: "CE-1", to: "*", metaQoSClass: "platinum"),
                CPDQoSEntry(from: "*", to: "CE-1", metaQoSClass: "silver"),
            ])
        let o = try #require(Fixture.decide(Fixture.cpd([Fixture.node("CE-1", site: "PARIS-HQ")], qos: qos), ies: Fixture.options(cost: true)).offer)
        #expect(o.profile.qosGuarantees?.entries.map(\.metaQoSClass) == ["gold", "silver"])
        #expect(o.gaps.count == 1)
        // Base fee + gold + silver premiums (no bandwidth).
        #expect(o.cost?.amount == dec("920.00"))
    }

    @Test func anyValuesTakeTheProviderDefaults() throws {
        let request = Fixture.cpd([Fixture.node("CE-1", site: "LYON-DC")], capacity: [Fixture.cap("CE-1", in: .any, out: nil)]) { p in
            p.scope[0].reachability = .any
            p.scope[0].destinationPrefixes = ["10.0.0.0/8"]
            p.conformanceTraffic?.mtuBytes = .any
            p.invocationMeans = CPDInvocationMeans(type: .any)
            p.notifications = [CPDNotification(events: ["link-down"], method: .syslog, intervalSeconds: .any)]
            p.availability = CPDAvailability(availabilityPercent: .any, statistic: .average)
        }
        let o = try #require(Fixture.decide(request).offer)
        let p = o.profile
        #expect(p.capacity?[0].incomingBandwidthMbps == .fixed(10) && p.capacity?[0].outgoingBandwidthMbps == nil)
        #expect(p.scope[0].reachability == .fixed(.restricted))
        #expect(p.conformanceTraffic?.mtuBytes == .fixed(1500))
        #expect(p.invocationMeans?.type == .fixed(.implicit))
        #expect(p.notifications?[0].intervalSeconds == .fixed(300))
        #expect(p.availability?.availabilityPercent == .fixed(dec("99.95")))
        #expect(o.reservations == [Reservation(linkID: "PE-LYS-1:ge-0/0/3", direction: .incoming, mbps: 10)])
        #expect(o.satisfiesRequest && o.cpd.isConcrete && o.cpd.validate().errors == [])
    }

    @Test func providerPicksTheTightestLinkThatFits() throws {
        // PE-PAR-1 has a 10G and a 1G link: a small order goes on the 1G one …
        let small = try #require(Fixture.decide(Fixture.single(.fixed(10), site: "PARIS-DC1")).offer)
        #expect(small.reservations.map(\.linkID) == ["PE-PAR-1:ge-0/0/2", "PE-PAR-1:ge-0/0/2"])
        #expect(small.profile.customerNodes[0].linkIdentifiers == ["PE-PAR-1:ge-0/0/2"])
        // … a big one on the 10G one; a site nobody lists is served by its country's PE.
        let big = try #require(
            Fixture.decide(
                Fixture.single(.fixed(900), site: "PARIS-DC1"),
                reservations: Fixture.leaving(500, on: "PE-PAR-1:ge-0/0/2")
            ).offer)
        #expect(big.reservations.map(\.linkID) == ["PE-PAR-1:xe-0/0/0", "PE-PAR-1:xe-0/0/0"])
        let lab = try #require(Fixture.decide(Fixture.single(.fixed(10), site: "LAB-RENNES")).offer)
        #expect(lab.reservations.first?.linkID == "PE-PAR-1:ge-0/0/2")
        // A PE named by the client: one of its links, the node's list untouched.
        let named = try #require(Fixture.decide(Fixture.single(.fixed(10), site: "X", link: "PE-PAR-1")).offer)
        #expect(named.profile.customerNodes[0].linkIdentifiers == ["PE-PAR-1"])
        #expect(named.reservations.first?.linkID == "PE-PAR-1:ge-0/0/2")
        #expect(named.satisfiesRequest)
    }

    @Test func twoEntriesOnOneLinkShareItsCapacity() throws {
        let request = Fixture.cpd(
            [Fixture.node("A", links: ["PE-MRS-1:xe-1/0/0"]), Fixture.node("B", links: ["PE-MRS-1:xe-1/0/0"])],
            capacity: [Fixture.cap("A", in: .fixed(150), out: .fixed(150)), Fixture.cap("B", in: .fixed(150), out: .fixed(150))])
        let o = try #require(Fixture.decide(request).offer)
        #expect(o.capacity.map(\.incomingBandwidthMbps) == [.fixed(150), .fixed(50)])
        #expect(o.reservations.map(\.mbps) == [200, 200])
        #expect(Fixture.demo.inventory().fits(o.reservations))
    }

    // MARK: failures

    @Test func failAuthenticationRequired() {
        let d = Fixture.decide(Fixture.single(.fixed(10)), identityPresent: false)
        #expect(d.failure?.code == .authenticationRequired)
        #expect(d.failure?.diagnostic.contains("client certificate") == true)
    }

    @Test func failAuthorization() {
        let unknown = Fixture.decide(Fixture.single(.fixed(10)), profile: nil)
        #expect(unknown.failure?.code == .authorizationFailed)
        #expect(unknown.failure?.diagnostic == "the client identity is not a known customer")
        let filtered = Fixture.decide(Fixture.single(.fixed(10)), profile: Fixture.globex, clientAddress: "10.1.2.3")
        #expect(filtered.failure?.code == .authorizationFailed)
        #expect(filtered.failure?.diagnostic == "source address 10.1.2.3 is not allowed for customer globex")
        #expect(Fixture.decide(Fixture.single(.fixed(10)), profile: Fixture.acme, clientAddress: "10.1.2.3").isPlainOffer)
        #expect(Fixture.decide(Fixture.single(.fixed(10)), profile: Fixture.globex, clientAddress: "::ffff:127.0.0.1").isPlainOffer)
    }

    @Test func failAdministrativelyProhibited() throws {
        let mrs = Fixture.decide(try Fixture.example("l3vpn-3-sites.json"), profile: Fixture.globex)
        #expect(mrs.failure?.code == .administrativelyProhibited)
        #expect(mrs.failure?.diagnostic == "customer node CE-MRS-1: customer globex is not entitled to PE-MRS-1 (link PE-MRS-1:xe-1/0/0)")

        let bySite = Fixture.decide(Fixture.single(.fixed(10), site: "MARSEILLE-BR"), profile: Fixture.globex)
        #expect(bySite.failure?.diagnostic == "customer node CE-1: served only by PE-MRS-1, which customer globex is not entitled to")

        let country = Fixture.decide(Fixture.cpd([Fixture.node("CE-B", site: "BERLIN-1", country: "DE")]))
        #expect(country.failure?.code == .administrativelyProhibited)
        #expect(country.failure?.diagnostic == "customer node CE-B: country DE is not allowed for customer acme")

        let testing = Fixture.decide(Fixture.single(.fixed(10)), ies: Fixture.options(purpose: .testing), profile: Fixture.globex)
        #expect(testing.failure?.code == .administrativelyProhibited)
        #expect(testing.failure?.diagnostic == "customer globex is not entitled to testing orders")

        let longTest = Fixture.decide(
            Fixture.single(.fixed(10)), ies: Fixture.options(purpose: .testing, testEnd: Fixture.now + .seconds(40 * 86400)))
        #expect(longTest.failure?.code == .administrativelyProhibited)
        #expect(longTest.failure?.diagnostic.contains("exceeds the 30 days customer acme is entitled to") == true)
        #expect(
            Fixture.decide(Fixture.single(.fixed(10)), ies: Fixture.options(purpose: .testing, testEnd: Fixture.now + .seconds(7 * 86400)))
                .isPlainOffer)

        let busy = Fixture.decide(Fixture.single(.fixed(10)), openOrders: 20)
        #expect(busy.failure?.code == .administrativelyProhibited)
        #expect(busy.failure?.diagnostic == "customer acme already has 20 open orders (maximum 20)")
        // An UPDATE does not open an order.
        #expect(Fixture.decide(Fixture.single(.fixed(10)), openOrders: 20, updating: []).isPlainOffer)
    }

    @Test func failOutOfResources() {
        let d = Fixture.decide(Fixture.single(.fixed(50), site: "MARSEILLE-BR"), reservations: Fixture.leaving(0, on: "PE-MRS-1:xe-1/0/0"))
        #expect(d.failure?.code == .outOfResources)
        #expect(
            d.failure?.diagnostic == "out of resources: customer node CE-1: link PE-MRS-1:xe-1/0/0 has 0 Mbps free incoming, "
                + "link PE-MRS-1:xe-1/0/0 has 0 Mbps free outgoing")
        // One direction exhausted is enough: half a link is no attachment.
        var one = Fixture.leaving(0, on: "PE-MRS-1:xe-1/0/0")
        one.removeFirst()
        let out = Fixture.decide(Fixture.single(.fixed(50), site: "MARSEILLE-BR"), reservations: one)
        #expect(out.failure?.diagnostic == "out of resources: customer node CE-1: link PE-MRS-1:xe-1/0/0 has 0 Mbps free outgoing")
    }

    @Test func failNetworkPresence() {
        let unknownPE = Fixture.decide(Fixture.single(.fixed(10), link: "PE-BER-1"))
        #expect(unknownPE.failure?.code == .networkPresenceError)
        #expect(unknownPE.failure?.diagnostic == #"customer node CE-1: link or PE "PE-BER-1" is not in the provider's network"#)
        let nowhere = Fixture.decide(Fixture.cpd([Fixture.node("CE-X", site: "NOWHERE", country: nil)]))
        #expect(nowhere.failure?.code == .networkPresenceError)
        #expect(nowhere.failure?.diagnostic == "customer node CE-X (site NOWHERE): no network presence")
        var anyCountry = Fixture.demo
        anyCountry.customers[0].entitlements.countries = nil
        let berlin = Fixture.decide(
            Fixture.cpd([Fixture.node("CE-B", site: "BERLIN-1", country: "DE")]), config: anyCountry,
            profile: anyCountry.customers[0])
        #expect(berlin.failure?.diagnostic == "customer node CE-B (site BERLIN-1, country DE): no network presence")
    }

    @Test func unservedSitesCanBeLeftOut() throws {
        var config = Fixture.demo
        config.policy.counterOffers.dropUnservedSites = true
        let request = Fixture.cpd(
            [Fixture.node("CE-P", site: "PARIS-HQ"), Fixture.node("CE-X", links: ["PE-BER-1"])],
            capacity: [Fixture.cap("CE-P", in: .fixed(10), out: .fixed(10)), Fixture.cap("CE-X", in: .fixed(10), out: .fixed(10))])
        let o = try #require(Fixture.decide(request, config: config).offer)
        #expect(o.profile.customerNodes.map(\.identifier) == ["CE-P"])
        #expect(!o.satisfiesRequest && o.cpd.validate().errors == [])
        #expect(o.notes.first?.hasPrefix("left out (no network presence)") == true)
        // Not when nothing would be left.
        let alone = Fixture.decide(Fixture.cpd([Fixture.node("CE-X", links: ["PE-BER-1"])]), config: config)
        #expect(alone.failure?.code == .networkPresenceError)
    }

    @Test func failMessageValidationAndActivationType() {
        #expect(Fixture.decide(.empty).failure?.code == .messageValidationError)
        var bad = Fixture.single(.fixed(10))
        bad.components[0].profiles[0].conformanceTraffic = nil
        #expect(
            Fixture.decide(bad).failure?.diagnostic
                == "cpd.components[0].profiles[0].conformance-traffic: conformance-traffic is required when capacity is present")
        var config = Fixture.demo
        config.policy.activationTypes = [.immediate]
        let d = Fixture.decide(Fixture.single(.fixed(10)), config: config, ies: Fixture.options(activation: .explicit))
        #expect(d.failure?.code == .unsupportedActivationType)
        #expect(d.failure?.diagnostic == "activation type explicit is not supported; supported: immediate")
    }

    @Test func diagnosticsAreClipped() {
        let long = String(repeating: "x", count: 400)
        #expect(clip(long).unicodeScalars.count == 256)
        #expect(clip("short") == "short")
    }

    // MARK: pricing

    @Test func pricingIsExact() throws {
        let qos = CPDQoSGuarantees(kind: .quantitative, entries: [CPDQoSEntry(from: "CE-1", to: "*", statistic: .average, oneWayDelayMs: .any)])
        let request = Fixture.cpd(
            [Fixture.node("CE-1", site: "PARIS-HQ")], capacity: [Fixture.cap("CE-1", in: .fixed(dec("33.3")), out: .fixed(dec("33.3")))],
            qos: qos)
        let o = try #require(Fixture.decide(request, ies: Fixture.options(cost: true), profile: Fixture.globex).offer)
        // 800.00 + 3.10 × 66.6 + 250.00 (globex's quantitative premium) = 1256.46 exactly.
        #expect(o.cost == Cost(amount: dec("1256.46"), currency: "EUR", period: "month"))
        #expect(o.cost?.amount.plainString(minimumFractionDigits: 2) == "1256.46")
        // The top-level price list for a profile without its own.
        var p = Fixture.globex
        p.pricing = nil
        #expect(DecisionEngine(configuration: Fixture.demo).pricing(for: p).cost(for: o.cpd).amount == dec("1416.40"))
    }

    // MARK: approval (RFC 8921 §12.2)

    @Test func bigOrdersWaitForAnOperator() throws {
        let d = Fixture.decide(Fixture.single(.fixed(2000), site: "PARIS-DC1"))
        guard case .needsApproval(let reason, let offer?) = d else {
            Issue.record("expected needsApproval with an offer, got \(d)")
            return
        }
        #expect(reason == "offered bandwidth 2000 Mbps is above 1000 Mbps (approval rule 0: above-mbps: 1000)")
        #expect(offer.satisfiesRequest && offer.cpd.isConcrete)
        #expect(offer.reservations.map(\.linkID) == ["PE-PAR-1:xe-0/0/0", "PE-PAR-1:xe-0/0/0"])
        #expect(Fixture.decide(Fixture.single(.fixed(1000), site: "PARIS-DC1")).isPlainOffer)
    }

    @Test(arguments: [
        (ApprovalRule.all, "every order is validated by an operator (approval rule 0: all)"),
        (.aboveTotalMbps(15), "total offered bandwidth 20 Mbps is above 15 Mbps (approval rule 0: above-total-mbps: 15)"),
        (.aboveAmount(500), "price 550.00 EUR per month is above 500 EUR (approval rule 0: above-amount: 500)"),
        (.purpose(.permanent), "permanent orders are validated by an operator (approval rule 0: purpose: permanent)"),
        (.customers(["ACME"]), "orders of customer acme are validated by an operator (approval rule 0: customers: [ACME])"),
    ])
    func approvalRules(rule: ApprovalRule, reason: String) {
        var config = Fixture.demo
        config.approval.rules = [rule]
        let d = Fixture.decide(Fixture.single(.fixed(10)), config: config)
        guard case .needsApproval(let r, let o) = d else {
            Issue.record("expected needsApproval, got \(d)")
            return
        }
        #expect(r == reason)
        #expect(o != nil)
    }

    @Test func approvalRulesThatDoNotMatch() {
        var config = Fixture.demo
        config.approval.rules = [.aboveTotalMbps(20), .aboveAmount(550), .purpose(.testing), .customers(["globex"])]
        #expect(Fixture.decide(Fixture.single(.fixed(10)), config: config).isPlainOffer)
    }

    @Test func manualModeAndEscalation() {
        var config = Fixture.demo
        config.approval.mode = .manual
        guard case .needsApproval(let reason, _?) = Fixture.decide(Fixture.single(.fixed(10)), config: config) else {
            Issue.record("expected needsApproval")
            return
        }
        #expect(reason == "approval mode is manual: every order is validated by an operator")
        // Failures other than resources are never escalated.
        #expect(Fixture.decide(Fixture.single(.fixed(10)), config: config, identityPresent: false).failure?.code == .authenticationRequired)
        config.approval.escalateOutOfResources = true
        let d = Fixture.decide(
            Fixture.single(.fixed(50), site: "MARSEILLE-BR"), config: config, reservations: Fixture.leaving(0, on: "PE-MRS-1:xe-1/0/0"))
        guard case .needsApproval(let why, nil) = d else {
            Issue.record("expected needsApproval without offer, got \(d)")
            return
        }
        #expect(why.hasPrefix("escalated: out of resources: customer node CE-1"))
    }

    // MARK: UPDATE

    @Test func updateKeepsItsOwnCapacity() throws {
        let own = [
            Reservation(linkID: "PE-PAR-2:ge-0/0/1", direction: .incoming, mbps: 900),
            Reservation(linkID: "PE-PAR-2:ge-0/0/1", direction: .outgoing, mbps: 900),
        ]
        let asNew = try #require(Fixture.decide(Fixture.single(.fixed(950)), reservations: own).offer)
        #expect(asNew.capacity[0].incomingBandwidthMbps == .fixed(100))
        let update = try #require(Fixture.decide(Fixture.single(.fixed(950)), reservations: own, updating: own).offer)
        #expect(update.capacity[0].incomingBandwidthMbps == .fixed(950) && update.satisfiesRequest)
        #expect(
            DecisionEngine.reservationsDelta(old: own, new: update.reservations) == [
                Reservation(linkID: "PE-PAR-2:ge-0/0/1", direction: .incoming, mbps: 50),
                Reservation(linkID: "PE-PAR-2:ge-0/0/1", direction: .outgoing, mbps: 50),
            ])
    }

    @Test func reservationsDelta() {
        let old = [
            Reservation(linkID: "L", direction: .incoming, mbps: 900), Reservation(linkID: "L", direction: .outgoing, mbps: 900),
            Reservation(linkID: "K", direction: .incoming, mbps: 5),
        ]
        let new = [
            Reservation(linkID: "L", direction: .outgoing, mbps: 850), Reservation(linkID: "L", direction: .incoming, mbps: 950),
            Reservation(linkID: "M", direction: .incoming, mbps: dec("0.5")),
        ]
        #expect(
            DecisionEngine.reservationsDelta(old: old, new: new) == [
                Reservation(linkID: "K", direction: .incoming, mbps: -5),
                Reservation(linkID: "L", direction: .incoming, mbps: 50),
                Reservation(linkID: "L", direction: .outgoing, mbps: -50),
                Reservation(linkID: "M", direction: .incoming, mbps: dec("0.5")),
            ])
        #expect(DecisionEngine.reservationsDelta(old: old, new: old) == [])
    }

    // MARK: the repository's examples

    @Test(arguments: ["l3vpn-3-sites.json", "cdn-footprint-extension.json", "testing-purpose-order.json", "as-interconnect-upgrade.json"])
    func examplesGetConcreteOffersOrTheRightFailure(name: String) throws {
        let d = Fixture.decide(try Fixture.example(name))
        if name == "as-interconnect-upgrade.json" {
            #expect(d.failure?.code == .administrativelyProhibited)  // DE and NL: acme is entitled to FR only
            return
        }
        let o = try #require(d.offer, "\(d)")
        #expect(o.cpd.isConcrete)
        #expect(o.cpd.validate().errors == [])
        #expect(o.satisfiesRequest == o.gaps.isEmpty)
        #expect(Fixture.demo.inventory().fits(o.reservations))
    }
}

@Suite("Inventory and access filters")
struct InventoryTests {
    @Test func freeCapacity() {
        let inv = InventoryView(
            capacity: ["L": LinkCapacity(incoming: 100, outgoing: 50)],
            reservations: [Reservation(linkID: "L", direction: .incoming, mbps: 30)])
        #expect(inv.free("L", .incoming) == 70 && inv.free("L", .outgoing) == 50)
        #expect(inv.free("unknown", .incoming) == 0)
        let over = inv.reserving([Reservation(linkID: "L", direction: .incoming, mbps: 100)])
        #expect(over.free("L", .incoming) == 0)  // never negative
        #expect(inv.releasing([Reservation(linkID: "L", direction: .incoming, mbps: 1000)]).free("L", .incoming) == 100)
        #expect(inv.fits([Reservation(linkID: "L", direction: .incoming, mbps: 40), Reservation(linkID: "L", direction: .incoming, mbps: 30)]))
        #expect(!inv.fits([Reservation(linkID: "L", direction: .incoming, mbps: 40), Reservation(linkID: "L", direction: .incoming, mbps: 31)]))
        #expect(!inv.fits([Reservation(linkID: "X", direction: .incoming, mbps: 1)]))
        #expect(
            Reservation.aggregate([
                Reservation(linkID: "L", direction: .outgoing, mbps: 1),
                Reservation(linkID: "L", direction: .outgoing, mbps: -1),
            ]) == [])
        #expect(Reservation(linkID: "L", direction: .incoming, mbps: dec("2.5")).description == "L incoming 2.5 Mbps")
    }

    @Test func sourcePrefixFilters() {
        let p = CustomerProfile(identity: "x", sourcePrefixes: [CPDIPPrefix("192.0.2.0/24")!, CPDIPPrefix("2001:db8::/32")!])
        #expect(p.admits(address: "192.0.2.77"))
        #expect(!p.admits(address: "192.0.3.1"))
        #expect(p.admits(address: "[2001:db8::1]"))
        #expect(p.admits(address: "2001:db8::1%eth0"))
        #expect(p.admits(address: "::ffff:192.0.2.1"))
        #expect(!p.admits(address: "2001:db9::1"))
        #expect(!p.admits(address: "not an address"))
        #expect(CustomerProfile(identity: "open").admits(address: "203.0.113.9"))
        let odd = CustomerProfile(identity: "y", sourcePrefixes: [CPDIPPrefix("10.128.0.0/9")!, CPDIPPrefix("0.0.0.0/0")!])
        #expect(odd.admits(address: "8.8.8.8"))
        let nine = CustomerProfile(identity: "z", sourcePrefixes: [CPDIPPrefix("10.128.0.0/9")!])
        #expect(nine.admits(address: "10.200.0.1") && !nine.admits(address: "10.100.0.1"))
    }
}
