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

/// The client and server machines joined in memory (Sources/CPNPTesting/MachineDialogue.swift), with
/// this target's fixtures; `serverActions` / `clientActions` hold what the last step returned, for
/// building store changes.
typealias Dialogue = MachineDialogue

extension MachineDialogue {
    init(customerOrderID: String = "acme-2026-0042", providerOrderID: String = "pa-000117", seed: UInt64 = 42) {
        self.init(
            customerOrderID: StoreFixture.customerOrderID(customerOrderID), providerOrderID: StoreFixture.providerOrderID(providerOrderID),
            clientSession: StoreFixture.clientSession, serverSession: StoreFixture.serverSession, start: StoreFixture.start, seed: seed)
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
