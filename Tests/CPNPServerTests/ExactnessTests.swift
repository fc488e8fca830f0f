// The engine's answers to repeated, replayed and refused messages, and what a restart keeps
// (RFC 8921 §9.2.2, §9.2.5, §11.3, §11.4, Table 6).
import Testing
import CPNPCore
import CPNPPolicy
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation

@Suite("Server engine: exact answers to repeats, replays and refusals")
struct ExactnessTests {
    struct Setup {
        let paths = TestPaths()
        let store: ServerOrderStore
        let sink = CollectingSink()
        let engine: CPNPServerEngine
        let acme = TestCustomer("acme", port: 40_300)
        init(configuration: ServerConfiguration = testConfiguration()) throws {
            store = try ServerOrderStore(path: paths.database)
            engine = CPNPServerEngine(configuration: configuration, store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        }
    }

    /// A site in a country where the demo provider has no network presence (FAIL 6).
    static let berlin = CPD.site("CE-BER-1", site: "BERLIN-1", link: "PE-BER-1:xe-0/0/0", bandwidth: "10")

    static func quotation(_ cpd: CPD, order: String, sequenceNumber: SequenceNumber = 1_000) -> CPNPMessage {
        var rng = SystemRandomNumberGenerator()
        return .quotation(
            QuotationMessage(
                sequenceNumber: sequenceNumber, transactionID: .random(using: &rng), customerOrderID: CustomerOrderID(order)!, requestedCPD: cpd))
    }

    @Test func aSecondWithdrawOfAWithdrawnOrderIsRefusedAndItsRetransmissionGetsTheSameFail() async throws {
        let s = try Setup()
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-twice")!)
        try await s.acme.agree(&order, CPD.marseille(min: 10, max: 50), engine: s.engine, sink: s.sink, now: now)
        let agreement = try #require(order.agreement)
        await s.acme.deliver(try order.withdraw(session: s.acme.clientSession, now: now, using: &rng), to: s.engine)
        #expect(s.sink.take(for: s.acme.endpoint).map(\.method) == [.processing, .ack])
        let withdrawn = try #require(try s.store.order(providerOrderID: agreement.providerOrderID))
        #expect(withdrawn.state == .cancelled)

        // Table 6: WITHDRAW must match an order in Completed; this one is Cancelled.
        let again = CPNPMessage.withdraw(
            WithdrawMessage(
                sequenceNumber: 77, transactionID: .random(using: &rng), customerOrderID: agreement.customerOrderID,
                providerOrderID: agreement.providerOrderID, nonce: agreement.nonce))
        await s.engine.receive(s.acme.datagram(again))
        guard case .fail(let fail)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("expected FAIL 1"); return }
        #expect(fail.statusCode == .messageValidationError)
        #expect(fail.transactionID == again.transactionID)

        // Its retransmission gets the very same FAIL; the order stays Cancelled with no reservation.
        await s.engine.receive(s.acme.datagram(again))
        #expect(s.sink.take(for: s.acme.endpoint) == [.fail(fail)])
        let after = try #require(try s.store.order(providerOrderID: agreement.providerOrderID))
        #expect(after.state == .cancelled && !after.isOpen)
        #expect(try s.store.reservations(providerOrderID: agreement.providerOrderID).isEmpty)
        #expect(try s.store.reservationTotalMismatches() == [])
    }

    @Test func aRetransmittedRefusedQuotationGetsTheCachedFailAndCreatesNothing() async throws {
        let s = try Setup()
        let quotation = Self.quotation(Self.berlin, order: "acme-berlin")
        await s.engine.receive(s.acme.datagram(quotation))
        guard case .fail(let first)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("expected FAIL 6"); return }
        #expect(first.statusCode == .networkPresenceError)
        #expect(try s.store.orderCount() == 1)

        // Exactly the same datagram again: the same FAIL (same sequence number), no new order.
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(300))  // past the cached-answer rate limit (§11.4)
            await s.engine.receive(s.acme.datagram(quotation))
            #expect(s.sink.take(for: s.acme.endpoint) == [.fail(first)])
        }
        #expect(try s.store.orderCount() == 1)
        #expect(await s.engine.openOrderCount == 0)
    }

    @Test func aQuotationRefusedBeforeAnyOrderExistedIsAnsweredTheSameOnRetransmission() async throws {
        // One QUOTATION a minute: the second is refused (FAIL 4) without an order.
        let s = try Setup(configuration: testConfiguration(quotationsPerMinute: 1))
        await s.engine.receive(s.acme.datagram(Self.quotation(CPD.marseille(min: 10, max: 20), order: "acme-first")))
        #expect(s.sink.take(for: s.acme.endpoint).map(\.method) == [.processing, .offer])
        let second = Self.quotation(CPD.marseille(min: 10, max: 20), order: "acme-second")
        await s.engine.receive(s.acme.datagram(second))
        guard case .fail(let refusal)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("expected FAIL 4"); return }
        #expect(refusal.statusCode == .administrativelyProhibited)
        await s.engine.receive(s.acme.datagram(second))
        #expect(s.sink.take(for: s.acme.endpoint) == [.fail(refusal)])
        #expect(try s.store.orderCount() == 1)
    }

    @Test func aDuplicateQuotationIsAnsweredWithTheOutstandingOffer() async throws {
        let s = try Setup()
        let quotation = Self.quotation(CPD.marseille(min: 10, max: 20), order: "acme-dup")
        await s.engine.receive(s.acme.datagram(quotation))
        let answers = s.sink.take(for: s.acme.endpoint)
        #expect(answers.map(\.method) == [.processing, .offer])
        // The customer heard nothing (say the server restarted before its session existed) and
        // retransmits: it gets the OFFER, the latest message of the transaction (§11.4).
        try await Task.sleep(for: .milliseconds(300))
        await s.engine.receive(s.acme.datagram(quotation))
        #expect(s.sink.take(for: s.acme.endpoint) == [answers[1]])
    }

    @Test func theQuotationRateLimitIsNotRefilledByARestart() async throws {
        let paths = TestPaths()
        let configuration = testConfiguration(quotationsPerMinute: 2)
        let acme = TestCustomer("acme", port: 40_301)
        do {
            let store = try ServerOrderStore(path: paths.database)
            let sink = CollectingSink()
            let engine = CPNPServerEngine(configuration: configuration, store: store, sink: sink, logger: quietLogger("cpnpd-test"))
            for i in 0..<2 { await engine.receive(acme.datagram(Self.quotation(CPD.marseille(min: 1, max: 2), order: "acme-r\(i)"))) }
            #expect(sink.take(for: acme.endpoint).filter { $0.method == .fail }.isEmpty)
        }
        // A new process on the same store: the two QUOTATIONs of the last minute still count.
        let store = try ServerOrderStore(path: paths.database)
        let sink = CollectingSink()
        let engine = CPNPServerEngine(configuration: configuration, store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        try await engine.recover()
        await engine.receive(acme.datagram(Self.quotation(CPD.marseille(min: 1, max: 2), order: "acme-r2")))
        // (The recovered orders' OFFERs are retransmitted meanwhile.)
        let afterRestart = sink.take(for: acme.endpoint).filter { $0.customerOrderID.rawValue == "acme-r2" }
        guard case .fail(let f)? = afterRestart.first else {
            Issue.record("expected FAIL 4 after the restart, got \(afterRestart.map(\.method))"); return
        }
        #expect(f.statusCode == .administrativelyProhibited)
    }

    @Test func anOrderEscalatedForLackOfCapacityIsAcknowledgedWithSubcode1() async throws {
        var configuration = testConfiguration()
        configuration.approval.escalateOutOfResources = true
        let s = try Setup(configuration: configuration)
        // The first offer holds the whole 200 Mbps Marseille link; the second request finds no
        // capacity and is escalated: an operator may add capacity (§9.2.2 subcode 1).
        await s.engine.receive(s.acme.datagram(Self.quotation(CPD.marseille(min: 200, max: 200), order: "acme-all")))
        #expect(s.sink.take(for: s.acme.endpoint).map(\.method) == [.processing, .offer])
        await s.engine.receive(s.acme.datagram(Self.quotation(CPD.marseille(min: 10, max: 10), order: "acme-more")))
        guard case .processing(let p)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("expected PROCESSING"); return }
        #expect(p.processingSubcode == .upgradeOfLocalResources)
        #expect(await s.engine.ordersAwaitingApproval.count == 1)
    }

    @Test func anUnknownMethodWithReadableIdsGetsFail1() async throws {
        let s = try Setup()
        let text =
            #"{"version":1,"method":12,"sequence-number":5,"transaction-id":"0123456789abcdef0123456789abcdef","customer-order-id":"acme-unknown"}"#
        await s.engine.receive(InboundDatagram(bytes: Array(text.utf8), session: s.acme.serverSession, identity: s.acme.identity))
        guard case .fail(let f)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("expected FAIL 1 (docs/protocol.md §6, A6)"); return }
        #expect(f.statusCode == .messageValidationError)
        #expect(f.transactionID.rawValue == "0123456789abcdef0123456789abcdef" && f.customerOrderID.rawValue == "acme-unknown")
        #expect(f.diagnostic?.contains("method") == true)
    }

    @Test func aCertificateNamingTwoCustomersReachesNeitherCustomersOrders() async throws {
        let s = try Setup()
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-own")!)
        try await s.acme.agree(&order, CPD.marseille(min: 10, max: 20), engine: s.engine, sink: s.sink, now: now)
        let agreement = try #require(order.agreement)
        #expect(ServerConfiguration.demo.customerProfile(matching: ["acme", "globex"]) == nil)

        // CN=acme with a SAN naming globex: no profile, so no order of acme's, and no new order either.
        var both = s.acme
        both.identity = ClientIdentity(names: ["acme", "globex"], subject: "CN=acme")
        let withdraw = CPNPMessage.withdraw(
            WithdrawMessage(
                sequenceNumber: 9, transactionID: .random(using: &rng), customerOrderID: agreement.customerOrderID,
                providerOrderID: agreement.providerOrderID, nonce: agreement.nonce))
        await s.engine.receive(both.datagram(withdraw))
        guard case .fail(let f)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("expected FAIL"); return }
        #expect(f.statusCode == .messageValidationError && f.providerOrderID == nil)
        await s.engine.receive(both.datagram(Self.quotation(CPD.marseille(min: 1, max: 2), order: "both-1")))
        guard case .fail(let refused)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("expected FAIL 3"); return }
        #expect(refused.statusCode == .authorizationFailed)
        #expect(try s.store.order(providerOrderID: agreement.providerOrderID)?.state == .completed)
    }

    @Test func anOrderHeldByAnApprovalRuleIsAcknowledgedWithoutSubcode() async throws {
        var configuration = testConfiguration()
        configuration.approval.rules = [.aboveMbps(CPNPDecimal(5))]
        let s = try Setup(configuration: configuration)
        await s.engine.receive(s.acme.datagram(Self.quotation(CPD.marseille(min: 10, max: 10), order: "acme-held")))
        guard case .processing(let p)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("expected PROCESSING"); return }
        #expect(p.processingSubcode == nil)
    }
}
