import CPNPCore
import CPNPRuntime
import CPNPPolicy
import CPNPStorage
import Foundation

/// Fills a cpnpd database with stored orders before the server starts (`--preload N`), through the
/// ``ServerOrderStore`` API, so that the figures can be compared from 1,000 to 1,000,000 stored orders.
///
/// Every order is a real negotiation: a client order machine and a server order machine exchange the
/// messages in memory (QUOTATION, PROCESSING, OFFER from the decision engine on the bench
/// configuration, then ACCEPT/ACK, DECLINE/ACK, WITHDRAW/PROCESSING/ACK or FAIL), and the server
/// machine's final state is committed with its whole audit trail and, for agreements, its committed
/// reservations, exactly as cpnpd would store them. Orders are spread over 1,000 customer identities
/// and the last two years, and committed in large transactions (one fsync per batch).
struct Preloader {
    enum Kind: String, CaseIterable, Sendable {
        /// Agreement in force: open, with committed reservations; cpnpd reloads it at start.
        case agreed
        /// Agreement withdrawn later: closed.
        case withdrawn
        /// Offer declined by the customer: closed.
        case declined
        /// Refused by the provider (FAIL 5): closed.
        case refused
    }

    struct Report: Sendable {
        var orders: Int
        var byKind: [Kind: Int]
        var seconds: Double
        var databaseBytes: Int64
    }

    let configuration: ServerConfiguration
    let request: CPD
    let openPercent: Int
    var batchSize = 20_000
    /// Identities the orders are spread over (none is a configured customer: the bench's own open-order
    /// count starts at zero, as with a fresh database).
    var identities = 1_000

    func run(count: Int, database: URL, progress: ProgressLog) async throws -> Report {
        let offer = try decidedOffer()
        let started = ContinuousClock.now
        let store = try ServerOrderStore(path: database.path)
        var byKind: [Kind: Int] = [:]
        for i in 0..<count { byKind[kind(i), default: 0] += 1 }

        let template = Template(request: request, offer: offer, openPercent: openPercent, identities: identities)
        var start = 0
        var next: Task<[OrderChange], any Error>? = Task { [batchSize] in try template.changes(0..<min(batchSize, count)) }
        var committing: Task<Void, any Error>?
        var lastReport = ContinuousClock.now
        while let generating = next {
            let changes = try await generating.value
            start += changes.count
            // Generate the next batch while this one is written (two cores: one each).
            if start < count {
                let range = start..<min(start + batchSize, count)
                next = Task { try template.changes(range) }
            } else {
                next = nil
            }
            try await committing?.value
            committing = Task { _ = try store.commit(changes) }
            if ContinuousClock.now - lastReport > .seconds(10) {
                lastReport = ContinuousClock.now
                let elapsed = (ContinuousClock.now - started).seconds
                progress.say("  preloaded \(start)/\(count) (\(Int(Double(start) / elapsed)) orders/s)")
            }
        }
        try await committing?.value
        return Report(orders: count, byKind: byKind, seconds: (ContinuousClock.now - started).seconds, databaseBytes: databaseBytes(database))
    }

    func kind(_ orderIndex: Int) -> Kind { Template.kind(orderIndex, openPercent: openPercent) }

    /// The decision engine's offer for the bench request (the same for every order: it is decided
    /// against an empty inventory, and the bench configuration's capacities never run out).
    private func decidedOffer() throws -> Offer {
        guard let profile = configuration.customers.first else { throw BenchError("the bench configuration has no customer profile") }
        let decision = DecisionEngine(configuration: configuration).decide(
            request: request, informationElements: nil, profile: profile, identityPresent: true,
            inventory: configuration.inventory(), now: SystemWallClock().now(), clientAddress: "127.0.0.1")
        guard case .offer(let offer) = decision else { throw BenchError("the bench request is not offered by the bench configuration: \(decision)") }
        return offer
    }

    /// What every preloaded order shares; builds the changes of a range of orders.
    struct Template: Sendable {
        let request: CPD
        let offer: Offer
        let openPercent: Int
        let identities: Int
        let clientEndpoint = CPNPEndpoint(host: "127.0.0.1", port: 40_000)
        let serverEndpoint = CPNPEndpoint(host: "127.0.0.1", port: 8921)

        static func kind(_ orderIndex: Int, openPercent: Int) -> Kind {
            if orderIndex % 100 < openPercent { return .agreed }
            // The rest: 60 % withdrawn, 30 % declined, 10 % refused (a fixed, interleaved pattern).
            switch (orderIndex / 100 + orderIndex) % 10 {
            case 0..<6: return .withdrawn
            case 6..<9: return .declined
            default: return .refused
            }
        }

        func changes(_ range: Range<Int>) throws -> [OrderChange] {
            var rng = SystemRandomNumberGenerator()
            let now = SystemWallClock().now()
            return try range.map { index in try change(index, now: now, using: &rng) }
        }

        private func change(_ orderIndex: Int, now: CPNPTimestamp, using rng: inout SystemRandomNumberGenerator) throws -> OrderChange {
            let kind = Self.kind(orderIndex, openPercent: openPercent)
            let identity = "customer-\(String(orderIndex % identities + 1).leftPadded(to: 4))"
            let clientSession = CPNPSession(local: clientEndpoint, remote: serverEndpoint)
            let serverSession = CPNPSession(local: serverEndpoint, remote: clientEndpoint)
            // Spread over the last two years.
            let quotedAt = now.adding(.seconds(-Int64.random(in: 3_600...(2 * 365 * 86_400), using: &rng)))
            let answeredAt = quotedAt.adding(.seconds(2))

            var client = ClientOrderStateMachine(customerOrderID: CustomerOrderID("co-pre-\(orderIndex)")!)
            let quotation = try Self.quotation(
                client.quote(
                    requestedCPD: request, expectedResponseTime: quotedAt.adding(.seconds(30)), session: clientSession, now: quotedAt, using: &rng))
            let providerOrderID = ProviderOrderID.timeOrdered(at: quotedAt, using: &rng)
            var (server, actions) = ServerOrderStateMachine.quotationReceived(
                quotation, session: serverSession, providerOrderID: providerOrderID, now: quotedAt, using: &rng)
            actions += try server.acknowledge(expectedOfferTime: quotedAt.adding(.seconds(60)), now: quotedAt)
            var lastEventAt = quotedAt
            var reservations: HeldCapacity?
            if kind == .refused {
                actions += try server.reject(.outOfResources, diagnostic: "no capacity left on PE-LYS-1:ge-0/0/3", now: quotedAt)
            } else {
                let offered = try server.makeOffer(
                    offeredCPD: offer.cpd, validityOfferTime: quotedAt.adding(.seconds(600)), informationElements: offer.informationElements,
                    now: quotedAt, using: &rng)
                actions += offered
                for message in Self.sent(actions) { _ = client.messageReceived(message, session: clientSession, now: quotedAt) }
                lastEventAt = answeredAt
                if kind == .declined {
                    let declineMessages = Self.sent(try client.decline(reasons: [.unacceptableGap], now: answeredAt))
                    for message in declineMessages {
                        actions += server.messageReceived(message, session: serverSession, now: answeredAt, using: &rng)
                    }
                } else {
                    for message in Self.sent(try client.accept(now: answeredAt)) {
                        actions += server.messageReceived(message, session: serverSession, now: answeredAt, using: &rng)
                    }
                    let confirmed = try server.agreementConfirmed(now: answeredAt)
                    actions += confirmed
                    for message in Self.sent(confirmed) { _ = client.messageReceived(message, session: clientSession, now: answeredAt) }
                    if kind == .withdrawn {
                        // In the past: the commit's time is the stored order's creation time, and a start reads the
                        // orders created in the last minute (the QUOTATION rate limiter).
                        let withdrawnAt = min(
                            answeredAt.adding(.seconds(Int64.random(in: 86_400...(180 * 86_400), using: &rng))), now.adding(.seconds(-60)))
                        lastEventAt = withdrawnAt
                        for message in Self.sent(try client.withdraw(session: clientSession, now: withdrawnAt, using: &rng)) {
                            actions += server.messageReceived(message, session: serverSession, now: withdrawnAt, using: &rng)
                        }
                        actions += try server.withdrawalConfirmed(now: withdrawnAt)
                    } else {
                        reservations = HeldCapacity(committed: Reservation.aggregate(offer.reservations))
                    }
                }
            }
            let expectedState: ServerOrderStateMachine.State = kind == .agreed ? .completed : .cancelled
            guard server.state == expectedState else {
                throw BenchError("preload: order \(orderIndex) (\(kind)) ended in \(server.state.rawValue), expected \(expectedState.rawValue)")
            }
            return OrderChange(
                machine: server, clientIdentity: identity, clientAddress: clientEndpoint.description, at: lastEventAt, actions: actions,
                reservations: reservations, expectedRevision: 0)
        }

        private static func quotation(_ actions: [ClientOrderStateMachine.Action]) throws -> QuotationMessage {
            for case .send(.quotation(let quotation)) in actions { return quotation }
            throw BenchError("preload: the client machine sent no QUOTATION")
        }

        private static func sent(_ actions: [ClientOrderStateMachine.Action]) -> [CPNPMessage] {
            actions.compactMap { if case .send(let message) = $0 { message } else { nil } }
        }

        private static func sent(_ actions: [ServerOrderStateMachine.Action]) -> [CPNPMessage] {
            actions.compactMap { if case .send(let message, _) = $0 { message } else { nil } }
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
