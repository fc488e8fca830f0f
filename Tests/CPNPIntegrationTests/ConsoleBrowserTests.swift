// The operator console in a real browser (headless Chromium through chromedriver) against a real
// cpnpd with a customer over DTLS (docs/console.md). With CPNP_SCREENSHOTS=DIR, each page's
// screenshot is written there (docs/images/ holds the ones docs/console.md shows).
import CPNPTesting
import CPNPCore
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import Testing

@Suite(.serialized)
struct ConsoleBrowserTests {
    static func screenshot(_ browser: Browser, _ name: String, of part: String = "console") async throws {
        guard let directory = ProcessInfo.processInfo.environment["CPNP_SCREENSHOTS"] else { return }
        try await browser.screenshot().write(to: URL(fileURLWithPath: directory).appendingPathComponent("\(part)-\(name).png"))
    }

    /// A customer signed in with its client certificate requests a quote from the catalogue in the
    /// portal and accepts the offer: the order is Completed on both sides (RFC 8921 §6, model 2).
    @Test(.timeLimit(.minutes(3)))
    func aCustomerRequestsAQuoteFromTheCatalogueAndAcceptsIt() async throws {
        let daemon = try await PortalEndToEndTests.startDaemon()
        defer { daemon.stop() }
        let origin = "https://127.0.0.1:\(daemon.httpPort)"
        let acme = Browser.ClientCertificate(pki: daemon.pkiDirectory, name: "acme", origin: origin)
        try await Browser.with(clientCertificate: acme) { browser in
            try await browser.open(origin + "/portal/catalog")
            try await browser.wait(until: "document.getElementById('catalog') !== null")
            #expect(try await browser.text(of: "#customer").contains("acme"), "signed in by the certificate alone")
            try await Self.screenshot(browser, "catalog", of: "portal")
            try await browser.click("#template-l3vpn-3-sites")
            try await browser.wait(until: "document.getElementById('request-quote') !== null")
            try await browser.type("100", into: "#field-0")
            try await browser.type("100", into: "#field-1")
            try await Self.screenshot(browser, "template", of: "portal")
            try await browser.click("#request-quote")
            // The order's page reloads itself until the offer is there.
            try await browser.wait(until: "document.getElementById('accept') !== null", timeout: .seconds(30))
            #expect(try await browser.text(of: "#price").hasSuffix("EUR per month"))
            let clauses = try await browser.text(of: "#clauses")
            #expect(clauses.contains("components[0].profiles[0].capacity"), "\(clauses.prefix(500))")
            try await Self.screenshot(browser, "offer", of: "portal")
            try await browser.click("#accept")
            try await browser.wait(until: "document.getElementById('done') !== null")
            try await browser.wait(
                until: """
                    document.getElementById('server-state').textContent === 'Completed' && document.getElementById('client-state').textContent === 'Completed'
                    """, timeout: .seconds(30))
            #expect(try await browser.text(of: "#state") == "agreed")
            try await Self.screenshot(browser, "agreed", of: "portal")
            try await browser.open(origin + "/portal/orders")
            try await browser.wait(until: "document.getElementById('orders') !== null")
            #expect(try await browser.text(of: "#orders").contains("Completed"))
            try await Self.screenshot(browser, "orders", of: "portal")
        }
        #expect(await daemon.terminate() == 0)
    }

    /// An operator signs in, finds the order held for approval, approves it: the customer's client,
    /// waiting with PROCESSING, receives the OFFER at once.
    @Test(.timeLimit(.minutes(3)))
    func anOperatorApprovesAHeldOrderAndTheCustomerGetsTheOffer() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let client = try await TestClient(pki: daemon.pkiDirectory, name: "acme", serverPort: daemon.port)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("console-held-1")!)
        var rng = SystemRandomNumberGenerator()
        // Above 1 Gbps the demo policy asks an operator.
        try await client.act(&order) { try $0.quote(requestedCPD: CPD.paris(2000), session: client.session, now: TestClient.now(), using: &rng) }
        try await client.run(&order, until: { $0.state == .serverProcessing })
        let poid = try #require(order.providerOrderID)

        // Anonymous: the sign-in page, with 401.
        let anonymous = try await daemon.http("/console/orders")
        #expect(anonymous.status == 401 && anonymous.body.contains("Sign in"))
        let base = "http://127.0.0.1:\(daemon.httpPort)"
        try await Browser.with { browser in
            try await browser.open(base + "/console/orders")
            try await Self.screenshot(browser, "sign-in")
            try await browser.type("not the token", into: "#token")
            try await browser.click("#sign-in")
            try await browser.wait(until: "document.body.innerText.includes('That is not the operators')")
            try await browser.type(try daemon.operatorToken, into: "#token")
            try await browser.click("#sign-in")
            try await browser.wait(until: "document.getElementById('orders') !== null")
            #expect(try await browser.text(of: "#orders").contains("held for approval"))
            try await Self.screenshot(browser, "orders")
            try await browser.click("a[href='/console/orders/\(poid.rawValue)']")
            try await browser.wait(until: "document.getElementById('approve') !== null")
            let clauses = try await browser.text(of: "#clauses")
            #expect(clauses.contains("components[0].profiles[0].capacity") && clauses.contains("2000"), "\(clauses.prefix(1_000))")
            try await Self.screenshot(browser, "held-order")
            try await browser.click("#approve")
            try await browser.wait(until: "document.getElementById('done') !== null")
            #expect(try await browser.text(of: "#done") == "approved: offer sent")
            let started = ContinuousClock.now
            try await client.run(&order, timeout: .seconds(10), until: { $0.state == .offerReceived })
            #expect(ContinuousClock.now - started < .seconds(5), "the OFFER went out when the operator clicked, not at a later poll")
            // The order's page shows the offer clause by clause, and no more buttons.
            try await browser.open(base + "/console/orders/\(poid.rawValue)")
            try await browser.wait(until: "document.getElementById('state').textContent === 'OfferProposed'")
            #expect(try await browser.evaluate("document.getElementById('approve') === null") as? Bool == true)
            // Its reservations and timeline are those of the same committed state (one snapshot of the store).
            let reservations = try await browser.text(of: "#reservations")
            #expect(reservations.contains("PE-PAR-1:xe-0/0/0") && reservations.contains("offered"), "\(reservations)")
            #expect(try await browser.text(of: "#timeline").contains("OfferProposed"))
            try await Self.screenshot(browser, "order")
            try await browser.open(base + "/console/links")
            try await browser.wait(until: "document.getElementById('links') !== null")
            #expect(try await browser.text(of: "#links").contains("PE-PAR-1:xe-0/0/0"))
            try await Self.screenshot(browser, "links")
        }
        await client.close()
        #expect(await daemon.terminate() == 0)
    }

    /// The live view shows a new negotiation's state changes as they are committed, without a reload.
    @Test(.timeLimit(.minutes(3)))
    func theLiveViewShowsANewNegotiationWithoutAReload() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let base = "http://127.0.0.1:\(daemon.httpPort)"
        try await Browser.with { browser in
            try await browser.open(base + "/console/login")
            try await browser.type(try daemon.operatorToken, into: "#token")
            try await browser.click("#sign-in")
            try await browser.wait(until: "document.getElementById('orders') !== null")
            try await browser.open(base + "/console/live")
            try await browser.wait(until: "document.getElementById('status').textContent.startsWith('live')")
            _ = try await browser.evaluate("window.marker = 'same page'")

            let order = try await TestClient.agree("console-live-1", CPD.paris(100), with: daemon)
            let poid = try #require(order.providerOrderID).rawValue

            try await browser.wait(
                until: "[...document.querySelectorAll('#live tr')].some(r => r.dataset.order === '\(poid)' && r.textContent.includes('Completed'))")
            #expect(try await browser.evaluate("window.marker") as? String == "same page", "the page was not reloaded")
            try await Self.screenshot(browser, "live")
            // An open live view does not hold the daemon up: SIGTERM ends its event stream, and it exits 0.
            let stopping = ContinuousClock.now
            #expect(await daemon.terminate() == 0)
            #expect(ContinuousClock.now - stopping < .seconds(5))
        }
    }

    /// A form posted from elsewhere (no CSRF token, or another session's) is refused, and changes nothing.
    @Test(.timeLimit(.minutes(2)))
    func aForgedFormPostIsRefused() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let client = try await TestClient(pki: daemon.pkiDirectory, name: "acme", serverPort: daemon.port)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("console-forged-1")!)
        var rng = SystemRandomNumberGenerator()
        try await client.act(&order) { try $0.quote(requestedCPD: CPD.paris(2000), session: client.session, now: TestClient.now(), using: &rng) }
        try await client.run(&order, until: { $0.state == .serverProcessing })
        let poid = try #require(order.providerOrderID).rawValue
        let base = "http://127.0.0.1:\(daemon.httpPort)"

        // A signed-in browser session: its cookie and CSRF token.
        let signIn = try await Self.post(base + "/console/login", form: "token=\(try daemon.operatorToken)&next=/console/orders")
        #expect(signIn.status == 303)
        let cookie = try #require(signIn.setCookie?.split(separator: ";").first.map(String.init))
        #expect(signIn.setCookie?.contains("HttpOnly") == true && signIn.setCookie?.contains("SameSite=Strict") == true)
        let page = try await Self.get(base + "/console/orders/\(poid)", cookie: cookie)
        let csrf = try #require(page.body.range(of: "name=\"csrf\" value=\"").map { String(page.body[$0.upperBound...].prefix(64)) })

        // Anonymous, without a token, with a wrong one: refused; the order still waits.
        #expect(try await Self.post(base + "/console/orders/\(poid)/approve", form: "").status == 401)
        #expect(try await Self.post(base + "/console/orders/\(poid)/approve", form: "", cookie: cookie).status == 403)
        #expect(
            try await Self.post(base + "/console/orders/\(poid)/approve", form: "csrf=\(String(repeating: "0", count: 64))", cookie: cookie).status
                == 403)
        #expect(try await daemon.show(try #require(ProviderOrderID(poid))).state == "AwaitingProcessing")
        // With the session's token it goes through.
        let approved = try await Self.post(base + "/console/orders/\(poid)/approve", form: "csrf=\(csrf)", cookie: cookie)
        #expect(approved.status == 303 && approved.location?.contains("approved") == true, "\(approved)")
        try await client.run(&order, timeout: .seconds(10), until: { $0.state == .offerReceived })
        await client.close()
        #expect(await daemon.terminate() == 0)
    }

    struct Answer: CustomStringConvertible {
        var status: Int
        var body: String
        var setCookie: String?
        var location: String?
        var description: String { "\(status) \(location ?? "") \(body.prefix(300))" }
    }

    static func get(_ url: String, cookie: String) async throws -> Answer {
        try await send(URLRequest(url: URL(string: url)!), cookie: cookie)
    }

    static func post(_ url: String, form: String, cookie: String? = nil) async throws -> Answer {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = Data(form.utf8)
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        return try await send(request, cookie: cookie)
    }

    /// Sends without following redirects (to see the 303 and its cookie).
    static func send(_ request: URLRequest, cookie: String?) async throws -> Answer {
        var request = request
        request.timeoutInterval = 10
        if let cookie { request.setValue(cookie, forHTTPHeaderField: "Cookie") }
        let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        return Answer(
            status: http.statusCode, body: String(decoding: data, as: UTF8.self),
            setCookie: http.value(forHTTPHeaderField: "Set-Cookie"), location: http.value(forHTTPHeaderField: "Location"))
    }
}

/// Keeps redirects as answers.
final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse, newRequest request: URLRequest,
        completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
