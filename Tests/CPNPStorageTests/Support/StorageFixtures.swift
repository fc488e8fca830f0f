// Fixtures for the storage tests: temporary directories, a deterministic RNG, CPDs, and an in-memory
// client/server dialogue that drives real state machines of the protocol core into each RFC state.
@testable import CPNPCore
import CPNPStorage
import CPNPTesting
import Foundation

/// A fresh directory under the system's temporary directory; call `remove()` when done.
struct TempDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-storage-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

enum StoreFixture {
    static let clientEndpoint = CPNPEndpoint(host: "192.0.2.10", port: 40_001)
    static let serverEndpoint = CPNPEndpoint(host: "198.51.100.1", port: 8921)
    static let clientSession = CPNPSession(local: clientEndpoint, remote: serverEndpoint)
    static let serverSession = CPNPSession(local: serverEndpoint, remote: clientEndpoint)
    static let identity = "CN=acme-ops,O=ACME"
    static let otherIdentity = "CN=globex,O=Globex"

    /// 2026-11-21T10:00:00Z.
    static let start = CPNPTimestamp(rfc3339: "2026-11-21T10:00:00Z")!
    static func at(_ seconds: Int64) -> CPNPTimestamp { start.adding(.seconds(seconds)) }

    static func cpd(_ text: String) -> CPD { CPDFixtures.cpd(text) }

    static let requested = CPDFixtures.requested
    static let offered = CPDFixtures.offered

    static func customerOrderID(_ text: String) -> CustomerOrderID { CustomerOrderID(text)! }
    static func providerOrderID(_ text: String) -> ProviderOrderID { ProviderOrderID(text)! }

    static func decimal(_ s: String) -> CPNPDecimal { CPNPDecimal(parsing: s)! }

    /// A server order freshly created from a QUOTATION (PQOReceived), without a client machine.
    static func quotedServerOrder(customerOrderID: String, providerOrderID: String, seed: UInt64 = 7) -> (
        ServerOrderStateMachine, [ServerOrderStateMachine.Action]
    ) {
        var rng = SplitMix64(seed: seed)
        let q = QuotationMessage(
            sequenceNumber: 1_000, transactionID: TransactionID.random(using: &rng), customerOrderID: StoreFixture.customerOrderID(customerOrderID),
            expectedResponseTime: StoreFixture.at(600), requestedCPD: requested)
        return ServerOrderStateMachine.quotationReceived(
            q, session: serverSession, providerOrderID: StoreFixture.providerOrderID(providerOrderID), now: start, using: &rng)
    }

    static func payload(_ order: ServerOrderStateMachine, _ kind: String) -> JSONValue {
        .object(
            JSONObject([
                ("kind", .string(kind)), ("provider-order-id", .string(order.providerOrderID.rawValue)),
                ("customer-order-id", .string(order.customerOrderID.rawValue)),
            ]))
    }
}

/// A client machine and a server machine joined in memory, each step one arrow of the RFC's figures.
/// `serverActions` / `clientActions` hold what the last step returned, for building store changes.
struct Dialogue {
    var client: ClientOrderStateMachine
    var server: ServerOrderStateMachine?
    let providerOrderID: ProviderOrderID
    var rng: SplitMix64
    var now = StoreFixture.start
    var toServer: [CPNPMessage] = []
    var toClient: [CPNPMessage] = []
    var serverActions: [ServerOrderStateMachine.Action] = []
    var clientActions: [ClientOrderStateMachine.Action] = []

    init(customerOrderID: String = "acme-2026-0042", providerOrderID: String = "pa-000117", seed: UInt64 = 42) {
        client = ClientOrderStateMachine(customerOrderID: StoreFixture.customerOrderID(customerOrderID))
        self.providerOrderID = StoreFixture.providerOrderID(providerOrderID)
        rng = SplitMix64(seed: seed)
    }

    var serverMachine: ServerOrderStateMachine { server! }

    private mutating func recordServer(_ actions: [ServerOrderStateMachine.Action]) {
        serverActions = actions
        for case .send(let m, _) in actions { toClient.append(m) }
    }

    private mutating func recordClient(_ actions: [ClientOrderStateMachine.Action]) {
        clientActions = actions
        for case .send(let m) in actions { toServer.append(m) }
    }

    mutating func deliverToServer() {
        let m = toServer.removeFirst()
        if server == nil, case .quotation(let q) = m {
            let (sm, actions) = ServerOrderStateMachine.quotationReceived(
                q, session: StoreFixture.serverSession, providerOrderID: providerOrderID, now: now, using: &rng)
            server = sm
            recordServer(actions)
            return
        }
        var sm = server!
        let actions = sm.messageReceived(m, session: StoreFixture.serverSession, now: now, using: &rng)
        server = sm
        recordServer(actions)
    }

    mutating func deliverToClient() {
        let m = toClient.removeFirst()
        recordClient(client.messageReceived(m, session: StoreFixture.clientSession, now: now))
    }

    mutating func serverDo(
        _ body: (inout ServerOrderStateMachine, inout SplitMix64, CPNPTimestamp) throws(OrderCommandError) -> [ServerOrderStateMachine.Action]
    ) throws {
        var sm = server!
        let actions = try body(&sm, &rng, now)
        server = sm
        recordServer(actions)
    }

    mutating func clientDo(
        _ body: (inout ClientOrderStateMachine, inout SplitMix64, CPNPTimestamp) throws(OrderCommandError) -> [ClientOrderStateMachine.Action]
    ) throws {
        var c = client
        let actions = try body(&c, &rng, now)
        client = c
        recordClient(actions)
    }

    /// Client: Created → PQOSent (QUOTATION sent).
    mutating func clientQuotes() throws {
        try clientDo { c, r, now throws(OrderCommandError) in
            try c.quote(
                requestedCPD: StoreFixture.requested, expectedResponseTime: StoreFixture.at(600), session: StoreFixture.clientSession, now: now,
                using: &r)
        }
    }

    /// Server: (none) → PQOReceived.
    mutating func serverReceivesQuotation() { deliverToServer() }

    /// Server: PQOReceived → AwaitingProcessing (PROCESSING sent).
    mutating func serverAcknowledges() throws {
        try serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: StoreFixture.at(300), now: now) }
    }

    /// Server: AwaitingProcessing → OfferProposed (OFFER sent).
    /// QUOTATION sent and received, then acknowledged (PROCESSING): each server change committed to `store`.
    mutating func quoteAndAcknowledge(committingTo store: ServerOrderStore) throws {
        try clientQuotes()
        serverReceivesQuotation()
        try store.commit(serverChange())
        try serverAcknowledges()
        try store.commit(serverChange())
    }

    mutating func serverOffers() throws {
        try serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: StoreFixture.offered, validityOfferTime: StoreFixture.at(3_600), now: now, using: &r)
        }
    }

    /// Client: OfferReceived → OfferProcessing (PROCESSING sent).
    mutating func clientProcessesOffer() throws {
        try clientDo { c, _, now throws(OrderCommandError) in try c.offerProcessingStarted(now: now) }
    }

    /// Client: OfferProcessing → AcceptSent.
    mutating func clientAccepts() throws {
        try clientDo { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
    }

    /// Client: OfferProcessing → Cancelled (DECLINE sent).
    mutating func clientDeclines() throws {
        try clientDo { c, _, now throws(OrderCommandError) in try c.decline(reasons: [.conflictWithAnotherOffer], now: now) }
    }

    /// Server: AcceptReceived → Completed (ACK sent).
    mutating func serverConfirmsAgreement() throws {
        try serverDo { s, _, now throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
    }

    /// From the server's PROCESSING (delivered to the client) to the client processing the offer,
    /// its PROCESSING delivered to the server.
    mutating func offerProcessed() throws {
        try serverOffers()
        deliverToClient()
        try clientProcessesOffer()
        deliverToServer()
    }

    /// From the client processing the offer to the server's Completed (its ACK not yet delivered).
    mutating func agreedOnServer() throws {
        try offerProcessed()
        try clientAccepts()
        deliverToServer()
        try serverConfirmsAgreement()
    }

    /// Client: Completed → Cancelled (WITHDRAW sent).
    mutating func clientWithdraws() throws {
        try clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: StoreFixture.clientSession, now: now, using: &r) }
    }

    /// Server: Completed → Cancelled after a WITHDRAW (ACK with the Empty CPD).
    mutating func serverConfirmsWithdrawal() throws {
        try serverDo { s, _, now throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
    }

    /// The store change for the server's last step.
    func serverChange(
        identity: String = StoreFixture.identity, reservations: HeldCapacity? = nil, outbox: [OutboxEvent] = [],
        expectedRevision: Int64? = nil
    ) -> OrderChange {
        OrderChange(
            machine: serverMachine, clientIdentity: identity, at: now, actions: serverActions, reservations: reservations,
            outbox: outbox, expectedRevision: expectedRevision)
    }

    /// The store change for the client's last step.
    func clientChange(group: String? = nil) -> ClientOrderChange {
        ClientOrderChange(machine: client, serverName: "provider.example", group: group, at: now, actions: clientActions)
    }
}
