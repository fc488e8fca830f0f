// The customer portal and the service catalogue (RFC 8921 §6, deployment model 2) on a real cpnpd
// over HTTPS: customers sign in with their CPNP client certificate, the portal negotiates for them,
// and each sees only its own orders.
import CPNPCore
import CPNPTesting
import Foundation
import Testing

@Suite(.serialized)
struct PortalEndToEndTests {
    /// The demo configuration serving HTTPS.
    static func startDaemon() async throws -> Daemon {
        let base = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        return try await Daemon.start(configuration: base.replacingOccurrences(of: "  tls: false ", with: "  tls: true "))
    }

    /// Requests a quote from `template` with `fields` (form field name → value); the order's page path.
    static func requestQuote(_ client: CertificateHTTPClient, _ template: String, _ fields: [String: String]) async throws -> String {
        let form = try await client.get("/portal/catalog/\(template)")
        #expect(form.status == 200)
        let csrf = try #require(CertificateHTTPClient.csrf(in: form.body))
        let answer = try await client.post("/portal/catalog/\(template)", form: fields.merging(["csrf": csrf]) { a, _ in a })
        #expect(answer.status == 303, "\(answer.body)")
        return try #require(answer.headers["location"])
    }

    /// Reloads `path` (as the page does itself) until `done` holds for it.
    static func page(_ client: CertificateHTTPClient, _ path: String, until done: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let page = try await client.get(path)
            if page.status == 200, done(page.body) { return page.body }
            guard ContinuousClock.now < deadline else {
                Issue.record("\(path) never got there; last page:\n\(page.body)")
                return page.body
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func aQuoteFromTheCatalogueIsAcceptedAndCompletedOnBothSides() async throws {
        let daemon = try await Self.startDaemon()
        defer { daemon.stop() }
        let acme = try CertificateHTTPClient(daemon: daemon, certificate: "acme")
        defer { Task { await acme.shutdown() } }

        let catalog = try await acme.get("/portal/catalog")
        #expect(catalog.status == 200)
        #expect(catalog.body.contains("L3VPN, 3 sites") && catalog.body.contains("Internet access 1 Gbit/s"))
        #expect(CertificateHTTPClient.text(of: "customer", in: catalog.body)?.contains("acme") == true)

        // A value outside the template's range, or not a number, is refused with the field's name.
        let form = try await acme.get("/portal/catalog/l3vpn-3-sites")
        let csrf = try #require(CertificateHTTPClient.csrf(in: form.body))
        let outside = try await acme.post("/portal/catalog/l3vpn-3-sites", form: ["csrf": csrf, "field-0": "600"])
        #expect(outside.status == 400)
        #expect(
            CertificateHTTPClient.text(of: "error", in: outside.body)?.contains(
                "Paris HQ, towards the site (Mbit/s): 600 is outside what the template allows (10 to 500)") == true,
            "\(outside.body)")
        let notNumber = try await acme.post("/portal/catalog/l3vpn-3-sites", form: ["csrf": csrf, "field-2": "fast"])
        #expect(notNumber.status == 400)
        #expect(
            CertificateHTTPClient.text(of: "error", in: notNumber.body)?.contains("Lyon DC, towards the site (Mbit/s): fast is not a number") == true)

        let path = try await Self.requestQuote(acme, "l3vpn-3-sites", ["field-0": "100", "field-1": "", "field-2": "50"])
        #expect(path.hasPrefix("/portal/orders/co-"))
        // The portal acknowledges the OFFER just after it arrives (OfferReceived → OfferProcessing).
        let offer = try await Self.page(acme, path) {
            $0.contains("id=\"accept\"") && CertificateHTTPClient.text(of: "client-state", in: $0) == "OfferProcessing"
        }
        #expect(CertificateHTTPClient.text(of: "price", in: offer)?.hasSuffix("EUR per month") == true, "the portal asks for the cost")
        // The customer's values are in the request; the provider chose the open one (its maximum).
        #expect(offer.contains("&quot;incoming-bandwidth-mbps&quot;: 100"))
        #expect(offer.contains("&quot;outgoing-bandwidth-mbps&quot;: 500"))
        #expect(CertificateHTTPClient.text(of: "client-state", in: offer) == "OfferProcessing", "the portal told the provider a person decides")

        let csrfOnOffer = try #require(CertificateHTTPClient.csrf(in: offer))
        let accepted = try await acme.post(path + "/accept", form: ["csrf": csrfOnOffer])
        #expect(accepted.status == 303)
        let agreed = try await Self.page(acme, path) {
            CertificateHTTPClient.text(of: "server-state", in: $0) == "Completed"
                && CertificateHTTPClient.text(of: "client-state", in: $0) == "Completed"
        }
        #expect(CertificateHTTPClient.text(of: "state", in: agreed) == "agreed")

        // A normal CPNP order: the operator sees it, and it is in the customer's list.
        let customerOrder = String(path.dropFirst("/portal/orders/".count))
        let list = try await acme.get("/portal/orders")
        #expect(list.body.contains(customerOrder))
        let theOperator = try CertificateHTTPClient(daemon: daemon, certificate: "operator")
        let console = try await theOperator.get("/console/orders?customer=acme")
        await theOperator.shutdown()
        #expect(console.status == 200 && console.body.contains(customerOrder))
        #expect(await daemon.terminate() == 0)
    }

    @Test(.timeLimit(.minutes(3)))
    func aCustomerNeverSeesOrActsOnAnotherCustomersOrder() async throws {
        let daemon = try await Self.startDaemon()
        defer { daemon.stop() }
        let acme = try CertificateHTTPClient(daemon: daemon, certificate: "acme")
        let globex = try CertificateHTTPClient(daemon: daemon, certificate: "globex")
        let anonymous = try CertificateHTTPClient(daemon: daemon, certificate: nil)
        let theOperator = try CertificateHTTPClient(daemon: daemon, certificate: "operator")
        defer { Task { for c in [acme, globex, anonymous, theOperator] { await c.shutdown() } } }

        let path = try await Self.requestQuote(acme, "l3vpn-3-sites", [:])
        // Once the portal has acknowledged the OFFER (OfferReceived → OfferProcessing, sent just
        // after the OFFER arrives): else the state compared below could move between the two reads.
        let offer = try await Self.page(acme, path) {
            $0.contains("id=\"accept\"") && CertificateHTTPClient.text(of: "client-state", in: $0) == "OfferProcessing"
        }
        // An order acme's own CPNP client made is acme's too.
        _ = try await TestClient.agree("co-cli-order", CPD.paris(10), with: daemon)

        // Anonymous: 401, with the page saying how to sign in.
        let signIn = try await anonymous.get("/portal/orders")
        #expect(signIn.status == 401)
        #expect(signIn.body.contains("client certificate"))
        #expect(try await anonymous.get(path).status == 401)
        #expect(try await anonymous.get("/catalog").status == 401)
        // The operator's certificate is no customer's.
        #expect(try await theOperator.get("/portal/orders").status == 401)

        // globex: acme's orders are not found, by list, page or form.
        let globexList = try await globex.get("/portal/orders")
        #expect(globexList.status == 200)
        let portalStores = try FileManager.default.contentsOfDirectory(atPath: daemon.directory.appendingPathComponent(".cpnp/portal").path)
        #expect(portalStores.filter { $0.hasSuffix(".sqlite") } == ["acme.sqlite"], "reading makes no store for globex")
        #expect(!globexList.body.contains("co-cli-order") && !globexList.body.contains(String(path.dropFirst("/portal/orders/".count))))
        #expect(try await globex.get(path).status == 404)
        #expect(try await globex.get("/portal/orders/co-cli-order").status == 404)
        let globexToken = try #require(CertificateHTTPClient.csrf(in: (try await globex.get("/portal/catalog/l3vpn-3-sites")).body))
        #expect(try await globex.post(path + "/accept", form: ["csrf": globexToken]).status == 404)
        #expect(try await globex.post(path + "/decline", form: ["csrf": globexToken]).status == 404)
        // … nor templates published for acme only.
        #expect(try await globex.get("/portal/catalog/internet-access-1g").status == 404)
        #expect(!(try await globex.get("/catalog")).body.contains("internet-access-1g"))
        #expect((try await acme.get("/catalog")).body.contains("internet-access-1g"))

        // A forged form (no token, or another customer's) is refused, and the offer stays open.
        #expect(try await acme.post(path + "/accept", form: [:]).status == 403)
        #expect(try await acme.post(path + "/accept", form: ["csrf": globexToken]).status == 403)
        #expect(try await acme.post("/portal/catalog/l3vpn-3-sites", form: ["csrf": "0000"]).status == 403)
        let still = try await acme.get(path)
        #expect(still.body.contains("id=\"accept\""))
        #expect(CertificateHTTPClient.text(of: "client-state", in: offer) == CertificateHTTPClient.text(of: "client-state", in: still.body))

        // acme's list holds both of its orders; the one its client negotiates is marked so.
        let acmeList = try await acme.get("/portal/orders")
        #expect(acmeList.body.contains("co-cli-order") && acmeList.body.contains(String(path.dropFirst("/portal/orders/".count))))
        let cliOrder = try await acme.get("/portal/orders/co-cli-order")
        #expect(cliOrder.status == 200)
        #expect(cliOrder.body.contains("Your own CPNP client negotiates this order"))
        #expect(!cliOrder.body.contains("id=\"accept\""))
        #expect(await daemon.terminate() == 0)
    }

    /// The portal's client state is durable: a kill -9 while an offer waits for the customer loses
    /// nothing, and the ACCEPT after the restart completes the order (RFC 8921 §11.1).
    @Test(.timeLimit(.minutes(3)))
    func anOfferWaitingInThePortalSurvivesAKill() async throws {
        let daemon = try await Self.startDaemon()
        defer { daemon.stop() }
        var acme = try CertificateHTTPClient(daemon: daemon, certificate: "acme")
        let path = try await Self.requestQuote(acme, "internet-access-1g", ["field-0": "99.95", "field-1": "explicit"])
        _ = try await Self.page(acme, path) { $0.contains("id=\"accept\"") }
        await acme.shutdown()
        daemon.kill9()
        try await daemon.restart()
        #expect(daemon.logText.contains("customer portal: client loaded"), "the portal resumed its orders at start")
        acme = try CertificateHTTPClient(daemon: daemon, certificate: "acme")
        defer { Task { [acme] in await acme.shutdown() } }
        let offer = try await acme.get(path)
        #expect(offer.body.contains("id=\"accept\""), "\(offer.body)")
        #expect(offer.body.contains("&quot;availability-percent&quot;: 99.95"))
        #expect(offer.body.contains("&quot;type&quot;: &quot;explicit&quot;"))
        let accepted = try await acme.post(path + "/accept", form: ["csrf": try #require(CertificateHTTPClient.csrf(in: offer.body))])
        #expect(accepted.status == 303)
        _ = try await Self.page(acme, path) {
            CertificateHTTPClient.text(of: "server-state", in: $0) == "Completed"
                && CertificateHTTPClient.text(of: "client-state", in: $0) == "Completed"
        }
        #expect(await daemon.terminate() == 0)
    }

    /// `cpnp catalog [--server]` lists the portal's catalogue over HTTPS with the client certificate.
    @Test(.timeLimit(.minutes(2)))
    func cpnpCatalogListsTheSameCatalogue() async throws {
        let daemon = try await Self.startDaemon()
        defer { daemon.stop() }
        let directory = daemon.directory
        func catalog(_ args: [String], identity: String = "acme") async throws -> CLI.Result {
            try await CLI.runRaw(
                ["catalog", "--server", "127.0.0.1:\(daemon.httpPort)", "--pki", daemon.pkiDirectory.path, "--identity", identity] + args,
                in: directory)
        }
        let list = try await catalog([])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("l3vpn-3-sites") && list.stdout.contains("Internet access 1 Gbit/s"))
        #expect(list.stdout.contains("Paris HQ, towards the site (Mbit/s): {\"min\":10,\"max\":500}"))
        let globex = try await catalog([], identity: "globex")
        #expect(globex.status == 0 && globex.stdout.contains("l3vpn-3-sites") && !globex.stdout.contains("internet-access-1g"))

        // The template's CPD is the one the portal requests from: valid, and loose where the form is open.
        let template = try await catalog(["l3vpn-3-sites"])
        #expect(template.status == 0)
        let cpd = try CPD(json: JSONParser.parse(Array(template.stdout.utf8)), at: .root)
        #expect(cpd.openFields.count == 6)
        #expect(cpd.validate(at: .root).filter { $0.severity == .error }.isEmpty)
        let json = try await catalog(["--json"])
        #expect(json.status == 0)
        guard case .object(let o) = try JSONParser.parse(Array(json.stdout.utf8)), case .array(let templates)? = o["templates"] else {
            Issue.record("not the catalogue: \(json.stdout)")
            return
        }
        #expect(templates.count == 2)

        let unknown = try await catalog(["no-such-template"])
        #expect(unknown.status == 1 && unknown.stderr.contains("404: no such template"))
        let notACustomer = try await catalog([], identity: "operator")
        #expect(notACustomer.status == 0, "operators may read the whole catalogue")
        #expect(await daemon.terminate() == 0)
    }
}
