import CPNPCore
import CPNPRuntime
import CPNPServer
import CPNPStorage
import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import ServiceLifecycle
import Synchronization

/// The operator console (docs/console.md): server-rendered pages over the order store and the
/// engine, with no JavaScript build step. Browsers sign in with the operators' token once and get a
/// session cookie; every form carries the session's CSRF token.
struct Console: Sendable {
    let engine: CPNPServerEngine
    let store: ServerOrderStore
    let sessions: ConsoleSessions
    let library: MustacheLibrary
    let secureCookies: Bool
    static let pageSize = 50

    init(engine: CPNPServerEngine, store: ServerOrderStore, sessions: ConsoleSessions, secureCookies: Bool) throws {
        self.engine = engine
        self.store = store
        self.sessions = sessions
        self.secureCookies = secureCookies
        library = try ConsoleTemplates.library()
    }

    func addRoutes(to router: Router<DaemonRequestContext>) {
        router.get("console") { _, _ in Response.redirect(to: "/console/orders", type: .normal) }
        router.get("console/login") { request, _ in page("login", ["next": request.uri.queryParameters["next"].map(String.init) ?? "/console/orders"])
        }
        router.post("console/login") { request, context in try await login(request, context) }
        router.post("console/logout") { request, context in
            let form = try await Self.form(request, context)
            guard let session = sessions.session(request), session.csrf == form["csrf"] else { return Self.forbidden() }
            sessions.end(session.id)
            var response = Response.redirect(to: "/console/login", type: .found)
            response.setCookie(
                Cookie(name: ConsoleSessions.cookieName, value: "", maxAge: 0, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict))
            return response
        }
        router.get("console/orders") { request, _ in try await orders(request) }
        router.get("console/orders/:id") { request, context in try await order(request, context) }
        router.post("console/orders/:id/approve") { request, context in try await decide(request, context, approve: true) }
        router.post("console/orders/:id/reject") { request, context in try await decide(request, context, approve: false) }
        router.get("console/links") { request, _ in try await links(request) }
        router.get("console/live") { request, _ in page("live", chrome(request, "live")) }
        router.get("console/events") { _, _ in events() }
    }

    // MARK: - Sign-in

    private func login(_ request: Request, _ context: DaemonRequestContext) async throws -> Response {
        let form = try await Self.form(request, context)
        let next = form["next"].flatMap { $0.hasPrefix("/console/") && !$0.contains("//") ? $0 : nil } ?? "/console/orders"
        guard let token = form["token"], sessions.accepts(token) else {
            return page("login", ["next": next, "error": "That is not the operators' token."], status: .unauthorized)
        }
        let session = sessions.start()
        var response = Response.redirect(to: next, type: .normal)
        response.setCookie(
            Cookie(name: ConsoleSessions.cookieName, value: session.id, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict))
        return response
    }

    // MARK: - Orders

    private func orders(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let state = query["state"].flatMap { ServerOrderStateMachine.State(rawValue: String($0)) }
        let customer = query["customer"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let sinceText = query["since"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let since = sinceText.flatMap { CPNPTimestamp(rfc3339: $0) ?? CPNPTimestamp(rfc3339: $0 + "T00:00:00Z") }
        let pageNumber = max(1, query["page"].flatMap { Int(String($0)) } ?? 1)
        let total = try store.orderCount(state: state, clientIdentity: customer, createdSince: since)
        let rows = try store.orders(
            limit: Self.pageSize, offset: (pageNumber - 1) * Self.pageSize, state: state, clientIdentity: customer, createdSince: since)
        let held = Set(await engine.ordersAwaitingApproval)
        func link(_ page: Int) -> String {
            var items = ["page=\(page)"]
            if let state { items.append("state=\(state.rawValue)") }
            if let customer { items.append("customer=\(Self.percent(customer))") }
            if let sinceText { items.append("since=\(Self.percent(sinceText))") }
            return "/console/orders?" + items.joined(separator: "&")
        }
        var context = chrome(request, "orders")
        context["orders"] = rows.map { o -> [String: Any] in
            [
                "id": o.providerOrderID.rawValue, "customerOrder": o.customerOrderID.rawValue, "customer": o.clientIdentity,
                "state": o.state.rawValue, "created": o.createdAt.rfc3339, "updated": o.updatedAt.rfc3339,
                "held": held.contains(o.providerOrderID), "open": o.isOpen,
            ]
        }
        context["states"] = ServerOrderStateMachine.State.allCases.map { ["name": $0.rawValue, "selected": $0 == state] }
        context["customer"] = customer ?? ""
        context["since"] = sinceText ?? ""
        context["total"] = total
        context["page"] = pageNumber
        context["pages"] = max(1, (total + Self.pageSize - 1) / Self.pageSize)
        if pageNumber > 1 { context["previous"] = link(pageNumber - 1) }
        if pageNumber * Self.pageSize < total { context["next"] = link(pageNumber + 1) }
        if sinceText != nil, since == nil { context["error"] = "since: not a date (YYYY-MM-DD or RFC 3339)" }
        return page("orders", context)
    }

    private func order(_ request: Request, _ context: DaemonRequestContext) async throws -> Response {
        // The order, its reservations and its timeline as one committed state.
        guard let providerOrderID = context.parameters.get("id").flatMap(ProviderOrderID.init),
            let details = try store.details(providerOrderID: providerOrderID)
        else {
            return page("missing", chrome(request, "orders"), status: .notFound)
        }
        let stored = details.order
        let machine = stored.machine
        let held = await engine.ordersAwaitingApproval.contains(providerOrderID)
        var page = chrome(request, "orders")
        page["id"] = providerOrderID.rawValue
        page["customerOrder"] = stored.customerOrderID.rawValue
        page["customer"] = stored.clientIdentity
        page["address"] = stored.summary.clientAddress
        page["state"] = machine.state.rawValue
        page["created"] = stored.summary.createdAt.rfc3339
        page["held"] = held
        page["done"] = request.uri.queryParameters["done"].map(String.init) ?? ""
        page["timeline"] = Self.timeline(details.audit)
        page["reservations"] = details.reservations.byKind.map { kind, r -> [String: Any] in
            ["resource": r.linkID, "direction": r.direction.rawValue, "mbps": r.mbps.description, "kind": "\(kind)"]
        }
        page["children"] = machine.childAgreements.map { ["id": $0.providerOrderID.rawValue, "customerOrder": $0.customerOrderID.rawValue] }
        page["hasChildren"] = !machine.childAgreements.isEmpty
        page.merge(Self.documentContext(requested: machine.requestedCPD, offered: machine.offer?.offeredCPD, agreed: machine.agreement?.acceptedCPD))
        { _, new in new }
        page["failCodes"] = FailStatusCode.allCases.map { ["code": $0.rawValue, "name": "\($0)", "selected": $0 == .administrativelyProhibited] }
        return self.page("order", page)
    }

    private func decide(_ request: Request, _ context: DaemonRequestContext, approve: Bool) async throws -> Response {
        let form = try await Self.form(request, context)
        // Cookie-signed requests need the session's CSRF token; bearer-token requests cannot be forged by a page.
        if request.headers[.authorization] == nil {
            guard let session = sessions.session(request), let sent = form["csrf"], sent == session.csrf else { return Self.forbidden() }
        }
        guard let providerOrderID = context.parameters.get("id").flatMap(ProviderOrderID.init) else { return Self.forbidden() }
        let status = form["code"].flatMap(Int.init).flatMap(FailStatusCode.init(rawValue:)) ?? .administrativelyProhibited
        let diagnostic = form["diagnostic"].flatMap { $0.isEmpty ? nil : String($0.prefix(256)) }
        let outcome = try await Self.decide(
            providerOrderID, approve: approve, status: status, diagnostic: diagnostic, engine: engine, store: store,
            requestedBy: "console")
        return Response.redirect(to: "/console/orders/\(providerOrderID.rawValue)?done=\(Self.percent(outcome))", type: .normal)
    }

    /// An operator's decision on a held order (RFC 8921 §12.2): carried out at once when this
    /// instance drives the order, else queued for the one that does (docs/deployment.md).
    static func decide(
        _ id: ProviderOrderID, approve: Bool, status: FailStatusCode, diagnostic: String?, engine: CPNPServerEngine, store: ServerOrderStore,
        requestedBy: String
    ) async throws -> String {
        if await engine.drives(id) {
            // The daemon acts at once: the customer gets the OFFER or FAIL now.
            return await engine.administrativeDecision(id, approve: approve, status: status, diagnostic: diagnostic)
        }
        try store.enqueueAdminRequest(
            providerOrderID: id, action: approve ? .approve : .reject(status, diagnostic: diagnostic), requestedBy: requestedBy,
            at: SystemWallClock().now())
        return "queued for the instance that drives the order"
    }

    // MARK: - Links and live view

    private func links(_ request: Request) async throws -> Response {
        let gauges = try await engine.gauges()
        var rows: [[String: Any]] = []
        for link in gauges.capacityMbps.keys.sorted() {
            for direction in ["incoming", "outgoing"] {
                let capacity = gauges.capacityMbps[link]?[direction] ?? 0
                let reserved = gauges.reservedMbps[link]?[direction] ?? 0
                let percent = capacity > 0 ? min(100, reserved * 100 / capacity) : 0
                rows.append([
                    "link": link, "direction": direction, "capacity": Self.number(capacity), "reserved": Self.number(reserved),
                    "percent": Self.number(percent), "width": String(format: "%.1f", percent), "high": percent >= 90,
                ])
            }
        }
        var context = chrome(request, "links")
        context["links"] = rows
        return page("links", context)
    }

    /// Server-sent events: one `transition` event per committed state change, as JSON.
    private func events() -> Response {
        let stream = engine.events.subscribe()
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let events = engine.events
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: ": connected\n\n"))
                // The server's graceful shutdown waits for open responses: end the stream when it begins.
                try await withGracefulShutdownHandler {
                    try await Self.forward(stream, to: &writer)
                } onGracefulShutdown: {
                    events.close()
                }
                try await writer.finish(nil)
            })
    }

    private static func forward(_ stream: AsyncStream<EngineEvents.Transition>, to writer: inout any ResponseBodyWriter) async throws {
        for await t in stream {
            let json = JSONSerializer.serializeString(
                .object(
                    JSONObject([
                        ("provider-order-id", .string(t.providerOrderID.rawValue)), ("customer-order-id", .string(t.customerOrderID.rawValue)),
                        ("customer", .string(t.clientIdentity)), ("from", .string(t.from.rawValue)), ("to", .string(t.to.rawValue)),
                        ("event", .string(t.event)), ("at", .string(t.at.rfc3339)),
                    ])))
            try await writer.write(ByteBuffer(string: "event: transition\ndata: \(json)\n\n"))
        }
    }

    // MARK: - Rendering

    /// What every page shows: the navigation, and the CSRF token of the browser's session.
    private func chrome(_ request: Request, _ section: String) -> [String: Any] {
        let session = sessions.session(request)
        return ["section": section, "csrf": session?.csrf ?? "", "signedIn": session != nil, section: true]
    }

    private func page(_ name: String, _ context: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        Self.html(library.render(context, withTemplate: name) ?? "template \(name) missing", status: status)
    }

    /// An HTML page, with the headers that keep it out of frames and other origins' scripts.
    static func html(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.contentSecurityPolicy] = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// The 401 page of the console: the sign-in form (anonymous requests).
    func loginRequired(_ request: Request) -> Response {
        var response = page("login", ["next": request.uri.path], status: .unauthorized)
        response.headers[.wwwAuthenticate] = "Bearer realm=\"cpnpd\""
        return response
    }

    static func forbidden() -> Response {
        DaemonHTTPServer.text("forbidden: the form's CSRF token is missing or wrong (reload the page)\n", status: .forbidden)
    }

    /// What the `clauses` template shows: the CPD clause by clause, and the offer's gaps.
    static func documentContext(requested: CPD, offered: CPD?, agreed: CPD?) -> [String: Any] {
        var context: [String: Any] = ["clauses": clauses(requested: requested, offered: offered, agreed: agreed)]
        if let compared = offered ?? agreed {
            let gaps = compared.comparison(against: requested).gaps
            context["gaps"] = gaps.map { ["text": $0.description] }
            context["hasGaps"] = !gaps.isEmpty
            context["satisfies"] = gaps.isEmpty
        }
        return context
    }

    /// What the `timeline` template shows: the order's audit trail.
    static func timeline(_ store: ServerOrderStore, of providerOrderID: ProviderOrderID) throws -> [[String: Any]] {
        timeline(try store.audit(providerOrderID: providerOrderID))
    }

    static func timeline(_ audit: [AuditEntry]) -> [[String: Any]] {
        audit.map { e -> [String: Any] in
            ["at": e.at.rfc3339, "from": e.from.rawValue, "to": e.to.rawValue, "event": e.event, "changed": e.from != e.to]
        }
    }

    /// The CPD clause by clause (RFC 7297 §3): each clause of each profile of each component, and
    /// each other top-level clause, with the JSON of the request, the offer and the agreement,
    /// marked where the offer or the agreement differs from the request.
    static func clauses(requested: CPD, offered: CPD?, agreed: CPD?) -> [[String: Any]] {
        var rows: [[String: Any]] = []
        func keys(_ values: [JSONValue?]) -> [String] {
            var keys: [String] = []
            for case .object(let object)? in values { for key in object.keys where !keys.contains(key) { keys.append(key) } }
            return keys
        }
        func member(_ value: JSONValue?, _ key: String) -> JSONValue? {
            if case .object(let object)? = value { return object[key] }
            return nil
        }
        func element(_ value: JSONValue?, _ index: Int) -> JSONValue? {
            if case .array(let array)? = value, index < array.count { return array[index] }
            return nil
        }
        func count(_ values: [JSONValue?]) -> Int {
            values.map { if case .array(let array)? = $0 { array.count } else { 0 } }.max() ?? 0
        }
        // Components and their profiles are containers; what they hold are the clauses.
        func walk(_ path: String, _ values: [JSONValue?], containers: ArraySlice<String>) {
            for key in keys(values) {
                let children = values.map { member($0, key) }
                if let container = containers.first, key == container {
                    for index in 0..<count(children) {
                        walk("\(path)\(key)[\(index)].", children.map { element($0, index) }, containers: containers.dropFirst())
                    }
                } else {
                    rows.append(row("\(path)\(key)", children))
                }
            }
        }
        func row(_ clause: String, _ values: [JSONValue?]) -> [String: Any] {
            func text(_ value: JSONValue?, present: Bool) -> String {
                guard present else { return "" }
                return value.map { JSONSerializer.serializeString($0, pretty: true) } ?? "—"
            }
            return [
                "clause": clause,
                "requested": text(values[0], present: true), "offered": text(values[1], present: offered != nil),
                "agreed": text(values[2], present: agreed != nil),
                "offerDiffers": offered != nil && values[1] != values[0], "agreementDiffers": agreed != nil && values[2] != values[0],
            ]
        }
        walk("", [requested.json, offered?.json, agreed?.json], containers: ["components", "profiles"])
        return rows
    }

    static func form(_ request: Request, _ context: DaemonRequestContext) async throws -> [String: String] {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        let text = String(buffer: buffer)
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if let name = parts.first, !name.isEmpty { fields[name] = parts.count > 1 ? parts[1] : "" }
        }
        return fields
    }

    static func percent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
}

/// Browser sessions of the console: a random id in an HttpOnly, SameSite=Strict cookie, and a CSRF
/// token per session for the forms. Sessions live 12 hours, in this process's memory.
final class ConsoleSessions: Sendable {
    struct Session: Sendable {
        var id: String
        var csrf: String
        var started: ContinuousClock.Instant
    }

    static let cookieName = "cpnpd_session"
    static let lifetime: Duration = .seconds(12 * 3_600)
    private let operatorToken: String?
    private let sessions = Mutex<[String: Session]>([:])

    init(operatorToken: String?) { self.operatorToken = operatorToken }

    /// Whether `token` is the operators' token (compared in constant time).
    func accepts(_ token: String) -> Bool {
        guard let operatorToken else { return false }
        return OperatorAuthentication.equalInConstantTime(Array(token.utf8), Array(operatorToken.utf8))
    }

    func start() -> Session {
        let session = Session(id: DaemonHTTPServer.randomHex(), csrf: DaemonHTTPServer.randomHex(), started: .now)
        sessions.withLock { all in
            all = all.filter { ContinuousClock.now - $0.value.started < Self.lifetime }
            if all.count >= 1_000, let oldest = all.min(by: { $0.value.started < $1.value.started }) { all[oldest.key] = nil }
            all[session.id] = session
        }
        return session
    }

    func session(_ request: Request) -> Session? {
        guard let sessionID = request.cookies[Self.cookieName]?.value, !sessionID.isEmpty else { return nil }
        return sessions.withLock { all in
            guard let existing = all[sessionID], ContinuousClock.now - existing.started < Self.lifetime else { return nil }
            return existing
        }
    }

    func end(_ sessionID: String) { _ = sessions.withLock { $0.removeValue(forKey: sessionID) } }
}
