import CPNPClient
import CPNPCore
import CPNPStorage
import CPNPTransport
import Foundation
import Histogram
import Logging
import NIOCore
import Synchronization

/// C simulated customers negotiating with one server: a warm-up, a barrier, then the measured
/// negotiations. Each customer is a ``CPNPClientEngine`` on its own client transport (its own
/// socket, its own DTLS association or TLS connection) with an order store in memory (`--customer-store`).
struct LoadRun {
    enum Stop: Sendable {
        case count(Int)
        case duration(Duration)
    }

    struct Settings: Sendable {
        var customers: Int
        var identity: String
        var transport: String
        var pki: String
        var server: CPNPPeer
        /// The Requested CPDs, each customer taking them in turn (`--distinct-cpds`).
        var requests: [CPD]
        var withdraw: Bool
        /// `memory` (``VolatileClientOrderStore``) or `sqlite` (``ClientOrderStore/inMemory()``).
        var customerStore: String
        var stop: Stop
        /// Negotiations started per second in total, on a schedule (open loop); nil: back to back.
        var rate: Double?
        var warmup: Duration
        var warmupNegotiations: Int
        var serverPIDs: [Int32]
        /// Sample the PostgreSQL server's processes too (several cpnpd on one database).
        var measuresDatabase = false
        /// Each customer's engine: retransmission, expected response time, session renewal.
        var engine: CPNPClientEngine.Configuration
    }

    /// What one customer measured.
    struct Tally: Sendable {
        var completed = 0
        var failures: [String: Int] = [:]
        /// QUOTATION sent → ACK of the ACCEPT received, µs.
        var latency = LoadRun.histogram()
        /// WITHDRAW sent → its final ACK, µs (with --withdraw).
        var withdrawLatency = LoadRun.histogram()

        mutating func add(_ other: Tally) {
            completed += other.completed
            failures.merge(other.failures, uniquingKeysWith: +)
            latency.add(other.latency)
            withdrawLatency.add(other.withdrawLatency)
        }
    }

    struct Result: Sendable {
        var tally: Tally
        /// The warm-up's negotiations (excluded from every figure; shown to explain a failing run).
        var warmupTally: Tally
        /// From the end of the warm-up to the end of the last measured negotiation.
        var seconds: Double
        var warmupSeconds: Double
        var setupSeconds: Double
        /// Both directions, counted by the customers' engines, during the measurement.
        var messages: CPNPClientEngineStatistics.Snapshot
        /// The server process over the measurement (nil without its PID).
        var serverBefore: ProcessSample?
        var serverAfter: ProcessSample?
        /// The PostgreSQL server's processes, with `--database`.
        var databaseBefore: ProcessSample?
        var databaseAfter: ProcessSample?
        /// This process (the customers) over the measurement.
        var clientBefore: ProcessSample?
        var clientAfter: ProcessSample?
        var attempted: Int { tally.completed + tally.failures.values.reduce(0, +) }
    }

    static func histogram() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        return histogram
    }

    let settings: Settings
    let progress: ProgressLog

    func run() async throws -> Result {
        let setupStart = ContinuousClock.now
        progress.say("starting \(settings.customers) customers (\(settings.transport), identity \(settings.identity))")
        let security = try clientSecurity()
        var engines: [CPNPClientEngine] = []
        for _ in 0..<settings.customers {
            engines.append(try await makeEngine(security: security))
        }
        let setupSeconds = (ContinuousClock.now - setupStart).seconds

        let gate = Gate(parties: settings.customers)
        let tickets = Tickets(stop: settings.stop, rate: settings.rate)
        let warmupEnd = ContinuousClock.now + settings.warmup
        let warmupStart = ContinuousClock.now
        progress.say("warm-up")

        let (collected, warm, before, after, warmupSeconds) = try await withThrowingTaskGroup(
            of: (Tally, Tally).self, returning: (Tally, Tally, Sample, Sample, Double).self
        ) { group in
            for engine in engines {
                group.addTask {
                    try await customer(engine, gate: gate, tickets: tickets, warmupEnd: warmupEnd)
                }
            }
            // The measurement starts when every customer finished its warm-up and waits at the gate:
            // nothing is in flight, so the counters and the server's CPU time are sampled cleanly.
            await gate.waitForAll()
            let warmupSeconds = (ContinuousClock.now - warmupStart).seconds
            let before = Sample(engines: engines, serverPIDs: settings.serverPIDs, database: settings.measuresDatabase)
            tickets.start()
            await gate.open()
            progress.say("measuring (warm-up took \(String(format: "%.1f", warmupSeconds)) s)")
            var tally = Tally()
            var warm = Tally()
            for try await (t, w) in group {
                tally.add(t)
                warm.add(w)
            }
            return (
                tally, warm, before, Sample(engines: engines, serverPIDs: settings.serverPIDs, database: settings.measuresDatabase), warmupSeconds
            )
        }
        for engine in engines { await engine.shutdown() }
        return Result(
            tally: collected, warmupTally: warm, seconds: (after.sampledAt - before.sampledAt).seconds, warmupSeconds: warmupSeconds,
            setupSeconds: setupSeconds,
            messages: after.messages.subtracting(before.messages), serverBefore: before.server, serverAfter: after.server,
            databaseBefore: before.database, databaseAfter: after.database,
            clientBefore: before.client, clientAfter: after.client)
    }

    /// One customer: warm-up negotiations, the gate, then negotiations while tickets last.
    ///
    /// It runs isolated to its engine, so on the engine's executor (its socket's event loop, DTLS): a
    /// call into the engine and the resumption of an `await` on it stay on that thread. Run from the
    /// global executor, each cost a thread switch (docs/performance.md, round 17).
    private func customer(
        _ engine: isolated CPNPClientEngine, gate: Gate, tickets: Tickets, warmupEnd: ContinuousClock.Instant
    ) async throws -> (Tally, Tally) {
        var warm = 0
        var warmup = Tally()
        var nextRequest = Int.random(in: 0..<settings.requests.count)
        while warm < settings.warmupNegotiations || ContinuousClock.now < warmupEnd {
            let succeeded = await negotiate(engine, request: &nextRequest, into: &warmup)
            warm += 1
            if !succeeded { try await Task.sleep(for: .milliseconds(10)) }
            // A server that refuses everything must not keep the warm-up going for ever.
            if warm >= max(settings.warmupNegotiations, 1) * 50 { break }
        }
        await gate.arrive()
        var tally = Tally()
        while let start = tickets.take() {
            if start > .now { try await Task.sleep(until: start, clock: .continuous) }
            // Paced, a failure does not pause: the schedule goes on.
            if !(await negotiate(engine, from: start, request: &nextRequest, into: &tally)), settings.rate == nil {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        return (tally, warmup)
    }

    /// One negotiation: QUOTATION → (PROCESSING) → OFFER → ACCEPT → ACK, then WITHDRAW → ACK if asked.
    /// Its latency counts from `start`: now, or its scheduled start with `--rate`.
    /// `request` indexes the customer's next Requested CPD (``Settings/requests``).
    private func negotiate(
        _ engine: isolated CPNPClientEngine, from start: ContinuousClock.Instant = .now, request: inout Int, into tally: inout Tally
    ) async -> Bool {
        let requested = settings.requests[request % settings.requests.count]
        request += 1
        do {
            let customerOrderID = try await engine.quote(requested, to: settings.server)
            switch try await engine.awaitOffer(customerOrderID) {
            case .offer:
                break
            case .ended(let end):
                tally.failures[Self.kind(end), default: 0] += 1
                return false
            }
            _ = try await engine.accept(customerOrderID)
            let agreed = ContinuousClock.now
            _ = tally.latency.record(max(1, (agreed - start).microseconds))
            if settings.withdraw {
                try await engine.withdraw(customerOrderID, timeout: .seconds(60))
                _ = tally.withdrawLatency.record(max(1, (ContinuousClock.now - agreed).microseconds))
            }
            tally.completed += 1
            return true
        } catch {
            tally.failures[Self.kind(error), default: 0] += 1
            return false
        }
    }

    static func kind(_ end: ClientOrderStateMachine.NegotiationEnd) -> String {
        switch end {
        case .failed(let code, let diagnostic): failKind(code, diagnostic)
        case .noResponse: "no response"
        case .expectedResponseTimeElapsed: "expected response time elapsed"
        case .expectedOfferTimeElapsed: "expected offer time elapsed"
        case .offerExpired: "offer expired"
        case .cancelledByClient: "cancelled"
        case .declinedByClient: "declined"
        case .offerTimeRefused: "more time refused"
        }
    }

    /// `FAIL 5 (Out of Resources): diagnostic`, the diagnostic cut short (they name no order).
    static func failKind(_ code: FailStatusCode, _ diagnostic: String?) -> String {
        "FAIL \(code.rawValue) (\(code))" + (diagnostic.map { ": " + String($0.prefix(100)) } ?? "")
    }

    static func kind(_ error: any Error) -> String {
        guard let clientError = error as? CPNPClientError else { return "error: \(error)" }
        switch clientError {
        case .failed(let code, let diagnostic): return failKind(code, diagnostic)
        case .negotiationEnded(let end): return kind(end)
        case .noResponse(let method): return "no response to \(method)"
        case .withdrawalUnconfirmed: return "withdrawal unconfirmed"
        case .transport(let transportError): return "transport: \(transportError.code)"
        case .timedOut: return "timed out"
        case .command(let refusal): return "command refused: \(refusal.message)"
        case .unknownOrder: return "unknown order"
        case .invalidArgument(let argument): return "invalid argument: \(argument)"
        }
    }

    private func clientSecurity() throws -> CPNPSecurityConfiguration? {
        guard settings.transport != "plain-udp" else { return nil }
        let directory = settings.pki
        do {
            return try CPNPSecurityConfiguration(
                certificateFile: "\(directory)/client-\(settings.identity).pem", keyFile: "\(directory)/client-\(settings.identity)-key.pem",
                trustRootsFile: "\(directory)/ca.pem")
        } catch {
            throw BenchError("cannot load the client certificate of \(settings.identity) from \(directory): \(error)")
        }
    }

    private func makeEngine(security: CPNPSecurityConfiguration?) async throws -> CPNPClientEngine {
        var logger = Logger(label: "cpnp-bench.client")
        logger.logLevel = .critical
        let transport: any CPNPTransport
        switch settings.transport {
        case "tls":
            var configuration = TLSTransportConfiguration(security: security!)
            configuration.handshakeTimeout = .seconds(30)
            transport = try TLSTransport.client(configuration: configuration, logger: logger)
        case "plain-udp":
            transport = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: logger)
        default:
            var configuration = DTLSTransportConfiguration(security: security!)
            configuration.handshakeTimeout = .seconds(30)
            transport = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: configuration, logger: logger)
        }
        // Each customer's engine runs on its socket's event loop (DTLS): no thread switch per message.
        let executor = (transport as? DTLSTransport)?.eventLoop.executor
        let store: any ClientOrderStoring = settings.customerStore == "sqlite" ? try ClientOrderStore.inMemory() : VolatileClientOrderStore()
        let engine = CPNPClientEngine(
            transport: transport, store: store, configuration: settings.engine, logger: logger, executor: executor)
        await engine.start()
        return engine
    }
}

/// Counters sampled at the start and the end of the measurement.
struct Sample: Sendable {
    var sampledAt: ContinuousClock.Instant
    var messages: CPNPClientEngineStatistics.Snapshot
    var server: ProcessSample?
    var database: ProcessSample?
    var client: ProcessSample?

    init(engines: [CPNPClientEngine], serverPIDs: [Int32], database measuresDatabase: Bool) {
        var totals = CPNPClientEngineStatistics.Snapshot()
        for engine in engines {
            let snapshot = engine.statistics.snapshot
            totals.messagesSent += snapshot.messagesSent
            totals.messagesReceived += snapshot.messagesReceived
            totals.retransmissions += snapshot.retransmissions
        }
        messages = totals
        server = ProcessSample.sum(serverPIDs.compactMap { ProcessSample.read(pid: $0) })
        // Backends come and go; those that ended meanwhile are missed (the pool keeps them open).
        database = measuresDatabase ? ProcessSample.sum(ProcessSample.processes(named: "postgres").compactMap { ProcessSample.read(pid: $0) }) : nil
        client = ProcessSample.read(pid: nil)
        sampledAt = ContinuousClock.now
    }
}

/// Customers wait here after their warm-up until the measurement starts.
actor Gate {
    let parties: Int
    private var arrived = 0
    private var isOpen = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var allArrived: [CheckedContinuation<Void, Never>] = []

    init(parties: Int) { self.parties = parties }

    func arrive() async {
        arrived += 1
        if arrived == parties {
            for continuation in allArrived { continuation.resume() }
            allArrived = []
        }
        guard !isOpen else { return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func waitForAll() async {
        guard arrived < parties else { return }
        await withCheckedContinuation { allArrived.append($0) }
    }

    func open() {
        isOpen = true
        for continuation in waiting { continuation.resume() }
        waiting = []
    }
}

/// Which measured negotiations remain, a fixed count or until a deadline, and when each starts: at
/// once, or on a schedule of `rate` per second shared by every customer (`--rate`).
final class Tickets: Sendable {
    private let stop: LoadRun.Stop
    /// Between two scheduled starts; nil: no schedule.
    private let interval: Duration?
    private let state = Mutex<(taken: Int, started: ContinuousClock.Instant?, deadline: ContinuousClock.Instant?)>((0, nil, nil))

    init(stop: LoadRun.Stop, rate: Double? = nil) {
        self.stop = stop
        self.interval = rate.map { .seconds(1 / $0) }
    }

    func start() {
        let now = ContinuousClock.now
        state.withLock { state in
            state.started = now
            if case .duration(let duration) = stop { state.deadline = now + duration }
        }
    }

    /// When the caller starts one more measured negotiation (now, or the next scheduled start, maybe
    /// past), or nil when none remain.
    func take() -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        return state.withLock { state -> ContinuousClock.Instant? in
            guard let started = state.started else { return nil }
            let start = interval.map { started + $0 * state.taken } ?? now
            switch stop {
            case .count(let count):
                guard state.taken < count else { return nil }
            case .duration:
                // Scheduled, a start already past still runs (the server fell behind): its latency shows it.
                guard let deadline = state.deadline, start < deadline else { return nil }
            }
            state.taken += 1
            return start
        }
    }
}
