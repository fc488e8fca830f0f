// Requests for more time while an order waits for an operator (RFC 8921 §9.2.2, §11.2.1, Figures 11
// and 12): the engine with a manual clock and manual timers, a real store, the client order machine.
import Testing
import CPNPCore
import CPNPPolicy
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation

@Suite("Server engine: more time while an operator decides")
struct MoreTimeTests {
    static let t0 = CPNPTimestamp(rfc3339: "2026-11-21T10:00:00Z")!
    static func t(minutes: Int64, seconds: Int64 = 0) -> CPNPTimestamp { t0 + .seconds(minutes * 60 + seconds) }

    /// Approval above 1000 Mbps with a 1 h expected offer time; ask 5 min before, for 1 h more, twice at most.
    static func configuration() -> ServerConfiguration {
        var c = testConfiguration()
        c.timers.approvalExpectedOfferTime = .seconds(3600)
        c.timers.moreTime = MoreTimeConfiguration(requestBefore: .seconds(300), extensionDuration: .seconds(3600), maximumRequests: 2)
        return c
    }

    /// One engine on a store, a manual clock, and acme's side of the exchange.
    struct Harness {
        let paths: TestPaths
        let clock = ManualClock(MoreTimeTests.t0)
        let sink = CollectingSink()
        let store: ServerOrderStore
        var engine: CPNPServerEngine
        let acme = TestCustomer("acme", port: 40_100)
        var rng = SystemRandomNumberGenerator()

        init(paths: TestPaths = TestPaths()) throws {
            self.paths = paths
            store = try ServerOrderStore(path: paths.database)
            engine = CPNPServerEngine(
                configuration: MoreTimeTests.configuration(), store: store, sink: sink, clock: clock, logger: quietLogger("cpnpd-test"),
                manualTimers: true)
        }

        /// A new engine on the same database, recovered (a restart).
        mutating func restart() async throws {
            engine = CPNPServerEngine(
                configuration: MoreTimeTests.configuration(), store: store, sink: sink, clock: clock, logger: quietLogger("cpnpd-test"),
                manualTimers: true)
            try await engine.recover()
        }

        func send(_ actions: [ClientOrderStateMachine.Action]) async {
            await acme.deliver(actions, to: engine)
        }

        /// Feeds what the engine sent to acme into `order` (and acme's answers back) until quiet;
        /// returns the messages received and the client's reports.
        func exchange(_ order: inout ClientOrderStateMachine) async -> (messages: [CPNPMessage], events: [ClientOrderStateMachine.Event]) {
            var messages: [CPNPMessage] = []
            var events: [ClientOrderStateMachine.Event] = []
            while true {
                let batch = sink.take(for: acme.endpoint)
                if batch.isEmpty { return (messages, events) }
                for m in batch {
                    messages.append(m)
                    let a = order.messageReceived(m, session: acme.clientSession, now: clock.now())
                    for case .report(let e) in a { events.append(e) }
                    await send(a)
                }
            }
        }

        /// Moves the clock and fires what is due.
        func advance(to t: CPNPTimestamp) async {
            clock.set(t)
            await engine.fireDueTimers()
        }

        func stored(_ poid: ProviderOrderID) throws -> StoredOrder { try #require(try store.order(providerOrderID: poid)) }

        /// Queues `cpnpd admin approve|reject` and lets the engine apply it; returns the outcome.
        func admin(_ poid: ProviderOrderID, _ action: AdminAction) async throws -> String? {
            let id = try store.enqueueAdminRequest(providerOrderID: poid, action: action, requestedBy: "test", at: clock.now())
            await engine.processAdminRequests()
            return try store.adminRequest(id: id)?.outcome
        }
    }

    static func isMoreTimeRequest(_ m: CPNPMessage, until: CPNPTimestamp) -> Bool {
        if case .processing(let p) = m { return p.expectedOfferTime == until }
        return false
    }

    @Test func grantedTheOrderOutlivesItsFirstExpectedOfferTimeAndTheOfferArrivesAfterApproval() async throws {
        var h = try Harness()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-slow-operator")!)
        await h.send(try order.quote(requestedCPD: CPD.paris(mbps: 2000), session: h.acme.clientSession, now: Self.t0, using: &h.rng))
        #expect(await h.exchange(&order).messages.map(\.method) == [.processing])
        let poid = try #require(order.providerOrderID)
        #expect(order.state == .serverProcessing && order.expectedOfferTime == Self.t(minutes: 60))

        // Nothing before request-before; at 55 min, PROCESSING asking until 2 h (Figure 11).
        #expect(await h.engine.deadline(poid, .moreTimeRequest) == Self.t(minutes: 55))
        await h.advance(to: Self.t(minutes: 54, seconds: 59))
        #expect(await h.exchange(&order).messages.isEmpty)
        await h.advance(to: Self.t(minutes: 55))
        let asked = await h.exchange(&order)
        #expect(asked.messages.count == 1 && Self.isMoreTimeRequest(asked.messages[0], until: Self.t(minutes: 120)))
        #expect(asked.events == [.moreTimeRequested(until: Self.t(minutes: 120), subcode: nil, isExtension: true)])
        #expect(try h.stored(poid).machine.requestedOfferTime == Self.t(minutes: 120))

        // The client grants it (ACK): the new expected offer time is durable, the next request armed from it.
        await h.send(try order.moreTimeDecided(granted: true, now: h.clock.now()))
        #expect(try h.stored(poid).machine.expectedOfferTime == Self.t(minutes: 120))
        #expect(await h.engine.deadline(poid, .moreTimeRequest) == Self.t(minutes: 115))

        // Past the first expected offer time the order is still waiting for its operator.
        await h.advance(to: Self.t(minutes: 61))
        #expect(try h.stored(poid).state == .awaitingProcessing)
        #expect(await h.engine.ordersAwaitingApproval == [poid])

        // A restart re-arms the request from the store and remembers the one already made.
        try await h.restart()
        #expect(await h.engine.deadline(poid, .moreTimeRequest) == Self.t(minutes: 115))
        await h.advance(to: Self.t(minutes: 115))
        let again = await h.exchange(&order)
        #expect(again.messages.count == 1 && Self.isMoreTimeRequest(again.messages[0], until: Self.t(minutes: 180)))
        await h.send(try order.moreTimeDecided(granted: true, now: h.clock.now()))
        #expect(try h.stored(poid).machine.expectedOfferTime == Self.t(minutes: 180))
        // max-requests is 2: no third request.
        #expect(await h.engine.deadline(poid, .moreTimeRequest) == nil)

        // The operator approves at 2 h 30: the OFFER arrives, and the negotiation completes.
        await h.advance(to: Self.t(minutes: 150))
        #expect(try await h.admin(poid, .approve) == "approved: offer sent")
        let offered = await h.exchange(&order)
        #expect(offered.messages.map(\.method) == [.offer] && order.state == .offerReceived)
        await h.send(try order.accept(now: h.clock.now()))
        #expect(await h.exchange(&order).messages.map(\.method) == [.ack])
        #expect(try order.state == .completed && h.stored(poid).state == .completed)
        #expect(try h.store.reservations(providerOrderID: poid).byKind.map(\.reservation.mbps) == [2000, 2000])
    }

    @Test func rejectedTheOrderEndsAtTheFirstExpectedOfferTime() async throws {
        var h = try Harness()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-impatient")!)
        await h.send(try order.quote(requestedCPD: CPD.paris(mbps: 2000), session: h.acme.clientSession, now: Self.t0, using: &h.rng))
        _ = await h.exchange(&order)
        let poid = try #require(order.providerOrderID)
        await h.advance(to: Self.t(minutes: 55))
        #expect(await h.exchange(&order).events == [.moreTimeRequested(until: Self.t(minutes: 120), subcode: nil, isExtension: true)])

        // FAIL 7 (Figure 12): no new request; the initial expected offer time stays in force.
        let refusal = try order.moreTimeDecided(granted: false, now: h.clock.now())
        #expect(refusal.contains { if case .send(.fail(let f)) = $0 { f.statusCode == .moreTimeRejected } else { false } })
        await h.send(refusal)
        #expect(await h.engine.deadline(poid, .moreTimeRequest) == nil)
        #expect(await h.engine.deadline(poid, .machine(.expectedOfferTime)) == Self.t(minutes: 60))
        #expect(try h.stored(poid).machine.expectedOfferTime == Self.t(minutes: 60))
        #expect(try h.store.audit(providerOrderID: poid).last?.event == "more time rejected")

        // A restart remembers the refusal: still no request.
        try await h.restart()
        #expect(await h.engine.deadline(poid, .moreTimeRequest) == nil)

        // The operator did not decide in time: the order ends then, holding nothing.
        await h.advance(to: Self.t(minutes: 60))
        #expect(h.sink.take(for: h.acme.endpoint).isEmpty)
        let ended = try h.stored(poid)
        #expect(ended.state == .cancelled && !ended.isOpen)
        #expect(try h.store.reservations(providerOrderID: poid).isEmpty)
        #expect(await h.engine.openOrderCount == 0)
        #expect(await h.engine.ordersAwaitingApproval.isEmpty)
        #expect(try await h.admin(poid, .approve) == "unknown or closed order")
    }

    @Test func afterARefusalTheOperatorCanStillApproveAnUpdateBeforeTheDeadline() async throws {
        var h = try Harness()
        // An agreement of 500 Mbps (no approval), then an UPDATE to 2000 Mbps (approval).
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-upgrade")!)
        await h.send(try order.quote(requestedCPD: CPD.paris(mbps: 500), session: h.acme.clientSession, now: Self.t0, using: &h.rng))
        _ = await h.exchange(&order)
        await h.send(try order.accept(now: Self.t0))
        _ = await h.exchange(&order)
        let poid = try #require(order.providerOrderID)
        let oldNonce = try #require(order.agreement?.nonce)
        #expect(order.state == .completed)

        await h.send(
            try order.update(
                requestedCPD: CPD.paris(mbps: 2000), expectedResponseTime: Self.t(minutes: 600),
                session: h.acme.clientSession, now: Self.t0, using: &h.rng))
        #expect(await h.exchange(&order).messages.map(\.method) == [.processing])
        await h.advance(to: Self.t(minutes: 55))
        #expect(await h.exchange(&order).messages.count == 1)
        await h.send(try order.moreTimeDecided(granted: false, now: h.clock.now()))
        #expect(await h.engine.deadline(poid, .moreTimeRequest) == nil)

        // Approved at 58 min, before the expected offer time in force: the updated OFFER arrives, and
        // only what the update adds is held next to the agreement (1500 on top of 500).
        await h.advance(to: Self.t(minutes: 58))
        #expect(try await h.admin(poid, .approve) == "approved: offer sent")
        #expect(await h.exchange(&order).messages.map(\.method) == [.offer])
        let held = try h.store.reservations(providerOrderID: poid)
        #expect(held.committed.map(\.mbps) == [500, 500])
        #expect(held.offered.map(\.mbps) == [1500, 1500])
        await h.send(try order.accept(now: h.clock.now()))
        _ = await h.exchange(&order)
        #expect(order.state == .completed && order.agreement?.nonce != oldNonce)
        let committed = try h.store.reservations(providerOrderID: poid)
        #expect(committed.byKind.map(\.kind) == [.committed, .committed] && committed.byKind.map(\.reservation.mbps) == [2000, 2000])
    }
}
