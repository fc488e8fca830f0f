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

/// A client machine and a server machine joined in memory: messages sent by one are handed to the
/// other on request, so that a test reads as the RFC's flow figures, one line per arrow.
struct Dialogue {
    var client = ClientOrderStateMachine(customerOrderID: Fixture.customerOrderID)
    var server: ServerOrderStateMachine?
    var rng = Fixture.rng()
    var now = Fixture.start
    /// Messages in flight, oldest first.
    var toServer: [CPNPMessage] = []
    var toClient: [CPNPMessage] = []
    var clientEvents: [ClientOrderStateMachine.Event] = []
    var serverEvents: [ServerOrderStateMachine.Event] = []
    /// Every message, in the order it was sent, as "C>S QUOTATION" / "S>C OFFER".
    var trace: [String] = []
    /// Every message each side sent, in order.
    var sentByClient: [CPNPMessage] = []
    var sentByServer: [CPNPMessage] = []

    mutating func client(_ actions: [ClientOrderStateMachine.Action]) {
        for a in actions {
            switch a {
            case .send(let m):
                toServer.append(m)
                sentByClient.append(m)
                trace.append("C>S \(m.method)")
            case .report(let e): clientEvents.append(e)
            default: break
            }
        }
    }

    mutating func server(_ actions: [ServerOrderStateMachine.Action]) {
        for a in actions {
            switch a {
            case .send(let m, _):
                toClient.append(m)
                sentByServer.append(m)
                trace.append("S>C \(m.method)")
            case .report(let e): serverEvents.append(e)
            default: break
            }
        }
    }

    /// Delivers the oldest message in flight to the server (creating the order for a QUOTATION).
    @discardableResult
    mutating func deliverToServer() -> [ServerOrderStateMachine.Action] {
        let m = toServer.removeFirst()
        if server == nil, case .quotation(let q) = m {
            let (sm, actions) = ServerOrderStateMachine.quotationReceived(
                q, session: Fixture.serverSession, providerOrderID: Fixture.providerOrderID, now: now, using: &rng)
            server = sm
            self.server(actions)
            return actions
        }
        let actions = server!.messageReceived(m, session: Fixture.serverSession, now: now, using: &rng)
        self.server(actions)
        return actions
    }

    @discardableResult
    mutating func deliverToClient() -> [ClientOrderStateMachine.Action] {
        let m = toClient.removeFirst()
        let actions = client.messageReceived(m, session: Fixture.clientSession, now: now)
        self.client(actions)
        return actions
    }

    mutating func serverDo(
        _ body: (inout ServerOrderStateMachine, inout SplitMix64, CPNPTimestamp) throws(OrderCommandError) -> [ServerOrderStateMachine.Action]
    ) throws {
        var sm = server!
        let actions = try body(&sm, &rng, now)
        server = sm
        self.server(actions)
    }

    mutating func clientDo(
        _ body: (inout ClientOrderStateMachine, inout SplitMix64, CPNPTimestamp) throws(OrderCommandError) -> [ClientOrderStateMachine.Action]
    ) throws {
        let actions = try body(&client, &rng, now)
        self.client(actions)
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
