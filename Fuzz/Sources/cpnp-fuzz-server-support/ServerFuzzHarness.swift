public import CPNPCore
import CPNPFuzzSupport
import CPNPPolicy
import CPNPRuntime
public import CPNPServer
import CPNPStorage
import Logging
import Synchronization

/// The server fuzz target's world (docs/fuzzing.md): a fresh ``CPNPServerEngine`` per input, with an in-memory
/// store, the demo configuration, a fixed clock and a collecting sink, in which a legitimate
/// QUOTATION from `acme` has already been answered with an OFFER. The input is then received as
/// one datagram, or up to ``maxDatagrams`` separated by NUL bytes (never valid inside JSON), from
/// the same session and identity.
///
/// Identifiers the fuzzer cannot guess are substituted: every occurrence of the golden vectors'
/// provider order id ``providerOrderIDToken`` and nonce ``nonceToken`` is replaced by those of
/// the latest OFFER, so that inputs reach the live order's states.
public enum ServerFuzzHarness {
    /// What one input did.
    public struct Outcome: Sendable {
        /// Violated invariants; empty when all hold.
        public var problems: [String]
        /// What the engine sent after the seeded exchange, decoded (when it decodes), in order.
        public var sent: [CPNPMessage]
        /// The open orders' states at the end.
        public var openStates: [ServerOrderStateMachine.State]
        /// The last OFFER sent, the seeded one if no other.
        public var latestOffer: OfferMessage?
        /// The engine's answer to each datagram of the input, in order (see ``answerKind(_:)``):
        /// `sent OFFER`, `sent FAIL 4`, … or `silent discard: undecodable|decoded`.
        public var answers: [[String]] = []
    }

    /// The fixed time: 2026-11-21T10:00:00Z, the golden vectors' morning.
    public static let now = CPNPTimestamp(millisecondsSinceEpoch: 1_795_255_200_000)
    /// `provider-order-id` of the golden vectors, replaced by the live one.
    public static let providerOrderIDToken = "pa-000117"
    /// `nonce` of the golden vectors, replaced by the live one.
    public static let nonceToken = "5c1f0e9d8b7a69584736251403f2e1d0"
    /// Datagrams per input at most; further NULs stay in the last one.
    public static let maxDatagrams = 8
    /// The client's identity and session.
    public static let identity = ClientIdentity(names: ["acme"], subject: "CN=acme")
    public static let session = CPNPSession(local: CPNPEndpoint(host: "127.0.0.1", port: 8921), remote: CPNPEndpoint(host: "127.0.0.1", port: 40_001))
    /// The seeded QUOTATION: `Tests/CPNPCoreTests/Vectors/valid/01-quotation.json`.
    public static let seedQuotation: [UInt8] = Array(
        #"{"version":1,"method":1,"sequence-number":1804289383,"transaction-id":"9f2c1e0b7a5d4c3b2a1908f7e6d5c4b3","customer-order-id":"acme-2026-0042","expected-response-time":"2026-11-21T10:05:00Z","cpd":{"components":[{"profiles":[{"customer-nodes":[{"identifier":"CE-PAR-1","link-identifiers":["PE-PAR-2:ge-0/0/1"],"localization":{"site-id":"PARIS-HQ","latitude":48.8566,"longitude":2.3522,"country":"FR"}},{"identifier":"CE-LYS-1","link-identifiers":[],"localization":{"site-id":"LYON-DC","address":"Lyon 7e","country":"FR"}},{"identifier":"CE-MRS-1","link-identifiers":["PE-MRS-1:xe-1/0/0"],"localization":{"site-id":"MARSEILLE-BR","country":"FR"}}],"scope":[{"customer-node":"CE-PAR-1","direction":"outgoing","reachability":"restricted","source-prefixes":["10.1.0.0/16"],"destination-prefixes":["10.2.0.0/16","10.3.0.0/16"],"model":"hose"},{"customer-node":"CE-PAR-1","direction":"incoming","reachability":"restricted","source-prefixes":["10.2.0.0/16","10.3.0.0/16"],"destination-prefixes":["10.1.0.0/16"],"model":"hose"},{"customer-node":"CE-LYS-1","direction":"outgoing","reachability":"restricted","source-prefixes":["10.2.0.0/16"],"destination-prefixes":["10.1.0.0/16","10.3.0.0/16"],"model":"hose"},{"customer-node":"CE-LYS-1","direction":"incoming","reachability":"restricted","source-prefixes":["10.1.0.0/16","10.3.0.0/16"],"destination-prefixes":["10.2.0.0/16"],"model":"hose"},{"customer-node":"CE-MRS-1","direction":"outgoing","reachability":"restricted","source-prefixes":["10.3.0.0/16"],"destination-prefixes":["10.1.0.0/16","10.2.0.0/16"],"model":"hose"},{"customer-node":"CE-MRS-1","direction":"incoming","reachability":"restricted","source-prefixes":["10.1.0.0/16","10.2.0.0/16"],"destination-prefixes":["10.3.0.0/16"],"model":"hose"}],"qos-guarantees":{"kind":"quantitative","entries":[{"from":"CE-PAR-1","to":"CE-LYS-1","statistic":"percentile","percentile":99,"measurement-interval-seconds":300,"one-way-delay-ms":{"max":20},"delay-variation-ms":{"max":5},"loss-percent":{"max":0.1}},{"from":"CE-LYS-1","to":"CE-PAR-1","statistic":"percentile","percentile":99,"measurement-interval-seconds":300,"one-way-delay-ms":{"max":20},"delay-variation-ms":{"max":5},"loss-percent":{"max":0.1}},{"from":"*","to":"CE-MRS-1","statistic":"average","one-way-delay-ms":{"max":35},"delay-variation-ms":"any","loss-percent":{"max":0.5}},{"from":"CE-MRS-1","to":"*","statistic":"average","one-way-delay-ms":{"max":35},"delay-variation-ms":"any","loss-percent":{"max":0.5}}]},"availability":{"availability-percent":{"min":99.9},"statistic":"average","measurement-period":"month"},"capacity":[{"customer-node":"CE-PAR-1","incoming-bandwidth-mbps":{"min":80,"max":100},"outgoing-bandwidth-mbps":{"min":80,"max":100}},{"customer-node":"CE-LYS-1","incoming-bandwidth-mbps":100,"outgoing-bandwidth-mbps":100},{"customer-node":"CE-MRS-1","incoming-bandwidth-mbps":{"min":20},"outgoing-bandwidth-mbps":{"min":20}}],"traffic-isolation":{"isolated":true,"encryption-required":false},"conformance-traffic":{"enforcement":"policing","out-of-profile-action":"reclassify","reclassify-to":"LE","mtu-bytes":{"min":1500}},"flow-identification":{"classifiers":[{"applies-to":"all-links","dscp":46,"elastic":false,"qos-entry-ref":0}],"remarking":[{"at":"egress","match-dscp":46,"set-dscp":46}]},"overall-traffic-guarantees":{"loss":"low"},"routing-and-forwarding":{"avoid":["satellite"],"geo-restrictions":["FR"],"backup-path-required":true},"activation-means":[{"mechanism":"bgp","customer-node":"CE-PAR-1","parameters":{"customer-as":"64512"}},{"mechanism":"static","customer-node":"CE-LYS-1"},{"mechanism":"static","customer-node":"CE-MRS-1"}],"invocation-means":{"type":"implicit"},"notifications":[{"events":["sla-violation","link-down"],"method":"syslog","destination":"noc.example.com","interval-seconds":{"max":300}}],"extensions":{"customer-description":{"name":"Example Corp","email":"noc@example.com"}}}]}]},"information-elements":{"negotiation-options":{"cost":null}}}"#
            .utf8)

    /// The invariant violations for one input (libFuzzer's callback and the replay runner).
    public static func problems(_ input: [UInt8]) -> [String] {
        runBlocking { await run(input).problems }
    }

    /// Runs one input in a fresh world and checks the invariants: every message sent decodes, is
    /// canonical, valid, at most a datagram and addressed to the client's session; stored
    /// reservations never exceed a link's capacity nor name an unknown link; the store's open
    /// orders are the engine's, in the same states.
    public static func run(_ input: [UInt8]) async -> Outcome {
        var outcome = Outcome(problems: [], sent: [], openStates: [], latestOffer: nil)
        let configuration = ServerConfiguration.demo
        let store: ServerOrderStore
        do { store = try ServerOrderStore.inMemory() } catch {
            outcome.problems.append("setup: in-memory store: \(error)")
            return outcome
        }
        let sink = CollectingSink()
        let engine = CPNPServerEngine(
            configuration: configuration, store: store, sink: sink, clock: FixedClock(time: now),
            logger: Logger(label: "cpnp-fuzz-server", factory: { _ in SwiftLogNoOpLogHandler() }))
        await engine.receive(InboundDatagram(bytes: seedQuotation, session: session, identity: identity))
        var live: (providerOrderID: String, nonce: String)?
        func observe(_ sent: [(bytes: [UInt8], session: CPNPSession)]) -> [CPNPMessage] {
            var messages: [CPNPMessage] = []
            for datagram in sent {
                let (problems, decoded) = sentMessageProblems(datagram.bytes, datagram.session)
                outcome.problems += problems
                guard let message = decoded else { continue }
                if case .offer(let offer) = message {
                    live = (offer.providerOrderID.rawValue, offer.nonce.rawValue)
                    outcome.latestOffer = offer
                }
                messages.append(message)
            }
            return messages
        }
        _ = observe(sink.take())
        guard live != nil else {
            outcome.problems.append("setup: the seeded QUOTATION got no OFFER")
            return outcome
        }
        for part in input.split(separator: 0, maxSplits: maxDatagrams - 1, omittingEmptySubsequences: false) {
            var bytes = Array(part)
            if let live {
                bytes = bytes.replacing(Array(providerOrderIDToken.utf8), with: Array(live.providerOrderID.utf8))
                bytes = bytes.replacing(Array(nonceToken.utf8), with: Array(live.nonce.utf8))
            }
            await engine.receive(InboundDatagram(bytes: bytes, session: session, identity: identity))
            let answer = observe(sink.take())
            outcome.sent += answer
            if answer.isEmpty {
                let decodes = (try? CPNPCodec.decode(bytes, limits: .datagram)) != nil
                outcome.answers.append(["silent discard: \(decodes ? "decoded" : "undecodable")"])
            } else {
                outcome.answers.append(answer.map(answerKind))
            }
        }
        // Timers already due fire in their own tasks: let them run before checking.
        for _ in 0..<8 { await Task.yield() }
        outcome.sent += observe(sink.take())
        outcome.problems += reservationProblems(store, configuration)
        do {
            let stored = try store.orders(limit: 1_000).filter(\.isOpen)
            for order in stored {
                let state = await engine.machine(order.providerOrderID)?.state
                if state != order.state {
                    outcome.problems.append(
                        "order \(order.providerOrderID) is \(order.state) in the store, \(state.map { "\($0)" } ?? "absent") in the engine")
                }
            }
            let inMemory = await engine.openOrderCount
            if inMemory != stored.count { outcome.problems.append("\(stored.count) open orders stored, \(inMemory) in the engine") }
            outcome.openStates = stored.map(\.state)
        } catch {
            outcome.problems.append("store read failed: \(error)")
        }
        return outcome
    }

    /// The kind of an answer the engine sent: `sent METHOD`, or `sent FAIL STATUS_CODE` (RFC 8921
    /// §9.2.10, Table 1).
    public static func answerKind(_ message: CPNPMessage) -> String {
        if case .fail(let fail) = message { return "sent FAIL \(fail.statusCode.rawValue)" }
        return "sent \(message.method.name)"
    }

    /// What is wrong with a message the engine sent, and the message when it decodes.
    static func sentMessageProblems(_ bytes: [UInt8], _ destination: CPNPSession) -> (problems: [String], message: CPNPMessage?) {
        var problems: [String] = []
        let text = String(decoding: bytes.prefix(512), as: UTF8.self)
        if destination != session { problems.append("sent to \(destination), not to the client's session: \(text)") }
        if bytes.count > 16_384 { problems.append("sent message of \(bytes.count) bytes, larger than a datagram: \(text)") }
        let message: CPNPMessage
        do {
            message = try CPNPCodec.decode(bytes, limits: .stream)
        } catch {
            problems.append("sent message does not decode: \(error): \(text)")
            return (problems, nil)
        }
        if CPNPCodec.encode(message) != bytes { problems.append("sent message is not canonical: \(text)") }
        for issue in message.validationIssues() where issue.severity == .error {
            problems.append("sent \(message.method) is invalid: \(issue): \(text)")
        }
        return (problems, message)
    }

    static func reservationProblems(_ store: ServerOrderStore, _ configuration: ServerConfiguration) -> [String] {
        let totals: [Reservation.Key: CPNPDecimal]
        do { totals = try store.reservedTotals() } catch { return ["store read failed: \(error)"] }
        var problems: [String] = []
        for (key, total) in totals.sorted(by: { $0.key < $1.key }) {
            guard let link = configuration.policy.links.first(where: { $0.id == key.linkID }) else {
                problems.append("reservation on unknown link \(key)")
                continue
            }
            let capacity = link.capacity[key.direction]
            if total > capacity { problems.append("\(key) overbooked: \(total) reserved, capacity \(capacity)") }
            if total < CPNPDecimal(0) { problems.append("\(key) has a negative reservation: \(total)") }
        }
        return problems
    }

}

extension ServerFuzzHarness {
    /// Seed inputs from the golden vectors (`valid/` files by name): each vector alone, and flows
    /// through the live order (ACCEPT of the actual offer, then ACTIVATE, WITHDRAW or UPDATE and
    /// ACCEPT of the new offer; DECLINE; CANCEL; more time; a second order).
    public static func seeds(vectors: [String: [UInt8]]) async -> [(name: String, bytes: [UInt8])] {
        var seeds = vectors.sorted { $0.key < $1.key }.map { (name: "vector-\($0.key)", bytes: $0.value) }
        func message(_ name: String) -> CPNPMessage? { vectors[name].flatMap { try? CPNPCodec.decode($0) } }
        func join(_ messages: [CPNPMessage]) -> [UInt8] { Array(messages.map(CPNPCodec.encode).joined(separator: [0])) }
        guard let offered = await run([]).latestOffer?.offeredCPD,
            case .accept(var accept)? = message("04-accept.json"),
            case .withdraw(var withdraw)? = message("08-withdraw.json"),
            case .update(let update)? = message("09-update.json"),
            case .quotation(var second)? = message("01-quotation-all-ies.json")
        else { return seeds }
        accept.acceptedCPD = offered
        withdraw.acceptedCPD = offered
        second.customerOrderID = CustomerOrderID("acme-2026-0043")!
        second.transactionID = TransactionID("4d3c2b1a09f8e7d6c5b4a39281706f5e")!
        var flows: [(String, [CPNPMessage])] = [
            ("accept", [.accept(accept)]),
            ("accept-withdraw", [.accept(accept), .withdraw(withdraw)]),
            ("accept-update", [.accept(accept), .update(update)]),
            ("second-order", [.quotation(second)]),
        ]
        for name in ["11-activate-now.json", "11-activate-at.json", "11-activate-deactivate.json"] {
            if let activate = message(name) { flows.append(("accept-\(name.dropFirst(3).dropLast(5))", [.accept(accept), activate])) }
        }
        for name in ["05-decline.json", "07-cancel.json", "06-ack-more-time.json"] {
            if let flowMessage = message(name) { flows.append(("\(name.dropFirst(3).dropLast(5))", [flowMessage])) }
        }
        // ACCEPT of the offer that answers the UPDATE.
        if let reoffer = await run(join([.accept(accept), .update(update)])).latestOffer {
            let again = AcceptMessage(
                sequenceNumber: SequenceNumber(update.sequenceNumber &+ 1), transactionID: update.transactionID,
                customerOrderID: update.customerOrderID, providerOrderID: ProviderOrderID(providerOrderIDToken)!,
                nonce: Nonce(nonceToken)!, acceptedCPD: reoffer.offeredCPD, informationElements: nil)
            flows.append(("accept-update-accept", [.accept(accept), .update(update), .accept(again)]))
        }
        seeds += flows.map { (name: "flow-\($0.0)", bytes: join($0.1)) }
        return seeds
    }
}

struct FixedClock: WallClock {
    let time: CPNPTimestamp
    func now() -> CPNPTimestamp { time }
}

final class CollectingSink: ServerMessageSink {
    private let sent = Mutex<[(bytes: [UInt8], session: CPNPSession)]>([])

    func send(_ bytes: [UInt8], on session: CPNPSession) async {
        sent.withLock { $0.append((bytes, session)) }
    }

    /// Removes and returns everything sent so far.
    func take() -> [(bytes: [UInt8], session: CPNPSession)] {
        sent.withLock { sent in
            defer { sent = [] }
            return sent
        }
    }
}
