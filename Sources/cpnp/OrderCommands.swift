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
                guard let parsedState = ClientOrderStateMachine.State(rawValue: state) else {
                    throw CLIError("--state must be one of \(ClientOrderStateMachine.State.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter = parsedState
            }
            let orders = try options.store().orders(limit: limit, state: filter)
            if options.json {
                OrderPresenter.print(
                    .object(
                        JSONObject([
                            (
                                "orders",
                                .array(
                                    orders.map { storedOrder in
                                        OrderPresenter.json(
                                            storedOrder.machine, server: storedOrder.serverAddress,
                                            outcome: storedOrder.state.rawValue.lowercased(),
                                            extra: [("updated-at", .string(storedOrder.updatedAt.rfc3339))])
                                    })
                            )
                        ])))
                return
            }
            if orders.isEmpty { print("no orders"); return }
            print(
                "CUSTOMER ORDER".padding(toLength: 22, withPad: " ", startingAt: 0)
                    + "PROVIDER ORDER".padding(toLength: 24, withPad: " ", startingAt: 0)
                    + "SERVER".padding(toLength: 24, withPad: " ", startingAt: 0) + "STATE".padding(toLength: 18, withPad: " ", startingAt: 0)
                    + "UPDATED")
            for storedOrder in orders {
                print(
                    storedOrder.customerOrderID.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0)
                        + (storedOrder.providerOrderID?.rawValue ?? "-").padding(toLength: 30, withPad: " ", startingAt: 0)
                        + storedOrder.serverAddress.padding(toLength: 24, withPad: " ", startingAt: 0)
                        + storedOrder.state.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0) + storedOrder.updatedAt.rfc3339
                        + (storedOrder.machine.withdrawalUnconfirmed ? "  ALARM: withdrawal unconfirmed (RFC 8921 §11.1.2)" : ""))
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
            guard let customerOrderID = CustomerOrderID(order), let storedOrder = try store.order(customerOrderID: customerOrderID) else {
                throw CPNPClientError.unknownOrder(CustomerOrderID(order) ?? CustomerOrderID("?")!)
            }
            let events = try store.events(customerOrderID: customerOrderID)
            let machine = storedOrder.machine
            if options.json {
                let outcome = storedOrder.state.rawValue.lowercased()
                OrderPresenter.print(
                    OrderPresenter.json(
                        machine, server: storedOrder.serverAddress, outcome: outcome,
                        extra: [
                            (
                                "history",
                                .array(
                                    events.map { entry in
                                        .object(
                                            JSONObject([
                                                ("at", .string(entry.at.rfc3339)), ("from", .string(entry.from.rawValue)),
                                                ("to", .string(entry.to.rawValue)), ("event", .string(entry.event)),
                                            ]))
                                    })
                            )
                        ]))
                return
            }
            print("customer order: \(machine.customerOrderID)")
            print("provider order: \(machine.providerOrderID?.rawValue ?? "-")")
            print("server: \(storedOrder.serverAddress)")
            print("state: \(machine.state.rawValue)")
            if let end = machine.lastEnd, machine.agreement == nil { print("ended: \(ClientOutcomeText.describe(end))") }
            if machine.withdrawalUnconfirmed { print("ALARM: \(OrderPresenter.alarmText)") }
            if let offer = machine.offer {
                for line in OrderPresenter.offerLines(offer, request: machine.requestedCPD, server: storedOrder.serverAddress) { print(line) }
            }
            if let agreement = machine.agreement { for line in OrderPresenter.agreementLines(agreement) { print(line) } }
            print("history:")
            for entry in events { print("  \(entry.at.rfc3339)  \(entry.from.rawValue) → \(entry.to.rawValue)  \(entry.event)") }
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
            let (engine, customerOrderID) = try await options.engine(resuming: order, store: store)
            do {
                let lines = try await body(engine, customerOrderID)
                await engine.settle(timeout: .seconds(5))
                let machine = try await engine.order(customerOrderID)
                let server = try store.order(customerOrderID: customerOrderID)?.serverAddress
                if options.json {
                    OrderPresenter.print(OrderPresenter.json(machine, server: server, outcome: outcome))
                } else {
                    for line in lines { print(line) }
                }
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
        try await act(outcome: "completed") { engine, customerOrderID in
            let agreement = try await engine.accept(customerOrderID)
            return ["order \(customerOrderID) is Completed"] + OrderPresenter.agreementLines(agreement)
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
        for code in reason {
            guard let declineReason = DeclineReason(rawValue: code) else { throw ValidationError("--reason must be 1, 2 or 3") }
            reasons.append(declineReason)
        }
        try await act(outcome: "declined") { engine, customerOrderID in
            try await engine.decline(customerOrderID, reasons: reasons)
            return ["declined the offer of order \(customerOrderID)"]
        }
    }
}

/// `cpnp cancel ORDER`.
struct Cancel: OrderCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a negotiation in progress (RFC 8921 §9.2.7).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The customer order id.") var order: String

    func run() async throws {
        try await act(outcome: "cancelled") { engine, customerOrderID in
            _ = try await engine.cancel(customerOrderID)
            return ["order \(customerOrderID) is cancelled"]
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
        try await act(outcome: "withdrawn") { engine, customerOrderID in
            try await engine.withdraw(customerOrderID, timeout: Duration(text: wait) ?? .seconds(60))
            return ["order \(customerOrderID) is withdrawn"]
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
        try await act(outcome: yes ? "completed" : "offer-pending") { engine, customerOrderID in
            try await engine.update(customerOrderID, request: request)
            switch try await engine.awaitOffer(customerOrderID) {
            case .ended(let end):
                throw CPNPClientError.negotiationEnded(end)
            case .offer(let offer):
                var lines = OrderPresenter.offerLines(offer, request: request, server: "the provider")
                guard yes else {
                    try await engine.acknowledgeOffer(customerOrderID)
                    return lines + [
                        "to accept: cpnp accept \(customerOrderID)   (before \(offer.validityOfferTime.rfc3339)); the current agreement stays until then"
                    ]
                }
                guard OfferTolerances(relative: tolerance).accepts(offer.offeredCPD.comparison(against: request)) else {
                    try await engine.decline(customerOrderID, reasons: [.unacceptableGap])
                    await engine.settle(timeout: .seconds(5))
                    throw CPNPClientError.negotiationEnded(.declinedByClient([.unacceptableGap]))
                }
                let agreement = try await engine.accept(customerOrderID)
                lines += ["order \(customerOrderID) is updated"] + OrderPresenter.agreementLines(agreement)
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
        try await act(outcome: "activation-\(schedule)") { engine, customerOrderID in
            let agreement = try await engine.activate(customerOrderID, schedule)
            return ["order \(customerOrderID): activation \(agreement.activation)"]
        }
    }
}
