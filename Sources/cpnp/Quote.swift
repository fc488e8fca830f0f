import ArgumentParser
import CPNPClient
import CPNPCore
import CPNPRuntime
import CPNPTransport
import Foundation
import NIOCore

/// `cpnp quote`: sends a quotation order to one or more servers (RFC 8921 §7, §9.2.1, §11.1.1).
struct Quote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Request a quotation, and with --yes or --interactive, reach an agreement.",
        discussion: """
            Without --yes or --interactive the offers are shown, acknowledged (PROCESSING) and left \
            pending: accept one with `cpnp accept ORDER` before it expires. With --yes the strategy \
            decides: accept-if-satisfies (default for one server), best-of-n (default for several: \
            the lowest price, then the smallest gap, wins; the others are declined with reason 2), or \
            multi-round (quote again with a request relaxed towards the best partial offer, up to \
            --rounds rounds). A server given as a bare domain name is looked up in DNS as \
            _cpnp._udp.DOMAIN (SRV). With no --server, the local cpnpd (127.0.0.1:8921) is used.
            Exit status: 0 agreement (or offers pending), 1 local error, 2 refused by the server, \
            3 no acceptable offer, 4 no answer in time, 5 transport security failure.
            """)

    @OptionGroup var options: ClientOptions

    @Option(name: .long, help: "A server: HOST[:PORT], [IPv6]:PORT, or a domain with _cpnp._udp SRV records. Repeat for several providers.")
    var server: [String] = []

    @Option(name: .long, help: "The requested CPD (JSON file, or - for standard input).")
    var cpd: String

    @OptionGroup var strategyOptions: StrategyOptions

    @Flag(name: .long, inversion: .prefixedNo, help: "Ask the provider for the price (cost IE).")
    var cost = true

    @Option(name: .long, help: "Order purpose: permanent or testing.")
    var purpose: String?

    @Option(name: .long, help: "End of the test period of a testing order (RFC 3339 or +DURATION).")
    var testPeriodEnd: String?

    @Option(name: .long, help: "Activation type: immediate, scheduled or explicit.")
    var activation: String?

    @Option(name: .long, help: "Scheduled activation time (RFC 3339 or +DURATION).")
    var activateAt: String?

    @Flag(name: .long, help: "Forbid the provider to order parts from other providers (negotiation option local-only, RFC 8921 §8.8).")
    var localOnly = false

    @Option(name: .long, help: "Time the servers have to answer (e.g. 30s, 5m).")
    var expectedResponseTime: String = "30s"

    @Option(name: .long, help: "Grant a provider's request for more time (e.g. while its operator approves) up to this far ahead.")
    var grantMoreTime: String = "24h"

    @Option(name: .long, help: "Customer order id to use (default: a random one).")
    var orderId: String?

    @Flag(name: .long, help: "Let the strategy accept without asking.")
    var yes = false

    @Flag(name: .long, help: "Show the offers and ask which one to accept.")
    var interactive = false

    @Flag(name: .long, help: "Return once the server acknowledged the order (PROCESSING), without waiting for the offer.")
    var noWait = false

    func validate() throws {
        if yes && interactive { throw ValidationError("--yes and --interactive exclude each other") }
        if noWait && (yes || interactive) { throw ValidationError("--no-wait excludes --yes and --interactive") }
        if Duration(text: expectedResponseTime) == nil { throw ValidationError("--expected-response-time: use e.g. 30s, 5m") }
        if Duration(text: grantMoreTime) == nil { throw ValidationError("--grant-more-time: use e.g. 10m, 24h") }
    }

    func run() async throws {
        try await runClientCommand(json: options.json) {
            let request = try loadCPD(cpd)
            let elements = try informationElements()
            var peers: [CPNPPeer] = []
            for address in server.isEmpty ? ["127.0.0.1:\(CPNPTransportDefaults.port)"] : server {
                guard let first = try await CPNPServerLocator.peers(for: try CPNPServerTarget(parsing: address)).first else { continue }
                peers.append(first)
            }
            let store = try options.store()
            var configuration = CPNPClientEngine.Configuration()
            configuration.expectedResponseTime = Duration(text: expectedResponseTime) ?? .seconds(30)
            configuration.moreTime = GrantMoreTime(upTo: Duration(text: grantMoreTime) ?? .seconds(86_400))
            let bindHost = peers.first?.address.protocol == .inet6 ? "::" : "0.0.0.0"
            let engine = try await options.engine(store: store, bindHost: bindHost, configuration: configuration)
            do {
                if yes {
                    try await negotiate(engine, request: request, ies: elements, peers: peers)
                } else {
                    try await quoteAndShow(engine, request: request, ies: elements, peers: peers)
                }
            } catch {
                await engine.settle(timeout: .seconds(5))
                await engine.shutdown()
                throw error
            }
            // DECLINEs and CANCELs sent on the way: let the providers' ACKs arrive before exiting.
            await engine.settle(timeout: .seconds(5))
            await engine.shutdown()
        }
    }

    func informationElements() throws -> InformationElements? {
        var negotiationOptions = NegotiationOptions(costRequested: cost)
        if let purpose {
            guard let parsedPurpose = Purpose(rawValue: purpose) else { throw CLIError("--purpose must be permanent or testing") }
            negotiationOptions.purpose = parsedPurpose
        }
        if let testPeriodEnd { negotiationOptions.testPeriodEnd = try parseTime(testPeriodEnd) }
        if let activation {
            guard let parsedActivation = ActivationType(rawValue: activation) else {
                throw CLIError("--activation must be immediate, scheduled or explicit")
            }
            negotiationOptions.activationType = parsedActivation
        }
        if let activateAt { negotiationOptions.activationSchedule = try parseTime(activateAt) }
        if localOnly { negotiationOptions.localOnly = true }
        if negotiationOptions.purpose == .testing && negotiationOptions.testPeriodEnd == nil {
            throw CLIError("a testing order needs --test-period-end")
        }
        return InformationElements(negotiationOptions: negotiationOptions)
    }

    /// --yes: the strategy decides.
    func negotiate(_ engine: CPNPClientEngine, request: CPD, ies: InformationElements?, peers: [CPNPPeer]) async throws {
        let json = options.json
        let strategy = strategyOptions.chosenStrategy(servers: peers.count)
        var naming: (@Sendable (Int, Int) -> CustomerOrderID?)?
        if let orderId {
            guard CustomerOrderID(orderId) != nil else { throw CLIError("--order-id \(orderId) is not a valid customer order id") }
            let single = peers.count == 1
            naming = { round, server in
                round == 1 && single ? CustomerOrderID(orderId) : CustomerOrderID("\(orderId)-r\(round)-s\(server + 1)")
            }
        }
        let result = try await engine.negotiate(
            request, informationElements: ies, servers: peers, strategy: strategy, customerOrderID: naming,
            progress: { line in if !json { Diagnostics.write("… \(line)") } })
        if json {
            var rounds: [JSONValue] = []
            for round in result.rounds {
                rounds.append(
                    .array(
                        round.candidates.map { candidate in
                            var object = JSONObject()
                            object["server"] = .string(candidate.server.displayName)
                            object["customer-order-id"] = .string(candidate.customerOrderID.rawValue)
                            if let offer = candidate.offer { object["offer"] = OrderPresenter.offerJSON(offer, request: round.request) }
                            if let failure = candidate.failure { object["failure"] = .string(failure) }
                            return .object(object)
                        }))
            }
            var object = JSONObject()
            object["outcome"] = .string(result.agreement != nil ? "completed" : "no-agreement")
            object["strategy"] = .string(strategy.name)
            if let winner = result.winner {
                object["customer-order-id"] = .string(winner.customerOrderID.rawValue)
                object["server"] = .string(winner.server.displayName)
            }
            if let agreement = result.agreement { object["agreement"] = OrderPresenter.agreementJSON(agreement) }
            if let failure = result.failure { object["failure"] = .string(failure) }
            object["declined"] = .array(
                result.declined.map {
                    .object(JSONObject([("customer-order-id", .string($0.0.rawValue)), ("reason", .number(CPNPDecimal(Int64($0.1.rawValue))))]))
                })
            object["rounds"] = .array(rounds)
            OrderPresenter.print(.object(object))
        } else {
            for round in result.rounds {
                print("round \(round.number):")
                for candidate in round.candidates {
                    if let offer = candidate.offer {
                        let lines = OrderPresenter.offerLines(offer, request: round.request, server: candidate.server.displayName)
                        for line in lines { print("  " + line) }
                        print("  customer order: \(candidate.customerOrderID)")
                    } else {
                        print("  no offer from \(candidate.server.displayName): \(candidate.failure ?? "no answer")")
                    }
                }
            }
            for (customerOrderID, reason) in result.declined { print("declined \(customerOrderID) (reason \(reason.rawValue): \(reason))") }
            if let agreement = result.agreement, let winner = result.winner {
                print("accepted the offer from \(winner.server.displayName): order \(winner.customerOrderID) is Completed")
                for line in OrderPresenter.agreementLines(agreement) { print(line) }
            }
        }
        guard result.agreement == nil else { return }
        if !json, let failure = result.failure { Diagnostics.write("no agreement: \(failure)") }
        throw Self.exitStatus(for: result).code
    }

    static func exitStatus(for result: NegotiationResult) -> ClientExit {
        if result.winner != nil { return .noAnswer }  // accepted, but the ACK never came (or the offer expired)
        let last = result.rounds.last?.candidates ?? []
        if last.contains(where: { $0.offer != nil }) { return .noAgreement }
        if last.contains(where: { $0.failure?.contains("FAIL") == true }) { return .refused }
        if last.contains(where: { $0.failure?.contains("transport") == true }) { return .transport }
        return .noAnswer
    }

    /// Without --yes: show the offers, and with --interactive ask which one to accept.
    func quoteAndShow(_ engine: CPNPClientEngine, request: CPD, ies: InformationElements?, peers: [CPNPPeer]) async throws {
        var ids: [(CPNPPeer, CustomerOrderID)] = []
        for (i, peer) in peers.enumerated() {
            let requested = orderId.flatMap { peers.count == 1 ? CustomerOrderID($0) : CustomerOrderID("\($0)-\(i + 1)") }
            if orderId != nil && requested == nil { throw CLIError("--order-id \(orderId!) is not a valid customer order id") }
            ids.append((peer, try await engine.quote(request, informationElements: ies, to: peer, customerOrderID: requested)))
        }
        if noWait {
            var outputs: [JSONValue] = []
            for (peer, customerOrderID) in ids {
                let machine = try await engine.awaitFirstAnswer(customerOrderID)
                outputs.append(OrderPresenter.json(machine, server: peer.displayName, outcome: machine.state.rawValue.lowercased()))
                if !options.json {
                    print(
                        "order \(customerOrderID) at \(peer.displayName): \(machine.state.rawValue)"
                            + (machine.providerOrderID.map { ", provider order \($0)" } ?? ""))
                }
            }
            if options.json { OrderPresenter.print(.object(JSONObject([("outcome", .string("submitted")), ("orders", .array(outputs))]))) }
            return
        }
        if !options.json {
            Diagnostics.write(
                "… waiting for \(peers.count == 1 ? "the offer" : "\(peers.count) offers") (orders \(ids.map(\.1.rawValue).joined(separator: ", ")))")
        }
        var offers: [(CPNPPeer, CustomerOrderID, OfferMessage)] = []
        var lastError: (any Error)?
        var outputs: [JSONValue] = []
        for (peer, customerOrderID) in ids {
            do {
                switch try await engine.awaitOffer(customerOrderID) {
                case .offer(let offer):
                    try await engine.acknowledgeOffer(customerOrderID)
                    offers.append((peer, customerOrderID, offer))
                    if !options.json {
                        for line in OrderPresenter.offerLines(offer, request: request, server: peer.displayName) { print(line) }
                        print("  customer order: \(customerOrderID)")
                    }
                case .ended(let end):
                    lastError = CPNPClientError.negotiationEnded(end)
                    if !options.json { print("no offer from \(peer.displayName): \(ClientOutcomeText.describe(end))") }
                }
            } catch {
                lastError = error
                if !options.json { print("no offer from \(peer.displayName): \(error)") }
            }
            outputs.append(OrderPresenter.json(try await engine.order(customerOrderID), server: peer.displayName, outcome: "offer-pending"))
        }
        guard !offers.isEmpty else {
            if options.json { OrderPresenter.print(.object(JSONObject([("outcome", .string("no-offer")), ("orders", .array(outputs))]))) }
            throw ClientExit.of(lastError ?? CPNPClientError.noResponse(.quotation)).code
        }
        guard interactive else {
            if options.json {
                OrderPresenter.print(.object(JSONObject([("outcome", .string("offer-pending")), ("orders", .array(outputs))])))
            } else {
                for (_, id, offer) in offers {
                    print("to accept: cpnp accept \(id)   (before \(offer.validityOfferTime.rfc3339)); to decline: cpnp decline \(id)")
                }
            }
            return
        }
        // --interactive
        var choice: Int?
        if offers.count == 1 {
            print("Accept this offer? [y/N] ", terminator: "")
            choice = (readLine()?.lowercased().hasPrefix("y") ?? false) ? 0 : nil
        } else {
            print("Accept which offer? [1-\(offers.count), or Enter for none] ", terminator: "")
            choice = readLine().flatMap { Int($0) }.flatMap { (1...offers.count).contains($0) ? $0 - 1 : nil }
        }
        for (i, (_, id, _)) in offers.enumerated() where i != choice {
            try await engine.decline(id, reasons: [choice == nil ? .unacceptableGap : .conflictWithAnotherOffer])
            print("declined \(id)")
        }
        guard let choice else { throw ClientExit.noAgreement.code }
        let (peer, customerOrderID, _) = offers[choice]
        let agreement = try await engine.accept(customerOrderID)
        print("accepted the offer from \(peer.displayName): order \(customerOrderID) is Completed")
        for line in OrderPresenter.agreementLines(agreement) { print(line) }
    }
}
