// Rate limits and caps against a real cpnpd over DTLS (RFC 8921 §9.2.5, §13), with low limits in
// the configuration: new QUOTATIONs per customer, FAIL answers per customer, open orders per
// customer. A token bucket admits `limit` at once and refills at `limit` per minute, so during a
// test lasting `elapsed` at most limit + limit × elapsed / 1 min (+1 for rounding) get through.
import Testing
import CPNPCore
import CPNPTesting
import Foundation

@Suite("Rate limits and caps against a real cpnpd", .enabled(if: Daemon.binary != nil, "cpnpd not built"), .serialized)
struct RateLimitEndToEndTests {
    /// The demo configuration with the given limits.
    static func configuration(quotationsPerMinute: Int, failsPerMinute: Int, acmeMaxOpenOrders: Int = 20) throws -> String {
        var yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        for needle in ["quotations-per-minute: 30", "fails-per-minute: 60", "max-open-orders: 20\n"] where !yaml.contains(needle) {
            throw DaemonError(description: "Examples/cpnpd.yaml no longer contains \"\(needle)\"")
        }
        yaml = yaml.replacingOccurrences(of: "quotations-per-minute: 30", with: "quotations-per-minute: \(quotationsPerMinute)")
        yaml = yaml.replacingOccurrences(of: "fails-per-minute: 60", with: "fails-per-minute: \(failsPerMinute)")
        yaml = yaml.replacingOccurrences(of: "max-open-orders: 20\n", with: "max-open-orders: \(acmeMaxOpenOrders)\n")
        return yaml
    }

    /// The most a token bucket of `limit` per minute (burst `limit`) admits in `elapsed`.
    static func bound(_ limit: Int, _ elapsed: Duration) -> Int {
        let minutes = Double(elapsed.components.seconds) / 60 + 1.0 / 60
        return limit + Int((Double(limit) * minutes).rounded(.up))
    }

    /// A QUOTATION for 1 Mbps in Paris, as a client machine would send it.
    static func quotation(_ prefix: String, _ client: TestClient) throws -> QuotationMessage {
        var rng = SystemRandomNumberGenerator()
        var order = ClientOrderStateMachine(customerOrderID: customerOrderID(prefix))
        let actions = try order.quote(requestedCPD: CPD.paris(1), session: client.session, now: TestClient.now(), using: &rng)
        guard case .send(.quotation(let q))? = actions.first(where: { if case .send = $0 { true } else { false } }) else {
            throw DaemonError(description: "quote sent no QUOTATION")
        }
        return q
    }

    /// Everything `client` receives until nothing more has come for `quiet` (bounded by `timeout`).
    static func drain(_ client: TestClient, quiet: Duration = .seconds(3), timeout: Duration = .seconds(60)) async throws -> [CPNPMessage] {
        var all: [CPNPMessage] = []
        let deadline = ContinuousClock.now + timeout
        var last = ContinuousClock.now
        while ContinuousClock.now - last < quiet && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            let taken = try client.takeReceived()
            if !taken.isEmpty {
                all += taken
                last = ContinuousClock.now
            }
        }
        return all
    }

    /// The first answer to each customer order, by its id.
    static func firstAnswers(_ messages: [CPNPMessage]) -> [CustomerOrderID: CPNPMessage] {
        var out: [CustomerOrderID: CPNPMessage] = [:]
        for m in messages where out[m.customerOrderID] == nil { out[m.customerOrderID] = m }
        return out
    }

    @Test(.timeLimit(.minutes(2)))
    func aQuotationFloodFromOneCustomerIsLimitedWhileAnotherIsServed() async throws {
        let limit = 3
        let daemon = try await Daemon.start(configuration: try Self.configuration(quotationsPerMinute: limit, failsPerMinute: 10_000))
        defer { daemon.stop() }
        let acme = try await TestClient(pki: daemon.pkiDirectory, name: "acme", serverPort: daemon.port)
        let globex = try await TestClient(pki: daemon.pkiDirectory, name: "globex", serverPort: daemon.port)
        defer {
            Task {
                await acme.close(); await globex.close()
            }
        }

        let start = ContinuousClock.now
        let flood = try (0..<12).map { _ in try Self.quotation("flood", acme) }
        let served = try (0..<2).map { _ in try Self.quotation("served", globex) }
        // Interleaved: acme's flood and globex's two requests reach the daemon at the same time.
        for (i, q) in flood.enumerated() {
            try await acme.send(.quotation(q))
            if i % 6 == 0 { try await globex.send(.quotation(served[i / 6])) }
        }
        let acmeAnswers = Self.firstAnswers(try await Self.drain(acme))
        let globexReceived = try await Self.drain(globex)
        let elapsed = ContinuousClock.now - start

        #expect(acmeAnswers.count == flood.count, "every QUOTATION is answered: \(acmeAnswers.count) of \(flood.count)")
        var refused = 0
        var accepted = 0
        for q in flood {
            switch acmeAnswers[q.customerOrderID] {
            case .fail(let f)?:
                // RFC 8921 §9.2.5: FAIL 4 (Administratively Prohibited) for a client over its rate.
                #expect(f.statusCode == .administrativelyProhibited, "\(f)")
                #expect(f.diagnostic?.contains("too many") == true, "\(f.diagnostic ?? "")")
                #expect(f.transactionID == q.transactionID && f.providerOrderID == nil)
                refused += 1
            case .processing?, .offer?:
                accepted += 1
            case let other:
                Issue.record("QUOTATION answered \(String(describing: other?.method))")
            }
        }
        #expect(accepted >= limit, "the first \(limit) are served (burst)")
        #expect(accepted <= Self.bound(limit, elapsed), "\(accepted) served in \(elapsed)")
        #expect(refused == flood.count - accepted)
        // Globex, limited separately, is served normally meanwhile.
        for q in served {
            let answers = globexReceived.filter { $0.customerOrderID == q.customerOrderID }.map(\.method)
            #expect(answers.contains(.offer) && !answers.contains(.fail), "globex's QUOTATION answered \(answers)")
        }
        let orders = try await daemon.admin(["orders"])
        #expect(orders.split(separator: "\n").filter { $0.contains("globex") }.count == served.count, "\(orders)")
        #expect(orders.split(separator: "\n").filter { $0.contains("acme") }.count == accepted, "\(orders)")
    }

    @Test(.timeLimit(.minutes(2)))
    func failAnswersStayWithinTheLimitUnderAFloodOfBadMessages() async throws {
        let limit = 5
        let daemon = try await Daemon.start(configuration: try Self.configuration(quotationsPerMinute: 30, failsPerMinute: limit))
        defer { daemon.stop() }
        let acme = try await TestClient(pki: daemon.pkiDirectory, name: "acme", serverPort: daemon.port)
        let globex = try await TestClient(pki: daemon.pkiDirectory, name: "globex", serverPort: daemon.port)
        defer {
            Task {
                await acme.close(); await globex.close()
            }
        }

        let start = ContinuousClock.now
        // Each DECLINE names no order: FAIL 1 each, until the limit.
        let flood = (0..<40).map { _ in BadInputEndToEndTests.probe() }
        for m in flood { try await acme.send(m) }
        let answers = try await Self.drain(acme)
        let elapsed = ContinuousClock.now - start
        let fails = answers.filter { if case .fail(let f) = $0 { f.statusCode == .messageValidationError } else { false } }
        #expect(answers.count == fails.count, "only FAILs: \(answers.map(\.method))")
        #expect(fails.count >= limit, "the first \(limit) bad messages are answered")
        #expect(fails.count <= Self.bound(limit, elapsed), "\(fails.count) FAILs in \(elapsed) with \(limit) per minute")
        #expect(Set(fails.map(\.transactionID)).isSubset(of: Set(flood.map(\.transactionID))))

        // Another customer's FAILs are counted separately: globex still gets its answer.
        let (before, answer) = try await globex.roundTrip(BadInputEndToEndTests.probe())
        #expect(before.isEmpty)
        guard case .fail(let f) = answer else { Issue.record("globex's probe answered \(answer.method)"); return }
        #expect(f.statusCode == .messageValidationError)
    }

    @Test(.timeLimit(.minutes(2)))
    func theOpenOrderCapRefusesTheNextQuotation() async throws {
        let cap = 2
        try await withDaemon(configuration: try Self.configuration(quotationsPerMinute: 1_000, failsPerMinute: 1_000, acmeMaxOpenOrders: cap)) {
            daemon, acme in
            var rng = SystemRandomNumberGenerator()
            var open: [ClientOrderStateMachine] = []
            for _ in 0..<cap {
                var order = ClientOrderStateMachine(customerOrderID: customerOrderID("open"))
                try await acme.act(&order) { try $0.quote(requestedCPD: CPD.paris(1), session: acme.session, now: TestClient.now(), using: &rng) }
                try await acme.run(&order, until: { $0.state == .offerReceived })
                open.append(order)
            }
            // The (cap+1)-th: FAIL 4 naming the cap.
            let ordersBefore = try await daemon.admin(["orders"])
            let extra = try Self.quotation("extra", acme)
            let (before, answer) = try await acme.roundTrip(.quotation(extra))
            #expect(before.isEmpty)
            guard case .fail(let f) = answer else { Issue.record("QUOTATION over the cap answered \(answer.method)"); return }
            #expect(f.statusCode == .administrativelyProhibited, "\(f)")
            #expect(f.diagnostic?.contains("open orders") == true && f.diagnostic?.contains("maximum \(cap)") == true, "\(f.diagnostic ?? "")")
            // The refused QUOTATION is recorded as an ended order at most; the open ones are unchanged.
            let after = try await daemon.admin(["orders"]).split(separator: "\n")
            let extraLines = after.filter { $0.contains(extra.customerOrderID.rawValue) }
            #expect(after.filter { !$0.contains(extra.customerOrderID.rawValue) } == ordersBefore.split(separator: "\n"))
            #expect(extraLines.count <= 1 && extraLines.allSatisfy { !$0.contains("OfferProposed") && !$0.contains("Completed") }, "\(extraLines)")

            // An open order ending frees a place: decline one, and the next QUOTATION is served.
            var first = open[0]
            try await acme.act(&first) { try $0.decline(reasons: [], now: TestClient.now()) }
            try await acme.run(&first, until: { $0.state == .cancelled && $0.transaction?.pending == nil })
            var again = ClientOrderStateMachine(customerOrderID: customerOrderID("again"))
            try await acme.act(&again) { try $0.quote(requestedCPD: CPD.paris(1), session: acme.session, now: TestClient.now(), using: &rng) }
            try await acme.run(&again, until: { $0.state == .offerReceived })
        }
    }
}
