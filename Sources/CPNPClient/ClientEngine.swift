public import CPNPCore
public import CPNPRuntime
public import CPNPStorage
public import CPNPTransport
public import Logging
import NIOCore
import Synchronization

/// The customer's CPNP engine (RFC 8921 §3, §8.10, §11.1): runs one ``ClientOrderStateMachine`` per
/// order over a ``CPNPTransport``, stores every state change in the ``ClientOrderStore`` before the
/// message revealing it is sent, and arms the machines' timers.
///
/// Answers from a server other than the order's, or that fail §10.1 validation, are discarded
/// silently (§13). One engine can negotiate with several servers at once (best-of-N, §7).
public actor CPNPClientEngine {
    public struct Configuration: Sendable {
        /// The machines' retransmission policy and deadline enforcement.
        public var machine: ClientOrderStateMachine.Configuration
        /// Default EXPECTED_RESPONSE_TIME of QUOTATION and UPDATE, from now (§9.1.6).
        public var expectedResponseTime: Duration
        /// Decides on a server's request for more time (§9.2.2, §11.1.1).
        public var moreTime: any MoreTimePolicy
        /// Re-handshake (DTLS) from the same socket when a request stays unanswered: the server may have
        /// restarted and lost the session, which DTLS does not signal.
        public var renewSessionWhenUnanswered: Bool

        public init(
            machine: ClientOrderStateMachine.Configuration = .init(), expectedResponseTime: Duration = .seconds(30),
            moreTime: any MoreTimePolicy = GrantMoreTime(upTo: .seconds(600)), renewSessionWhenUnanswered: Bool = true
        ) {
            self.machine = machine
            self.expectedResponseTime = expectedResponseTime
            self.moreTime = moreTime
            self.renewSessionWhenUnanswered = renewSessionWhenUnanswered
        }
    }

    /// Something that happened to an order, for progress displays and logs.
    public struct Update: Sendable {
        public var customerOrderID: CustomerOrderID
        public var server: String
        public var event: ClientOrderStateMachine.Event
    }

    struct LiveOrder {
        var machine: ClientOrderStateMachine
        var server: CPNPPeer
        var group: String?
        var transportError: CPNPTransportError?
    }

    struct TimerKey: Hashable, Sendable {
        var order: CustomerOrderID
        var timer: ClientOrderStateMachine.Timer
    }

    struct Waiter {
        var id: UInt64
        var done: @Sendable (ClientOrderStateMachine) -> Bool
        var continuation: CheckedContinuation<ClientOrderStateMachine, any Error>
    }

    public nonisolated let configuration: Configuration
    let transport: any CPNPTransport
    let store: ClientOrderStore
    let clock: any WallClock
    let logger: Logger
    nonisolated let timers: TimerScheduler<TimerKey>
    nonisolated let localEndpoint: CPNPEndpoint
    var rng = SystemRandomNumberGenerator()
    var orders: [CustomerOrderID: LiveOrder] = [:]
    var waiters: [CustomerOrderID: [Waiter]] = [:]
    var nextWaiterID: UInt64 = 0
    var receiveTask: Task<Void, Never>?
    var queues: [SocketAddress: AsyncStream<Outbound>.Continuation] = [:]
    var senders: [Task<Void, Never>] = []
    let updatesContinuation: AsyncStream<Update>.Continuation
    /// Every order event, in order (single consumer; newest kept when nobody reads).
    public nonisolated let updates: AsyncStream<Update>
    /// Messages sent and received, retransmissions (for load generators and monitoring).
    public nonisolated let statistics = CPNPClientEngineStatistics()

    /// Creates the engine on `transport` (already bound) and starts reading its inbound messages.
    public init(
        transport: any CPNPTransport, store: ClientOrderStore, configuration: Configuration = .init(),
        clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "cpnp.client")
    ) {
        self.transport = transport
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        timers = TimerScheduler(clock: clock)
        localEndpoint = CPNPClientEngine.endpoint(transport.localAddress)
        (updates, updatesContinuation) = AsyncStream.makeStream(of: Update.self, bufferingPolicy: .bufferingNewest(1024))
    }

    /// Starts the receive loop (idempotent).
    public func start() {
        guard receiveTask == nil else { return }
        let inbound = transport.inbound
        receiveTask = Task { [weak self] in
            for await m in inbound { await self?.receive(m) }
        }
    }

    /// Stops timers and the receive loop, and closes the transport. Stored orders stay.
    public func shutdown() async {
        timers.cancelAll { _ in true }
        receiveTask?.cancel()
        // Let queued messages leave (bounded), then close.
        for q in queues.values { q.finish() }
        queues = [:]
        let pending = senders
        senders = []
        let drained = Mutex(false)
        let drain = Task {
            for t in pending { await t.value }
            drained.withLock { $0 = true }
        }
        let deadline = ContinuousClock.now + .seconds(2)
        while !drained.withLock({ $0 }), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        drain.cancel()
        await transport.close()
        updatesContinuation.finish()
        for (_, ws) in waiters { for w in ws { w.continuation.resume(throwing: CPNPClientError.timedOut("the engine shut down")) } }
        waiters = [:]
    }

    // MARK: - Orders

    /// A new random customer order id (§9.1.3), unused in the store.
    public func newCustomerOrderID() -> CustomerOrderID {
        while true {
            let hex = (0..<8).map { _ in String(UInt8.random(in: 0...255, using: &rng), radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
            if let id = CustomerOrderID("co-" + hex), (try? store.customerOrderIDExists(id.rawValue)) != true, orders[id] == nil { return id }
        }
    }

    /// The order's machine as it is now (live or stored).
    public func order(_ id: CustomerOrderID) throws -> ClientOrderStateMachine {
        try live(id).machine
    }

    /// Loads an order from the store, re-arms its timers, and returns it (RFC 8921 §11.1: a restart
    /// loses nothing). Already-loaded orders are returned as they are.
    @discardableResult
    public func resume(_ id: CustomerOrderID) throws -> ClientOrderStateMachine {
        try live(id).machine
    }

    private func live(_ id: CustomerOrderID) throws(CPNPClientError) -> LiveOrder {
        if let o = orders[id] { return o }
        let stored: StoredClientOrder?
        do { stored = try store.order(customerOrderID: id) } catch { throw .invalidArgument("client store: \(error)") }
        guard let stored else { throw .unknownOrder(id) }
        let server = try CPNPClientEngine.peer(stored.serverAddress, serverName: stored.serverName)
        let o = LiveOrder(machine: stored.machine, server: server, group: stored.group)
        orders[id] = o
        for (timer, at) in stored.machine.armedTimers(now: clock.now()) { arm(id, timer, at: at) }
        return o
    }

    /// The session entry's 4-tuple towards `server` (RFC 8921 §8.3).
    nonisolated func session(with server: CPNPPeer) -> CPNPSession {
        CPNPSession(local: localEndpoint, remote: CPNPClientEngine.endpoint(server.address))
    }

    // MARK: - Commands

    /// Sends a QUOTATION for `request` to `server` (RFC 8921 §9.2.1) and returns its customer order id.
    /// Use ``awaitOffer(_:)`` for the answer.
    public func quote(
        _ request: CPD, informationElements: InformationElements? = nil, to server: CPNPPeer,
        customerOrderID: CustomerOrderID? = nil, expectedResponseTime: CPNPTimestamp? = nil, group: String? = nil
    ) async throws(CPNPClientError) -> CustomerOrderID {
        let id = customerOrderID ?? newCustomerOrderID()
        guard orders[id] == nil, (try? store.customerOrderIDExists(id.rawValue)) != true else {
            throw .invalidArgument("customer order id \(id) is already used")
        }
        let now = clock.now()
        var machine = ClientOrderStateMachine(customerOrderID: id, configuration: configuration.machine)
        let ert = expectedResponseTime ?? now.adding(configuration.expectedResponseTime)
        let actions: [ClientOrderStateMachine.Action]
        do {
            actions = try machine.quote(
                requestedCPD: request, informationElements: informationElements, expectedResponseTime: ert,
                session: session(with: server), now: now, using: &rng)
        } catch { throw .command(error) }
        orders[id] = LiveOrder(machine: machine, server: server, group: group)
        try await perform(actions, order: id, now: now, firstSave: true)
        return id
    }

    /// Waits for the answer to a QUOTATION or UPDATE: the offer, or the end of the negotiation.
    public func awaitOffer(_ id: CustomerOrderID) async throws -> OfferOutcome {
        let m = try await wait(id, "an offer") { m in
            m.state == .offerReceived || m.state == .offerProcessing || m.state == .cancelled || m.state == .completed
                || (m.state == .created && m.lastEnd != nil)
        }
        if let offer = m.offer, m.state == .offerReceived || m.state == .offerProcessing { return .offer(offer) }
        return .ended(m.lastEnd ?? .noResponse)
    }

    /// Waits for the answer to an ACCEPT already sent (e.g. before a restart): the order once it left
    /// AcceptSent, Completed when the server's ACK came (RFC 8921 §9.2.4, §11.1).
    public func awaitAgreement(_ id: CustomerOrderID) async throws -> ClientOrderStateMachine {
        try await wait(id, "the ACK of ACCEPT") { $0.state != .acceptSent }
    }

    /// Waits for the server's first answer to a QUOTATION or UPDATE (PROCESSING, OFFER or FAIL).
    public func awaitFirstAnswer(_ id: CustomerOrderID) async throws -> ClientOrderStateMachine {
        try await wait(id, "the server's answer") { m in
            m.state != .pqoSent
        }
    }

    /// Sends PROCESSING for a received offer so that the server stops retransmitting it while the
    /// customer decides (Figure 8, OfferReceived → OfferProcessing).
    public func acknowledgeOffer(_ id: CustomerOrderID) async throws(CPNPClientError) {
        try await command(id) { m, now, _ throws(OrderCommandError) in try m.offerProcessingStarted(now: now) }
    }

    /// Accepts the offer (RFC 8921 §9.2.4) and waits for the ACK: returns the agreement. Never accepts
    /// an expired offer.
    public func accept(_ id: CustomerOrderID, informationElements: InformationElements? = nil) async throws -> Agreement {
        try await command(id) { m, now, _ throws(OrderCommandError) in try m.accept(informationElements: informationElements, now: now) }
        let m = try await wait(id, "the ACK of ACCEPT") { $0.state != .acceptSent }
        guard m.state == .completed, let ag = m.agreement else { throw endError(m, unanswered: .accept) }
        return ag
    }

    /// Declines the offer (RFC 8921 §9.2.5). The server's ACK is awaited in the background.
    public func decline(_ id: CustomerOrderID, reasons: [DeclineReason]) async throws(CPNPClientError) {
        try await command(id) { m, now, _ throws(OrderCommandError) in try m.decline(reasons: reasons, now: now) }
    }

    /// Cancels the negotiation in progress (RFC 8921 §9.2.7) and waits for the server's answer.
    public func cancel(_ id: CustomerOrderID) async throws -> ClientOrderStateMachine {
        try await command(id) { m, now, _ throws(OrderCommandError) in try m.cancel(now: now) }
        return try await wait(id, "the answer to CANCEL") { $0.transaction?.pending == nil }
    }

    /// Withdraws an agreed order (RFC 8921 §9.2.8) and waits up to `timeout` for the server's final ACK
    /// (the server may first answer PROCESSING, figure 14). The WITHDRAW is repeated until answered.
    public func withdraw(_ id: CustomerOrderID, timeout: Duration = .seconds(60)) async throws {
        let server = try live(id).server
        let s = session(with: server)
        try await command(id) { m, now, rng throws(OrderCommandError) in try m.withdraw(session: s, now: now, using: &rng) }
        let m = try await wait(id, "the final ACK of WITHDRAW", timeout: timeout) { $0.transaction?.pending == nil || $0.withdrawalUnconfirmed }
        if m.withdrawalUnconfirmed { throw CPNPClientError.withdrawalUnconfirmed(id) }
        if let refusal = lastRefusal.removeValue(forKey: id) { throw refusal }
        if m.agreement != nil { throw endError(m) }
    }

    /// Renegotiates an agreed order (RFC 8921 §9.2.9): the agreement stays until the new one is accepted.
    public func update(
        _ id: CustomerOrderID, request: CPD, informationElements: InformationElements? = nil, expectedResponseTime: CPNPTimestamp? = nil
    ) async throws(CPNPClientError) {
        let server = try live(id).server
        let s = session(with: server)
        let ert = expectedResponseTime ?? clock.now().adding(configuration.expectedResponseTime)
        try await command(id) { m, now, rng throws(OrderCommandError) in
            try m.update(requestedCPD: request, informationElements: informationElements, expectedResponseTime: ert, session: s, now: now, using: &rng)
        }
    }

    /// Activates, schedules or deactivates an explicit-activation agreement (RFC 8921 §9.2.11) and waits
    /// for the server's ACK.
    public func activate(_ id: CustomerOrderID, _ schedule: ActivationSchedule) async throws -> Agreement {
        let server = try live(id).server
        let s = session(with: server)
        try await command(id) { m, now, rng throws(OrderCommandError) in try m.activate(schedule, session: s, now: now, using: &rng) }
        let m = try await wait(id, "the answer to ACTIVATE") { $0.transaction?.pending == nil }
        if let refusal = lastRefusal.removeValue(forKey: id) { throw refusal }
        guard let ag = m.agreement else { throw endError(m) }
        return ag
    }

    var lastRefusal: [CustomerOrderID: CPNPClientError] = [:]

    /// Waits (at most `timeout`) until no loaded order has a request awaiting its answer, e.g. the ACK
    /// of a DECLINE, so that a short-lived process does not exit before the provider heard it.
    public func settle(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline,
            orders.values.contains(where: { $0.machine.transaction?.pending != nil && $0.machine.transaction?.exhausted != true })
        {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: - Machine plumbing

    private func command(
        _ id: CustomerOrderID,
        _ body: (inout ClientOrderStateMachine, CPNPTimestamp, inout SystemRandomNumberGenerator) throws(OrderCommandError) -> [ClientOrderStateMachine.Action]
    ) async throws(CPNPClientError) {
        var o = try live(id)
        let now = clock.now()
        let actions: [ClientOrderStateMachine.Action]
        do { actions = try body(&o.machine, now, &rng) } catch { throw .command(error) }
        o.transportError = nil
        orders[id] = o
        lastRefusal[id] = nil
        try await perform(actions, order: id, now: now)
    }

    /// Performs a machine's actions: the store first (persist before send), then sends, timers and reports.
    private func perform(_ actions: [ClientOrderStateMachine.Action], order id: CustomerOrderID, now: CPNPTimestamp, firstSave: Bool = false) async throws(CPNPClientError) {
        guard let o = orders[id] else { return }
        if firstSave || actions.contains(where: { if case .persist = $0 { true } else { false } }) {
            do {
                _ = try store.save(ClientOrderChange(
                    machine: o.machine, serverAddress: CPNPClientEngine.endpoint(o.server.address).description,
                    serverName: o.server.serverName, group: o.group, at: now, actions: actions))
            } catch {
                // Not durable: do not reveal it to the server.
                logger.error("client store write failed; nothing sent", metadata: ["order": "\(id)", "error": "\(error)"])
                throw .invalidArgument("client store: \(error)")
            }
        }
        for action in actions {
            switch action {
            case .persist:
                continue
            case .send(let message):
                statistics.countSent()
                outbound(to: o.server).yield(Outbound(bytes: CPNPCodec.encode(message), order: id, method: message.method))
            case .armTimer(let timer, let at):
                arm(id, timer, at: at)
            case .cancelTimer(let timer):
                timers.cancel(TimerKey(order: id, timer: timer))
            case .report(let event):
                await react(event, order: id, now: now)
            case .discard(let reason):
                logger.debug("discarded", metadata: ["order": "\(id)", "reason": "\(reason)"])
            }
        }
        notify(id)
    }

    private func react(_ event: ClientOrderStateMachine.Event, order id: CustomerOrderID, now: CPNPTimestamp) async {
        guard let o = orders[id] else { return }
        updatesContinuation.yield(Update(customerOrderID: id, server: o.server.description, event: event))
        switch event {
        case .moreTimeRequested(let until, let subcode, let isExtension):
            let grant = configuration.moreTime.grant(until: until, now: now, subcode: subcode, isExtension: isExtension, order: o.machine)
            logger.info(grant ? "more time granted" : "more time refused", metadata: ["order": "\(id)", "until": "\(until.rfc3339)"])
            var m = o.machine
            if let a = try? m.moreTimeDecided(granted: grant, now: now) {
                orders[id]?.machine = m
                try? await perform(a, order: id, now: now)
            }
        case .withdrawalUnconfirmed(let nextAttempt):
            // The administrator alarm of §11.1.2: the provider may still hold the agreement.
            statistics.countUnconfirmedWithdrawal()
            logger.warning("WITHDRAW unconfirmed after every retry: the provider may still hold the agreement (RFC 8921 §11.1.2)", metadata: [
                "order": "\(id)", "server": "\(o.server.description)", "next-attempt": "\(nextAttempt.rfc3339)",
            ])
        case .withdrawalRefused(let code, let diagnostic), .activationRefused(let code, let diagnostic), .cancellationRefused(let code, let diagnostic):
            lastRefusal[id] = .failed(code, diagnostic: diagnostic)
        case .requestUnanswered(let method):
            lastRefusal[id] = o.transportError.map { .transport($0) } ?? .noResponse(method)
        default:
            break
        }
    }

    private func receive(_ inbound: CPNPInboundMessage) async {
        statistics.countReceived()
        let now = clock.now()
        let message: CPNPMessage
        do {
            message = try CPNPCodec.decode(inbound.bytes)
        } catch {
            logger.debug("discarded an undecodable message", metadata: ["from": "\(inbound.peer.address)", "error": "\(error)"])
            return
        }
        // §13: only answers from the server this order was sent to.
        guard var o = orders[message.customerOrderID] else {
            logger.debug("discarded a message for an unknown order", metadata: ["from": "\(inbound.peer.address)"])
            return
        }
        guard inbound.peer.address == o.server.address else {
            logger.notice("discarded a message from a server the order was not sent to", metadata: ["from": "\(inbound.peer.address)", "order": "\(message.customerOrderID)"])
            return
        }
        if let issue = message.validationIssues().first(where: { $0.severity == .error }) {
            logger.notice("discarded an invalid message (§10.1)", metadata: ["from": "\(inbound.peer.address)", "issue": "\(issue)"])
            return
        }
        let actions = o.machine.messageReceived(message, session: session(with: o.server), now: now)
        orders[message.customerOrderID] = o
        try? await perform(actions, order: message.customerOrderID, now: now)
    }

    private func arm(_ id: CustomerOrderID, _ timer: ClientOrderStateMachine.Timer, at: CPNPTimestamp) {
        timers.arm(TimerKey(order: id, timer: timer), at: at) { [weak self] key in
            await self?.timerFired(key)
        }
    }

    func timerFired(_ key: TimerKey) async {
        guard var o = orders[key.order] else { return }
        let now = clock.now()
        // Unanswered retransmissions, or a silence probe while the server processes: the server may have
        // restarted and lost the DTLS session, so a new handshake carries the message (RFC 8921 §11.4).
        let unanswered = key.timer == .retransmission && (o.machine.transaction?.pending?.retries ?? 0) >= 1
        if unanswered || key.timer == .silenceProbe, configuration.renewSessionWhenUnanswered, let dtls = transport as? DTLSTransport {
            await dtls.renewSession(with: o.server)
            guard let current = orders[key.order] else { return }
            o = current
        }
        let actions = o.machine.timerFired(key.timer, now: now)
        statistics.countTimer(key.timer, actions)
        orders[key.order] = o
        try? await perform(actions, order: key.order, now: now)
    }

    // MARK: - Sending

    struct Outbound: Sendable {
        var bytes: [UInt8]
        var order: CustomerOrderID
        var method: MethodCode
    }

    /// One send queue per server: messages to a server leave in order, and a server whose handshake
    /// hangs (silent, unreachable) delays neither the engine nor the other servers.
    private func outbound(to server: CPNPPeer) -> AsyncStream<Outbound>.Continuation {
        if let q = queues[server.address] { return q }
        let (stream, continuation) = AsyncStream.makeStream(of: Outbound.self, bufferingPolicy: .bufferingNewest(4_096))
        queues[server.address] = continuation
        let transport = self.transport
        senders.append(Task { [weak self] in
            for await item in stream {
                do throws(CPNPTransportError) {
                    try await transport.send(item.bytes, to: server)
                } catch {
                    await self?.sendFailed(item, error)
                }
            }
        })
        return continuation
    }

    /// The retransmission timer retries; a handshake refusal is kept and reported to the waiters.
    private func sendFailed(_ item: Outbound, _ error: CPNPTransportError) {
        logger.log(level: error.code == .closed ? .debug : .warning, "send failed",
                   metadata: ["order": "\(item.order)", "method": "\(item.method)", "error": "\(error)"])
        orders[item.order]?.transportError = error
        notify(item.order)
    }

    // MARK: - Waiting

    /// Waits until the order's machine satisfies `done` (checked after every change).
    /// Waits until the order's machine satisfies `done` (checked after every change), at most `timeout`.
    /// The machines' own deadlines (expected response time, offer validity) normally end a wait first.
    func wait(
        _ id: CustomerOrderID, _ what: String, timeout: Duration = .seconds(3_600),
        until done: @escaping @Sendable (ClientOrderStateMachine) -> Bool
    ) async throws -> ClientOrderStateMachine {
        let o = try live(id)
        if done(o.machine) { return o.machine }
        if let error = o.transportError, Self.isFatal(error) { throw CPNPClientError.transport(error) }
        nextWaiterID &+= 1
        let wid = nextWaiterID
        let expiry = Task { [weak self] in
            do { try await Task.sleep(for: timeout) } catch { return }
            await self?.endWaiter(id, wid, CPNPClientError.timedOut(what))
        }
        defer { expiry.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<ClientOrderStateMachine, any Error>) in
                waiters[id, default: []].append(Waiter(id: wid, done: done, continuation: c))
            }
        } onCancel: {
            Task { await self.endWaiter(id, wid, CancellationError()) }
        }
    }

    private func endWaiter(_ id: CustomerOrderID, _ wid: UInt64, _ error: any Error) {
        guard let i = waiters[id]?.firstIndex(where: { $0.id == wid }), let w = waiters[id]?.remove(at: i) else { return }
        w.continuation.resume(throwing: error)
    }

    /// Transport errors that retransmission cannot cure: report them at once.
    static func isFatal(_ error: CPNPTransportError) -> Bool {
        switch error.code {
        case .unknownCA, .certificateExpired, .nameMismatch, .noClientCertificate, .handshakeFailed, .messageTooLarge: true
        default: false
        }
    }

    private func notify(_ id: CustomerOrderID) {
        guard let ws = waiters[id], !ws.isEmpty, let o = orders[id] else { return }
        var keep: [Waiter] = []
        for w in ws {
            if w.done(o.machine) {
                w.continuation.resume(returning: o.machine)
            } else if let error = o.transportError, Self.isFatal(error) {
                w.continuation.resume(throwing: CPNPClientError.transport(error))
            } else {
                keep.append(w)
            }
        }
        waiters[id] = keep
    }

    /// Why the order ended without the outcome asked for; `unanswered` names the request when its
    /// retransmissions were exhausted.
    private func endError(_ m: ClientOrderStateMachine, unanswered: MethodCode = .quotation) -> CPNPClientError {
        if let r = lastRefusal[m.customerOrderID] { return r }
        switch m.lastEnd {
        case .failed(let code, let diagnostic)?: return .failed(code, diagnostic: diagnostic)
        case .noResponse?: return orders[m.customerOrderID]?.transportError.map { .transport($0) } ?? .noResponse(unanswered)
        case let end?: return .negotiationEnded(end)
        case nil: return .timedOut("the order to change state (now \(m.state.rawValue))")
        }
    }

    // MARK: - Addresses

    /// How orders negotiated with `server` record its address (``StoredClientOrder/serverAddress``).
    public static func storedAddress(of server: CPNPPeer) -> String {
        endpoint(server.address).description
    }

    static func endpoint(_ address: SocketAddress?) -> CPNPEndpoint {
        CPNPEndpoint(host: address?.ipAddress ?? "0.0.0.0", port: UInt16(clamping: address?.port ?? 0))
    }

    /// Parses a stored `host:port` / `[v6]:port`.
    static func peer(_ text: String, serverName: String?) throws(CPNPClientError) -> CPNPPeer {
        let target = try CPNPServerTarget(parsing: text)
        do {
            var p = try CPNPPeer.server(host: target.host, port: target.port)
            p.serverName = serverName ?? p.serverName
            return p
        } catch {
            throw .invalidArgument("cannot resolve \(text): \(error)")
        }
    }
}

/// The answer to a QUOTATION or UPDATE.
public enum OfferOutcome: Sendable, Hashable {
    case offer(OfferMessage)
    case ended(ClientOrderStateMachine.NegotiationEnd)
}

/// Decides on a server's request for more time (RFC 8921 §9.2.2; figures 11 and 12).
public protocol MoreTimePolicy: Sendable {
    /// true: grant (ACK for an extension); false: refuse (CANCEL first time, FAIL 7 for an extension).
    func grant(until: CPNPTimestamp, now: CPNPTimestamp, subcode: ProcessingSubcode?, isExtension: Bool, order: ClientOrderStateMachine) -> Bool
}

/// Grants any request for more time whose new expected offer time is at most `bound` from now.
public struct GrantMoreTime: MoreTimePolicy {
    public var bound: Duration
    public init(upTo bound: Duration) { self.bound = bound }
    public func grant(until: CPNPTimestamp, now: CPNPTimestamp, subcode: ProcessingSubcode?, isExtension: Bool, order: ClientOrderStateMachine) -> Bool {
        until <= now.adding(bound)
    }
}
