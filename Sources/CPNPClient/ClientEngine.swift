public import CPNPCore
public import CPNPRuntime
public import CPNPStorage
public import CPNPTransport
public import Logging
import NIOCore
import Synchronization

/// The customer's CPNP engine (RFC 8921 §3, §8.10, §11.1): runs one ``ClientOrderStateMachine`` per
/// order over a ``CPNPTransport``, stores every state change in its store (``ClientOrderStore`` on disk,
/// or ``VolatileClientOrderStore``) before the message revealing it is sent, and arms the machines' timers.
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
        /// History of changes not stored yet: they revealed nothing (``CPNPClientEngine/perform(_:order:now:firstSave:deferrable:)``)
        /// and are written with the order's next save.
        var unsaved: [ClientOrderChange.Transition] = []
    }

    struct TimerKey: Hashable, Sendable {
        var order: CustomerOrderID
        var timer: ClientOrderStateMachine.Timer
    }

    /// A waiter's time limit (``wait(_:_:timeout:until:)``).
    struct WaiterKey: Hashable, Sendable {
        var order: CustomerOrderID
        var id: UInt64
    }

    struct Waiter {
        var id: UInt64
        var done: @Sendable (ClientOrderStateMachine) -> Bool
        var continuation: CheckedContinuation<ClientOrderStateMachine, any Error>
    }

    public nonisolated let configuration: Configuration
    let transport: any CPNPTransport
    let store: any ClientOrderStoring
    let clock: any WallClock
    let logger: Logger
    nonisolated let timers: TimerScheduler<TimerKey>
    /// The waiters' time limits, in real time whatever the engine's clock: one scheduler, not a task
    /// per wait.
    nonisolated let waiterLimits = TimerScheduler<WaiterKey>(clock: SystemWallClock())
    nonisolated let localEndpoint: CPNPEndpoint
    var rng = SystemRandomNumberGenerator()
    var orders: [CustomerOrderID: LiveOrder] = [:]
    /// The CPDs of the last valid messages from servers, recognised by their bytes in the next ones.
    var recentDocuments = RecentDocuments()
    /// The limits every received message is parsed under.
    static let limits = JSONParser.Limits.datagram
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

    /// Where the engine runs: the executor given to `init`, or its own.
    nonisolated let placement: EngineExecutor
    /// Set by ``shutdown()``: messages the transport still delivers are dropped, as the receive loop
    /// stops taking them.
    nonisolated let shutDown = Atomic(false)
    public nonisolated var unownedExecutor: UnownedSerialExecutor { placement.unowned }

    /// Creates the engine on `transport` (already bound) and starts reading its inbound messages.
    /// - Parameter executor: where the engine runs. Given the event loop that reads and writes the
    ///   transport's socket (``DTLSTransport/eventLoop``), messages reach the engine and leave it
    ///   without a thread switch; the engine's store then writes on that loop. nil: an executor of
    ///   its own, as any actor.
    public init(
        transport: any CPNPTransport, store: any ClientOrderStoring, configuration: Configuration = .init(),
        clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "cpnp.client"), executor: (any SerialExecutor)? = nil
    ) {
        placement = EngineExecutor(executor)
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
        // On the transport's event loop, each message is enqueued on the engine from the thread that
        // read it (in order: the loop runs its jobs first in, first out). What reached the stream
        // before, or every message elsewhere, comes through the receive loop.
        if placement.given != nil, #available(macOS 26, *) {
            _ = transport.deliverInbound { [weak self] message in
                guard let self, !self.shutDown.load(ordering: .relaxed) else { return }
                Task.immediate { await self.receive(message) }
            }
        }
        let inbound = transport.inbound
        receiveTask = Task { [weak self] in
            for await m in inbound { await self?.receive(m) }
        }
    }

    /// Stops timers and the receive loop, and closes the transport. Stored orders stay.
    public func shutdown() async {
        shutDown.store(true, ordering: .relaxed)
        timers.cancelAll { _ in true }
        waiterLimits.cancelAll { _ in true }
        receiveTask?.cancel()
        for customerOrderID in orders.keys { try? saveUnsaved(customerOrderID) }
        // Let queued messages leave (bounded), then close.
        for queue in queues.values { queue.finish() }
        queues = [:]
        let pending = senders
        senders = []
        let drained = Mutex(false)
        let drain = Task {
            for sender in pending { await sender.value }
            drained.withLock { $0 = true }
        }
        let deadline = ContinuousClock.now + .seconds(2)
        while !drained.withLock({ $0 }), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        drain.cancel()
        await transport.close()
        updatesContinuation.finish()
        for (_, orderWaiters) in waiters {
            for waiter in orderWaiters { waiter.continuation.resume(throwing: CPNPClientError.timedOut("the engine shut down")) }
        }
        waiters = [:]
    }

    // MARK: - Orders

    /// A new random negotiation group id (`ng-` and 16 hex characters), under which the orders of one
    /// negotiation with several providers are stored.
    public func newNegotiationGroup() -> String { CustomerOrderID.random(prefix: "ng-", using: &rng).rawValue }

    /// A new customer order id (§9.1.3), unused in the store: time-ordered, with 64 random bits
    /// (``CustomerOrderID/timeOrdered(at:prefix:using:)``).
    public func newCustomerOrderID() -> CustomerOrderID {
        while true {
            let candidate = CustomerOrderID.timeOrdered(at: clock.now(), using: &rng)
            if (try? store.customerOrderIDExists(candidate.rawValue)) != true, orders[candidate] == nil { return candidate }
        }
    }

    /// The order's machine as it is now (live or stored).
    public func order(_ customerOrderID: CustomerOrderID) throws -> ClientOrderStateMachine {
        let machine = try live(customerOrderID).machine
        try saveUnsaved(customerOrderID)
        return machine
    }

    /// Loads an order from the store, re-arms its timers, and returns it (RFC 8921 §11.1: a restart
    /// loses nothing). Already-loaded orders are returned as they are.
    @discardableResult
    public func resume(_ customerOrderID: CustomerOrderID) throws -> ClientOrderStateMachine {
        let machine = try live(customerOrderID).machine
        try saveUnsaved(customerOrderID)
        return machine
    }

    private func live(_ customerOrderID: CustomerOrderID) throws(CPNPClientError) -> LiveOrder {
        if let liveOrder = orders[customerOrderID] { return liveOrder }
        let stored: StoredClientOrder?
        do { stored = try store.order(customerOrderID: customerOrderID) } catch { throw .invalidArgument("client store: \(error)") }
        guard let stored else { throw .unknownOrder(customerOrderID) }
        let server = try CPNPClientEngine.peer(stored.serverAddress, serverName: stored.serverName)
        let liveOrder = LiveOrder(machine: stored.machine, server: server, group: stored.group)
        orders[customerOrderID] = liveOrder
        for (timer, at) in stored.machine.armedTimers(now: clock.now()) { arm(customerOrderID, timer, at: at) }
        return liveOrder
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
        let newOrderID = customerOrderID ?? newCustomerOrderID()
        guard orders[newOrderID] == nil, (try? store.customerOrderIDExists(newOrderID.rawValue)) != true else {
            throw .invalidArgument("customer order id \(newOrderID) is already used")
        }
        let now = clock.now()
        var machine = ClientOrderStateMachine(customerOrderID: newOrderID, configuration: configuration.machine)
        let responseDeadline = expectedResponseTime ?? now.adding(configuration.expectedResponseTime)
        let actions: [ClientOrderStateMachine.Action]
        do {
            actions = try machine.quote(
                requestedCPD: request, informationElements: informationElements, expectedResponseTime: responseDeadline,
                session: session(with: server), now: now, using: &rng)
        } catch { throw .command(error) }
        orders[newOrderID] = LiveOrder(machine: machine, server: server, group: group)
        try await perform(actions, order: newOrderID, now: now, firstSave: true)
        return newOrderID
    }

    /// Waits for the answer to a QUOTATION or UPDATE: the offer, or the end of the negotiation.
    public func awaitOffer(_ customerOrderID: CustomerOrderID) async throws -> OfferOutcome {
        let machine = try await wait(customerOrderID, "an offer") { machine in
            machine.state == .offerReceived || machine.state == .offerProcessing || machine.state == .cancelled || machine.state == .completed
                || (machine.state == .created && machine.lastEnd != nil)
        }
        if let offer = machine.offer, machine.state == .offerReceived || machine.state == .offerProcessing { return .offer(offer) }
        return .ended(machine.lastEnd ?? .noResponse)
    }

    /// Waits for the answer to an ACCEPT already sent (e.g. before a restart): the order once it left
    /// AcceptSent, Completed when the server's ACK came (RFC 8921 §9.2.4, §11.1).
    public func awaitAgreement(_ customerOrderID: CustomerOrderID) async throws -> ClientOrderStateMachine {
        try await wait(customerOrderID, "the ACK of ACCEPT") { $0.state != .acceptSent }
    }

    /// Waits for the server's first answer to a QUOTATION or UPDATE (PROCESSING, OFFER or FAIL).
    public func awaitFirstAnswer(_ customerOrderID: CustomerOrderID) async throws -> ClientOrderStateMachine {
        try await wait(customerOrderID, "the server's answer") { machine in
            machine.state != .pqoSent
        }
    }

    /// Sends PROCESSING for a received offer so that the server stops retransmitting it while the
    /// customer decides (Figure 8, OfferReceived → OfferProcessing).
    public func acknowledgeOffer(_ customerOrderID: CustomerOrderID) async throws(CPNPClientError) {
        try await command(customerOrderID) { machine, now, _ throws(OrderCommandError) in try machine.offerProcessingStarted(now: now) }
    }

    /// Accepts the offer (RFC 8921 §9.2.4) and waits for the ACK: returns the agreement. Never accepts
    /// an expired offer.
    public func accept(_ customerOrderID: CustomerOrderID, informationElements: InformationElements? = nil) async throws -> Agreement {
        try await command(customerOrderID) { machine, now, _ throws(OrderCommandError) in
            try machine.accept(informationElements: informationElements, now: now)
        }
        let machine = try await wait(customerOrderID, "the ACK of ACCEPT") { $0.state != .acceptSent }
        guard machine.state == .completed, let agreement = machine.agreement else { throw endError(machine, unanswered: .accept) }
        return agreement
    }

    /// Declines the offer (RFC 8921 §9.2.5). The server's ACK is awaited in the background.
    public func decline(_ customerOrderID: CustomerOrderID, reasons: [DeclineReason]) async throws(CPNPClientError) {
        try await command(customerOrderID) { machine, now, _ throws(OrderCommandError) in try machine.decline(reasons: reasons, now: now) }
    }

    /// Cancels the negotiation in progress (RFC 8921 §9.2.7) and waits for the server's answer.
    public func cancel(_ customerOrderID: CustomerOrderID) async throws -> ClientOrderStateMachine {
        try await command(customerOrderID) { machine, now, _ throws(OrderCommandError) in try machine.cancel(now: now) }
        return try await wait(customerOrderID, "the answer to CANCEL") { $0.transaction?.pending == nil }
    }

    /// Withdraws an agreed order (RFC 8921 §9.2.8) and waits up to `timeout` for the server's final ACK
    /// (the server may first answer PROCESSING, figure 14). The WITHDRAW is repeated until answered.
    public func withdraw(_ customerOrderID: CustomerOrderID, timeout: Duration = .seconds(60)) async throws {
        let server = try live(customerOrderID).server
        let serverSession = session(with: server)
        try await command(customerOrderID) { machine, now, rng throws(OrderCommandError) in
            try machine.withdraw(session: serverSession, now: now, using: &rng)
        }
        let machine = try await wait(customerOrderID, "the final ACK of WITHDRAW", timeout: timeout) {
            $0.transaction?.pending == nil || $0.withdrawalUnconfirmed
        }
        if machine.withdrawalUnconfirmed { throw CPNPClientError.withdrawalUnconfirmed(customerOrderID) }
        if let refusal = lastRefusal.removeValue(forKey: customerOrderID) { throw refusal }
        if machine.agreement != nil { throw endError(machine) }
    }

    /// Renegotiates an agreed order (RFC 8921 §9.2.9): the agreement stays until the new one is accepted.
    public func update(
        _ customerOrderID: CustomerOrderID, request: CPD, informationElements: InformationElements? = nil, expectedResponseTime: CPNPTimestamp? = nil
    ) async throws(CPNPClientError) {
        let server = try live(customerOrderID).server
        let serverSession = session(with: server)
        let responseDeadline = expectedResponseTime ?? clock.now().adding(configuration.expectedResponseTime)
        try await command(customerOrderID) { machine, now, rng throws(OrderCommandError) in
            try machine.update(
                requestedCPD: request, informationElements: informationElements, expectedResponseTime: responseDeadline, session: serverSession,
                now: now, using: &rng)
        }
    }

    /// Activates, schedules or deactivates an explicit-activation agreement (RFC 8921 §9.2.11) and waits
    /// for the server's ACK.
    public func activate(_ customerOrderID: CustomerOrderID, _ schedule: ActivationSchedule) async throws -> Agreement {
        let server = try live(customerOrderID).server
        let serverSession = session(with: server)
        try await command(customerOrderID) { machine, now, rng throws(OrderCommandError) in
            try machine.activate(schedule, session: serverSession, now: now, using: &rng)
        }
        let machine = try await wait(customerOrderID, "the answer to ACTIVATE") { $0.transaction?.pending == nil }
        if let refusal = lastRefusal.removeValue(forKey: customerOrderID) { throw refusal }
        guard let agreement = machine.agreement else { throw endError(machine) }
        return agreement
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
        _ customerOrderID: CustomerOrderID,
        _ body: (inout ClientOrderStateMachine, CPNPTimestamp, inout SystemRandomNumberGenerator) throws(OrderCommandError) ->
            [ClientOrderStateMachine.Action]
    ) async throws(CPNPClientError) {
        var liveOrder = try live(customerOrderID)
        let now = clock.now()
        let actions: [ClientOrderStateMachine.Action]
        do { actions = try body(&liveOrder.machine, now, &rng) } catch { throw .command(error) }
        liveOrder.transportError = nil
        orders[customerOrderID] = liveOrder
        lastRefusal[customerOrderID] = nil
        try await perform(actions, order: customerOrderID, now: now)
    }

    /// Performs a machine's actions: the store first (persist before send), then sends, timers and reports.
    ///
    /// `deferrable`: the actions answer a message received. A change they persist that nothing
    /// reveals (``reveals(_:)``: no message, no report but progress, no waiter released) is kept in memory and
    /// written with the order's next save, as the server does (RFC 8921 §8.11; docs/design/storage.md).
    /// A restart without it resumes the state before, whose retransmission the server answers from its
    /// cache (§11.3): PROCESSING received is one such change.
    private func perform(
        _ actions: [ClientOrderStateMachine.Action], order customerOrderID: CustomerOrderID, now: CPNPTimestamp, firstSave: Bool = false,
        deferrable: Bool = false
    ) async throws(CPNPClientError) {
        guard let liveOrder = orders[customerOrderID] else { return }
        let transitions = ClientOrderChange.transitions(in: actions)
        if firstSave || !transitions.isEmpty {
            if deferrable, !firstSave, !Self.reveals(actions), !(waiters[customerOrderID] ?? []).contains(where: { $0.done(liveOrder.machine) }) {
                orders[customerOrderID]?.unsaved += transitions.map { transition in
                    var transition = transition
                    transition.at = transition.at ?? now
                    return transition
                }
            } else {
                try save(liveOrder, transitions: liveOrder.unsaved + transitions, now: now)
            }
        }
        for action in actions {
            switch action {
            case .persist:
                continue
            case .send(let message):
                statistics.countSent()
                send(Outbound(bytes: CPNPCodec.encode(message), order: customerOrderID, method: message.method), to: liveOrder.server)
            case .armTimer(let timer, let time):
                arm(customerOrderID, timer, at: time)
            case .cancelTimer(let timer):
                timers.cancel(TimerKey(order: customerOrderID, timer: timer))
            case .report(let event):
                await react(event, order: customerOrderID, now: now)
            case .discard(let reason):
                logger.debug("discarded", metadata: ["order": "\(customerOrderID)", "reason": "\(reason)"])
            }
        }
        notify(customerOrderID)
    }

    /// Stores the order's machine with `transitions` for its history; the order's unsaved history is
    /// written then (its transitions are the first of `transitions`).
    private func save(_ liveOrder: LiveOrder, transitions: [ClientOrderChange.Transition], now: CPNPTimestamp) throws(CPNPClientError) {
        let customerOrderID = liveOrder.machine.customerOrderID
        do {
            _ = try store.save(
                ClientOrderChange(
                    machine: liveOrder.machine, serverAddress: CPNPClientEngine.endpoint(liveOrder.server.address).description,
                    serverName: liveOrder.server.serverName, group: liveOrder.group, at: now, transitions: transitions))
        } catch {
            // Not durable: do not reveal it to the server.
            logger.error("client store write failed; nothing sent", metadata: ["order": "\(customerOrderID)", "error": "\(error)"])
            throw .invalidArgument("client store: \(error)")
        }
        orders[customerOrderID]?.unsaved = []
    }

    /// Whether performing `actions` shows their change to someone: a message to the server, or a report
    /// other than the progress of PROCESSING (`updates` shows it; a restart without it is answered the
    /// same PROCESSING again, RFC 8921 §11.3).
    static func reveals(_ actions: [ClientOrderStateMachine.Action]) -> Bool {
        actions.contains { action in
            switch action {
            case .send: true
            case .report(.processing): false
            case .report: true
            case .persist, .armTimer, .cancelTimer, .discard: false
            }
        }
    }

    /// Writes the changes of an order that are not stored yet (``LiveOrder/unsaved``): before its machine
    /// is shown to a caller, and at shutdown.
    private func saveUnsaved(_ customerOrderID: CustomerOrderID) throws(CPNPClientError) {
        guard let liveOrder = orders[customerOrderID], !liveOrder.unsaved.isEmpty else { return }
        try save(liveOrder, transitions: liveOrder.unsaved, now: clock.now())
    }

    private func react(_ event: ClientOrderStateMachine.Event, order customerOrderID: CustomerOrderID, now: CPNPTimestamp) async {
        guard let liveOrder = orders[customerOrderID] else { return }
        updatesContinuation.yield(Update(customerOrderID: customerOrderID, server: liveOrder.server.description, event: event))
        switch event {
        case .moreTimeRequested(let until, let subcode, let isExtension):
            let grant = configuration.moreTime.grant(until: until, now: now, subcode: subcode, isExtension: isExtension, order: liveOrder.machine)
            logger.info(grant ? "more time granted" : "more time refused", metadata: ["order": "\(customerOrderID)", "until": "\(until.rfc3339)"])
            var machine = liveOrder.machine
            if let actions = try? machine.moreTimeDecided(granted: grant, now: now) {
                orders[customerOrderID]?.machine = machine
                try? await perform(actions, order: customerOrderID, now: now)
            }
        case .withdrawalUnconfirmed(let nextAttempt):
            // The administrator alarm of §11.1.2: the provider may still hold the agreement.
            statistics.countUnconfirmedWithdrawal()
            logger.warning(
                "WITHDRAW unconfirmed after every retry: the provider may still hold the agreement (RFC 8921 §11.1.2)",
                metadata: [
                    "order": "\(customerOrderID)", "server": "\(liveOrder.server.description)", "next-attempt": "\(nextAttempt.rfc3339)",
                ])
        case .withdrawalRefused(let code, let diagnostic), .activationRefused(let code, let diagnostic),
            .cancellationRefused(let code, let diagnostic):
            lastRefusal[customerOrderID] = .failed(code, diagnostic: diagnostic)
        case .requestUnanswered(let method):
            lastRefusal[customerOrderID] = liveOrder.transportError.map { .transport($0) } ?? .noResponse(method)
        default:
            break
        }
    }

    private func receive(_ inbound: CPNPInboundMessage) async {
        statistics.countReceived()
        let now = clock.now()
        let parsed: CPNPCodec.ParsedMessage
        let message: CPNPMessage
        do {
            // The ACK of an ACCEPT carries the offered CPD, and an OFFER often one offered lately for
            // another order: recognised by their bytes, not parsed again.
            parsed = try CPNPCodec.parse(
                inbound.bytes, limits: Self.limits,
                documents: { customerOrderID in orders[customerOrderID]?.machine.recognizableDocuments ?? [] }, recent: &recentDocuments)
            message = try CPNPCodec.decode(parsed)
        } catch {
            logger.debug("discarded an undecodable message", metadata: ["from": "\(inbound.peer.address)", "error": "\(error)"])
            return
        }
        // §13: only answers from the server this order was sent to.
        guard var liveOrder = orders[message.customerOrderID] else {
            logger.debug("discarded a message for an unknown order", metadata: ["from": "\(inbound.peer.address)"])
            return
        }
        guard inbound.peer.address == liveOrder.server.address else {
            logger.notice(
                "discarded a message from a server the order was not sent to",
                metadata: ["from": "\(inbound.peer.address)", "order": "\(message.customerOrderID)"])
            return
        }
        if let issue = message.validationIssues().first(where: { $0.severity == .error }) {
            logger.notice("discarded an invalid message (§10.1)", metadata: ["from": "\(inbound.peer.address)", "issue": "\(issue)"])
            return
        }
        recentDocuments.remember(carriedBy: message, parsed: parsed, limits: Self.limits)
        let actions = liveOrder.machine.messageReceived(message, session: session(with: liveOrder.server), now: now)
        orders[message.customerOrderID] = liveOrder
        try? await perform(actions, order: message.customerOrderID, now: now, deferrable: true)
    }

    private func arm(_ customerOrderID: CustomerOrderID, _ timer: ClientOrderStateMachine.Timer, at: CPNPTimestamp) {
        timers.arm(TimerKey(order: customerOrderID, timer: timer), at: at) { [weak self] key in
            await self?.timerFired(key)
        }
    }

    func timerFired(_ key: TimerKey) async {
        guard var liveOrder = orders[key.order] else { return }
        let now = clock.now()
        // Unanswered retransmissions, or a silence probe while the server processes: the server may have
        // restarted and lost the DTLS session, so a new handshake carries the message (RFC 8921 §11.4).
        let unanswered = key.timer == .retransmission && (liveOrder.machine.transaction?.pending?.retries ?? 0) >= 1
        if unanswered || key.timer == .silenceProbe, configuration.renewSessionWhenUnanswered, let dtls = transport as? DTLSTransport {
            await dtls.renewSession(with: liveOrder.server)
            guard let current = orders[key.order] else { return }
            liveOrder = current
        }
        let actions = liveOrder.machine.timerFired(key.timer, now: now)
        statistics.countTimer(key.timer, actions)
        orders[key.order] = liveOrder
        try? await perform(actions, order: key.order, now: now)
    }

    // MARK: - Sending

    struct Outbound: Sendable {
        var bytes: [UInt8]
        var order: CustomerOrderID
        var method: MethodCode
    }

    /// Straight to the transport when the engine runs on its event loop and it takes messages without
    /// waiting (in order; a server whose handshake hangs holds only its own messages); else through
    /// the server's send queue.
    private func send(_ item: Outbound, to server: CPNPPeer) {
        if placement.given != nil, queues[server.address] == nil {
            let sent = transport.sendWithoutWaiting(item.bytes, to: server) { [weak self] error in
                guard let self else { return }
                Task { await self.sendFailed(item, error) }
            }
            if sent { return }
        }
        outbound(to: server).yield(item)
    }

    /// One send queue per server: messages to a server leave in order, and a server whose handshake
    /// hangs (silent, unreachable) delays neither the engine nor the other servers.
    private func outbound(to server: CPNPPeer) -> AsyncStream<Outbound>.Continuation {
        if let queue = queues[server.address] { return queue }
        let (stream, continuation) = AsyncStream.makeStream(of: Outbound.self, bufferingPolicy: .bufferingNewest(4_096))
        queues[server.address] = continuation
        let transport = self.transport
        senders.append(
            Task { [weak self] in
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
        logger.log(
            level: error.code == .closed ? .debug : .warning, "send failed",
            metadata: ["order": "\(item.order)", "method": "\(item.method)", "error": "\(error)"])
        orders[item.order]?.transportError = error
        notify(item.order)
    }

    // MARK: - Waiting

    /// Waits until the order's machine satisfies `done` (checked after every change).
    /// Waits until the order's machine satisfies `done` (checked after every change), at most `timeout`.
    /// The machines' own deadlines (expected response time, offer validity) normally end a wait first.
    func wait(
        _ customerOrderID: CustomerOrderID, _ what: String, timeout: Duration = .seconds(3_600),
        until done: @escaping @Sendable (ClientOrderStateMachine) -> Bool
    ) async throws -> ClientOrderStateMachine {
        let liveOrder = try live(customerOrderID)
        if done(liveOrder.machine) {
            try saveUnsaved(customerOrderID)
            return liveOrder.machine
        }
        if let error = liveOrder.transportError, Self.isFatal(error) { throw CPNPClientError.transport(error) }
        nextWaiterID &+= 1
        let waiterID = nextWaiterID
        let limit = WaiterKey(order: customerOrderID, id: waiterID)
        waiterLimits.arm(limit, at: SystemWallClock().now().adding(timeout)) { [weak self] key in
            await self?.endWaiter(key.order, key.id, CPNPClientError.timedOut(what))
        }
        defer { waiterLimits.cancel(limit) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ClientOrderStateMachine, any Error>) in
                waiters[customerOrderID, default: []].append(Waiter(id: waiterID, done: done, continuation: continuation))
            }
        } onCancel: {
            Task { await self.endWaiter(customerOrderID, waiterID, CancellationError()) }
        }
    }

    private func endWaiter(_ customerOrderID: CustomerOrderID, _ waiterID: UInt64, _ error: any Error) {
        guard let index = waiters[customerOrderID]?.firstIndex(where: { $0.id == waiterID }), let waiter = waiters[customerOrderID]?.remove(at: index)
        else { return }
        waiter.continuation.resume(throwing: error)
    }

    /// Transport errors that retransmission cannot cure: report them at once.
    static func isFatal(_ error: CPNPTransportError) -> Bool {
        switch error.code {
        case .unknownCA, .certificateExpired, .nameMismatch, .noClientCertificate, .handshakeFailed, .messageTooLarge: true
        default: false
        }
    }

    private func notify(_ customerOrderID: CustomerOrderID) {
        guard let orderWaiters = waiters[customerOrderID], !orderWaiters.isEmpty, let liveOrder = orders[customerOrderID] else { return }
        var keep: [Waiter] = []
        for waiter in orderWaiters {
            if waiter.done(liveOrder.machine) {
                waiter.continuation.resume(returning: liveOrder.machine)
            } else if let error = liveOrder.transportError, Self.isFatal(error) {
                waiter.continuation.resume(throwing: CPNPClientError.transport(error))
            } else {
                keep.append(waiter)
            }
        }
        waiters[customerOrderID] = keep
    }

    /// Why the order ended without the outcome asked for; `unanswered` names the request when its
    /// retransmissions were exhausted.
    private func endError(_ machine: ClientOrderStateMachine, unanswered: MethodCode = .quotation) -> CPNPClientError {
        if let refusal = lastRefusal[machine.customerOrderID] { return refusal }
        switch machine.lastEnd {
        case .failed(let code, let diagnostic)?: return .failed(code, diagnostic: diagnostic)
        case .noResponse?: return orders[machine.customerOrderID]?.transportError.map { .transport($0) } ?? .noResponse(unanswered)
        case let end?: return .negotiationEnded(end)
        case nil: return .timedOut("the order to change state (now \(machine.state.rawValue))")
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
            var resolved = try CPNPPeer.server(host: target.host, port: target.port)
            resolved.serverName = serverName ?? resolved.serverName
            return resolved
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
    public func grant(until: CPNPTimestamp, now: CPNPTimestamp, subcode: ProcessingSubcode?, isExtension: Bool, order: ClientOrderStateMachine)
        -> Bool
    {
        until <= now.adding(bound)
    }
}
