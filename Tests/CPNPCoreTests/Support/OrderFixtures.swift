// Fixtures for the state-machine tests: sessions, times, CPDs, and builders that drive a
// client or a server machine into each RFC state through real transitions.
@testable import CPNPCore
import CPNPTesting

enum Fixture {
    static let clientEndpoint = CPNPEndpoint(host: "127.0.0.1", port: 40_001)
    static let serverEndpoint = CPNPEndpoint(host: "127.0.0.1", port: 8921)
    /// The client's view of the session.
    static let clientSession = CPNPSession(local: clientEndpoint, remote: serverEndpoint)
    /// The server's view of the same session.
    static let serverSession = CPNPSession(local: serverEndpoint, remote: clientEndpoint)
    static let otherClientSession = CPNPSession(local: CPNPEndpoint(host: "127.0.0.1", port: 40_999), remote: serverEndpoint)
    static let otherServerSession = CPNPSession(local: serverEndpoint, remote: CPNPEndpoint(host: "127.0.0.1", port: 40_999))

    /// 2026-11-21T10:00:00Z.
    static let start = CPNPTimestamp(rfc3339: "2026-11-21T10:00:00Z")!
    static func at(_ seconds: Int64) -> CPNPTimestamp { start.adding(.seconds(seconds)) }
    static let farFuture = at(86_400 * 365)

    static let customerOrderID = CustomerOrderID("acme-2026-0042")!
    static let providerOrderID = ProviderOrderID("pa-000117")!

    static func cpd(_ text: String) -> CPD { CPDFixtures.cpd(text) }

    /// A loose request: 80 to 100 Mbps.
    static let requested = CPDFixtures.requested
    /// A concrete offer that satisfies it.
    static let offered = CPDFixtures.offered
    /// A concrete counter-offer with a gap (75 Mbps).
    static let partial = CPDFixtures.singleNode(bandwidth: "75")
    /// An updated request and offer (200 Mbps).
    static let updateRequested = CPDFixtures.singleNode(bandwidth: "200")

    static func rng(_ seed: UInt64 = 42) -> SplitMix64 { SplitMix64(seed: seed) }

    static func informationElements(activation: ActivationType? = nil, purpose: Purpose? = nil, testPeriodEnd: CPNPTimestamp? = nil)
        -> InformationElements
    {
        InformationElements(negotiationOptions: NegotiationOptions(purpose: purpose, testPeriodEnd: testPeriodEnd, activationType: activation))
    }
}

/// The messages a machine sent, in order.
func sent(_ actions: [ClientOrderStateMachine.Action]) -> [CPNPMessage] {
    actions.compactMap { if case .send(let m) = $0 { m } else { nil } }
}

func sent(_ actions: [ServerOrderStateMachine.Action]) -> [CPNPMessage] {
    actions.compactMap { if case .send(let m, _) = $0 { m } else { nil } }
}

func isDiscard(_ actions: [ClientOrderStateMachine.Action]) -> Bool {
    actions.count == 1 && { if case .discard = actions[0] { true } else { false } }()
}

func isDiscard(_ actions: [ServerOrderStateMachine.Action]) -> Bool {
    actions.count == 1 && { if case .discard = actions[0] { true } else { false } }()
}

/// The client and server machines joined in memory (Sources/CPNPTesting/MachineDialogue.swift), with
/// this target's fixtures.
typealias Dialogue = MachineDialogue

extension MachineDialogue {
    /// acme's order `acme-2026-0042`, the server's `pa-000117`, at ``Fixture/start``.
    init() {
        self.init(
            customerOrderID: Fixture.customerOrderID, providerOrderID: Fixture.providerOrderID, clientSession: Fixture.clientSession,
            serverSession: Fixture.serverSession, start: Fixture.start)
    }

    /// QUOTATION sent and received; the server holds the order in PQOReceived.
    mutating func quote(cpd: CPD = Fixture.requested, ies: InformationElements? = nil, expectedResponseTime: CPNPTimestamp? = Fixture.at(600)) throws
    {
        try clientDo { c, r, now throws(OrderCommandError) in
            try c.quote(
                requestedCPD: cpd, informationElements: ies, expectedResponseTime: expectedResponseTime, session: Fixture.clientSession, now: now,
                using: &r)
        }
        deliverToServer()
    }

    /// Up to Completed on both sides through PROCESSING, OFFER, PROCESSING, ACCEPT, ACK (Figure 6).
    mutating func negotiate(offerIEs: InformationElements? = nil, requestIEs: InformationElements? = nil) throws {
        try quote(ies: requestIEs)
        try serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: Fixture.at(300), now: now) }
        deliverToClient()
        try serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), informationElements: offerIEs, now: now, using: &r)
        }
        deliverToClient()
        try clientDo { c, _, now throws(OrderCommandError) in try c.offerProcessingStarted(now: now) }
        deliverToServer()
        try clientDo { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
        deliverToServer()
        try serverDo { s, _, now throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
        deliverToClient()
    }
}
