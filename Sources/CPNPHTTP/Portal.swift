import CPNPClient
import CPNPCore
import CPNPPolicy
import CPNPRuntime
import CPNPServer
import CPNPStorage
import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import Synchronization

/// The customer portal's pages (RFC 8921 §6, deployment model 2; docs/console.md): a customer
/// signed in with its CPNP client certificate sees its own orders, requests a quote from the
/// service catalogue, and accepts or declines the offer. The portal's ``CustomerPortal`` negotiates.
/// Every lookup is scoped to the signed-in customer: another customer's order is "not found".
struct Portal: Sendable {
    let portal: CustomerPortal
    let store: ServerOrderStore
    let library: MustacheLibrary
    let tokens = PortalFormTokens()

    init(portal: CustomerPortal, store: ServerOrderStore) throws {
        self.portal = portal
        self.store = store
        library = try ConsoleTemplates.library()
    }

    var catalog: [CatalogTemplate] { portal.configuration.catalog }

    func addRoutes(to router: Router<DaemonRequestContext>) {
        router.get("portal") { _, _ in Response.redirect(to: "/portal/orders", type: .normal) }
        router.get("portal/orders") { _, context in try await orders(context) }
        router.get("portal/orders/:id") { request, context in try await order(request, context) }
        router.post("portal/orders/:id/accept") { request, context in try await answer(request, context, accept: true) }
        router.post("portal/orders/:id/decline") { request, context in try await answer(request, context, accept: false) }
        router.get("portal/catalog") { _, context in catalogPage(context) }
        router.get("portal/catalog/:template") { _, context in templatePage(context) }
        router.post("portal/catalog/:template") { request, context in try await requestQuote(request, context) }
        router.get("catalog") { _, context in catalogJSON(context) }
        router.get("catalog/:template") { _, context in templateJSON(context) }
    }

    // MARK: - Orders

    private func orders(_ context: DaemonRequestContext) async throws -> Response {
        guard let customer = context.customer else { return Self.customersOnly() }
        let rows = try store.orders(limit: 200, clientIdentity: customer)
        let viaPortal = await portal.orderIDs(customer: customer)
        var page = chrome(customer, "myOrders")
        page["orders"] = rows.map { o -> [String: Any] in
            [
                "customerOrder": o.customerOrderID.rawValue, "providerOrder": o.providerOrderID.rawValue, "state": o.state.rawValue,
                "created": o.createdAt.rfc3339, "updated": o.updatedAt.rfc3339, "portal": viaPortal.contains(o.customerOrderID),
            ]
        }
        return render("portal-orders", page)
    }

    private func order(_ request: Request, _ context: DaemonRequestContext) async throws -> Response {
        guard let customer = context.customer else { return Self.customersOnly() }
        guard let customerOrderID = context.parameters.get("id").flatMap(CustomerOrderID.init) else { return notFound(customer) }
        let server = try store.order(clientIdentity: customer, customerOrderID: customerOrderID)
        let client = await portal.order(customerOrderID, customer: customer)
        guard server != nil || client != nil else { return notFound(customer) }
        var page = chrome(customer, "myOrders")
        page["id"] = customerOrderID.rawValue
        page["providerOrder"] = server?.providerOrderID.rawValue ?? client?.providerOrderID?.rawValue ?? "not yet assigned"
        page["done"] = request.uri.queryParameters["done"].map(String.init) ?? ""
        page["error"] = request.uri.queryParameters["error"].map(String.init) ?? ""
        let requested = client?.requestedCPD ?? server?.machine.requestedCPD
        let offer = client?.offer ?? server?.machine.offer
        let agreed = client?.agreement?.acceptedCPD ?? server?.machine.agreement?.acceptedCPD
        if let client {
            page["state"] =
                client.state == .cancelled && client.transaction?.kind == .withdraw ? "withdrawn" : Self.words(client.state, end: client.lastEnd)
            page["clientState"] = client.state.rawValue
            let deciding = client.state == .offerReceived || client.state == .offerProcessing
            page["deciding"] = deciding
            page["waiting"] = [.awaitingProcessing, .pqoSent, .serverProcessing, .acceptSent].contains(client.state)
            if deciding, let offer {
                page["validUntil"] = offer.validityOfferTime.rfc3339
                page["concrete"] = offer.offeredCPD.isConcrete
                page["declineReasons"] = DeclineReason.allCases.map { ["code": $0.rawValue, "name": $0.description] }
            }
        } else if let server {
            page["state"] = server.state.rawValue
            page["elsewhere"] = true
        }
        if let server { page["serverState"] = server.state.rawValue }
        if let cost = offer?.informationElements?.cost ?? client?.agreement?.informationElements?.cost {
            page["price"] = cost.description
        }
        if let requested {
            page.merge(Console.documentContext(requested: requested, offered: offer?.offeredCPD, agreed: agreed)) { _, new in new }
        }
        if let server {
            page["hasTimeline"] = true
            page["timeline"] = try Console.timeline(store, of: server.providerOrderID)
        }
        return render("portal-order", page)
    }

    private func answer(_ request: Request, _ context: DaemonRequestContext, accept: Bool) async throws -> Response {
        guard let customer = context.customer else { return Self.customersOnly() }
        let form = try await Console.form(request, context)
        guard tokens.check(form["csrf"], customer: customer) else { return Console.forbidden() }
        guard let customerOrderID = context.parameters.get("id").flatMap(CustomerOrderID.init),
            await portal.order(customerOrderID, customer: customer) != nil
        else {
            return notFound(customer)
        }
        let target = "/portal/orders/\(customerOrderID.rawValue)"
        do {
            if accept {
                try await portal.accept(customerOrderID, customer: customer)
                return Response.redirect(to: target + "?done=" + Console.percent("Offer accepted."), type: .normal)
            }
            let reason = form["reason"].flatMap(Int.init).flatMap(DeclineReason.init(rawValue:)) ?? .unacceptableGap
            try await portal.decline(customerOrderID, reasons: [reason], customer: customer)
            return Response.redirect(to: target + "?done=" + Console.percent("Offer declined."), type: .normal)
        } catch {
            return Response.redirect(to: target + "?error=" + Console.percent("\(error)"), type: .normal)
        }
    }

    // MARK: - Catalogue

    private func visible(_ customer: String?) -> [CatalogTemplate] {
        guard let customer else { return catalog }
        return catalog.filter { $0.isOffered(to: customer) }
    }

    private func template(_ context: DaemonRequestContext) -> CatalogTemplate? {
        guard let templateID = context.parameters.get("template") else { return nil }
        return visible(context.customer).first { $0.id == templateID }
    }

    private func catalogPage(_ context: DaemonRequestContext) -> Response {
        guard let customer = context.customer else { return Self.customersOnly() }
        var page = chrome(customer, "catalog")
        page["templates"] = visible(customer).map { catalogTemplate -> [String: Any] in
            [
                "id": catalogTemplate.id, "name": catalogTemplate.name, "description": catalogTemplate.description ?? "",
                "open": catalogTemplate.cpd.openFields.count,
            ]
        }
        return render("portal-catalog", page)
    }

    private func templatePage(_ context: DaemonRequestContext, error: String? = nil, typed: [String: String] = [:]) -> Response {
        guard let customer = context.customer else { return Self.customersOnly() }
        guard let catalogTemplate = template(context) else { return notFound(customer) }
        var page = chrome(customer, "catalog")
        page["id"] = catalogTemplate.id
        page["name"] = catalogTemplate.name
        page["description"] = catalogTemplate.description ?? ""
        page["fields"] = catalogTemplate.cpd.openFields.enumerated().map { index, field -> [String: Any] in
            let name = "field-\(index)"
            return [
                "name": name, "label": catalogTemplate.label(for: field), "path": field.path.description,
                "constraint": field.constraintDescription,
                "value": typed[name] ?? "", "isChoice": !field.choices.isEmpty,
                "choices": field.choices.map { ["value": $0, "selected": typed[name] == $0] },
            ]
        }
        page["hasFields"] = !catalogTemplate.cpd.openFields.isEmpty
        page["cpd"] = JSONSerializer.serializeString(catalogTemplate.cpd.json, pretty: true)
        if let error { page["error"] = error }
        return render("portal-template", page, status: error == nil ? .ok : .badRequest)
    }

    private func requestQuote(_ request: Request, _ context: DaemonRequestContext) async throws -> Response {
        guard let customer = context.customer else { return Self.customersOnly() }
        let form = try await Console.form(request, context)
        guard tokens.check(form["csrf"], customer: customer) else { return Console.forbidden() }
        guard let catalogTemplate = template(context) else { return notFound(customer) }
        var values: [JSONPath: String] = [:]
        for (index, field) in catalogTemplate.cpd.openFields.enumerated() {
            if let value = form["field-\(index)"] { values[field.path] = value }
        }
        do {
            let customerOrderID = try await portal.quote(catalogTemplate, values: values, customer: customer)
            return Response.redirect(to: "/portal/orders/\(customerOrderID.rawValue)", type: .normal)
        } catch let error as CPNPDecodingError {
            let label =
                catalogTemplate.cpd.openFields.first { $0.path == error.path }.map { catalogTemplate.label(for: $0) }
                ?? error.path.description
            return templatePage(context, error: "\(label): \(error.reason)", typed: form)
        } catch {
            return templatePage(context, error: "\(error)", typed: form)
        }
    }

    /// `GET /catalog`: the templates the caller may order from, as JSON (`cpnp catalog`).
    private func catalogJSON(_ context: DaemonRequestContext) -> Response {
        Self.json(.object(JSONObject([("templates", .array(visible(context.customer).map { Self.summary($0) }))])))
    }

    /// `GET /catalog/ID`: one template with its CPD.
    private func templateJSON(_ context: DaemonRequestContext) -> Response {
        guard let catalogTemplate = template(context) else {
            return Self.json(.object(JSONObject([("error", .string("no such template"))])), status: .notFound)
        }
        var object = JSONObject()
        if case .object(let summary) = Self.summary(catalogTemplate) { object = summary }
        object["cpd"] = catalogTemplate.cpd.json
        return Self.json(.object(object))
    }

    static func summary(_ catalogTemplate: CatalogTemplate) -> JSONValue {
        var object = JSONObject([("id", .string(catalogTemplate.id)), ("name", .string(catalogTemplate.name))])
        if let description = catalogTemplate.description { object["description"] = .string(description) }
        object["open-fields"] = .array(
            catalogTemplate.cpd.openFields.map { field in
                .object(
                    JSONObject([
                        ("path", .string(field.path.description)), ("label", .string(catalogTemplate.label(for: field))),
                        ("constraint", field.constraint),
                    ]))
            })
        return .object(object)
    }

    // MARK: - Rendering

    private func chrome(_ customer: String, _ section: String) -> [String: Any] {
        ["portalUser": customer, "csrf": tokens.token(for: customer), section: true]
    }

    private func notFound(_ customer: String) -> Response {
        render("portal-missing", chrome(customer, "myOrders"), status: .notFound)
    }

    private func render(_ name: String, _ context: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        Console.html(library.render(context, withTemplate: name) ?? "template \(name) missing", status: status)
    }

    /// The 401 page of the portal: how customers sign in.
    func signInRequired(https: Bool) -> Response {
        var response = Console.html(library.render(["https": https], withTemplate: "portal-sign-in") ?? "", status: .unauthorized)
        response.headers[.wwwAuthenticate] = "Bearer realm=\"cpnpd\""
        return response
    }

    static func customersOnly() -> Response {
        DaemonHTTPServer.text("the customer portal is for customers: sign in with your CPNP client certificate\n", status: .forbidden)
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: status, headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: JSONSerializer.serializeString(value, pretty: true) + "\n")))
    }

    static func words(_ state: ClientOrderStateMachine.State, end: ClientOrderStateMachine.NegotiationEnd?) -> String {
        switch state {
        case .created, .cancelled: end.map(ClientOutcomeText.describe) ?? (state == .created ? "created" : "cancelled")
        case .awaitingProcessing, .pqoSent: "quote requested, waiting for the provider"
        case .serverProcessing: "the provider is preparing an offer"
        case .offerReceived, .offerProcessing: "offer received: accept or decline it"
        case .acceptSent: "accepted, waiting for the provider's acknowledgement"
        case .completed: "agreed"
        }
    }
}

/// The CSRF tokens of the portal's forms: one random token per customer, in memory. A page of
/// another site can make the browser send the customer's certificate, but cannot read the token.
final class PortalFormTokens: Sendable {
    private let tokens = Mutex<[String: String]>([:])

    func token(for customer: String) -> String {
        tokens.withLock { all in
            if let token = all[customer] { return token }
            let token = DaemonHTTPServer.randomHex()
            all[customer] = token
            return token
        }
    }

    func check(_ sent: String?, customer: String) -> Bool {
        guard let sent, let token = tokens.withLock({ $0[customer] }) else { return false }
        return OperatorAuthentication.equalInConstantTime(Array(sent.utf8), Array(token.utf8))
    }
}
