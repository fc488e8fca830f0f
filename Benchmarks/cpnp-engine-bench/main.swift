// cpnp-engine-bench: where the server's time goes in a negotiation (docs/performance.md, "Profiling pass").
//
// A real CPNPServerEngine with a real SQLite file store (temporary directory) and the demo policy with
// capacities and limits raised; C concurrent simulated customers, each a client order machine, run
// QUOTATION → PROCESSING + OFFER → ACCEPT → ACK through the codec as bytes, with no sockets (the sink
// hands the engine's answers straight back). Prints negotiations/s, commits/s and the engine's time
// per phase (ContinuousClock around decode, inventory, decide, commit, encode, send).
//
// With --submit, customers hand their datagrams to `CPNPServerEngine.submit` as cpnpd's receive loop does
// and wait for the answers: what queues while the engine works is committed as one batch (group
// commit). Without it, each message is a batch of one, awaited (`CPNPServerEngine.receive`).
//
//   cpnp-engine-bench [--customers C] [--negotiations N] [--orders-preloaded P] [--cpd FILE] [--submit]
import CPNPCore
import CPNPPolicy
import CPNPRuntime
import CPNPServer
import CPNPStorage
import Foundation
import Logging
import Synchronization

/// Keeps what the engine sends, per client endpoint; a customer may wait for its next messages.
final class LoopbackSink: ServerMessageSink {
    struct State {
        var queued: [CPNPEndpoint: [[UInt8]]] = [:]
        var waiters: [CPNPEndpoint: CheckedContinuation<[[UInt8]], Never>] = [:]
    }
    let state = Mutex(State())

    func send(_ bytes: [UInt8], on session: CPNPSession) async {
        let waiter = state.withLock { state -> CheckedContinuation<[[UInt8]], Never>? in
            if let parked = state.waiters.removeValue(forKey: session.remote) { return parked }
            state.queued[session.remote, default: []].append(bytes)
            return nil
        }
        waiter?.resume(returning: [bytes])
    }
    func take(_ endpoint: CPNPEndpoint) -> [[UInt8]] {
        state.withLock { $0.queued.removeValue(forKey: endpoint) ?? [] }
    }
    /// What was sent to `endpoint`, waiting for at least one message.
    func next(_ endpoint: CPNPEndpoint) async -> [[UInt8]] {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [[UInt8]]? in
                if let queued = state.queued.removeValue(forKey: endpoint), !queued.isEmpty { return queued }
                state.waiters[endpoint] = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

struct Options {
    var customers = 16
    var negotiations = 4_000
    var preloaded = 0
    var cpdPath: String?
    var submit = false

    init(_ args: [String]) {
        var index = 1
        func value() -> String {
            index += 1
            guard index < args.count else { fatalError("missing value for \(args[index - 1])") }
            return args[index]
        }
        while index < args.count {
            switch args[index] {
            case "--customers": customers = Int(value())!
            case "--negotiations": negotiations = Int(value())!
            case "--orders-preloaded": preloaded = Int(value())!
            case "--cpd": cpdPath = value()
            case "--submit": submit = true
            case "-h", "--help":
                print("usage: cpnp-engine-bench [--customers C] [--negotiations N] [--orders-preloaded P] [--cpd FILE] [--submit]")
                exit(0)
            default: fatalError("unknown argument \(args[index])")
            }
            index += 1
        }
    }
}

let serverEndpoint = CPNPEndpoint(host: "127.0.0.1", port: 8921)

/// One simulated customer on its own port; negotiates orders one after another.
struct Customer {
    let endpoint: CPNPEndpoint
    let identity = ClientIdentity(names: ["acme"], subject: "CN=acme")
    var clientSession: CPNPSession { CPNPSession(local: endpoint, remote: serverEndpoint) }
    var serverSession: CPNPSession { CPNPSession(local: serverEndpoint, remote: endpoint) }

    let submit: Bool

    func deliver(_ actions: [ClientOrderStateMachine.Action], to engine: CPNPServerEngine) async {
        for case .send(let message) in actions {
            let datagram = InboundDatagram(bytes: CPNPCodec.encode(message), session: serverSession, identity: identity)
            if submit { engine.submit(datagram) } else { await engine.receive(datagram) }
        }
    }

    /// Feeds the engine's answers into `machine` (waiting for them with --submit) until it is `until`.
    func answers(_ sink: LoopbackSink, into machine: inout ClientOrderStateMachine, engine: CPNPServerEngine, until: ClientOrderStateMachine.State)
        async
    {
        repeat {
            for bytes in submit ? await sink.next(endpoint) : sink.take(endpoint) {
                guard let message = try? CPNPCodec.decode(bytes) else { continue }
                await deliver(machine.messageReceived(message, session: clientSession, now: SystemWallClock().now()), to: engine)
            }
        } while submit && machine.state != until && machine.state != .cancelled
    }

    /// One negotiation to agreement; true when it ended Completed.
    func negotiate(_ customerOrderID: String, cpd: CPD, engine: CPNPServerEngine, sink: LoopbackSink) async -> Bool {
        var rng = SystemRandomNumberGenerator()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID(customerOrderID)!)
        let now = SystemWallClock().now()
        guard
            let quotation = try? order.quote(
                requestedCPD: cpd, expectedResponseTime: now.adding(.seconds(60)), session: clientSession, now: now, using: &rng)
        else { return false }
        await deliver(quotation, to: engine)
        await answers(sink, into: &order, engine: engine, until: .offerReceived)
        guard order.state == .offerReceived, let acceptance = try? order.accept(now: SystemWallClock().now()) else { return false }
        await deliver(acceptance, to: engine)
        await answers(sink, into: &order, engine: engine, until: .completed)
        return order.state == .completed
    }
}

/// Runs `count` negotiations spread over `customers` concurrent customers; returns the completed ones.
func run(count: Int, customers: Int, prefix: String, cpd: CPD, engine: CPNPServerEngine, sink: LoopbackSink, submit: Bool = false) async -> Int {
    await withTaskGroup(of: Int.self) { group in
        for customerIndex in 0..<customers {
            group.addTask {
                let customer = Customer(endpoint: CPNPEndpoint(host: "127.0.0.1", port: UInt16(20_000 + customerIndex)), submit: submit)
                var done = 0
                var negotiationIndex = customerIndex
                while negotiationIndex < count {
                    if await customer.negotiate("\(prefix)-\(negotiationIndex)", cpd: cpd, engine: engine, sink: sink) { done += 1 }
                    negotiationIndex += customers
                }
                return done
            }
        }
        return await group.reduce(0, +)
    }
}

func locateCPD(_ explicit: String?) throws -> CPD {
    var candidates = [explicit].compactMap { $0 }
    candidates.append(FileManager.default.currentDirectoryPath + "/Examples/l3vpn-3-sites.json")
    candidates.append(
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Examples/l3vpn-3-sites.json").path)
    guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
        throw CocoaError(.fileNoSuchFile)
    }
    return try CPD(json: JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path)))), at: .root)
}

func microseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
}

let options = Options(CommandLine.arguments)
let cpd = try locateCPD(options.cpdPath)
var configuration = ServerConfiguration.demo
configuration.rateLimits.quotationsPerMinute = 100_000_000
configuration.rateLimits.failsPerMinute = 100_000_000
for i in configuration.customers.indices { configuration.customers[i].maxOpenOrders = 100_000_000 }
for i in configuration.policy.links.indices {
    configuration.policy.links[i].capacity = LinkCapacity(incoming: 1_000_000_000, outgoing: 1_000_000_000)
}

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-engine-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
let store = try ServerOrderStore(path: directory.appendingPathComponent("cpnpd.sqlite").path)
var logger = Logger(label: "cpnp-engine-bench")
logger.logLevel = .critical
let sink = LoopbackSink()
let engine = CPNPServerEngine(configuration: configuration, store: store, sink: sink, logger: logger)

if options.preloaded > 0 {
    // Agreements in force: open orders holding committed capacity, as a long-running server has.
    let started = ContinuousClock.now
    let done = await run(count: options.preloaded, customers: max(options.customers, 8), prefix: "pre", cpd: cpd, engine: engine, sink: sink)
    print("preloaded \(done) agreed (open) orders in \(String(format: "%.1f", (ContinuousClock.now - started).seconds)) s")
}

await engine.setProfiling(true)
let before = await engine.commitStatistics
let started = ContinuousClock.now
let completed = await run(
    count: options.negotiations, customers: options.customers, prefix: "run", cpd: cpd, engine: engine, sink: sink, submit: options.submit)
let elapsed = (ContinuousClock.now - started).seconds
let figures = await engine.profileFigures ?? EngineProfile()
let openOrders = await engine.openOrderCount

let after = await engine.commitStatistics
print(
    "customers \(options.customers), negotiations \(options.negotiations) (completed \(completed)), open orders at end \(openOrders), "
        + (options.submit ? "submitted (group commit)" : "one message per batch"))
let transactions = after.transactions - before.transactions, changes = after.changes - before.changes
print(
    String(
        format: "store transactions %d for %d order changes (%.2f changes per transaction, largest %d); %.2f transactions per negotiation",
        transactions, changes, Double(changes) / Double(max(transactions, 1)), after.largestTransaction,
        Double(transactions) / Double(max(completed, 1))))
print("inbox: \(after.inboxCoalesced - before.inboxCoalesced) copies coalesced, \(after.inboxDropped - before.inboxDropped) dropped (full)")
print(
    String(
        format: "elapsed %.2f s: %.0f negotiations/s, %.0f commits/s, %.0f messages received/s",
        elapsed, Double(completed) / elapsed, Double(figures.count[.commit] ?? 0) / elapsed, Double(figures.count[.receive] ?? 0) / elapsed))
print("phase        calls      µs/call   µs/negotiation")
for phase in EngineProfile.Phase.allCases {
    let total = microseconds(figures.total[phase] ?? .zero)
    let calls = figures.count[phase] ?? 0
    print(
        String(
            format: "%-10@ %7d %12.1f %16.1f", phase.rawValue as NSString, calls, calls > 0 ? total / Double(calls) : 0,
            total / Double(max(completed, 1))))
}
print("(receive: handling a datagram up to its changes, without their commit, which is the commit phase; send: from the")
print(" engine's call to the sink's return, which waits behind the actor's queue when awaited: not work)")

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
