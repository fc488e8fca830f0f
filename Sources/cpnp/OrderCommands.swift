import ArgumentParser
import CPNPClient
import CPNPCore
import CPNPStorage
import Foundation

/// `cpnp orders`: the orders in the client store.
struct Orders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the orders in the client store.")

    @OptionGroup var options: ClientOptions

    @Option(name: .long, help: "Only orders in this state (e.g. Completed, OfferProcessing).")
    var state: String?

    @Option(name: .long, help: "At most this many orders, newest first.")
    var limit: Int = 100

    func run() async throws {
        try await runClientCommand(json: options.json) {
            var filter: ClientOrderStateMachine.State?
            if let state {
                guard let s = ClientOrderStateMachine.State(rawValue: state) else {
                    throw CLIError("--state must be one of \(ClientOrderStateMachine.State.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter = s
            }
            let orders = try options.store().orders(limit: limit, state: filter)
            if options.json {
                OrderPresenter.print(.object(JSONObject([("orders", .array(orders.map { o in
                    OrderPresenter.json(o.machine, server: o.serverAddress, outcome: o.state.rawValue.lowercased(),
                                        extra: [("updated-at", .string(o.updatedAt.rfc3339))])
                }))])))
                return
            }
            if orders.isEmpty { print("no orders"); return }
            print("CUSTOMER ORDER".padding(toLength: 22, withPad: " ", startingAt: 0) + "PROVIDER ORDER".padding(toLength: 24, withPad: " ", startingAt: 0)
                + "SERVER".padding(toLength: 24, withPad: " ", startingAt: 0) + "STATE".padding(toLength: 18, withPad: " ", startingAt: 0) + "UPDATED")
            for o in orders {
                print(o.customerOrderID.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0)
                    + (o.providerOrderID?.rawValue ?? "-").padding(toLength: 30, withPad: " ", startingAt: 0)
                    + o.serverAddress.padding(toLength: 24, withPad: " ", startingAt: 0)
                    + o.state.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0) + o.updatedAt.rfc3339
                    + (o.machine.withdrawalUnconfirmed ? "  ALARM: withdrawal unconfirmed (RFC 8921 §11.1.2)" : ""))
            }
        }
    }
}

/// `cpnp show ORDER`: one order with its offer, agreement and history.
struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one order: request, offer, agreement and history.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The customer order id.") var order: String

    func run() async throws {
        try await runClientCommand(json: options.json) {
            let store = try options.store()
            guard let id = CustomerOrderID(order), let o = try store.order(customerOrderID: id) else { throw CPNPClientError.unknownOrder(CustomerOrderID(order) ?? CustomerOrderID("?")!) }
            let events = try store.events(customerOrderID: id)
            let m = o.machine
            if options.json {
                OrderPresenter.print(OrderPresenter.json(m, server: o.serverAddress, outcome: o.state.rawValue.lowercased(), extra: [
                    ("history", .array(events.map { e in .object(JSONObject([
                        ("at", .string(e.at.rfc3339)), ("from", .string(e.from.rawValue)), ("to", .string(e.to.rawValue)), ("event", .string(e.event)),
                    ])) })),
                ]))
                return
            }
            print("customer order: \(m.customerOrderID)")
            print("provider order: \(m.providerOrderID?.rawValue ?? "-")")
            print("server: \(o.serverAddress)")
            print("state: \(m.state.rawValue)")
            if let end = m.lastEnd, m.agreement == nil { print("ended: \(ClientOutcomeText.describe(end))") }
            if m.withdrawalUnconfirmed { print("ALARM: \(OrderPresenter.alarmText)") }
            if let offer = m.offer { for l in OrderPresenter.offerLines(offer, request: m.requestedCPD, server: o.serverAddress) { print(l) } }
            if let ag = m.agreement { for l in OrderPresenter.agreementLines(ag) { print(l) } }
            print("history:")
            for e in events { print("  \(e.at.rfc3339)  \(e.from.rawValue) → \(e.to.rawValue)  \(e.event)") }
        }
    }
}

/// Shared by the commands that act on one stored order over the network.
protocol OrderCommand: AsyncParsableCommand {
    var options: ClientOptions { get }
    var order: String { get }
}

extension OrderCommand {
    /// Resumes the order on its 4-tuple, runs `body`, waits for outstanding answers, prints the result.
    func act(outcome: String, _ body: (CPNPClientEngine, CustomerOrderID) async throws -> [String]) async throws {
        try await runClientCommand(json: options.json) {
            let store = try options.store()
            let (engine, id) = try await options.engine(resuming: order, store: store)
            do {
                let lines = try await body(engine, id)
                await engine.settle(timeout: .seconds(5))
                let m = try await engine.order(id)
                let server = try store.order(customerOrderID: id)?.serverAddress
                if options.json { OrderPresenter.print(OrderPresenter.json(m, server: server, outcome: outcome)) } else { for l in lines { print(l) } }
                await engine.shutdown()
            } catch {
                await engine.shutdown()
                throw error
            }
        }
    }
}

/// `cpnp accept ORDER`.
struct Accept: OrderCommand {
    static let configuration = CommandConfiguration(abstract: "Accept the pending offer of an order and wait for the provider's ACK.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The customer order id.") var order: String

    func run() async throws {
        try await act(outcome: "completed") { engine, id in
            let ag = try await engine.accept(id)
            return ["order \(id) is Completed"] + OrderPresenter.agreementLines(ag)
        }
    }
}

/// `cpnp decline ORDER [--reason N]`.
struct Decline: OrderCommand {
    static let configuration = CommandConfiguration(abstract: "Decline the pending offer of an order (RFC 8921 §9.2.5).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The customer order id.") var order: String
    @Option(name: .long, help: "Reason code: 1 unacceptable gap, 2 conflict with another offer, 3 activation type mismatch. Repeatable.")
    var reason: [Int] = []

    func run() async throws {
        var reasons: [DeclineReason] = []
        for r in reason {
            guard let d = DeclineReason(rawValue: r) else { throw ValidationError("--reason must be 1, 2 or 3") }
            reasons.append(d)
        }
        try await act(outcome: "declined") { engine, id in
            try await engine.decline(id, reasons: reasons)
            return ["declined the offer of order \(id)"]
        }
    }
}

/// `cpnp cancel ORDER`.
struct Cancel: OrderCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a negotiation in progress (RFC 8921 §9.2.7).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The customer order id.") var order: String

    func run() async throws {
        try await act(outcome: "cancelled") { engine, id in
            _ = try await engine.cancel(id)
            return ["order \(id) is cancelled"]
        }
    }
}

/// `cpnp withdraw ORDER`.
struct Withdraw: OrderCommand {
    static let configuration = CommandConfiguration(abstract: "Withdraw an agreed order (RFC 8921 §9.2.8).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The customer order id.") var order: String
    @Option(name: .long, help: "How long to wait for the provider's final ACK.")
    var wait: String = "60s"

    func run() async throws {
        try await act(outcome: "withdrawn") { engine, id in
            try await engine.withdraw(id, timeout: parseDuration(wait) ?? .seconds(60))
            return ["order \(id) is withdrawn"]
        }
    }
}

/// `cpnp update ORDER --cpd FILE [--yes]`.
struct Update: OrderCommand {
    static let configuration = CommandConfiguration(
        abstract: "Renegotiate an agreed order with a new CPD (RFC 8921 §9.2.9); the agreement stays until the new offer is accepted.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The customer order id.") var order: String
    @Option(name: .long, help: "The new requested CPD.") var cpd: String
    @Option(name: .long, help: "Accepted relative shortfall of numeric values with --yes.") var tolerance: Double = 0
    @Flag(name: .long, help: "Accept the new offer if it satisfies the request (within --tolerance).") var yes = false

    func run() async throws {
        let request = try loadCPD(cpd)
        try await act(outcome: yes ? "completed" : "offer-pending") { engine, id in
            try await engine.update(id, request: request)
            switch try await engine.awaitOffer(id) {
            case .ended(let end):
                throw CPNPClientError.negotiationEnded(end)
            case .offer(let offer):
                var lines = OrderPresenter.offerLines(offer, request: request, server: "the provider")
                guard yes else {
                    try await engine.acknowledgeOffer(id)
                    return lines + ["to accept: cpnp accept \(id)   (before \(offer.validityOfferTime.rfc3339)); the current agreement stays until then"]
                }
                guard OfferTolerances(relative: tolerance).accepts(offer.offeredCPD.comparison(against: request)) else {
                    try await engine.decline(id, reasons: [.unacceptableGap])
                    await engine.settle(timeout: .seconds(5))
                    throw CPNPClientError.negotiationEnded(.declinedByClient([.unacceptableGap]))
                }
                let ag = try await engine.accept(id)
                lines += ["order \(id) is updated"] + OrderPresenter.agreementLines(ag)
                return lines
            }
        }
    }
}

/// `cpnp activate ORDER --now | --at TIME | --off`.
struct Activate: OrderCommand {
    static let configuration = CommandConfiguration(abstract: "Activate, schedule or deactivate an explicit-activation agreement (RFC 8921 §9.2.11).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The customer order id.") var order: String
    @Flag(name: .long, help: "Activate now.") var now = false
    @Option(name: .long, help: "Activate at this time (RFC 3339 or +DURATION).") var at: String?
    @Flag(name: .long, help: "Deactivate.") var off = false

    func validate() throws {
        guard [now, at != nil, off].filter({ $0 }).count == 1 else { throw ValidationError("give exactly one of --now, --at TIME, --off") }
    }

    func run() async throws {
        let schedule: ActivationSchedule = now ? .now : off ? .deactivate : .at(try parseTime(at!))
        try await act(outcome: "activation-\(schedule)") { engine, id in
            let ag = try await engine.activate(id, schedule)
            return ["order \(id): activation \(ag.activation)"]
        }
    }
}
