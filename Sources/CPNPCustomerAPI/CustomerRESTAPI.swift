// `cpnp serve`'s REST API: the operations of Sources/CPNPAPI/openapi.yaml that a customer's own
// systems call, served over the customer's CPNPClientEngine (docs/api.md).
import CPNPAPI
public import CPNPClient
import CPNPCore
public import CPNPStorage
public import CPNPTransport
import Crypto
import Foundation
public import Hummingbird
public import Logging
import OpenAPIHummingbird
import OpenAPIRuntime

/// `cpnp serve`'s HTTP server: the REST API under `/api` on `host`:`port`, quotes negotiated by
/// `engine` with every server in `servers` and decided by `strategy` (RFC 8921 §7; docs/api.md).
/// Problems are RFC 9457 documents naming the field.
public enum CustomerAPIServer {
    /// - Parameters:
    ///   - engine: the customer's engine, started.
    ///   - store: its order store, where quotes are read from.
    ///   - onListening: called with the bound port once the server listens.
    public static func application(
        engine: CPNPClientEngine, store: ClientOrderStore, servers: [CPNPPeer], strategy: any NegotiationStrategy,
        host: String, port: Int, logger: Logger, onListening: @escaping @Sendable (Int) -> Void
    ) throws -> some ApplicationProtocol {
        let api = CustomerRESTAPI(engine: engine, store: store, servers: servers, strategy: strategy)
        let router = Router()
        try api.registerHandlers(
            on: router, serverURL: URL(string: "/api")!,
            configuration: Configuration(jsonEncodingOptions: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]),
            middlewares: [ProblemMiddleware()])
        return Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "cpnp-serve"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}

/// The negotiations `cpnp serve` runs: one group of client orders each (RFC 8921 §7).
actor Negotiations {
    private var running: [String: Task<Void, Never>] = [:]
    private var failures: [String: String] = [:]

    func start(_ group: String, _ work: @escaping @Sendable () async -> String?) {
        running[group] = Task {
            let failure = await work()
            self.finished(group, failure: failure)
        }
    }

    private func finished(_ group: String, failure: String?) {
        running[group] = nil
        failures[group] = failure
    }

    func isRunning(_ group: String) -> Bool { running[group] != nil }
    func failure(_ group: String) -> String? { failures[group] }
}

/// The REST API of `cpnp serve` (docs/api.md): quotes are negotiations with every server, decided by
/// the strategy (RFC 8921 §7); the provider-side operations are not here.
struct CustomerRESTAPI: APIProtocol {
    let engine: CPNPClientEngine
    let store: ClientOrderStore
    let servers: [CPNPPeer]
    let strategy: any NegotiationStrategy
    let negotiations = Negotiations()

    /// - Parameters:
    ///   - engine: the customer's engine, started.
    ///   - store: its order store, where quotes are read from.
    ///   - servers: the providers each quote is negotiated with.
    ///   - strategy: how their offers are decided.
    init(engine: CPNPClientEngine, store: ClientOrderStore, servers: [CPNPPeer], strategy: any NegotiationStrategy) {
        self.engine = engine
        self.store = store
        self.servers = servers
        self.strategy = strategy
    }

    static let notHere = APIProblem(
        status: 404, title: "not served here", detail: "cpnp serve negotiates quotes; this operation is the provider's (cpnpd)")

    private func answer<Output>(_ problem: (Int, Components.Responses.Problem) -> Output, _ body: () async throws -> Output) async throws -> Output {
        do {
            return try await body()
        } catch let p as APIProblem {
            return problem(
                p.status,
                .init(body: .applicationProblemJson(.init(_type: p.type, title: p.title, status: p.status, detail: p.detail, field: p.field))))
        }
    }

    // MARK: - Quotes

    func createQuote(_ input: Operations.CreateQuote.Input) async throws -> Operations.CreateQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            guard case .json(let body) = input.body else { throw APIProblem(status: 415, title: "unsupported media type") }
            guard body.template == nil else {
                throw APIProblem(
                    status: 400, title: "invalid request", detail: "cpnp serve takes a CPD; `cpnp catalog ID` prints a provider's template",
                    field: "template")
            }
            guard let document = body.cpd else { throw APIProblem(status: 400, title: "missing field", detail: "give cpd", field: "cpd") }
            let request = try APIProblem.requestedCPD(document)
            // The idempotency key names the negotiation: a retried request finds the one the first started.
            let group: String
            if let key = input.headers.idempotencyKey {
                let digest = SHA256.hash(data: Data(key.utf8))
                group = "ng-" + digest.prefix(12).map { String(format: "%02x", $0) }.joined()
                if let existing = try quote(group) {
                    guard (try store.orders(group: group).first?.machine.requestedCPD) == request else {
                        throw APIProblem(
                            status: 422, title: "idempotency key reused", detail: "this Idempotency-Key was used for another request",
                            field: "Idempotency-Key")
                    }
                    return .created(.init(body: .json(existing)))
                }
            } else {
                group = await engine.newNegotiationGroup()
            }
            let (engine, servers, strategy) = (engine, servers, strategy)
            let options = InformationElements(negotiationOptions: NegotiationOptions(costRequested: true))
            await negotiations.start(group) {
                do {
                    let result = try await engine.negotiate(request, informationElements: options, servers: servers, strategy: strategy, group: group)
                    return result.failure
                } catch {
                    return "\(error)"
                }
            }
            // The QUOTATIONs are stored before the first is sent: the quote exists from here on.
            let deadline = ContinuousClock.now + .seconds(5)
            while try store.orders(group: group).count < servers.count, ContinuousClock.now < deadline, await negotiations.isRunning(group) {
                try await Task.sleep(for: .milliseconds(10))
            }
            guard let made = try quote(group) else { throw APIProblem(status: 409, title: "not sent", detail: await negotiations.failure(group)) }
            return .created(.init(body: .json(made)))
        }
    }

    func listQuotes(_ input: Operations.ListQuotes.Input) async throws -> Operations.ListQuotes.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            .ok(.init(body: .json(.init(quotes: try groups().compactMap { try quote($0) }))))
        }
    }

    func getQuote(_ input: Operations.GetQuote.Input) async throws -> Operations.GetQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            guard let quoteDocument = try quote(input.path.id) else { throw APIProblem.notFound("quote \(input.path.id)") }
            return .ok(.init(body: .json(quoteDocument)))
        }
    }

    func acceptQuote(_ input: Operations.AcceptQuote.Input) async throws -> Operations.AcceptQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            guard let quoteDocument = try quote(input.path.id) else { throw APIProblem.notFound("quote \(input.path.id)") }
            if quoteDocument.state == .approved, let winner = try? agreement(input.path.id) {
                // The offer of an UPDATE: the customer's systems decide it.
                do { _ = try await engine.accept(winner) } catch { throw APIProblem(status: 409, title: "cannot accept", detail: "\(error)") }
                guard let accepted = try quote(input.path.id) else { throw APIProblem.notFound("quote \(input.path.id)") }
                return .ok(.init(body: .json(accepted)))
            }
            guard quoteDocument.state == .accepted else {
                throw APIProblem(status: 409, title: "the strategy decides", detail: "cpnp serve accepts by its --strategy")
            }
            return .ok(.init(body: .json(quoteDocument)))
        }
    }

    func declineQuote(_ input: Operations.DeclineQuote.Input) async throws -> Operations.DeclineQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            guard try quote(input.path.id) != nil else { throw APIProblem.notFound("quote \(input.path.id)") }
            throw APIProblem(status: 409, title: "the strategy decides", detail: "cpnp serve declines by its --strategy; cancel the quote instead")
        }
    }

    func cancelQuote(_ input: Operations.CancelQuote.Input) async throws -> Operations.CancelQuote.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let orders = try store.orders(group: input.path.id)
            guard !orders.isEmpty else { throw APIProblem.notFound("quote \(input.path.id)") }
            for storedOrder in orders {
                let machine = (try? await engine.order(storedOrder.customerOrderID)) ?? storedOrder.machine
                if [.pqoSent, .serverProcessing, .offerReceived, .offerProcessing].contains(machine.state) {
                    _ = try? await engine.cancel(storedOrder.customerOrderID)
                }
            }
            guard let quoteDocument = try quote(input.path.id) else { throw APIProblem.notFound("quote \(input.path.id)") }
            return .ok(.init(body: .json(quoteDocument)))
        }
    }

    func listAgreements(_ input: Operations.ListAgreements.Input) async throws -> Operations.ListAgreements.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            .ok(.init(body: .json(.init(quotes: try groups().compactMap { try quote($0) }.filter { $0.state == .accepted }))))
        }
    }

    func withdrawAgreement(_ input: Operations.WithdrawAgreement.Input) async throws -> Operations.WithdrawAgreement.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            let orders = try store.orders(group: input.path.id)
            guard !orders.isEmpty else { throw APIProblem.notFound("quote \(input.path.id)") }
            if let winner = orders.first(where: { $0.machine.agreement != nil }) {
                do { try await engine.withdraw(winner.customerOrderID, timeout: .seconds(30)) } catch {
                    throw APIProblem(status: 409, title: "cannot withdraw", detail: "\(error)")
                }
            }
            guard let quoteDocument = try quote(input.path.id) else { throw APIProblem.notFound("quote \(input.path.id)") }
            return .ok(.init(body: .json(quoteDocument)))
        }
    }

    func updateAgreement(_ input: Operations.UpdateAgreement.Input) async throws -> Operations.UpdateAgreement.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            guard case .json(let body) = input.body else { throw APIProblem(status: 415, title: "unsupported media type") }
            let request = try APIProblem.requestedCPD(body.cpd)
            let winner = try agreement(input.path.id)
            do { try await engine.update(winner, request: request) } catch {
                throw APIProblem(status: 409, title: "cannot update", detail: "\(error)")
            }
            guard let quoteDocument = try quote(input.path.id) else { throw APIProblem.notFound("quote \(input.path.id)") }
            return .ok(.init(body: .json(quoteDocument)))
        }
    }

    func activateAgreement(_ input: Operations.ActivateAgreement.Input) async throws -> Operations.ActivateAgreement.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) {
            guard case .json(let body) = input.body else { throw APIProblem(status: 415, title: "unsupported media type") }
            let schedule = try APIProblem.activationSchedule(body.when)
            let winner = try agreement(input.path.id)
            do { _ = try await engine.activate(winner, schedule) } catch {
                throw APIProblem(status: 409, title: "cannot activate", detail: "\(error)")
            }
            guard let quoteDocument = try quote(input.path.id) else { throw APIProblem.notFound("quote \(input.path.id)") }
            return .ok(.init(body: .json(quoteDocument)))
        }
    }

    /// The order of a negotiation that holds its agreement.
    private func agreement(_ group: String) throws -> CustomerOrderID {
        let orders = try store.orders(group: group)
        guard !orders.isEmpty else { throw APIProblem.notFound("quote \(group)") }
        guard let winner = orders.first(where: { $0.machine.agreement != nil }) else {
            throw APIProblem(status: 409, title: "no agreement", detail: "quote \(group) is not an agreement")
        }
        return winner.customerOrderID
    }

    // MARK: - The provider's operations: not here

    func listTemplates(_ input: Operations.ListTemplates.Input) async throws -> Operations.ListTemplates.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }
    func listWebhooks(_ input: Operations.ListWebhooks.Input) async throws -> Operations.ListWebhooks.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }
    func createWebhook(_ input: Operations.CreateWebhook.Input) async throws -> Operations.CreateWebhook.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }
    func deleteWebhook(_ input: Operations.DeleteWebhook.Input) async throws -> Operations.DeleteWebhook.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }
    func listOrders(_ input: Operations.ListOrders.Input) async throws -> Operations.ListOrders.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }
    func getOrder(_ input: Operations.GetOrder.Input) async throws -> Operations.GetOrder.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }
    func approveOrder(_ input: Operations.ApproveOrder.Input) async throws -> Operations.ApproveOrder.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }
    func rejectOrder(_ input: Operations.RejectOrder.Input) async throws -> Operations.RejectOrder.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }
    func listLinks(_ input: Operations.ListLinks.Input) async throws -> Operations.ListLinks.Output {
        try await answer({ .`default`(statusCode: $0, $1) }) { throw Self.notHere }
    }

    // MARK: - Quotes from the client store

    /// The negotiation groups, newest first.
    private func groups() throws -> [String] {
        var seen: Set<String> = []
        var out: [String] = []
        for storedOrder in try store.orders(limit: 1_000) {
            guard let group = storedOrder.group, group.hasPrefix("ng-"), seen.insert(group).inserted else { continue }
            out.append(group)
        }
        return out
    }

    /// A negotiation as a quote: the winner's offer and agreement, every provider's answer.
    private func quote(_ group: String) throws -> Components.Schemas.Quote? {
        let orders = try store.orders(group: group).sorted { $0.createdAt < $1.createdAt }
        guard let first = orders.first else { return nil }
        let lastRequest = orders.last?.machine.requestedCPD
        let winner = orders.last {
            $0.machine.agreement != nil || $0.machine.state == .acceptSent
                || ($0.machine.state == .cancelled && $0.machine.transaction?.kind == .withdraw)
        }
        let running = orders.contains {
            [.pqoSent, .serverProcessing, .offerReceived, .offerProcessing, .acceptSent, .awaitingProcessing].contains($0.machine.state)
        }
        var state = Components.Schemas.QuoteState.rejected
        var reason: String? = "no acceptable offer"
        if let winning = winner?.machine {
            if winning.state == .cancelled {
                (state, reason) = (.cancelled, "withdrawn")
            } else if winning.state == .completed {
                (state, reason) = (.accepted, nil)
            }
            // An UPDATE's offer waits for POST …/accept; an ACCEPT or UPDATE is in flight.
            else if winning.state == .offerReceived || winning.state == .offerProcessing {
                (state, reason) = (.approved, nil)
            } else {
                (state, reason) = (.inProgress, nil)
            }
        } else if running {
            (state, reason) = (.inProgress, nil)
        }
        let candidates = orders.filter { $0.machine.requestedCPD == lastRequest }.map { order -> Components.Schemas.Candidate in
            let offer = order.machine.offer
            let cost = offer?.informationElements?.cost
            return .init(
                provider: order.serverAddress, customerOrderId: order.customerOrderID.rawValue, providerOrderId: order.providerOrderID?.rawValue,
                cpnpState: order.machine.state.rawValue, price: cost.map { .init(amount: $0.amountText, currency: $0.currency, period: $0.period) },
                satisfies: offer.map { $0.offeredCPD.comparison(against: order.machine.requestedCPD ?? .empty).gaps.isEmpty } ?? false,
                failure: order.machine.lastEnd.map(ClientOutcomeText.describe))
        }
        let winning = winner?.machine
        let cost = winning?.offer?.informationElements?.cost ?? winning?.agreement?.informationElements?.cost
        return .init(
            id: group, href: "/api/quotes/\(group)", providerOrderId: winning?.providerOrderID?.rawValue, state: state, stateReason: reason,
            cpnpState: (winning ?? first.machine).state.rawValue, providerState: nil,
            requestedCpd: JSONDocument((first.machine.requestedCPD ?? .empty).json),
            offeredCpd: winning?.offer.map { JSONDocument($0.offeredCPD.json) },
            agreedCpd: winning?.agreement.map { JSONDocument($0.acceptedCPD.json) },
            price: cost.map { .init(amount: $0.amountText, currency: $0.currency, period: $0.period) },
            validUntil: nil, template: nil, activation: winning?.agreement.map { "\($0.activation)" }, candidates: candidates)
    }
}
