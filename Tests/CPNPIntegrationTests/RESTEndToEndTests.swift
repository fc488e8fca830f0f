// The REST API (docs/api.md) on a real cpnpd over HTTPS: customers with their CPNP client
// certificate, operators with the token; every quote a normal CPNP order.
import CPNPTesting
import CPNPCore
import Foundation
import NIOHTTP1
import Testing

@Suite(.serialized)
struct RESTEndToEndTests {
    static let template = #"{"template": "l3vpn-3-sites", "values": {"components[0].profiles[0].capacity[0].incoming-bandwidth-mbps": "100"}}"#

    static func object(_ answer: HTTPAnswer) throws -> JSONObject {
        guard case .object(let o) = try JSONParser.parse(Array(answer.body.utf8), limits: .stream) else {
            throw DaemonError(description: "not a JSON object: \(answer.body)")
        }
        return o
    }

    static func text(_ o: JSONObject, _ key: String) -> String? {
        if case .string(let s)? = o[key] { return s }
        return nil
    }

    static func number(_ o: JSONObject, _ key: String) -> Int64? {
        if case .number(let n)? = o[key] { return n.int64Value }
        return nil
    }

    /// A daemon serving HTTPS, acme's client, an anonymous client and the operators' token header.
    static func start() async throws -> (Daemon, CertificateHTTPClient, CertificateHTTPClient, [String: String]) {
        let daemon = try await PortalEndToEndTests.startDaemon()
        return (
            daemon, try CertificateHTTPClient(daemon: daemon, certificate: "acme"), try CertificateHTTPClient(daemon: daemon, certificate: nil),
            ["Authorization": "Bearer \(try daemon.operatorToken)"]
        )
    }

    /// Reads the quote until `done` holds (the provider answers asynchronously).
    static func quote(_ client: CertificateHTTPClient, _ id: String, until done: (JSONObject) -> Bool) async throws -> JSONObject {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let o = try object(try await client.send(.GET, "/api/quotes/\(id)"))
            if done(o) || ContinuousClock.now > deadline { return o }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func aQuoteThroughTheAPIReachesCompletedOnBothSidesAndIsWithdrawn() async throws {
        let (daemon, acme, theOperator, token) = try await Self.start()
        defer { daemon.stop() }
        defer {
            Task {
                await acme.shutdown(); await theOperator.shutdown()
            }
        }

        let created = try await acme.send(.POST, "/api/quotes", json: Self.template)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(Self.text(try Self.object(created), "id"))
        let offered = try await Self.quote(acme, id) { Self.text($0, "state") == "approved" }
        #expect(Self.text(offered, "state") == "approved" && Self.text(offered, "template") == "l3vpn-3-sites")
        guard case .object(let price)? = offered["price"] else { Issue.record("no price: \(offered)"); return }
        #expect(Self.text(price, "currency") == "EUR" && Self.text(price, "amount") != nil)
        #expect(Self.text(offered, "validUntil") != nil)

        let accepted = try Self.object(try await acme.send(.POST, "/api/quotes/\(id)/accept"))
        let done = Self.text(accepted, "state") == "accepted" ? accepted : try await Self.quote(acme, id) { Self.text($0, "state") == "accepted" }
        #expect(Self.text(done, "state") == "accepted" && Self.text(done, "cpnpState") == "Completed")
        #expect(Self.text(done, "providerState") == "Completed")
        #expect(done["agreedCpd"] != nil)
        // Accepting again answers with the agreement (idempotent by state).
        #expect(try await acme.send(.POST, "/api/quotes/\(id)/accept").status == 200)
        let agreements = try Self.object(try await acme.send(.GET, "/api/agreements"))
        guard case .array(let list)? = agreements["quotes"] else { Issue.record("\(agreements)"); return }
        #expect(list.count == 1)

        // The operator sees the same order, Completed, with its audit trail.
        let poid = try #require(Self.text(done, "providerOrderId"))
        let order = try Self.object(try await theOperator.send(.GET, "/api/orders/\(poid)", headers: token))
        #expect(Self.text(order, "state") == "Completed" && Self.text(order, "customer") == "acme")
        guard case .array(let audit)? = order["audit"] else { Issue.record("\(order)"); return }
        #expect(audit.count >= 3)

        let withdrawn = try await acme.send(.POST, "/api/agreements/\(id)/withdraw")
        #expect(withdrawn.status == 200, "\(withdrawn.body)")
        let after = try Self.object(withdrawn)
        #expect(Self.text(after, "state") == "cancelled" && Self.text(after, "stateReason") == "withdrawn", "\(after)")
        let closed = try Self.object(try await theOperator.send(.GET, "/api/orders/\(poid)", headers: token))
        #expect(Self.text(closed, "state") == "Cancelled")
        #expect(await daemon.terminate() == 0)
    }

    @Test(.timeLimit(.minutes(3)))
    func errorsAreProblemsNamingTheFieldAndEachCallerStaysInItsLane() async throws {
        let daemon = try await PortalEndToEndTests.startDaemon()
        defer { daemon.stop() }
        let acme = try CertificateHTTPClient(daemon: daemon, certificate: "acme")
        let globex = try CertificateHTTPClient(daemon: daemon, certificate: "globex")
        let anonymous = try CertificateHTTPClient(daemon: daemon, certificate: nil)
        defer { Task { for c in [acme, globex, anonymous] { await c.shutdown() } } }
        let token = ["Authorization": "Bearer \(try daemon.operatorToken)"]

        func problem(
            _ answer: HTTPAnswer, _ status: Int, field: String? = nil, detail: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            #expect(answer.status == status, "\(answer.body)", sourceLocation: sourceLocation)
            #expect(answer.headers["content-type"]?.hasPrefix("application/problem+json") == true, sourceLocation: sourceLocation)
            let o = try Self.object(answer)
            #expect(Self.number(o, "status") == Int64(status), sourceLocation: sourceLocation)
            if let field { #expect(Self.text(o, "field") == field, "\(o)", sourceLocation: sourceLocation) }
            if let detail { #expect(Self.text(o, "detail")?.contains(detail) == true, "\(o)", sourceLocation: sourceLocation) }
        }
        try problem(try await anonymous.send(.GET, "/api/quotes"), 401)
        try problem(try await acme.send(.GET, "/api/orders"), 403)
        try problem(try await anonymous.send(.GET, "/api/quotes", headers: token), 403)
        try problem(
            try await acme.send(.POST, "/api/quotes", json: #"{"cpd": {"components": [{"profiles": [{"customer-nodes": [], "scope": []}]}]}}"#), 400,
            field: "cpd.components[0].profiles[0].customer-nodes")
        try problem(
            try await acme.send(
                .POST, "/api/quotes",
                json: #"{"template": "l3vpn-3-sites", "values": {"components[0].profiles[0].capacity[0].incoming-bandwidth-mbps": "900"}}"#), 400,
            field: "values.components[0].profiles[0].capacity[0].incoming-bandwidth-mbps", detail: "outside what the template allows")
        try problem(try await acme.send(.POST, "/api/quotes", json: #"{"template": "no-such"}"#), 404, field: "template")
        try problem(try await globex.send(.POST, "/api/quotes", json: #"{"template": "internet-access-1g"}"#), 404, field: "template")
        try problem(try await acme.send(.POST, "/api/quotes", json: "{not json"), 400)
        try problem(try await acme.send(.POST, "/api/quotes", json: "{}"), 400, field: "cpd")
        try problem(try await acme.send(.GET, "/api/orders?limit=5000", headers: [:]), 403)
        try problem(try await anonymous.send(.GET, "/api/orders?limit=5000", headers: token), 400, field: "limit")

        // A retried POST with the same key never opens a second order, even across a kill -9.
        let key = ["Idempotency-Key": "bss-order-0001"]
        let first = try Self.object(try await acme.send(.POST, "/api/quotes", json: Self.template, headers: key))
        let again = try Self.object(try await acme.send(.POST, "/api/quotes", json: Self.template, headers: key))
        #expect(Self.text(first, "id") == Self.text(again, "id"))
        try problem(try await acme.send(.POST, "/api/quotes", json: #"{"template": "l3vpn-3-sites"}"#, headers: key), 422, field: "Idempotency-Key")
        daemon.kill9()
        try await daemon.restart()
        let acmeAfter = try CertificateHTTPClient(daemon: daemon, certificate: "acme")
        let operatorAfter = try CertificateHTTPClient(daemon: daemon, certificate: nil)
        defer {
            Task {
                await acmeAfter.shutdown(); await operatorAfter.shutdown()
            }
        }
        let retried = try await acmeAfter.send(.POST, "/api/quotes", json: Self.template, headers: key)
        #expect(retried.status == 201)
        #expect(Self.text(try Self.object(retried), "id") == Self.text(first, "id"))
        let orders = try Self.object(try await operatorAfter.send(.GET, "/api/orders?customer=acme", headers: token))
        #expect(Self.number(orders, "total") == 1, "one order for three POSTs with one key: \(orders)")

        // Another customer's quote does not exist for globex.
        let id = try #require(Self.text(first, "id"))
        let globexAfter = try CertificateHTTPClient(daemon: daemon, certificate: "globex")
        defer { Task { await globexAfter.shutdown() } }
        try problem(try await globexAfter.send(.GET, "/api/quotes/\(id)"), 404)
        try problem(try await globexAfter.send(.POST, "/api/quotes/\(id)/accept"), 404)
        // CPD numbers stay exact decimals through the API.
        let exact = try await acmeAfter.send(
            .POST, "/api/quotes",
            json: #"{"template": "internet-access-1g", "values": {"components[0].profiles[0].availability.availability-percent": "99.95"}}"#)
        #expect(exact.status == 201)
        #expect(exact.body.contains("\"availability-percent\" : 99.95"), "\(exact.body)")
        #expect(await daemon.terminate() == 0)
    }

    /// UPDATE and ACTIVATE of an agreement through the API: the new offer is accepted, the old
    /// agreement stays until then; an explicit-activation agreement is switched on and off.
    @Test(.timeLimit(.minutes(3)))
    func anAgreementIsUpdatedAndActivated() async throws {
        let (daemon, acme, theOperator, token) = try await Self.start()
        defer { daemon.stop() }
        defer {
            Task {
                await acme.shutdown(); await theOperator.shutdown()
            }
        }
        let explicit =
            #"{"template": "l3vpn-3-sites", "activationType": "explicit", "values": {"components[0].profiles[0].capacity[0].incoming-bandwidth-mbps": "100"}}"#
        let id = try #require(Self.text(try Self.object(try await acme.send(.POST, "/api/quotes", json: explicit)), "id"))
        _ = try await Self.quote(acme, id) { Self.text($0, "state") == "approved" }
        _ = try await acme.send(.POST, "/api/quotes/\(id)/accept")
        let agreed = try await Self.quote(acme, id) { Self.text($0, "state") == "accepted" }
        #expect(Self.text(agreed, "activation") == "inactive", "explicit activation: off until ACTIVATE")

        let on = try await acme.send(.POST, "/api/agreements/\(id)/activate", json: #"{"when": "now"}"#)
        #expect(on.status == 200, "\(on.body)")
        #expect(Self.text(try Self.object(on), "activation") == "active")
        let bad = try await acme.send(.POST, "/api/agreements/\(id)/activate", json: #"{"when": "tomorrow"}"#)
        #expect(bad.status == 400 && bad.body.contains("\"field\" : \"when\""))

        // UPDATE to 200 Mbit/s towards Paris: offered, accepted, agreed.
        let form = try Self.object(try await acme.send(.GET, "/api/quotes/\(id)"))
        guard case .object(let requested)? = form["requestedCpd"] else { Issue.record("\(form)"); return }
        let cpd = JSONSerializer.serializeString(.object(requested)).replacingOccurrences(
            of: "\"incoming-bandwidth-mbps\":100", with: "\"incoming-bandwidth-mbps\":200")
        #expect(cpd.contains("\"incoming-bandwidth-mbps\":200"))
        let updating = try await acme.send(.POST, "/api/agreements/\(id)/update", json: "{\"cpd\": \(cpd)}")
        #expect(updating.status == 200, "\(updating.body)")
        let reoffered = try await Self.quote(acme, id) { Self.text($0, "state") == "approved" }
        #expect(reoffered["agreedCpd"] != nil, "the agreement stays while the update is negotiated")
        _ = try await acme.send(.POST, "/api/quotes/\(id)/accept")
        let updated = try await Self.quote(acme, id) {
            Self.text($0, "state") == "accepted" && $0["offeredCpd"] == nil || Self.text($0, "cpnpState") == "Completed"
        }
        guard case .object(let agreedCpd)? = updated["agreedCpd"] else { Issue.record("\(updated)"); return }
        #expect(JSONSerializer.serializeString(.object(agreedCpd)).contains("\"incoming-bandwidth-mbps\":200"), "\(agreedCpd)")
        let poid = try #require(Self.text(updated, "providerOrderId"))
        let order = try Self.object(try await theOperator.send(.GET, "/api/orders/\(poid)", headers: token))
        #expect(Self.text(order, "state") == "Completed")
        #expect(await daemon.terminate() == 0)
    }

    /// An operator approves a held order through the API: the customer's quote has its offer at once.
    @Test(.timeLimit(.minutes(3)))
    func anOperatorApprovesAHeldQuote() async throws {
        let (daemon, acme, theOperator, token) = try await Self.start()
        defer { daemon.stop() }
        defer {
            Task {
                await acme.shutdown(); await theOperator.shutdown()
            }
        }
        // Above 1 Gbit/s the demo policy holds the order for an operator.
        let cpd = JSONSerializer.serializeString(CPD.paris(2000).json)
        let created = try Self.object(try await acme.send(.POST, "/api/quotes", json: "{\"cpd\": \(cpd)}"))
        let id = try #require(Self.text(created, "id"))
        let waiting = try await Self.quote(acme, id) { Self.text($0, "cpnpState") == "ServerProcessing" }
        #expect(Self.text(waiting, "state") == "inProgress")
        let poid = try #require(Self.text(waiting, "providerOrderId"))
        let held = try Self.object(try await theOperator.send(.GET, "/api/orders/\(poid)", headers: token))
        #expect(held["heldForApproval"] == .bool(true))
        let decision = try Self.object(try await theOperator.send(.POST, "/api/orders/\(poid)/approve", headers: token))
        #expect(Self.text(decision, "outcome") == "approved: offer sent")
        let offered = try await Self.quote(acme, id) { Self.text($0, "state") == "approved" }
        #expect(Self.text(offered, "state") == "approved")
        let links = try Self.object(try await theOperator.send(.GET, "/api/links", headers: token))
        guard case .array(let rows)? = links["links"] else { Issue.record("\(links)"); return }
        #expect(rows.count == 10, "5 links, 2 directions")
        #expect(await daemon.terminate() == 0)
    }
}
