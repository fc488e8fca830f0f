// The RFC 8921 flow figures end to end, each body run three times (Sources/CPNPTesting/ProviderModes.swift):
// against cpnpd's engine and services in this process on a network in memory, the same over DTLS on
// loopback, and a real cpnpd (embedded demo policy) over DTLS, with the client order machine on the
// other side; the server's side is read with `cpnpd admin show/orders`. The machines alone, with the
// provider's decisions scripted, play the same figures in Tests/CPNPCoreTests/FlowFigureTests.swift.
import Testing
import CPNPCore
import CPNPTesting
import Foundation

@Suite("RFC 8921 flows against cpnpd, in memory, in process and as a process", .enabled(if: Daemon.binary != nil, "cpnpd not built"), .serialized)
struct FlowFigureEndToEndTests {
    /// Quotes `cpd` and runs until the offer (or the end).
    static func quote(
        _ client: TestClient, _ order: inout ClientOrderStateMachine, _ cpd: CPD, options: NegotiationOptions? = nil
    ) async throws {
        var rng = SystemRandomNumberGenerator()
        let now = TestClient.now()
        try await client.act(&order) {
            try $0.quote(
                requestedCPD: cpd, informationElements: options.map { InformationElements(negotiationOptions: $0) },
                expectedResponseTime: now + .seconds(60), session: client.session, now: now, using: &rng)
        }
        try await client.run(&order, until: { $0.state == .offerReceived || $0.state == .cancelled })
    }

    /// Quote, accept: an agreement.
    static func agree(_ client: TestClient, _ cpd: CPD, _ prefix: String, options: NegotiationOptions? = nil) async throws -> ClientOrderStateMachine
    {
        var order = ClientOrderStateMachine(customerOrderID: customerOrderID(prefix))
        try await quote(client, &order, cpd, options: options)
        try await client.act(&order) { try $0.accept(now: TestClient.now()) }
        try await client.run(&order, until: { $0.state == .completed })
        return order
    }

    static func bandwidth(_ cpd: CPD, node: String) -> (incoming: CPNPDecimal?, outgoing: CPNPDecimal?) {
        let e = cpd.components.flatMap(\.profiles).flatMap { $0.capacity ?? [] }.first { $0.customerNode == node }
        return (e?.incomingBandwidthMbps?.fixedValue, e?.outgoingBandwidthMbps?.fixedValue)
    }

    // MARK: Figure 4: N-step negotiation

    /// Quotation (a) gets a partial offer (200 of 300 Mbps on the Marseille link), declined for the
    /// gap; quotation (b), adjusted to 150 Mbps, gets a full offer, accepted.
    @Test(.timeLimit(.minutes(1)), arguments: ProviderMode.allCases)
    func figure4NStepNegotiation(mode: ProviderMode) async throws {
        try await withProvider(mode) { daemon, client in
            var a = ClientOrderStateMachine(customerOrderID: customerOrderID("fig4-a"))
            let requestA = CPD.marseille("300")
            try await Self.quote(client, &a, requestA)
            let partial = try #require(a.offer)
            #expect(!partial.offeredCPD.comparison(against: requestA).satisfies)
            #expect(Self.bandwidth(partial.offeredCPD, node: "CE-MRS-1") == (200, 200))
            let poidA = try #require(a.providerOrderID)
            #expect(
                try await daemon.show(poidA).reservations("offered") == ["PE-MRS-1:xe-1/0/0/incoming": "200", "PE-MRS-1:xe-1/0/0/outgoing": "200"])

            try await client.act(&a) { try $0.decline(reasons: [.unacceptableGap], now: TestClient.now()) }
            try await client.run(&a, until: { _ in client.events.contains(.cancellationConfirmed) })
            #expect(a.state == .cancelled)
            let viewA = try await daemon.show(poidA)
            #expect(viewA.state == "Cancelled" && viewA.isClosed && !viewA.hasReservations)

            let requestB = CPD.marseille("150")
            var b = ClientOrderStateMachine(customerOrderID: customerOrderID("fig4-b"))
            try await Self.quote(client, &b, requestB)
            let full = try #require(b.offer)
            #expect(full.offeredCPD.comparison(against: requestB).satisfies)
            try await client.act(&b) { try $0.accept(now: TestClient.now()) }
            try await client.run(&b, until: { $0.state == .completed })
            let viewB = try await daemon.show(try #require(b.providerOrderID))
            #expect(viewB.state == "Completed")
            #expect(viewB.reservations("committed") == ["PE-MRS-1:xe-1/0/0/incoming": "150", "PE-MRS-1:xe-1/0/0/outgoing": "150"])
        }
    }

    // MARK: Figure 6: requested, offered, accepted CPD

    /// QUOTATION(Requested) → PROCESSING → OFFER(Offered) → PROCESSING → ACCEPT(Accepted) → ACK(Accepted);
    /// every clause of the offer meets its clause of the request, and the three CPDs agree.
    @Test(.timeLimit(.minutes(1)), arguments: ProviderMode.allCases)
    func figure6RequestedOfferedAcceptedCPD(mode: ProviderMode) async throws {
        try await withProvider(mode) { daemon, client in
            let requested = try loadExample("l3vpn-3-sites.json")
            var order = ClientOrderStateMachine(customerOrderID: customerOrderID("fig6"))
            try await Self.quote(client, &order, requested)
            let offered = try #require(order.offer).offeredCPD
            #expect(offered.isConcrete)

            let rp = requested.components[0].profiles[0]
            let op = offered.components[0].profiles[0]
            #expect(op.customerNodes.map(\.identifier) == rp.customerNodes.map(\.identifier))
            #expect(op.customerNodes.map(\.localization) == rp.customerNodes.map(\.localization))
            // A node the request left unattached is attached to a link of its PE.
            #expect(op.customerNodes[1].linkIdentifiers == ["PE-LYS-1:ge-0/0/3"])
            #expect(op.scope.count == rp.scope.count)
            // Clause by clause: the request reduced to one clause is met by the offer, which has it.
            typealias Profile = ConnectivityProvisioningProfile
            let clauses: [(String, (inout Profile, Profile) -> Bool)] = [
                (
                    "scope",
                    {
                        $0.scope = $1.scope; return true
                    }
                ),
                (
                    "qos-guarantees",
                    {
                        $0.qosGuarantees = $1.qosGuarantees; return $1.qosGuarantees != nil
                    }
                ),
                (
                    "availability",
                    {
                        $0.availability = $1.availability; return $1.availability != nil
                    }
                ),
                (
                    "capacity",
                    {
                        $0.capacity = $1.capacity; return $1.capacity != nil
                    }
                ),
                (
                    "traffic-isolation",
                    {
                        $0.trafficIsolation = $1.trafficIsolation; return $1.trafficIsolation != nil
                    }
                ),
                (
                    "conformance-traffic",
                    {
                        $0.conformanceTraffic = $1.conformanceTraffic; return $1.conformanceTraffic != nil
                    }
                ),
                (
                    "flow-identification",
                    {
                        $0.flowIdentification = $1.flowIdentification; return $1.flowIdentification != nil
                    }
                ),
                (
                    "overall-traffic-guarantees",
                    {
                        $0.overallTrafficGuarantees = $1.overallTrafficGuarantees; return $1.overallTrafficGuarantees != nil
                    }
                ),
                (
                    "routing-and-forwarding",
                    {
                        $0.routingAndForwarding = $1.routingAndForwarding; return $1.routingAndForwarding != nil
                    }
                ),
                (
                    "activation-means",
                    {
                        $0.activationMeans = $1.activationMeans; return $1.activationMeans != nil
                    }
                ),
                (
                    "invocation-means",
                    {
                        $0.invocationMeans = $1.invocationMeans; return $1.invocationMeans != nil
                    }
                ),
                (
                    "notifications",
                    {
                        $0.notifications = $1.notifications; return $1.notifications != nil
                    }
                ),
            ]
            for (name, copy) in clauses {
                var only = Profile(customerNodes: rp.customerNodes, scope: [])
                #expect(copy(&only, rp), "\(name) is in the request")
                var hasIt = Profile(customerNodes: op.customerNodes, scope: [])
                #expect(copy(&hasIt, op), "\(name) is in the offer")
                var r = requested
                r.components[0].profiles[0] = only
                let c = offered.comparison(against: r)
                #expect(c.satisfies, "\(name): \(c)")
            }
            // The values chosen inside the request's ranges.
            let par = Self.bandwidth(offered, node: "CE-PAR-1")
            #expect(par.incoming.map { $0 >= 80 && $0 <= 100 } == true && par.outgoing.map { $0 >= 80 && $0 <= 100 } == true)
            #expect(Self.bandwidth(offered, node: "CE-LYS-1") == (100, 100))
            let mrs = Self.bandwidth(offered, node: "CE-MRS-1")
            #expect(mrs.incoming.map { $0 >= 20 } == true && mrs.outgoing.map { $0 >= 20 } == true)

            // PROCESSING from the client (Figure 6), then ACCEPT with the offered CPD.
            try await client.act(&order) { try $0.offerProcessingStarted(now: TestClient.now()) }
            let poid = try #require(order.providerOrderID)
            try await daemon.waitForOrder(poid) { $0.state == "ProcessingReceived" }
            try await client.act(&order) { try $0.accept(now: TestClient.now()) }
            try await client.run(&order, until: { $0.state == .completed })
            #expect(distinctMethods(client.received) == [.processing, .offer, .ack])
            guard case .ack(let ack)? = client.received.last else { Issue.record("no ACK"); return }
            #expect(ack.cpd == offered && order.agreement?.acceptedCPD == offered)

            // The server committed exactly what it offered, link by link.
            let view = try await daemon.show(poid)
            #expect(view.state == "Completed")
            #expect(view.entries(into: "ProcessingReceived") == 1 && view.entries(into: "Completed") == 1)
            #expect(
                view.reservations("committed") == [
                    "PE-PAR-2:ge-0/0/1/incoming": "\(par.incoming!)", "PE-PAR-2:ge-0/0/1/outgoing": "\(par.outgoing!)",
                    "PE-LYS-1:ge-0/0/3/incoming": "100", "PE-LYS-1:ge-0/0/3/outgoing": "100",
                    "PE-MRS-1:xe-1/0/0/incoming": "\(mrs.incoming!)", "PE-MRS-1:xe-1/0/0/outgoing": "\(mrs.outgoing!)",
                ])
        }
    }

    // MARK: Figure 13: DECLINE

    @Test(.timeLimit(.minutes(1)), arguments: ProviderMode.allCases)
    func figure13DeclineWithReasonsReleasesTheOffer(mode: ProviderMode) async throws {
        try await withProvider(mode) { daemon, client in
            var order = ClientOrderStateMachine(customerOrderID: customerOrderID("fig13"))
            try await Self.quote(client, &order, CPD.marseille("80"))
            let poid = try #require(order.providerOrderID)
            #expect(try await daemon.show(poid).reservations("offered") == ["PE-MRS-1:xe-1/0/0/incoming": "80", "PE-MRS-1:xe-1/0/0/outgoing": "80"])

            try await client.act(&order) { try $0.offerProcessingStarted(now: TestClient.now()) }
            try await client.act(&order) { try $0.decline(reasons: [.unacceptableGap, .conflictWithAnotherOffer], now: TestClient.now()) }
            try await client.run(&order, until: { _ in client.events.contains(.cancellationConfirmed) })
            guard case .ack(let ack)? = client.received.last else { Issue.record("no ACK"); return }
            // docs/protocol.md §6, A2: the ACK of a DECLINE carries the Empty CPD.
            #expect(ack.cpd?.isEmpty ?? true)
            let view = try await daemon.show(poid)
            #expect(view.state == "Cancelled" && view.isClosed && !view.hasReservations)
            #expect(view.auditContains("DECLINE received"))
            // The capacity is free again: another order gets the whole link.
            var other = ClientOrderStateMachine(customerOrderID: customerOrderID("fig13-next"))
            try await Self.quote(client, &other, CPD.marseille("200"))
            #expect(Self.bandwidth(try #require(other.offer).offeredCPD, node: "CE-MRS-1") == (200, 200))
        }
    }

    // MARK: Figure 14: WITHDRAW

    @Test(.timeLimit(.minutes(1)), arguments: ProviderMode.allCases)
    func figure14WithdrawProcessingAckWithEmptyCPD(mode: ProviderMode) async throws {
        try await withProvider(mode) { daemon, client in
            var order = try await Self.agree(client, CPD.marseille("120"), "fig14")
            let poid = try #require(order.providerOrderID)
            #expect(try await daemon.show(poid).reservations("committed").count == 2)
            let before = client.received.count

            var rng = SystemRandomNumberGenerator()
            try await client.act(&order) { try $0.withdraw(session: client.session, now: TestClient.now(), using: &rng) }
            try await client.run(&order, until: { _ in client.events.contains(.withdrawalConfirmed) })
            // A late copy of the ACCEPT's ACK (its cached answer resent to a retransmission, on a loaded
            // machine) answers nothing new.
            let earlier = client.received[..<before]
            let answers = client.received[before...].filter { !earlier.contains($0) }
            #expect(distinctMethods(answers) == [.processing, .ack])
            guard case .ack(let ack)? = answers.last else { Issue.record("no ACK"); return }
            #expect(ack.cpd?.isEmpty == true)
            #expect(order.state == .cancelled && order.agreement == nil)
            let view = try await daemon.show(poid)
            #expect(view.state == "Cancelled" && view.isClosed && !view.hasReservations && view.agreement == nil)
            #expect(view.auditContains("WITHDRAW received") && view.auditContains("withdrawn, ACK sent"))
        }
    }

    // MARK: Figure 15: UPDATE

    /// Agreement A holds 50 Mbps on the 200 Mbps Marseille link, agreement B 30. A asks for 60…200:
    /// the updated offer is 170 (all that B leaves); while it is negotiated A holds its 50 plus the
    /// 120 the update adds; once agreed, 170 with a new nonce, and the old nonce is refused.
    @Test(.timeLimit(.minutes(1)), arguments: ProviderMode.allCases)
    func figure15UpdateAdjustsReservationsByTheDelta(mode: ProviderMode) async throws {
        try await withProvider(mode) { daemon, client in
            var a = try await Self.agree(client, CPD.marseille("50"), "fig15-a")
            let b = try await Self.agree(client, CPD.marseille("30"), "fig15-b")
            let poidA = try #require(a.providerOrderID)
            let oldAgreement = try #require(a.agreement)
            let link = "PE-MRS-1:xe-1/0/0"

            var rng = SystemRandomNumberGenerator()
            let request = CPD.marseille(#"{"min":60,"max":200}"#)
            try await client.act(&a) {
                try $0.update(
                    requestedCPD: request, expectedResponseTime: TestClient.now() + .seconds(60),
                    session: client.session, now: TestClient.now(), using: &rng)
            }
            let before = client.received.count
            try await client.run(&a, until: { $0.state == .offerReceived || $0.state == .completed })
            // (On a loaded machine a late copy of an earlier ACK may arrive meanwhile: only the update's count.)
            let update = try #require(a.transaction?.id)
            #expect(distinctMethods(client.received[before...].filter { $0.transactionID == update }) == [.processing, .offer])
            let updated = try #require(a.offer)
            #expect(Self.bandwidth(updated.offeredCPD, node: "CE-MRS-1") == (170, 170))
            #expect(updated.nonce != oldAgreement.nonce)
            let during = try await daemon.show(poidA)
            #expect(during.reservations("committed") == ["\(link)/incoming": "50", "\(link)/outgoing": "50"])
            #expect(during.reservations("offered") == ["\(link)/incoming": "120", "\(link)/outgoing": "120"])

            try await client.act(&a) { try $0.accept(now: TestClient.now()) }
            try await client.run(&a, until: { $0.state == .completed && $0.offer == nil })
            guard case .ack(let ack)? = client.received.last else { Issue.record("no ACK"); return }
            #expect(ack.cpd == updated.offeredCPD && a.agreement?.acceptedCPD == updated.offeredCPD)
            #expect(a.agreement?.nonce == updated.nonce)
            let after = try await daemon.show(poidA)
            #expect(after.state == "Completed" && after.reservations("offered").isEmpty)
            #expect(after.reservations("committed") == ["\(link)/incoming": "170", "\(link)/outgoing": "170"])
            #expect(
                try await daemon.show(try #require(b.providerOrderID)).reservations("committed") == [
                    "\(link)/incoming": "30", "\(link)/outgoing": "30",
                ])

            // The old nonce no longer names the agreement.
            let stale = CPNPMessage.withdraw(
                WithdrawMessage(
                    sequenceNumber: 1, transactionID: .random(using: &rng), customerOrderID: a.customerOrderID,
                    providerOrderID: poidA, nonce: oldAgreement.nonce))
            let (_, answer) = try await client.roundTrip(stale)
            guard case .fail(let f) = answer else { Issue.record("expected FAIL, got \(answer.method)"); return }
            #expect(f.statusCode == .messageValidationError)
            #expect(try await daemon.show(poidA).standing == after.standing)
        }
    }

    // MARK: Figure 16: ACTIVATE

    @Test(.timeLimit(.minutes(1)), arguments: ProviderMode.allCases)
    func figure16ActivateNowScheduledAndOff(mode: ProviderMode) async throws {
        try await withProvider(mode) { daemon, client in
            var order = try await Self.agree(client, CPD.marseille("40"), "fig16", options: NegotiationOptions(activationType: .explicit))
            let poid = try #require(order.providerOrderID)
            #expect(try await daemon.show(poid).agreement?.hasPrefix("activation explicit, inactive") == true)
            var rng = SystemRandomNumberGenerator()

            func activate(_ schedule: ActivationSchedule) async throws {
                let n = client.events.count
                try await client.act(&order) { try $0.activate(schedule, session: client.session, now: TestClient.now(), using: &rng) }
                try await client.run(&order, until: { _ in client.events[n...].contains(.activationConfirmed(schedule)) })
                guard case .ack(let ack)? = client.received.last else { Issue.record("no ACK"); return }
                #expect(ack.cpd == nil)
            }
            try await activate(.now)
            #expect(try await daemon.show(poid).agreement?.hasPrefix("activation explicit, active") == true)

            try await activate(.deactivate)
            #expect(try await daemon.show(poid).agreement?.hasPrefix("activation explicit, inactive") == true)

            let at = CPNPTimestamp(millisecondsSinceEpoch: (TestClient.now() + .seconds(2)).millisecondsSinceEpoch / 1000 * 1000 + 1000)
            try await activate(.at(at))
            #expect(try await daemon.show(poid).agreement?.hasPrefix("activation explicit, scheduled at \(at.rfc3339)") == true)
            // The server switches it on at that time by itself.
            let on = try await daemon.waitForOrder(poid) { $0.agreement?.hasPrefix("activation explicit, active") == true }
            #expect(TestClient.now() >= at && on.auditContains("scheduled activation"))
        }
    }

    // MARK: Testing-purpose order (RFC 8921 §9.1.10.3)

    @Test(.timeLimit(.minutes(1)), arguments: ProviderMode.allCases)
    func aTestingOrderEndsAtItsTestPeriodEnd(mode: ProviderMode) async throws {
        try await withProvider(mode) { daemon, client in
            let end = CPNPTimestamp(millisecondsSinceEpoch: (TestClient.now() + .seconds(2)).millisecondsSinceEpoch / 1000 * 1000 + 1000)
            let order = try await Self.agree(
                client, try loadExample("testing-purpose-order.json"), "lab",
                options: NegotiationOptions(purpose: .testing, testPeriodEnd: end))
            let poid = try #require(order.providerOrderID)
            #expect(order.agreement?.purpose == .testing && order.agreement?.testPeriodEnd == end)
            let agreed = try await daemon.show(poid)
            #expect(agreed.state == "Completed" && agreed.agreement?.contains("purpose testing") == true)
            #expect(agreed.reservations("committed").values.sorted() == ["10", "10"])

            let ended = try await daemon.waitForOrder(poid) { $0.state != "Completed" }
            #expect(TestClient.now() >= end)
            #expect(ended.state == "Cancelled" && ended.isClosed && !ended.hasReservations)
            #expect(ended.auditContains("test period ended"))
        }
    }

    // MARK: Administrative validation (RFC 8921 §12.2)

    @Test(.timeLimit(.minutes(1)), arguments: ProviderMode.allCases)
    func anOperatorApprovesAndRejectsWithCpndAdmin(mode: ProviderMode) async throws {
        try await withProvider(mode) { daemon, client in
            var rng = SystemRandomNumberGenerator()
            func held(_ prefix: String, mbps: Int) async throws -> ClientOrderStateMachine {
                var o = ClientOrderStateMachine(customerOrderID: customerOrderID(prefix))
                try await client.act(&o) { try $0.quote(requestedCPD: CPD.paris(mbps), session: client.session, now: TestClient.now(), using: &rng) }
                try await client.run(&o, until: { $0.state == .serverProcessing })
                return o
            }
            // Above 1000 Mbps: held in AwaitingProcessing, listed for the operator.
            var big = try await held("approve", mbps: 2000)
            let poid = try #require(big.providerOrderID)
            #expect(try await daemon.admin(["orders", "--state", "AwaitingProcessing"]).contains(poid.rawValue))
            #expect(try await daemon.admin(["approve", poid.rawValue]) == "\(poid): approved: offer sent\n")
            try await client.run(&big, until: { $0.state == .offerReceived })
            #expect(Self.bandwidth(try #require(big.offer).offeredCPD, node: "CE-PAR-9") == (2000, 2000))
            try await client.act(&big) { try $0.accept(now: TestClient.now()) }
            try await client.run(&big, until: { $0.state == .completed })
            #expect(
                try await daemon.show(poid).reservations("committed") == ["PE-PAR-1:xe-0/0/0/incoming": "2000", "PE-PAR-1:xe-0/0/0/outgoing": "2000"])

            var refused = try await held("reject", mbps: 3000)
            let poid2 = try #require(refused.providerOrderID)
            #expect(
                try await daemon.admin(["reject", poid2.rawValue, "--code", "4", "--diagnostic", "not this quarter"])
                    == "\(poid2): rejected: FAIL 4\n")
            try await client.run(&refused, until: { $0.state == .cancelled })
            #expect(refused.lastEnd == .failed(.administrativelyProhibited, diagnostic: "not this quarter"))
            let view = try await daemon.show(poid2)
            #expect(view.state == "Cancelled" && view.isClosed && !view.hasReservations)
            // Nothing left to decide.
            #expect(try await daemon.admin(["approve", poid2.rawValue]) == "\(poid2): unknown or closed order\n")
        }
    }
}

/// The methods of `messages` with retransmitted copies left out: a loaded machine can provoke a
/// retransmission, and its answer repeats the same message.
func distinctMethods(_ messages: some Collection<CPNPMessage>) -> [MethodCode] {
    messages.reduce(into: [CPNPMessage]()) { out, m in if !out.contains(m) { out.append(m) } }.map(\.method)
}
