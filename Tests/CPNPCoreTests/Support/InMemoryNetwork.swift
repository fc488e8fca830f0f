// An in-memory CPNP link joining one client order machine and one server order machine, with a
// manual clock. It executes the machines' actions the way an engine would (sends go into an
// in-flight queue, timers into a table keyed by kind, persist and report are recorded) and logs
// every machine call so that property tests can check invariants call by call.
// Internal on purpose: reuse it (see StateMachinePropertyTests.swift for examples).
@testable import CPNPCore

/// One client order and its server order joined by a lossy, reorderable, in-memory network.
///
/// Nothing happens on its own: the test moves messages (``deliver(at:advancingBy:)``,
/// ``drop(at:)``, ``duplicate(at:)``, ``swap(_:_:)``), fires timers (``fireNextTimer()``,
/// ``advance(by:)``, ``fire(_:)``), runs local commands (``client(_:_:)``, ``server(_:_:)``) and
/// injects forged messages (``inject(_:to:session:)``). The server order is created when the
/// first QUOTATION reaches it, as an engine would.
///
/// Every call into a machine is appended to ``calls`` (the machine before and after, the event and
/// the returned actions); ``takeCalls()`` drains them. ``trace`` reads like the RFC's flow figures.
///
/// ```swift
/// var net = InMemoryNetwork(seed: 1)
/// let session = net.clientSession
/// try net.client("quote") { c, now, rng throws(OrderCommandError) in
///     try c.quote(requestedCPD: cpd, session: session, now: now, using: &rng)
/// }
/// net.deliver()                       // QUOTATION → the server order is created
/// try net.server("acknowledge") { s, now, _ throws(OrderCommandError) in
///     try s.acknowledge(expectedOfferTime: nil, now: now)
/// }
/// net.drop(at: 0)                     // PROCESSING lost
/// net.fireNextTimer()                 // the client retransmits its QUOTATION after 1 s
/// while net.deliver() {}              // the server resends its cached PROCESSING
/// ```
struct InMemoryNetwork {
    typealias ClientAction = ClientOrderStateMachine.Action
    typealias ServerAction = ServerOrderStateMachine.Action

    /// Which machine a message travels to.
    enum Direction: Hashable, Sendable, CustomStringConvertible {
        case toServer, toClient
        var description: String { self == .toServer ? "C>S" : "S>C" }
    }

    /// A message in flight.
    struct Packet: Hashable, Sendable, CustomStringConvertible {
        /// Unique per send (a duplicate gets a new id).
        var id: Int
        var direction: Direction
        var message: CPNPMessage
        var description: String { "#\(id) \(direction) \(InMemoryNetwork.summary(message))" }
    }

    /// A timer of either machine.
    enum TimerID: Hashable, Sendable, CustomStringConvertible {
        case client(ClientOrderStateMachine.Timer)
        case server(ServerOrderStateMachine.Timer)
        var description: String {
            switch self {
            case .client(let t): "client.\(t.rawValue)"
            case .server(let t): "server.\(t)"
            }
        }
    }

    /// What made a machine run.
    enum Trigger: Hashable, Sendable, CustomStringConvertible {
        /// A local command (client command or server decision), by name.
        case command(String)
        /// A received message; `injected` when it did not come from the peer machine but from
        /// ``inject(_:to:session:)`` (a forged, replayed or mutated message).
        case message(CPNPMessage, injected: Bool)
        case timer(TimerID)
        var description: String {
            switch self {
            case .command(let n): "command \(n)"
            case .message(let m, let injected): "\(injected ? "injected " : "")\(InMemoryNetwork.summary(m))"
            case .timer(let t): "timer \(t)"
            }
        }
    }

    /// One call into the client machine.
    struct ClientCall {
        var trigger: Trigger
        var at: CPNPTimestamp
        var before: ClientOrderStateMachine
        var after: ClientOrderStateMachine
        var actions: [ClientAction]
        /// Set when a command threw (`actions` is then empty).
        var error: OrderCommandError?
    }

    /// One call into the server machine (`before` is nil for the QUOTATION that creates the order).
    struct ServerCall {
        var trigger: Trigger
        var at: CPNPTimestamp
        var before: ServerOrderStateMachine?
        var after: ServerOrderStateMachine
        var actions: [ServerAction]
        var error: OrderCommandError?
    }

    enum Call {
        case client(ClientCall)
        case server(ServerCall)
    }

    // MARK: Configuration

    let clientSession: CPNPSession
    /// The server's view of the same 4-tuple.
    let serverSession: CPNPSession
    let customerOrderID: CustomerOrderID
    let providerOrderID: ProviderOrderID
    let serverConfiguration: ServerOrderStateMachine.Configuration

    // MARK: State

    var now: CPNPTimestamp
    /// Randomness handed to the machines (transaction ids, nonces, initial sequence numbers).
    var rng: SplitMix64
    var client: ClientOrderStateMachine
    /// Nil until a QUOTATION reaches the server.
    var server: ServerOrderStateMachine?

    /// Messages in flight, in sending order unless reordered.
    var inFlight: [Packet] = []
    /// Armed timers and their deadlines.
    var clientTimers: [ClientOrderStateMachine.Timer: CPNPTimestamp] = [:]
    var serverTimers: [ServerOrderStateMachine.Timer: CPNPTimestamp] = [:]

    /// Every message each machine sent (retransmissions included), in order.
    var sentByClient: [CPNPMessage] = []
    var sentByServer: [CPNPMessage] = []
    /// Server sends addressed to another session than the client's (answers to forged messages).
    var sentElsewhere: [(CPNPMessage, CPNPSession)] = []
    /// Child-order sends of the server (recorded only: no other provider is simulated).
    var sentToChildProvider: [CPNPMessage] = []
    /// Messages the network handed to each machine (not injections; not those that reached the
    /// server before its order existed), in order.
    var deliveredToServer: [CPNPMessage] = []
    var deliveredToClient: [CPNPMessage] = []
    var clientEvents: [ClientOrderStateMachine.Event] = []
    var serverEvents: [ServerOrderStateMachine.Event] = []
    /// Persist actions, as "from→to: event".
    var clientPersists: [String] = []
    var serverPersists: [String] = []
    /// Machine calls not yet taken by ``takeCalls()``.
    var calls: [Call] = []
    /// Human-readable log of everything that happened.
    var trace: [String] = []

    private var nextPacketID = 0

    init(
        customerOrderID: CustomerOrderID = CustomerOrderID("prop-order-1")!,
        providerOrderID: ProviderOrderID = ProviderOrderID("po-prop-0001")!,
        clientSession: CPNPSession = CPNPSession(
            local: CPNPEndpoint(host: "192.0.2.10", port: 40_000), remote: CPNPEndpoint(host: "198.51.100.1", port: 8921)),
        start: CPNPTimestamp = CPNPTimestamp(rfc3339: "2026-01-01T00:00:00Z")!,
        seed: UInt64,
        clientConfiguration: ClientOrderStateMachine.Configuration = .init(),
        serverConfiguration: ServerOrderStateMachine.Configuration = .init()
    ) {
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.clientSession = clientSession
        serverSession = CPNPSession(local: clientSession.remote, remote: clientSession.local)
        self.serverConfiguration = serverConfiguration
        now = start
        rng = SplitMix64(seed: seed)
        client = ClientOrderStateMachine(customerOrderID: customerOrderID, configuration: clientConfiguration)
    }

    /// Returns and clears the machine calls recorded so far.
    mutating func takeCalls() -> [Call] {
        defer { calls = [] }
        return calls
    }

    // MARK: Local commands

    /// Runs a client command with the current time and the network's randomness, then executes
    /// its actions. Rethrows the machine's error (the call is still recorded).
    @discardableResult
    mutating func client(
        _ name: String,
        _ body: (inout ClientOrderStateMachine, CPNPTimestamp, inout SplitMix64) throws(OrderCommandError) -> [ClientAction]
    ) throws(OrderCommandError) -> [ClientAction] {
        let before = client
        do {
            let actions = try body(&client, now, &rng)
            calls.append(.client(ClientCall(trigger: .command(name), at: now, before: before, after: client, actions: actions)))
            trace.append("[\(clock)] client \(name) → \(client.state.rawValue)")
            execute(actions)
            return actions
        } catch {
            calls.append(.client(ClientCall(trigger: .command(name), at: now, before: before, after: client, actions: [], error: error)))
            trace.append("[\(clock)] client \(name) refused: \(error)")
            throw error
        }
    }

    /// Runs a server decision (acknowledge, makeOffer, reject, …). Throws `invalidState` when no
    /// server order exists yet.
    @discardableResult
    mutating func server(
        _ name: String,
        _ body: (inout ServerOrderStateMachine, CPNPTimestamp, inout SplitMix64) throws(OrderCommandError) -> [ServerAction]
    ) throws(OrderCommandError) -> [ServerAction] {
        guard var sm = server else { throw OrderCommandError(.invalidState, "no server order yet") }
        let before = sm
        do {
            let actions = try body(&sm, now, &rng)
            server = sm
            calls.append(.server(ServerCall(trigger: .command(name), at: now, before: before, after: sm, actions: actions)))
            trace.append("[\(clock)] server \(name) → \(sm.state.rawValue)")
            execute(actions)
            return actions
        } catch {
            server = sm
            calls.append(.server(ServerCall(trigger: .command(name), at: now, before: before, after: sm, actions: [], error: error)))
            trace.append("[\(clock)] server \(name) refused: \(error)")
            throw error
        }
    }

    // MARK: Network

    /// Delivers the packet at `index` (modulo the queue length) after letting `latency` pass
    /// (timers falling due meanwhile fire first, in deadline order). Returns false when nothing
    /// is in flight.
    @discardableResult
    mutating func deliver(at index: Int = 0, advancingBy latency: Duration = .zero) -> Bool {
        if latency > .zero { advance(by: latency) }
        guard !inFlight.isEmpty else { return false }
        let p = inFlight.remove(at: index % inFlight.count)
        switch p.direction {
        case .toServer:
            if server != nil || p.message.method == .quotation { deliveredToServer.append(p.message) }
            receiveAtServer(p.message, session: serverSession, injected: false, label: "deliver #\(p.id) \(p.direction)")
        case .toClient:
            deliveredToClient.append(p.message)
            receiveAtClient(p.message, session: clientSession, injected: false, label: "deliver #\(p.id) \(p.direction)")
        }
        return true
    }

    /// Loses the packet at `index` (modulo the queue length).
    mutating func drop(at index: Int) {
        guard !inFlight.isEmpty else { return }
        let p = inFlight.remove(at: index % inFlight.count)
        trace.append("[\(clock)] drop \(p)")
    }

    /// Duplicates the packet at `index`; the copy goes to the end of the queue.
    mutating func duplicate(at index: Int) {
        guard !inFlight.isEmpty else { return }
        var p = inFlight[index % inFlight.count]
        p.id = takePacketID()
        inFlight.append(p)
        trace.append("[\(clock)] duplicate → \(p)")
    }

    /// Swaps two packets in flight (reordering).
    mutating func swap(_ i: Int, _ j: Int) {
        guard inFlight.count > 1 else { return }
        inFlight.swapAt(i % inFlight.count, j % inFlight.count)
        trace.append("[\(clock)] reorder")
    }

    /// Hands a forged message directly to a machine, bypassing the queue. `session` defaults to the
    /// legitimate 4-tuple (a spoofed source); the server's answers to other sessions are recorded
    /// in ``sentElsewhere``. Nothing happens when the server order does not exist yet.
    mutating func inject(_ message: CPNPMessage, to direction: Direction, session: CPNPSession? = nil) {
        switch direction {
        case .toServer:
            guard server != nil else { return }
            receiveAtServer(message, session: session ?? serverSession, injected: true, label: "inject")
        case .toClient:
            receiveAtClient(message, session: session ?? clientSession, injected: true, label: "inject")
        }
    }

    private mutating func receiveAtServer(_ m: CPNPMessage, session: CPNPSession, injected: Bool, label: String) {
        if let before = server {
            var sm = before
            let actions = sm.messageReceived(m, session: session, now: now, using: &rng)
            server = sm
            calls.append(.server(ServerCall(trigger: .message(m, injected: injected), at: now, before: before, after: sm, actions: actions)))
            trace.append("[\(clock)] \(label) \(Self.summary(m)) → server \(sm.state.rawValue) \(Self.describe(actions))")
            execute(actions)
        } else if case .quotation(let q) = m {
            let (sm, actions) = ServerOrderStateMachine.quotationReceived(
                q, session: session, providerOrderID: providerOrderID, now: now, configuration: serverConfiguration, using: &rng)
            server = sm
            calls.append(.server(ServerCall(trigger: .message(m, injected: injected), at: now, before: nil, after: sm, actions: actions)))
            trace.append("[\(clock)] \(label) \(Self.summary(m)) → new server order \(sm.state.rawValue) \(Self.describe(actions))")
            execute(actions)
        } else {
            // No order to route it to: an engine would drop it (or answer a stateless FAIL).
            trace.append("[\(clock)] \(label) \(Self.summary(m)) → no server order, dropped")
        }
    }

    private mutating func receiveAtClient(_ m: CPNPMessage, session: CPNPSession, injected: Bool, label: String) {
        let before = client
        let actions = client.messageReceived(m, session: session, now: now)
        calls.append(.client(ClientCall(trigger: .message(m, injected: injected), at: now, before: before, after: client, actions: actions)))
        trace.append("[\(clock)] \(label) \(Self.summary(m)) → client \(client.state.rawValue) \(Self.describe(actions))")
        execute(actions)
    }

    // MARK: Time

    /// The armed timer with the earliest deadline (client first on ties).
    var nextTimer: (timer: TimerID, deadline: CPNPTimestamp)? {
        var best: (timer: TimerID, deadline: CPNPTimestamp)?
        for (t, d) in clientTimers
        where best == nil || d < best!.deadline || (d == best!.deadline && Self.order(.client(t)) < Self.order(best!.timer)) {
            best = (.client(t), d)
        }
        for (t, d) in serverTimers
        where best == nil || d < best!.deadline || (d == best!.deadline && Self.order(.server(t)) < Self.order(best!.timer)) {
            best = (.server(t), d)
        }
        return best
    }

    /// A total order on timers for deterministic tie-breaking.
    private static func order(_ t: TimerID) -> String { t.description }

    /// Moves the clock to the earliest deadline (never backwards) and fires that timer.
    /// Returns false when no timer is armed.
    @discardableResult
    mutating func fireNextTimer() -> Bool {
        guard let (t, d) = nextTimer else { return false }
        if d > now { now = d }
        fire(t)
        return true
    }

    /// Lets `duration` pass, firing every timer that falls due, in deadline order.
    mutating func advance(by duration: Duration) {
        let target = now.adding(duration)
        while let (t, d) = nextTimer, d <= target {
            if d > now { now = d }
            fire(t)
        }
        if target > now { now = target }
    }

    /// Fires `timer` now, whether armed or not (an unarmed one models a stale firing racing its
    /// cancellation). Its table entry is removed first.
    mutating func fire(_ timer: TimerID) {
        switch timer {
        case .client(let t):
            let armed = clientTimers.removeValue(forKey: t) != nil
            let before = client
            let actions = client.timerFired(t, now: now)
            calls.append(.client(ClientCall(trigger: .timer(timer), at: now, before: before, after: client, actions: actions)))
            trace.append("[\(clock)] fire \(timer)\(armed ? "" : " (unarmed)") → client \(client.state.rawValue) \(Self.describe(actions))")
            execute(actions)
        case .server(let t):
            guard var sm = server else { return }
            let armed = serverTimers.removeValue(forKey: t) != nil
            let before = sm
            let actions = sm.timerFired(t, now: now)
            server = sm
            calls.append(.server(ServerCall(trigger: .timer(timer), at: now, before: before, after: sm, actions: actions)))
            trace.append("[\(clock)] fire \(timer)\(armed ? "" : " (unarmed)") → server \(sm.state.rawValue) \(Self.describe(actions))")
            execute(actions)
        }
    }

    // MARK: Executing actions

    private mutating func execute(_ actions: [ClientAction]) {
        for a in actions {
            switch a {
            case .persist(let f, let t, let e): clientPersists.append("\(f.rawValue)→\(t.rawValue): \(e)")
            case .send(let m):
                sentByClient.append(m)
                inFlight.append(Packet(id: takePacketID(), direction: .toServer, message: m))
            case .armTimer(let t, let at): clientTimers[t] = at
            case .cancelTimer(let t): clientTimers[t] = nil
            case .report(let e): clientEvents.append(e)
            case .discard: break
            }
        }
    }

    private mutating func execute(_ actions: [ServerAction]) {
        for a in actions {
            switch a {
            case .persist(let f, let t, let e): serverPersists.append("\(f.rawValue)→\(t.rawValue): \(e)")
            case .send(let m, let to):
                sentByServer.append(m)
                if to == serverSession {
                    inFlight.append(Packet(id: takePacketID(), direction: .toClient, message: m))
                } else {
                    sentElsewhere.append((m, to))
                }
            case .sendToChildProvider(let m): sentToChildProvider.append(m)
            case .armTimer(let t, let at): serverTimers[t] = at
            case .cancelTimer(let t): serverTimers[t] = nil
            case .report(let e): serverEvents.append(e)
            case .discard: break
            }
        }
    }

    private mutating func takePacketID() -> Int {
        defer { nextPacketID += 1 }
        return nextPacketID
    }

    // MARK: Descriptions

    /// The clock as an RFC 3339 time of day, for the trace.
    var clock: String { String(now.rfc3339.dropFirst(11)) }

    /// "OFFER sn=… tid=…(8) poid=… nonce=…(6)".
    static func summary(_ m: CPNPMessage) -> String {
        var s = "\(m.method) sn=\(m.sequenceNumber) tid=\(m.transactionID.rawValue.prefix(6))"
        if let p = m.providerOrderID { s += " poid=\(p)" }
        if let n = m.nonce { s += " nonce=\(n.rawValue.prefix(6))" }
        if case .fail(let f) = m { s += " status=\(f.statusCode.rawValue)" }
        return s
    }

    static func describe(_ actions: [ClientAction]) -> String {
        "["
            + actions.compactMap { a -> String? in
                switch a {
                case .send(let m): "send \(m.method)"
                case .discard(let r): "discard(\(r))"
                case .report(let e): "report \(caseName(e))"
                default: nil
                }
            }.joined(separator: ", ") + "]"
    }

    static func describe(_ actions: [ServerAction]) -> String {
        "["
            + actions.compactMap { a -> String? in
                switch a {
                case .send(let m, _): "send \(m.method)"
                case .discard(let r): "discard(\(r))"
                case .report(let e): "report \(caseName(e))"
                default: nil
                }
            }.joined(separator: ", ") + "]"
    }

    /// The case name of an enum value, without its (possibly large) payload.
    static func caseName(_ value: Any) -> String {
        Mirror(reflecting: value).children.first?.label ?? String(describing: value)
    }
}
