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
        if parseDuration(expectedResponseTime) == nil { throw ValidationError("--expected-response-time: use e.g. 30s, 5m") }
        if parseDuration(grantMoreTime) == nil { throw ValidationError("--grant-more-time: use e.g. 10m, 24h") }
    }

    func run() async throws {
        try await runClientCommand(json: options.json) {
            let request = try loadCPD(cpd)
            let ies = try informationElements()
            var peers: [CPNPPeer] = []
            for s in server.isEmpty ? ["127.0.0.1:\(CPNPTransportDefaults.port)"] : server {
                guard let first = try await CPNPServerLocator.peers(for: try CPNPServerTarget(parsing: s)).first else { continue }
                peers.append(first)
            }
            let store = try options.store()
            var configuration = CPNPClientEngine.Configuration()
            configuration.expectedResponseTime = parseDuration(expectedResponseTime) ?? .seconds(30)
            configuration.moreTime = GrantMoreTime(upTo: parseDuration(grantMoreTime) ?? .seconds(86_400))
            let bindHost = peers.first?.address.protocol == .inet6 ? "::" : "0.0.0.0"
            let engine = try await options.engine(store: store, bindHost: bindHost, configuration: configuration)
            do {
                if yes {
                    try await negotiate(engine, request: request, ies: ies, peers: peers)
                } else {
                    try await quoteAndShow(engine, request: request, ies: ies, peers: peers)
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
        var o = NegotiationOptions(costRequested: cost)
        if let purpose {
            guard let p = Purpose(rawValue: purpose) else { throw CLIError("--purpose must be permanent or testing") }
            o.purpose = p
        }
        if let testPeriodEnd { o.testPeriodEnd = try parseTime(testPeriodEnd) }
        if let activation {
            guard let a = ActivationType(rawValue: activation) else { throw CLIError("--activation must be immediate, scheduled or explicit") }
            o.activationType = a
        }
        if let activateAt { o.activationSchedule = try parseTime(activateAt) }
        if localOnly { o.localOnly = true }
        if o.purpose == .testing && o.testPeriodEnd == nil { throw CLIError("a testing order needs --test-period-end") }
        return InformationElements(negotiationOptions: o)
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
            for r in result.rounds {
                rounds.append(.array(r.candidates.map { c in
                    var o = JSONObject()
                    o["server"] = .string(c.server.displayName)
                    o["customer-order-id"] = .string(c.customerOrderID.rawValue)
                    if let offer = c.offer { o["offer"] = OrderPresenter.offerJSON(offer, request: r.request) }
                    if let f = c.failure { o["failure"] = .string(f) }
                    return .object(o)
                }))
            }
            var o = JSONObject()
            o["outcome"] = .string(result.agreement != nil ? "completed" : "no-agreement")
            o["strategy"] = .string(strategy.name)
            if let w = result.winner {
                o["customer-order-id"] = .string(w.customerOrderID.rawValue)
                o["server"] = .string(w.server.displayName)
            }
            if let ag = result.agreement { o["agreement"] = OrderPresenter.agreementJSON(ag) }
            if let f = result.failure { o["failure"] = .string(f) }
            o["declined"] = .array(result.declined.map { .object(JSONObject([("customer-order-id", .string($0.0.rawValue)), ("reason", .number(CPNPDecimal(Int64($0.1.rawValue))))])) })
            o["rounds"] = .array(rounds)
            OrderPresenter.print(.object(o))
        } else {
            for r in result.rounds {
                print("round \(r.number):")
                for c in r.candidates {
                    if let offer = c.offer {
                        for l in OrderPresenter.offerLines(offer, request: r.request, server: c.server.displayName) { print("  " + l) }
                        print("  customer order: \(c.customerOrderID)")
                    } else {
                        print("  no offer from \(c.server.displayName): \(c.failure ?? "no answer")")
                    }
                }
            }
            for (id, reason) in result.declined { print("declined \(id) (reason \(reason.rawValue): \(reason))") }
            if let ag = result.agreement, let w = result.winner {
                print("accepted the offer from \(w.server.displayName): order \(w.customerOrderID) is Completed")
                for l in OrderPresenter.agreementLines(ag) { print(l) }
            }
        }
        guard result.agreement == nil else { return }
        if !json, let f = result.failure { Diagnostics.write("no agreement: \(f)") }
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
            for (peer, id) in ids {
                let m = try await engine.awaitFirstAnswer(id)
                outputs.append(OrderPresenter.json(m, server: peer.displayName, outcome: m.state.rawValue.lowercased()))
                if !options.json { print("order \(id) at \(peer.displayName): \(m.state.rawValue)" + (m.providerOrderID.map { ", provider order \($0)" } ?? "")) }
            }
            if options.json { OrderPresenter.print(.object(JSONObject([("outcome", .string("submitted")), ("orders", .array(outputs))]))) }
            return
        }
        if !options.json { Diagnostics.write("… waiting for \(peers.count == 1 ? "the offer" : "\(peers.count) offers") (orders \(ids.map(\.1.rawValue).joined(separator: ", ")))") }
        var offers: [(CPNPPeer, CustomerOrderID, OfferMessage)] = []
        var lastError: (any Error)?
        var outputs: [JSONValue] = []
        for (peer, id) in ids {
            do {
                switch try await engine.awaitOffer(id) {
                case .offer(let offer):
                    try await engine.acknowledgeOffer(id)
                    offers.append((peer, id, offer))
                    if !options.json {
                        for l in OrderPresenter.offerLines(offer, request: request, server: peer.displayName) { print(l) }
                        print("  customer order: \(id)")
                    }
                case .ended(let end):
                    lastError = CPNPClientError.negotiationEnded(end)
                    if !options.json { print("no offer from \(peer.displayName): \(ClientOutcomeText.describe(end))") }
                }
            } catch {
                lastError = error
                if !options.json { print("no offer from \(peer.displayName): \(error)") }
            }
            outputs.append(OrderPresenter.json(try await engine.order(id), server: peer.displayName, outcome: "offer-pending"))
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
        let (peer, id, _) = offers[choice]
        let ag = try await engine.accept(id)
        print("accepted the offer from \(peer.displayName): order \(id) is Completed")
        for l in OrderPresenter.agreementLines(ag) { print(l) }
    }
}
