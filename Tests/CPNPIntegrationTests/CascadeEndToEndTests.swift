// Cascaded negotiation end to end (RFC 8921 §8.8, Figure 7; docs/cascade.md): a customer asks
// provider A (France, Examples/cascade/provider-a.yaml) for an L3VPN with German sites, which A
// orders from its upstreams (Examples/cascade/provider-b.yaml), each a real `cpnpd` over DTLS.
import CPNPClient
import CPNPCore
import CPNPStorage
import CPNPTransport
import CPNPTesting
import Foundation
import Logging
import Testing

@Suite("Cascade end to end", .serialized)
struct CascadeEndToEndTests {
    /// Provider A and its upstream providers, each a `cpnpd` in its own directory.
    struct Providers {
        var a: Daemon
        var upstreams: [String: Daemon]

        /// An upstream: Examples/cascade/provider-b.yaml with its wholesale base fee for A set to `baseFee`,
        /// then `edit` applied to the text.
        static func upstream(
            baseFee: String = "400.00", prepare: ((Daemon) async throws -> Void)? = nil, edit: (String) -> String = { $0 }
        ) async throws -> Daemon {
            var text = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cascade/provider-b.yaml"), encoding: .utf8)
            text = text.replacingOccurrences(of: "./.cascade-demo/b/", with: "./.cpnp/")
            text = text.replacingOccurrences(of: "      base-fee: 400.00", with: "      base-fee: \(baseFee)")
            let upstream = try await Daemon.start(configuration: edit(text), prepare: prepare)
            try await upstream.issueClientCertificate("provider-a")
            return upstream
        }

        /// The `upstreams` entry naming `daemon`, A's client certificate there being `client-CLIENT.pem`.
        static func entry(_ name: String, _ daemon: Daemon, serves: String = "{countries: [DE]}", client: String = "provider-a", more: String = "")
            -> String
        {
            let pki = daemon.pkiDirectory.path
            return """
                  - name: \(name)
                    address: 127.0.0.1:\(daemon.port)
                    pki: {ca: \(pki)/ca.pem, cert: \(pki)/client-\(client).pem, key: \(pki)/client-\(client)-key.pem}
                    serves: \(serves)
                    resale: {markup-percent: 10, currency: EUR}
                    expected-response-time: 30s
                \(more)
                """
        }

        /// A with `upstreams` (text of `upstreams:` entries) and `cascade` (keys of its `cascade:` section).
        static func start(
            upstreams: [String: Daemon], entries: String, cascade: String = "", environment: [String: String] = [:], edit: (String) -> String = { $0 }
        ) async throws -> Providers {
            var text = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cascade/provider-a.yaml"), encoding: .utf8)
            text = text.replacingOccurrences(of: "./.cascade-demo/a/", with: "./.cpnp/")
            text = String(text[..<text.range(of: "\nupstreams:")!.lowerBound])
            text += "\nupstreams:\n" + entries + "\ncascade:\n  provider-id: provider-a\n" + cascade
            let a = try await Daemon.start(configuration: edit(text), environment: environment)
            return Providers(a: a, upstreams: upstreams)
        }

        /// A with one upstream, `provider-b`.
        static func start(cascade: String = "", environment: [String: String] = [:]) async throws -> Providers {
            let b = try await upstream()
            return try await start(upstreams: ["provider-b": b], entries: entry("provider-b", b), cascade: cascade, environment: environment)
        }

        func stop() {
            if ProcessInfo.processInfo.environment["CASCADE_TEST_LOGS"] != nil {
                print("=== A\n" + a.logText)
                for (name, d) in upstreams { print("=== \(name)\n" + d.logText) }
            }
            a.stop()
            for d in upstreams.values { d.stop() }
        }

        var server: CPNPPeer { get throws { try CPNPPeer.server(host: "127.0.0.1", port: a.port) } }

        /// A's order as `cpnpd admin show --json` prints it, children included.
        func show(_ order: ProviderOrderID) async throws -> [String: Any] {
            let result = try await Daemon.command([
                "admin", "show", order.rawValue, "--json", "--config", a.configurationFile!.path, "--database", a.database.path,
            ])
            guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] else {
                throw DaemonError(description: "admin show failed: \(result.output)")
            }
            return object
        }

        func children(of order: ProviderOrderID) async throws -> [[String: Any]] {
            try await show(order)["children"] as? [[String: Any]] ?? []
        }

        /// Waits until A's child orders of `order` satisfy `done`.
        @discardableResult
        func waitForChildren(of order: ProviderOrderID, timeout: Duration = .seconds(60), until done: ([[String: Any]]) -> Bool) async throws
            -> [[String: Any]]
        {
            let deadline = ContinuousClock.now + timeout
            while true {
                let children = try await children(of: order)
                if done(children) { return children }
                guard ContinuousClock.now < deadline else {
                    throw DaemonError(description: "child orders of \(order) never as expected: \(children)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    static let everySite: Set<String> = ["CE-PAR-1", "CE-LYS-1", "CE-FRA-1", "CE-BER-1"]
    static let frenchSites: Set<String> = ["CE-PAR-1", "CE-LYS-1"]

    /// Examples/cascade/request.json with `edit` applied to its text.
    static func request(_ edit: (String) -> String = { $0 }) throws -> CPD {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cascade/request.json"), encoding: .utf8)
        return try CPD(json: JSONParser.parse(Array(edit(text).utf8)), at: .root)
    }

    /// The request with its Berlin node (CE-BER-1) at `site` in `country` instead.
    static func request(movingBerlinTo site: String, country: String) throws -> CPD {
        try request {
            $0.replacingOccurrences(
                of: "\"site-id\": \"BERLIN-OFFICE\", \"country\": \"DE\"", with: "\"site-id\": \"\(site)\", \"country\": \"\(country)\"")
        }
    }

    static func priced(localOnly: Bool? = nil) -> InformationElements {
        InformationElements(negotiationOptions: NegotiationOptions(localOnly: localOnly, costRequested: true))
    }

    static func customer(_ providers: Providers) async throws -> CPNPClientEngine {
        try await customerEngine(pki: providers.a.pkiDirectory)
    }

    static func offer(_ outcome: OfferOutcome) throws -> OfferMessage {
        guard case .offer(let offer) = outcome else { throw DaemonError(description: "no offer: \(outcome)") }
        return offer
    }

    static func decimal(_ text: String) -> CPNPDecimal { CPNPDecimal(parsing: text)! }

    /// Waits until `upstream` closed the order behind A's `child`, and expects a WITHDRAW to have done it.
    @discardableResult
    static func expectWithdrawn(_ child: [String: Any], at upstream: Daemon) async throws -> OrderView {
        let closed = try await upstream.waitForOrder(try upstreamOrder(child), timeout: .seconds(60)) { $0.isClosed }
        #expect(closed.auditContains("WITHDRAW"), "\(closed)")
        return closed
    }

    /// The lines of `cpnpd admin orders` at `daemon` of the customer `client`.
    static func orders(at daemon: Daemon, of client: String) async throws -> [Substring] {
        try await daemon.admin(["orders"]).split(separator: "\n").filter { $0.contains(client) }
    }

    /// The upstream's order behind a child order of A.
    static func upstreamOrder(_ child: [String: Any]) throws -> ProviderOrderID {
        guard let text = child["provider-order-id"] as? String, let id = ProviderOrderID(text) else {
            throw DaemonError(description: "no provider order id: \(child)")
        }
        return id
    }

    /// What B has committed on Frankfurt's link, both directions.
    static func frankfurt(_ order: OrderView) -> Set<String> {
        Set(order.reservations("committed").filter { $0.key.hasPrefix("PE-FRA-1:ge-0/0/1") }.values)
    }

    // MARK: - Agreement at both levels, and the price

    @Test func aRequestSpanningTwoProvidersGetsOneOfferAndAnAgreementAtBothLevels() async throws {
        let providers = try await Providers.start()
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(id))
        // Paris and Lyon from A (1650.00 for acme), Frankfurt and Berlin from B (1100.00 for A) + 10 %.
        #expect(Set(offer.offeredCPD.customerNodeIdentifiers) == Self.everySite)
        #expect(offer.informationElements?.cost == Cost(amount: Self.decimal("2860.00"), currency: "EUR", period: "month"))
        #expect(offer.offeredCPD.comparison(against: try Self.request()).satisfies)
        let agreement = try await customer.accept(id)
        #expect(agreement.providerOrderID == offer.providerOrderID)

        let parent = try await providers.show(agreement.providerOrderID)
        #expect(parent["state"] as? String == "Completed")
        let audit = (parent["audit"] as? [[String: Any]] ?? []).compactMap { $0["event"] as? String }
        #expect(audit.contains { $0.hasPrefix("child orders requested from provider-b (CE-FRA-1, CE-BER-1)") })
        #expect(audit.contains { $0.contains("QUOTATION sent") } && audit.contains { $0.contains("ACK received") })
        let children = try await providers.children(of: agreement.providerOrderID)
        try #require(children.count == 1)
        #expect(children[0]["provider"] as? String == "provider-b")
        #expect(children[0]["state"] as? String == "Completed")
        let atB = try await providers.upstreams["provider-b"]!.show(try Self.upstreamOrder(children[0]))
        #expect(atB.state == "Completed")
        #expect(atB.text.contains("price: 1100.00 EUR per month"))
        // A holds capacity for its own sites only; B for the German ones.
        #expect(
            Set(try await providers.a.show(agreement.providerOrderID).reservations("committed").keys.map { String($0.prefix(6)) }).isSubset(of: [
                "PE-PAR", "PE-LYS",
            ]))
        #expect(Set(atB.reservations("committed").keys.map { String($0.prefix(6)) }) == ["PE-FRA", "PE-BER"])
        await customer.shutdown()
    }

    @Test func theCheaperOfTwoUpstreamsWinsAndTheOtherOfferIsDeclined() async throws {
        let b = try await Providers.upstream(baseFee: "400.00")
        let c = try await Providers.upstream(baseFee: "200.00")
        let providers = try await Providers.start(
            upstreams: ["provider-b": b, "provider-c": c], entries: Providers.entry("provider-b", b) + Providers.entry("provider-c", c))
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(id))
        // C asks 900.00 (B 1100.00): 1650.00 + 990.00.
        #expect(offer.informationElements?.cost?.amount == Self.decimal("2640.00"))
        _ = try await customer.accept(id)
        let children = try await providers.waitForChildren(of: offer.providerOrderID) { children in
            children.count == 2 && children.allSatisfy { $0["state"] as? String != "OfferReceived" && $0["state"] as? String != "OfferProcessing" }
        }
        let atC = try #require(children.first { $0["provider"] as? String == "provider-c" })
        let atB = try #require(children.first { $0["provider"] as? String == "provider-b" })
        #expect(atC["state"] as? String == "Completed")
        #expect(atB["open"] as? Bool == false)
        let declined = try await b.waitForOrder(try Self.upstreamOrder(atB)) { $0.isClosed }
        #expect(declined.auditContains("DECLINE"))
        #expect(try await c.show(try Self.upstreamOrder(atC)).state == "Completed")
        await customer.shutdown()
    }

    @Test func localOnlyMakesNoChildOrder() async throws {
        let providers = try await Providers.start()
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(localOnly: true), to: try providers.server)
        guard case .ended(.failed(let code, _)) = try await customer.awaitOffer(id) else {
            Issue.record("a local-only request A cannot serve alone is refused")
            return
        }
        #expect(code == .networkPresenceError)
        // The same through `cpnp quote --local-only`: refused (exit 2).
        let cli = try await CLI(daemon: providers.a).run(["quote", "--cpd", CLI.example("cascade/request.json"), "--local-only", "--yes", "--json"])
        #expect(cli.status == 2, "\(cli.stdout) \(cli.stderr)")
        #expect(try await providers.upstreams["provider-b"]!.admin(["orders"]).contains("(no orders)"))
        #expect(!providers.a.logText.contains("child orders requested"))
        await customer.shutdown()
    }

    /// `accept-children: after-accept`: the child offer waits (PROCESSING) and is accepted once the
    /// customer accepted; the customer's offer is valid no longer than the child's; a DECLINE
    /// declines the child offer.
    @Test func afterAcceptTheChildIsAcceptedOnlyOnceTheCustomerAccepts() async throws {
        let b = try await Providers.upstream(edit: { $0.replacingOccurrences(of: "offer-validity: 10m", with: "offer-validity: 2m") })
        let providers = try await Providers.start(
            upstreams: ["provider-b": b], entries: Providers.entry("provider-b", b), cascade: "  accept-children: after-accept\n")
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(id))
        #expect(offer.informationElements?.cost?.amount == Self.decimal("2860.00"))
        // A's own validity is 10 minutes; B's offer, 2.
        #expect(offer.validityOfferTime < TestClient.now().adding(.seconds(150)))
        let child = try #require(try await providers.children(of: offer.providerOrderID).first)
        #expect(child["state"] as? String == "OfferProcessing")
        let atB = try Self.upstreamOrder(child)
        #expect(try await b.show(atB).state == "ProcessingReceived")
        let agreement = try await customer.accept(id)
        #expect(agreement.providerOrderID == offer.providerOrderID)
        #expect(try await b.show(atB).state == "Completed")
        #expect(try await providers.children(of: offer.providerOrderID).first?["state"] as? String == "Completed")

        let declined = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        let second = try Self.offer(try await customer.awaitOffer(declined))
        let secondChild = try #require(try await providers.children(of: second.providerOrderID).first)
        try await customer.decline(declined, reasons: [.unacceptableGap])
        let closed = try await b.waitForOrder(try Self.upstreamOrder(secondChild)) { $0.isClosed }
        #expect(closed.auditContains("DECLINE received"))
        await customer.shutdown()
    }

    /// `max-open-orders` of an upstream: the second request finds B's quota taken, so A offers what
    /// it serves itself (`on-child-failure: counter-offer`) and names the reason in the audit trail.
    @Test func anUpstreamsOpenOrderLimitIsKept() async throws {
        let b = try await Providers.upstream()
        let providers = try await Providers.start(
            upstreams: ["provider-b": b], entries: Providers.entry("provider-b", b, more: "    max-open-orders: 1"))
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let first = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        _ = try Self.offer(try await customer.awaitOffer(first))
        _ = try await customer.accept(first)
        let second = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(second))
        #expect(Set(offer.offeredCPD.customerNodeIdentifiers) == Self.frenchSites)
        #expect(offer.informationElements?.cost?.amount == Self.decimal("1650.00"))
        let audit = (try await providers.show(offer.providerOrderID)["audit"] as? [[String: Any]] ?? []).compactMap { $0["event"] as? String }
        #expect(audit.contains { $0.contains("max-open-orders") }, "\(audit)")
        #expect(try await Self.orders(at: b, of: "provider-a").count == 1)
        await customer.shutdown()
    }

    /// `on-child-failure: fail`: B refuses its part (the Spanish site), so the customer gets FAIL 6
    /// instead of an offer without the sites no provider serves.
    @Test func aChildFailureFailsTheOrderWhenThePolicySaysSo() async throws {
        let b = try await Providers.upstream()
        let providers = try await Providers.start(
            upstreams: ["provider-b": b], entries: Providers.entry("provider-b", b, serves: "{countries: [DE, ES]}"),
            cascade: "  on-child-failure: fail\n"
        ) { $0.replacingOccurrences(of: "countries: [FR, DE]", with: "countries: [FR, DE, ES]") }
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let inMadrid = try Self.request(movingBerlinTo: "MADRID-DC", country: "ES")
        let id = try await customer.quote(inMadrid, informationElements: Self.priced(), to: try providers.server)
        guard case .ended(.failed(let code, let diagnostic)) = try await customer.awaitOffer(id) else {
            Issue.record("a child FAIL with on-child-failure: fail is a FAIL to the customer")
            return
        }
        #expect(code == .networkPresenceError)
        #expect(diagnostic?.contains("CE-BER-1") == true, "\(diagnostic ?? "")")
        #expect(try await Self.orders(at: b, of: "provider-a").count == 1)
        await customer.shutdown()
    }

    /// The customer lets the offer expire: the child agreed for it is withdrawn.
    @Test func anExpiredOfferWithdrawsTheChild() async throws {
        let b = try await Providers.upstream()
        let providers = try await Providers.start(upstreams: ["provider-b": b], entries: Providers.entry("provider-b", b)) {
            $0.replacingOccurrences(of: "offer-validity: 10m", with: "offer-validity: 3s")
        }
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(id))
        let child = try #require(try await providers.children(of: offer.providerOrderID).first)
        #expect(child["state"] as? String == "Completed")
        try await Self.expectWithdrawn(child, at: b)
        await customer.shutdown()
    }

    // MARK: - The parent's fate reaches the children

    @Test func aDeclineWithdrawsTheChild() async throws {
        let providers = try await Providers.start()
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(id))
        let child = try #require(try await providers.children(of: offer.providerOrderID).first)
        #expect(child["state"] as? String == "Completed")
        try await customer.decline(id, reasons: [.unacceptableGap])
        let atB = try await Self.expectWithdrawn(child, at: providers.upstreams["provider-b"]!)
        #expect(!atB.hasReservations)
        await customer.shutdown()
    }

    @Test func anUpdateAndAWithdrawOfTheParentReachTheUpstream() async throws {
        let providers = try await Providers.start(cascade: "")
        defer { providers.stop() }
        let b = providers.upstreams["provider-b"]!
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        _ = try Self.offer(try await customer.awaitOffer(id))
        let agreement = try await customer.accept(id)
        let child = try #require(try await providers.children(of: agreement.providerOrderID).first)
        let atB = try Self.upstreamOrder(child)
        #expect(Self.frankfurt(try await b.show(atB)) == ["50"])

        // Frankfurt 50 → 80 Mbit/s: B's agreement follows; the price too (B: 1280.00 + 10 %).
        let wider = try Self.request {
            $0.replacingOccurrences(
                of: "\"customer-node\": \"CE-FRA-1\", \"incoming-bandwidth-mbps\": 50, \"outgoing-bandwidth-mbps\": 50",
                with: "\"customer-node\": \"CE-FRA-1\", \"incoming-bandwidth-mbps\": 80, \"outgoing-bandwidth-mbps\": 80")
        }
        try await customer.update(id, request: wider, informationElements: Self.priced())
        let updated = try Self.offer(try await customer.awaitOffer(id))
        #expect(updated.informationElements?.cost?.amount == Self.decimal("3058.00"))
        let newAgreement = try await customer.accept(id)
        #expect(newAgreement.acceptedCPD.comparison(against: wider).satisfies)
        let afterUpdate = try await b.waitForOrder(atB) { Self.frankfurt($0) == ["80"] }
        #expect(afterUpdate.state == "Completed")
        #expect(try await providers.children(of: agreement.providerOrderID).count == 1)

        // An UPDATE the customer declines: B's agreement, updated for the offer, goes back to 80.
        let widest = try Self.request {
            $0.replacingOccurrences(
                of: "\"customer-node\": \"CE-FRA-1\", \"incoming-bandwidth-mbps\": 50, \"outgoing-bandwidth-mbps\": 50",
                with: "\"customer-node\": \"CE-FRA-1\", \"incoming-bandwidth-mbps\": 120, \"outgoing-bandwidth-mbps\": 120")
        }
        try await customer.update(id, request: widest, informationElements: Self.priced())
        _ = try Self.offer(try await customer.awaitOffer(id))
        #expect(Self.frankfurt(try await b.show(atB)) == ["120"])
        try await customer.decline(id, reasons: [.unacceptableGap])
        let reverted = try await b.waitForOrder(atB, timeout: .seconds(60)) { Self.frankfurt($0) == ["80"] }
        #expect(reverted.state == "Completed")
        // B can show the revert before A's ACK of the DECLINE reaches the customer: a WITHDRAW waits for it.
        await customer.settle(timeout: .seconds(30))

        try await customer.withdraw(id)
        let withdrawn = try await b.waitForOrder(atB, timeout: .seconds(60)) { $0.isClosed }
        #expect(withdrawn.auditContains("WITHDRAW"))
        #expect(!withdrawn.hasReservations)
        await customer.shutdown()
    }

    @Test func anActivateAndACancelOfTheParentReachTheUpstream() async throws {
        let providers = try await Providers.start()
        defer { providers.stop() }
        let b = providers.upstreams["provider-b"]!
        let customer = try await Self.customer(providers)
        let explicit = InformationElements(negotiationOptions: NegotiationOptions(activationType: .explicit, costRequested: true))
        let id = try await customer.quote(try Self.request(), informationElements: explicit, to: try providers.server)
        _ = try Self.offer(try await customer.awaitOffer(id))
        let agreement = try await customer.accept(id)
        let atB = try Self.upstreamOrder(try #require(try await providers.children(of: agreement.providerOrderID).first))
        #expect(try await b.show(atB).agreement?.hasPrefix("activation explicit, inactive") == true)
        _ = try await customer.activate(id, .now)
        let active = try await b.waitForOrder(atB) { $0.agreement?.hasPrefix("activation explicit, active") == true }
        #expect(active.state == "Completed")
        _ = try await customer.activate(id, .deactivate)
        try await b.waitForOrder(atB) { $0.agreement?.hasPrefix("activation explicit, inactive") == true }

        // A CANCEL while the customer holds the offer: the agreed child is withdrawn.
        let cancelled = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(cancelled))
        let child = try #require(try await providers.children(of: offer.providerOrderID).first)
        _ = try await customer.cancel(cancelled)
        try await Self.expectWithdrawn(child, at: b)
        await customer.shutdown()
    }

    /// An UPDATE down to A's own sites is decided without upstreams; once agreed, B's child goes.
    @Test func anUpdateThatDropsTheUpstreamsSitesWithdrawsItsChild() async throws {
        let providers = try await Providers.start()
        defer { providers.stop() }
        let b = providers.upstreams["provider-b"]!
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        _ = try Self.offer(try await customer.awaitOffer(id))
        let agreement = try await customer.accept(id)
        let atB = try Self.upstreamOrder(try #require(try await providers.children(of: agreement.providerOrderID).first))
        let french = try #require(try Self.request().restricted(to: Self.frenchSites))
        try await customer.update(id, request: french, informationElements: Self.priced())
        let offer = try Self.offer(try await customer.awaitOffer(id))
        #expect(offer.informationElements?.cost?.amount == Self.decimal("1650.00"))
        #expect(try await b.show(atB).state == "Completed", "B keeps its part until the customer agrees")
        _ = try await customer.accept(id)
        let withdrawn = try await b.waitForOrder(atB, timeout: .seconds(60)) { $0.isClosed }
        #expect(withdrawn.auditContains("WITHDRAW"))
        await customer.shutdown()
    }

    // MARK: - Crashes, loss, chains and loops

    /// kill -9 of A once B's child order is agreed, before the customer's ACCEPT (at the composed
    /// OFFER's send), or right after the parent's PROCESSING (before any child order): after a
    /// restart the negotiation completes, with exactly one order at B.
    @Test(arguments: ["crash-before-send:OFFER", "crash-after-commit:AwaitingProcessing"])
    func aCrashOfTheMiddleProviderResumesWhereItStopped(fault: String) async throws {
        let providers = try await Providers.start(environment: ["CPNPD_FAULT": fault])
        defer { providers.stop() }
        let b = providers.upstreams["provider-b"]!
        let customer = try await Self.customer(providers)
        let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
        #expect(try await providers.a.waitForExit(timeout: .seconds(60)) == Daemon.faultExitStatus)
        try await providers.a.restart()
        let offer = try Self.offer(try await customer.awaitOffer(id))
        #expect(offer.informationElements?.cost?.amount == Self.decimal("2860.00"))
        let agreement = try await customer.accept(id)
        let children = try await providers.children(of: agreement.providerOrderID)
        try #require(children.count == 1)
        #expect(children[0]["state"] as? String == "Completed")
        let atB = try await Self.orders(at: b, of: "provider-a")
        #expect(atB.count == 1, "one order at B, never two: \(atB)")
        #expect(atB.first?.contains("Completed") == true)
        await customer.shutdown()
    }

    /// Each negotiation agrees, then withdraws (Lyon's link holds two at a time): QUOTATION, ACCEPT
    /// and WITHDRAW cross the lossy leg, and B sees each child order agreed once and closed once.
    @Test func twentyPercentLossWithDuplicationOnTheUpstreamLegCompletesEveryNegotiationOnce() async throws {
        let providers = try await Providers.start(environment: ["CPNPD_UPSTREAM_CHAOS": "drop=0.2,duplicate=0.1,seed=7"])
        defer { providers.stop() }
        let b = providers.upstreams["provider-b"]!
        let customer = try await Self.customer(providers)
        var upstreamOrders: [ProviderOrderID] = []
        for _ in 0..<5 {
            let id = try await customer.quote(try Self.request(), informationElements: Self.priced(), to: try providers.server)
            let offer = try Self.offer(try await customer.awaitOffer(id))
            #expect(offer.informationElements?.cost?.amount == Self.decimal("2860.00"))
            let parent = try await customer.accept(id).providerOrderID
            let children = try await providers.children(of: parent)
            #expect(children.count == 1)
            #expect(children.first?["state"] as? String == "Completed")
            upstreamOrders.append(try Self.upstreamOrder(try #require(children.first)))
            try await customer.withdraw(id)
            // A lost final ACK of WITHDRAW is repeated after a minute (docs/protocol.md §6, A1).
            try await providers.waitForChildren(of: parent, timeout: .seconds(200)) { $0.allSatisfy { $0["open"] as? Bool == false } }
        }
        #expect(Set(upstreamOrders).count == 5)
        let atB = try await Self.orders(at: b, of: "provider-a")
        #expect(atB.count == 5, "exactly one order at B per negotiation: \(atB)")
        for order in upstreamOrders {
            let view = try await b.show(order)
            let agreed = view.audit.filter { $0.contains("AcceptReceived") && $0.contains("→ Completed") }
            #expect(view.isClosed && agreed.count == 1, "\(view)")
        }
        await customer.shutdown()
        // Faults were injected both ways (A logs its ChaosTransport's counters when it stops).
        #expect(await providers.a.terminate() == 0)
        let faults = try #require(providers.a.logText.split(separator: "\n").first { $0.contains("faults injected on the upstream leg") })
        func count(_ key: String) -> Int { faults.range(of: "\(key)=").flatMap { Int(faults[$0.upperBound...].prefix { $0.isNumber }) } ?? 0 }
        #expect(
            count("sent-dropped") > 0 && count("received-dropped") > 0 && count("sent-duplicated") + count("received-duplicated") > 0, "\(faults)")
    }

    /// A → B → C: B orders from C the Polish site A asked it for; the price adds up at each level.
    @Test func aChainOfThreeProvidersAgrees() async throws {
        // C serves Poland and sells to B.
        let c = try await Providers.upstream(
            baseFee: "200.00",
            edit: { text in
                text.replacingOccurrences(of: "identity: provider-a", with: "identity: provider-b")
                    .replacingOccurrences(of: "countries: [DE]", with: "countries: [PL]")
            })
        try await c.issueClientCertificate("provider-b")
        // B serves Germany, and orders Poland from C.
        let b = try await Providers.upstream(edit: { text in
            text.replacingOccurrences(of: "      countries: [DE]\n      testing-orders", with: "      countries: [DE, PL]\n      testing-orders")
                + "\nupstreams:\n" + Providers.entry("provider-c", c, serves: "{countries: [PL]}", client: "provider-b")
                + "\ncascade:\n  provider-id: provider-b\n"
        })
        let providers = try await Providers.start(
            upstreams: ["provider-b": b, "provider-c": c], entries: Providers.entry("provider-b", b, serves: "{countries: [DE, PL]}")
        ) { $0.replacingOccurrences(of: "countries: [FR, DE]", with: "countries: [FR, DE, PL]") }
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let inWarsaw = try Self.request(movingBerlinTo: "WARSAW-DC", country: "PL")
        let id = try await customer.quote(inWarsaw, informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(id))
        #expect(Set(offer.offeredCPD.customerNodeIdentifiers) == Self.everySite)
        let agreement = try await customer.accept(id)
        let child = try #require(try await providers.children(of: agreement.providerOrderID).first)
        let atB = try await b.show(try Self.upstreamOrder(child))
        #expect(atB.state == "Completed")
        #expect(atB.auditContains("child orders requested from provider-c (CE-BER-1)"))
        let atC = try await Self.orders(at: c, of: "provider-b")
        #expect(atC.count == 1 && atC.first?.contains("Completed") == true, "\(atC)")
        // Each segment is priced on its own part: the QoS entry between Frankfurt and Warsaw crosses
        // B's and C's domains, so neither guarantees it (a gap) and neither charges its premium.
        // B: Frankfurt 400 + 3.00 × 100 = 700.00, and C's 200 + 3.00 × 100 = 500.00 + 10 %: 1250.00.
        #expect(atB.text.contains("price: 1250.00 EUR per month"), "\(atB)")
        // A: 1650.00 + 1250.00 + 10 %.
        #expect(offer.informationElements?.cost?.amount == Self.decimal("3025.00"))
        #expect(offer.offeredCPD.comparison(against: inWarsaw).gaps.count == 1)
        await customer.shutdown()
    }

    /// A request never loops: B's upstream for Spain is A itself, which is in the provider chain, so
    /// B orders nothing; B's FAIL leads A to a counter-offer without the sites no provider serves.
    @Test func aProviderAlreadyInTheChainIsNeverAsked() async throws {
        // B's upstream for Spain: A's name, an address nothing answers on, and credentials of B's own CA.
        let b = try await Providers.upstream(prepare: { d in
            for args in [["pki", "init", "--dir", d.pkiDirectory.path], ["pki", "client", "acme", "--dir", d.pkiDirectory.path]] {
                let result = try await Daemon.command(args)
                guard result.status == 0 else { throw DaemonError(description: result.output) }
            }
        }) { text in
            text.replacingOccurrences(of: "      countries: [DE]\n      testing-orders", with: "      countries: [DE, ES]\n      testing-orders")
                + "\nupstreams:\n" + """
                      - name: provider-a
                        address: 127.0.0.1:9
                        pki: {ca: ./.cpnp/pki/ca.pem, cert: ./.cpnp/pki/client-acme.pem, key: ./.cpnp/pki/client-acme-key.pem}
                        serves: {countries: [ES]}

                    """ + "\ncascade:\n  provider-id: provider-b\n"
        }
        let providers = try await Providers.start(
            upstreams: ["provider-b": b], entries: Providers.entry("provider-b", b, serves: "{countries: [DE, ES]}")
        ) { $0.replacingOccurrences(of: "countries: [FR, DE]", with: "countries: [FR, DE, ES]") }
        defer { providers.stop() }
        let customer = try await Self.customer(providers)
        let inMadrid = try Self.request(movingBerlinTo: "MADRID-DC", country: "ES")
        let id = try await customer.quote(inMadrid, informationElements: Self.priced(), to: try providers.server)
        let offer = try Self.offer(try await customer.awaitOffer(id))
        #expect(Set(offer.offeredCPD.customerNodeIdentifiers) == Self.frenchSites)
        #expect(!b.logText.contains("child orders requested"))
        // B refused its part (no presence in Spain): FAIL 6, and A offered what it serves itself.
        #expect(b.logText.contains("status=6"))
        let children = try await providers.children(of: offer.providerOrderID)
        #expect(children.count == 1 && children.first?["open"] as? Bool == false, "\(children)")
        let atB = try await Self.orders(at: b, of: "provider-a")
        #expect(atB.count == 1 && atB.first?.contains("Cancelled") == true, "\(atB)")
        await customer.shutdown()
    }
}
