import CPNPAPI
import CPNPClient
import CPNPCore
import CPNPPolicy
import CPNPRuntime
import CPNPServer
import CPNPStorage
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIRuntime

/// The REST API (Sources/CPNPHTTP/openapi.yaml, docs/api.md), generated from its OpenAPI
/// document: customers negotiate quotes through the portal's CPNP client engine (RFC 8921 §6,
/// model 2); operators read orders and links and decide held orders. Every quote is a CPNP order.
struct RESTAPI: APIProtocol {
    let portal: CustomerPortal
    let store: ServerOrderStore
    let engine: CPNPServerEngine

    /// Who is calling: set by ``RESTCaller/Middleware`` from the authentication.
    enum Caller: Sendable {
        case customer(String)
        case `operator`
    }

    @TaskLocal static var caller: Caller?

    /// The middleware that makes the authenticated caller visible to the generated handlers.
    struct CallerMiddleware: RouterMiddleware {
        typealias Context = DaemonRequestContext
        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            let caller: Caller? = context.customer.map { .customer($0) } ?? (context.isOperator ? .operator : nil)
            return try await RESTAPI.$caller.withValue(caller) { try await next(request, context) }
        }
    }

    typealias Problem = APIProblem

    /// A problem as a Hummingbird response (for what happens before the generated handlers).
    static func problemResponse(status: Int, title: String, detail: String? = nil, field: String? = nil) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        let problem = APIProblem(status: status, title: title, detail: detail, field: field)
        return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: problem.json)))
    }

    static let customersOnly = APIProblem(status: 403, title: "customers only", detail: "sign in with your CPNP client certificate over HTTPS")
    static let operatorsOnly = APIProblem(status: 403, title: "operators only", detail: "present the operators' bearer token or certificate")

    private func customer() throws(Problem) -> String {
        guard case .customer(let identity)? = Self.caller else { throw Self.customersOnly }
        return identity
    }

    private func requireOperator() throws(Problem) {
        guard case .operator? = Self.caller else { throw Self.operatorsOnly }
    }

    /// Runs `body`, turning a ``Problem`` into the operation's `default` problem response.
    private func answer<Output>(_ problem: (Int, Components.Responses.Problem) -> Output, _ body: () async throws -> Output) async throws -> Output {
        do {
            return try await body()
        } catch let p as Problem {
            return problem(
                p.status,
                .init(body: .applicationProblemJson(.init(_type: p.type, title: p.title, status: p.status, detail: p.detail, field: p.field))))
        }
    }

    // MARK: - Catalogue

    func listTemplates(_ input: Operations.ListTemplates.Input) async throws -> Operations.ListTemplates.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let visible: [CatalogTemplate]
            switch Self.caller {
            case .customer(let identity)?: visible = portal.configuration.catalog.filter { $0.isOffered(to: identity) }
            case .operator?: visible = portal.configuration.catalog
            case nil: throw Self.customersOnly
            }
            return .ok(
                .init(
                    body: .json(
                        .init(
                            templates: visible.map { template in
                                .init(
                                    id: template.id, name: template.name, description: template.description,
                                    openFields: template.cpd.openFields.map { field in
                                        .init(
                                            path: field.path.description, label: template.label(for: field),
                                            constraint: JSONDocument(field.constraint))
                                    })
                            }))))
        }
    }

    // MARK: - Quotes

    func listQuotes(_ input: Operations.ListQuotes.Input) async throws -> Operations.ListQuotes.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            var quotes: [Components.Schemas.Quote] = []
            for (order, group) in await portal.orders(customer: customer) { quotes.append(try quote(order, group: group, customer: customer)) }
            return .ok(.init(body: .json(.init(quotes: quotes))))
        }
    }

    func listAgreements(_ input: Operations.ListAgreements.Input) async throws -> Operations.ListAgreements.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            var quotes: [Components.Schemas.Quote] = []
            for (order, group) in await portal.orders(customer: customer) where order.agreement != nil {
                quotes.append(try quote(order, group: group, customer: customer))
            }
            return .ok(.init(body: .json(.init(quotes: quotes))))
        }
    }

    func createQuote(_ input: Operations.CreateQuote.Input) async throws -> Operations.CreateQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            guard case .json(let body) = input.body else { throw APIProblem(status: 415, title: "unsupported media type") }
            let (request, group) = try requestedDocument(body, customer: customer)
            // The idempotency key names the order: a retried request finds the order the first made.
            var customerOrderID: CustomerOrderID?
            if let key = input.headers.idempotencyKey {
                let derived = Self.customerOrderID(customer: customer, idempotencyKey: key)
                if let existing = await portal.order(derived, customer: customer) {
                    guard existing.requestedCPD == request else {
                        throw APIProblem(
                            status: 422, title: "idempotency key reused", detail: "this Idempotency-Key was used for another request",
                            field: "Idempotency-Key")
                    }
                    return .created(.init(body: .json(try quote(existing, group: group, customer: customer))))
                }
                customerOrderID = derived
            }
            let made: CustomerOrderID
            do {
                made = try await portal.quote(
                    request, customer: customer, customerOrderID: customerOrderID, group: group,
                    activationType: body.activationType.flatMap { ActivationType(rawValue: $0.rawValue) })
            } catch {
                throw APIProblem(status: 409, title: "not sent", detail: "\(error)")
            }
            // The provider usually answers within milliseconds: wait briefly so the answer shows its state.
            try? await portal.awaitFirstAnswer(made, customer: customer, patience: .seconds(2))
            guard let order = await portal.order(made, customer: customer) else { throw APIProblem.notFound("quote \(made)") }
            return .created(.init(body: .json(try quote(order, group: group, customer: customer))))
        }
    }

    func getQuote(_ input: Operations.GetQuote.Input) async throws -> Operations.GetQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            let (order, group) = try await lookUp(input.path.id, customer: customer)
            return .ok(.init(body: .json(try quote(order, group: group, customer: customer))))
        }
    }

    func acceptQuote(_ input: Operations.AcceptQuote.Input) async throws -> Operations.AcceptQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            let (order, _) = try await lookUp(input.path.id, customer: customer)
            // Accepting an accepted quote again answers with it (a retried request).
            if order.state != .completed && order.state != .acceptSent {
                do { try await portal.accept(order.customerOrderID, customer: customer) } catch {
                    throw APIProblem(status: 409, title: "cannot accept", detail: "\(error)")
                }
            }
            return .ok(.init(body: .json(try await current(order.customerOrderID, customer: customer))))
        }
    }

    func declineQuote(_ input: Operations.DeclineQuote.Input) async throws -> Operations.DeclineQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            let (order, _) = try await lookUp(input.path.id, customer: customer)
            var reasons: [DeclineReason] = [.unacceptableGap]
            if case .json(let body)? = input.body, let codes = body.reasons, !codes.isEmpty {
                reasons = try codes.enumerated().map { index, code in
                    guard let reason = DeclineReason(rawValue: code.rawValue) else {
                        throw APIProblem(status: 400, title: "invalid value", detail: "unknown reason \(code)", field: "reasons[\(index)]")
                    }
                    return reason
                }
            }
            if !(order.state == .cancelled && order.lastEnd.map(Self.isDecline) == true) {
                do { try await portal.decline(order.customerOrderID, reasons: reasons, customer: customer) } catch {
                    throw APIProblem(status: 409, title: "cannot decline", detail: "\(error)")
                }
            }
            return .ok(.init(body: .json(try await current(order.customerOrderID, customer: customer))))
        }
    }

    func cancelQuote(_ input: Operations.CancelQuote.Input) async throws -> Operations.CancelQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            let (order, _) = try await lookUp(input.path.id, customer: customer)
            if order.state != .cancelled {
                do { try await portal.cancel(order.customerOrderID, customer: customer) } catch {
                    throw APIProblem(status: 409, title: "cannot cancel", detail: "\(error)")
                }
            }
            return .ok(.init(body: .json(try await current(order.customerOrderID, customer: customer))))
        }
    }

    func withdrawAgreement(_ input: Operations.WithdrawAgreement.Input) async throws -> Operations.WithdrawAgreement.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            let (order, _) = try await lookUp(input.path.id, customer: customer)
            if order.agreement != nil {
                do { try await portal.withdraw(order.customerOrderID, customer: customer) } catch {
                    throw APIProblem(status: 409, title: "cannot withdraw", detail: "\(error)")
                }
            } else if order.state != .cancelled {
                throw APIProblem(status: 409, title: "no agreement", detail: "quote \(order.customerOrderID) is not an agreement")
            }
            return .ok(.init(body: .json(try await current(order.customerOrderID, customer: customer))))
        }
    }

    func updateAgreement(_ input: Operations.UpdateAgreement.Input) async throws -> Operations.UpdateAgreement.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            let (order, _) = try await lookUp(input.path.id, customer: customer)
            guard case .json(let body) = input.body else { throw Problem(status: 415, title: "unsupported media type") }
            let request = try APIProblem.requestedCPD(body.cpd)
            guard order.agreement != nil else {
                throw Problem(status: 409, title: "no agreement", detail: "quote \(order.customerOrderID) is not an agreement")
            }
            do { try await portal.update(order.customerOrderID, request: request, customer: customer) } catch {
                throw Problem(status: 409, title: "cannot update", detail: "\(error)")
            }
            return .ok(.init(body: .json(try await current(order.customerOrderID, customer: customer))))
        }
    }

    func activateAgreement(_ input: Operations.ActivateAgreement.Input) async throws -> Operations.ActivateAgreement.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let customer = try customer()
            let (order, _) = try await lookUp(input.path.id, customer: customer)
            guard case .json(let body) = input.body else { throw Problem(status: 415, title: "unsupported media type") }
            let schedule = try APIProblem.activationSchedule(body.when)
            guard order.agreement != nil else {
                throw Problem(status: 409, title: "no agreement", detail: "quote \(order.customerOrderID) is not an agreement")
            }
            do { try await portal.activate(order.customerOrderID, schedule, customer: customer) } catch {
                throw Problem(status: 409, title: "cannot activate", detail: "\(error)")
            }
            return .ok(.init(body: .json(try await current(order.customerOrderID, customer: customer))))
        }
    }

    // MARK: - Webhooks

    /// The subscriptions' owner: the customer, or "" for operators (every order).
    private func webhookOwner() throws(Problem) -> String {
        switch Self.caller {
        case .customer(let identity)?: identity
        case .operator?: ""
        case nil: throw Self.customersOnly
        }
    }

    private func webhook(_ subscription: WebhookSubscription) throws -> Components.Schemas.Webhook {
        let counts = try store.webhookDeliveryCounts(webhookID: subscription.id)
        return .init(
            id: subscription.id, url: subscription.url, events: subscription.events.compactMap(Components.Schemas.WebhookEventType.init(rawValue:)),
            signed: subscription.secret != nil,
            createdAt: Self.date(subscription.createdAt), delivered: counts.delivered, pending: counts.pending, abandoned: counts.abandoned)
    }

    func listWebhooks(_ input: Operations.ListWebhooks.Input) async throws -> Operations.ListWebhooks.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let owner = try webhookOwner()
            return .ok(.init(body: .json(.init(webhooks: try store.webhooks(owner: owner).map(webhook)))))
        }
    }

    func createWebhook(_ input: Operations.CreateWebhook.Input) async throws -> Operations.CreateWebhook.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let owner = try webhookOwner()
            guard case .json(let body) = input.body else { throw APIProblem(status: 415, title: "unsupported media type") }
            guard let url = URL(string: body.url), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), let host = url.host,
                !host.isEmpty
            else {
                throw APIProblem(status: 400, title: "invalid value", detail: "an http:// or https:// URL", field: "url")
            }
            // A customer's subscription may not make cpnpd call into the provider's own network.
            if !owner.isEmpty, !portal.configuration.http.customerWebhooksToPrivateAddresses, Self.isPrivate(host: host) {
                throw APIProblem(
                    status: 400, title: "invalid value",
                    detail: "\(host) is a loopback or private address (http.customer-webhooks-to-private-addresses)", field: "url")
            }
            if let secret = body.secret, secret.count < 16 {
                throw APIProblem(status: 400, title: "invalid value", detail: "at least 16 characters", field: "secret")
            }
            guard try store.webhooks(owner: owner).count < 20 else {
                throw APIProblem(status: 409, title: "too many subscriptions", detail: "at most 20 per customer; delete one first")
            }
            let subscription = WebhookSubscription(
                id: "wh-" + DaemonHTTPServer.randomHex().prefix(20), owner: owner, url: body.url, secret: body.secret,
                events: Array(Set((body.events ?? []).map(\.rawValue))).sorted(), createdAt: SystemWallClock().now())
            try store.createWebhook(subscription)
            return .created(.init(body: .json(try webhook(subscription))))
        }
    }

    func deleteWebhook(_ input: Operations.DeleteWebhook.Input) async throws -> Operations.DeleteWebhook.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let owner = try webhookOwner()
            guard try store.deleteWebhook(id: input.path.webhookId, owner: owner, at: SystemWallClock().now()) else {
                throw APIProblem.notFound("webhook \(input.path.webhookId)")
            }
            return .noContent(.init())
        }
    }

    /// Loopback, private (RFC 1918, RFC 4193), link-local and unspecified literals, and `localhost`.
    static func isPrivate(host: String) -> Bool {
        let normalized = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if normalized == "localhost" || normalized.hasSuffix(".localhost") { return true }
        let ipv4Bytes = normalized.split(separator: ".").compactMap { UInt8($0) }
        if ipv4Bytes.count == 4, normalized.split(separator: ".").count == 4 {
            switch (ipv4Bytes[0], ipv4Bytes[1]) {
            case (127, _), (10, _), (0, _), (169, 254), (192, 168): return true
            case (172, let secondOctet) where (16...31).contains(secondOctet): return true
            case (100, let secondOctet) where (64...127).contains(secondOctet): return true
            default: return false
            }
        }
        if normalized.contains(":") {
            return normalized == "::1" || normalized == "::" || normalized.hasPrefix("fe8") || normalized.hasPrefix("fe9")
                || normalized.hasPrefix("fea") || normalized.hasPrefix("feb")
                || normalized.hasPrefix("fc") || normalized.hasPrefix("fd") || normalized.hasPrefix("::ffff:")
        }
        return false
    }

    // MARK: - Operators

    func listOrders(_ input: Operations.ListOrders.Input) async throws -> Operations.ListOrders.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            try requireOperator()
            var state: ServerOrderStateMachine.State?
            if let text = input.query.state {
                guard let parsedState = ServerOrderStateMachine.State(rawValue: text) else {
                    throw APIProblem(
                        status: 400, title: "invalid value",
                        detail: "one of \(ServerOrderStateMachine.State.allCases.map(\.rawValue).joined(separator: ", "))", field: "state")
                }
                state = parsedState
            }
            let limit = input.query.limit ?? 100
            let offset = input.query.offset ?? 0
            guard (1...1_000).contains(limit) else { throw APIProblem(status: 400, title: "invalid value", detail: "1 to 1000", field: "limit") }
            guard offset >= 0 else { throw APIProblem(status: 400, title: "invalid value", detail: "0 or more", field: "offset") }
            let held = Set(await engine.ordersAwaitingApproval)
            let rows = try store.orders(limit: limit, offset: offset, state: state, clientIdentity: input.query.customer)
            let total = try store.orderCount(state: state, clientIdentity: input.query.customer)
            return .ok(
                .init(
                    body: .json(
                        .init(
                            total: total,
                            orders: rows.map { order in
                                .init(
                                    providerOrderId: order.providerOrderID.rawValue, customerOrderId: order.customerOrderID.rawValue,
                                    customer: order.clientIdentity,
                                    state: order.state.rawValue, heldForApproval: held.contains(order.providerOrderID),
                                    createdAt: Self.date(order.createdAt),
                                    updatedAt: Self.date(order.updatedAt))
                            }))))
        }
    }

    func getOrder(_ input: Operations.GetOrder.Input) async throws -> Operations.GetOrder.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            try requireOperator()
            guard let providerOrderID = ProviderOrderID(input.path.providerOrderId),
                let order = try store.order(providerOrderID: providerOrderID)
            else {
                throw APIProblem.notFound("order \(input.path.providerOrderId)")
            }
            let held = await engine.ordersAwaitingApproval.contains(providerOrderID)
            let audit = try store.audit(providerOrderID: providerOrderID).map { entry in
                Components.Schemas.AuditEntry(at: Self.date(entry.at), from: entry.from.rawValue, to: entry.to.rawValue, event: entry.event)
            }
            return .ok(
                .init(
                    body: .json(
                        .init(
                            providerOrderId: providerOrderID.rawValue, customerOrderId: order.customerOrderID.rawValue,
                            customer: order.clientIdentity,
                            state: order.state.rawValue,
                            heldForApproval: held, createdAt: Self.date(order.createdAt), updatedAt: Self.date(order.updatedAt), audit: audit))))
        }
    }

    func approveOrder(_ input: Operations.ApproveOrder.Input) async throws -> Operations.ApproveOrder.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            try requireOperator()
            let providerOrderID = try heldOrder(input.path.providerOrderId)
            let outcome = try await Console.decide(
                providerOrderID, approve: true, status: .administrativelyProhibited, diagnostic: nil, engine: engine, store: store, requestedBy: "api"
            )
            return .ok(.init(body: .json(.init(providerOrderId: providerOrderID.rawValue, outcome: outcome))))
        }
    }

    func rejectOrder(_ input: Operations.RejectOrder.Input) async throws -> Operations.RejectOrder.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            try requireOperator()
            let providerOrderID = try heldOrder(input.path.providerOrderId)
            var status = FailStatusCode.administrativelyProhibited
            var diagnostic: String?
            if case .json(let body)? = input.body {
                if let code = body.code {
                    guard let statusCode = FailStatusCode(rawValue: code) else {
                        throw APIProblem(status: 400, title: "invalid value", detail: "not a FAIL status code of RFC 8921 Table 3", field: "code")
                    }
                    status = statusCode
                }
                diagnostic = body.diagnostic.map { String($0.prefix(256)) }
            }
            let outcome = try await Console.decide(
                providerOrderID, approve: false, status: status, diagnostic: diagnostic, engine: engine, store: store, requestedBy: "api")
            return .ok(.init(body: .json(.init(providerOrderId: providerOrderID.rawValue, outcome: outcome))))
        }
    }

    func listLinks(_ input: Operations.ListLinks.Input) async throws -> Operations.ListLinks.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            try requireOperator()
            let gauges = try await engine.gauges()
            var links: [Components.Schemas.Link] = []
            for link in gauges.capacityMbps.keys.sorted() {
                for direction in [Components.Schemas.Link.DirectionPayload.incoming, .outgoing] {
                    links.append(
                        .init(
                            link: link, direction: direction, capacityMbps: gauges.capacityMbps[link]?[direction.rawValue] ?? 0,
                            reservedMbps: gauges.reservedMbps[link]?[direction.rawValue] ?? 0))
                }
            }
            return .ok(.init(body: .json(.init(links: links))))
        }
    }

    // MARK: - Helpers

    private func heldOrder(_ text: String) throws(Problem) -> ProviderOrderID {
        guard let providerOrderID = ProviderOrderID(text), (try? store.order(providerOrderID: providerOrderID)) != nil else {
            throw APIProblem.notFound("order \(text)")
        }
        return providerOrderID
    }

    /// The CPD a quote request asks for: given, or a template filled in. Errors name the field.
    private func requestedDocument(_ body: Components.Schemas.QuoteRequest, customer: String) throws(Problem) -> (CPD, String) {
        switch (body.cpd, body.template) {
        case (let document?, nil):
            return (try APIProblem.requestedCPD(document), "api")
        case (nil, let templateID?):
            guard let template = portal.configuration.catalog.first(where: { $0.id == templateID && $0.isOffered(to: customer) }) else {
                throw APIProblem(status: 404, title: "not found", detail: "no catalogue template \(templateID)", field: "template")
            }
            var values: [JSONPath: String] = [:]
            let open = template.cpd.openFields
            for (path, value) in body.values?.additionalProperties ?? [:] {
                guard let field = open.first(where: { $0.path.description == path }) else {
                    throw APIProblem(
                        status: 400, title: "invalid value", detail: "not an open field of template \(templateID)", field: "values.\(path)")
                }
                values[field.path] = value
            }
            do { return (try template.cpd.filling(values), "catalog:\(templateID)") } catch {
                throw APIProblem(status: 400, title: "invalid value", detail: error.reason, field: "values.\(error.path)")
            }
        case (nil, nil):
            throw APIProblem(status: 400, title: "missing field", detail: "give cpd, or template with values", field: "cpd")
        case (_?, _?):
            throw APIProblem(status: 400, title: "invalid request", detail: "give cpd or template, not both", field: "template")
        }
    }

    private func lookUp(_ text: String, customer: String) async throws(Problem) -> (ClientOrderStateMachine, String?) {
        guard let customerOrderID = CustomerOrderID(text), let order = await portal.order(customerOrderID, customer: customer) else {
            throw APIProblem.notFound("quote \(text)")
        }
        return (order, await portal.group(of: customerOrderID, customer: customer))
    }

    private func current(_ customerOrderID: CustomerOrderID, customer: String) async throws -> Components.Schemas.Quote {
        let (order, group) = try await lookUp(customerOrderID.rawValue, customer: customer)
        return try quote(order, group: group, customer: customer)
    }

    private func quote(_ order: ClientOrderStateMachine, group: String?, customer: String) throws -> Components.Schemas.Quote {
        let server = order.providerOrderID.flatMap { _ in try? store.order(clientIdentity: customer, customerOrderID: order.customerOrderID) }
        let (state, reason) = Self.state(order)
        let offer = order.offer
        let cost = offer?.informationElements?.cost ?? order.agreement?.informationElements?.cost
        let template: String? = group.flatMap { $0.hasPrefix("catalog:") ? String($0.dropFirst("catalog:".count)) : nil }
        return .init(
            id: order.customerOrderID.rawValue, href: "/api/quotes/\(order.customerOrderID.rawValue)",
            providerOrderId: order.providerOrderID?.rawValue,
            state: state, stateReason: reason, cpnpState: order.state.rawValue, providerState: server?.state.rawValue,
            requestedCpd: JSONDocument(order.requestedCPD?.json ?? CPD.empty.json), offeredCpd: offer.map { JSONDocument($0.offeredCPD.json) },
            agreedCpd: order.agreement.map { JSONDocument($0.acceptedCPD.json) },
            price: cost.map { .init(amount: $0.amountText, currency: $0.currency, period: $0.period) },
            validUntil: (order.state == .offerReceived || order.state == .offerProcessing) ? offer.map { Self.date($0.validityOfferTime) } : nil,
            template: template, activation: order.agreement.map { "\($0.activation)" })
    }

    /// The TMF648-style state of a CPNP client order (docs/api.md has the table).
    static func state(_ order: ClientOrderStateMachine) -> (Components.Schemas.QuoteState, String?) {
        switch order.state {
        case .created, .awaitingProcessing, .pqoSent, .serverProcessing, .acceptSent:
            if order.state == .created, let end = order.lastEnd { return ended(end) }
            return (.inProgress, nil)
        case .offerReceived, .offerProcessing: return (.approved, nil)
        case .completed: return (.accepted, nil)
        case .cancelled:
            if order.transaction?.kind == .withdraw { return (.cancelled, "withdrawn") }
            if let end = order.lastEnd { return ended(end) }
            return (.cancelled, nil)
        }
    }

    static func ended(_ end: ClientOrderStateMachine.NegotiationEnd) -> (Components.Schemas.QuoteState, String?) {
        switch end {
        case .failed(let code, let diagnostic): (.rejected, "provider FAIL \(code.rawValue)" + (diagnostic.map { ": \($0)" } ?? ""))
        case .declinedByClient: (.rejected, "declined by the customer")
        case .cancelledByClient: (.cancelled, nil)
        case .offerExpired: (.expired, "the offer expired")
        case .expectedResponseTimeElapsed, .expectedOfferTimeElapsed, .noResponse, .offerTimeRefused: (.expired, ClientOutcomeText.describe(end))
        }
    }

    static func isDecline(_ end: ClientOrderStateMachine.NegotiationEnd) -> Bool {
        if case .declinedByClient = end { return true }
        return false
    }

    /// The customer order id an idempotency key stands for: the same key of the same customer always
    /// names the same order, whatever restarts came between.
    static func customerOrderID(customer: String, idempotencyKey: String) -> CustomerOrderID {
        let digest = SHA256.hash(data: Data((customer + "\u{0}" + idempotencyKey).utf8))
        return CustomerOrderID("co-" + digest.prefix(12).map { String(format: "%02x", $0) }.joined())!
    }

    static func date(_ timestamp: CPNPTimestamp) -> Date { APIProblem.date(timestamp) }
}
