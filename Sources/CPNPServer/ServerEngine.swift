public import CPNPCore
public import CPNPPolicy
public import CPNPStorage
public import Logging
public import CPNPRuntime
import Synchronization

/// The provider's CPNP engine (RFC 8921 §8.2, §11.2): runs one ``ServerOrderStateMachine`` per order,
/// commits every observable state change to its ``OrderStore`` before the message revealing it
/// is sent, asks the ``DecisionEngine`` for offers, keeps capacity reservations exact, and arms timers.
///
/// One actor: decisions on the inventory are serialized, so concurrent QUOTATIONs never book more
/// than a link's capacity (the store re-checks the limits inside its write transaction).
public actor CPNPServerEngine {
    public struct Options: Sendable {
        public var configuration: ServerConfiguration
        public init(configuration: ServerConfiguration) { self.configuration = configuration }
    }

    /// An order in memory. Its fields live in one shared box, copied only when a copy is changed while
    /// another still holds the box (copy on write): the engine reads orders out of its table all the
    /// time, and a plain struct of this size is copied field by field at every read.
    struct LiveOrder {
        struct Fields {
            var machine: ServerOrderStateMachine
            var clientIdentity: String
            var identity: ClientIdentity?
            var clientAddress: String
            /// Reservations of the offer being negotiated (policy form).
            var offered: [Reservation] = []
            /// Reservations of the agreement in force.
            var committed: [Reservation] = []
            /// Waiting for `cpnpd admin approve|reject` (RFC 8921 §8.2 administrative validation).
            var awaitingApproval: Bool = false
            var approvalOffer: Offer?
            /// For an UPDATE: the reservations of the updated offer, committed on agreement; meanwhile
            /// `offered` holds only what they add to `committed` (§9.2.9).
            var updateTarget: [Reservation]?
            /// State changes that revealed nothing (QUOTATION or ACCEPT received), written with the
            /// order's next change (``CPNPServerEngine/perform(_:order:now:)``).
            var unwrittenActions: [ServerOrderStateMachine.Action] = []
            /// The stored revision this order's next change is computed from (0: not stored yet). With a
            /// shared store each change is checked against it (``OrderChange/expectedRevision``).
            var revision: Int64 = 0
            /// When its negotiation began here (QUOTATION or UPDATE received): the latency metric.
            var negotiationStarted: ContinuousClock.Instant?
            /// Waiting for its child orders (RFC 8921 §8.8, Cascade.swift).
            var cascade: CascadeHold?
        }

        private final class Storage {
            var fields: Fields
            init(_ fields: Fields) { self.fields = fields }
        }

        private var storage: Storage

        init(
            machine: ServerOrderStateMachine, clientIdentity: String, identity: ClientIdentity?, clientAddress: String,
            negotiationStarted: ContinuousClock.Instant? = nil
        ) {
            storage = Storage(
                Fields(
                    machine: machine, clientIdentity: clientIdentity, identity: identity, clientAddress: clientAddress,
                    negotiationStarted: negotiationStarted))
        }

        private mutating func makeUnique() {
            if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
        }

        var machine: ServerOrderStateMachine {
            _read { yield storage.fields.machine }
            _modify {
                makeUnique()
                yield &storage.fields.machine
            }
        }
        var clientIdentity: String {
            _read { yield storage.fields.clientIdentity }
            _modify {
                makeUnique()
                yield &storage.fields.clientIdentity
            }
        }
        var identity: ClientIdentity? {
            _read { yield storage.fields.identity }
            _modify {
                makeUnique()
                yield &storage.fields.identity
            }
        }
        var clientAddress: String {
            _read { yield storage.fields.clientAddress }
            _modify {
                makeUnique()
                yield &storage.fields.clientAddress
            }
        }
        var offered: [Reservation] {
            _read { yield storage.fields.offered }
            _modify {
                makeUnique()
                yield &storage.fields.offered
            }
        }
        var committed: [Reservation] {
            _read { yield storage.fields.committed }
            _modify {
                makeUnique()
                yield &storage.fields.committed
            }
        }
        var awaitingApproval: Bool {
            _read { yield storage.fields.awaitingApproval }
            _modify {
                makeUnique()
                yield &storage.fields.awaitingApproval
            }
        }
        var approvalOffer: Offer? {
            _read { yield storage.fields.approvalOffer }
            _modify {
                makeUnique()
                yield &storage.fields.approvalOffer
            }
        }
        var updateTarget: [Reservation]? {
            _read { yield storage.fields.updateTarget }
            _modify {
                makeUnique()
                yield &storage.fields.updateTarget
            }
        }
        var unwrittenActions: [ServerOrderStateMachine.Action] {
            _read { yield storage.fields.unwrittenActions }
            _modify {
                makeUnique()
                yield &storage.fields.unwrittenActions
            }
        }
        var revision: Int64 {
            _read { yield storage.fields.revision }
            _modify {
                makeUnique()
                yield &storage.fields.revision
            }
        }
        var negotiationStarted: ContinuousClock.Instant? {
            _read { yield storage.fields.negotiationStarted }
            _modify {
                makeUnique()
                yield &storage.fields.negotiationStarted
            }
        }
        var cascade: CascadeHold? {
            _read { yield storage.fields.cascade }
            _modify {
                makeUnique()
                yield &storage.fields.cascade
            }
        }
    }

    struct OrderKey: Hashable {
        var identity: String
        var customerOrderID: CustomerOrderID
    }

    /// The engine's timers: the machine's, and when to ask the client for more time (§9.2.2, §11.2.1).
    enum EngineTimer: Hashable, Sendable {
        case machine(ServerOrderStateMachine.Timer)
        case moreTimeRequest
    }

    struct TimerKey: Hashable, Sendable {
        var order: ProviderOrderID
        var timer: EngineTimer
    }

    /// Points where a test-only fault hook may stop the process (cpnpd's `CPNPD_FAULT`).
    public enum FaultPoint: Sendable, Hashable {
        /// The order reached this state, and what it must make durable there is committed (a QUOTATION
        /// or ACCEPT received is written with the change that follows it).
        case committed(ServerOrderStateMachine.State)
        /// A message is about to be sent; the state change it reveals is committed.
        case sending(MethodCode)
    }

    let configuration: ServerConfiguration
    let store: any OrderStore
    let sink: any ServerMessageSink
    let clock: any WallClock
    let logger: Logger
    let decisionEngine: DecisionEngine
    /// The configured links by id.
    let linksByID: [String: ProviderLink]
    nonisolated let timers: TimerScheduler<TimerKey>
    /// Deadlines of the armed timers; with `manualTimers` nothing else fires them (tests).
    var deadlines: [TimerKey: CPNPTimestamp] = [:]
    let manualTimers: Bool
    let faultHook: (@Sendable (FaultPoint) -> Void)?
    var rng = SystemRandomNumberGenerator()
    var orders = OrderTable()
    var byCustomer: [OrderKey: ProviderOrderID] = [:]
    /// The Requested CPDs of the last valid QUOTATIONs, recognised by their bytes in the next ones.
    var recentDocuments = RecentDocuments()
    /// The last distinct Offered CPDs (``RecentDocuments/interned(_:)``).
    var recentOffers = RecentDocuments()
    var quotationLimiter: RateLimiter<String>
    /// QUOTATIONs refused before an order existed, by client and transaction (``refuseQuotation``).
    var refusedQuotations: [RefusedQuotationKey: RefusedQuotation] = [:]
    var refusedQuotationOrder: [RefusedQuotationKey] = []
    static let refusedQuotationMemory = 4_096

    struct RefusedQuotationKey: Hashable {
        var identity: String
        var transactionID: TransactionID
    }

    struct RefusedQuotation {
        var sequenceNumber: SequenceNumber
        var answer: FailMessage
    }
    var failLimiter: RateLimiter<String>
    /// Phase timings, when profiling is on (``setProfiling(_:)``).
    var profile: EngineProfile?
    /// The batch being handled (group commit, GroupCommit.swift); nil when nothing awaits its commit.
    var batch: PendingBatch?
    /// Received datagrams waiting for the engine (``submit(_:)``).
    nonisolated let inbox: Inbox
    /// Group commit figures.
    public internal(set) var commitStatistics = CommitStatistics()
    /// The sender task's queue, with `sendsWithoutWaiting`.
    nonisolated let outbound: AsyncStream<(bytes: [UInt8], session: CPNPSession)>.Continuation?
    /// This process among the `cpnpd` sharing the store (``OrderStore/sharesOrders``): the owner it
    /// writes on the orders it drives (SharedStore.swift).
    public nonisolated let instanceID: String
    /// Whether other instances write the same store: revisions are checked, orphaned orders claimed,
    /// capacity totals refreshed from the store (SharedStore.swift).
    public nonisolated let sharesStore: Bool
    /// Orders whose change could not be committed (a database outage): the shared store's upkeep reads
    /// them again and resumes the work the failed change carried (SharedStore.swift).
    var ordersToResume: Set<ProviderOrderID> = []
    /// After an upkeep that could not reach the store, no takeover until then: the other instances
    /// lost the store too, and their heartbeats must have a lease to resume (SharedStore.swift).
    var takeoversPausedUntil: CPNPTimestamp?
    /// Whether the engine can make changes durable: false from an upkeep that could not reach a shared
    /// store until one that could (what a readiness probe reports; SharedStore.swift).
    /// Read without waiting for the engine, so that a probe answers while a store call blocks it.
    public nonisolated var isReady: Bool { readiness.load(ordering: .relaxed) }
    nonisolated let readiness = Atomic<Bool>(true)
    /// The method of the message whose actions ``perform(_:order:now:)`` runs next (read once, for the log).
    var receivingMethod: MethodCode?
    /// Counters and histograms for monitoring (EngineMetrics.swift).
    public nonisolated let metrics: EngineMetrics
    /// Committed state changes, for live views (EngineEvents.swift).
    public nonisolated let events = EngineEvents()
    /// Negotiates child orders with upstream providers (RFC 8921 §8.8, Cascade.swift); nil: none.
    var childNegotiator: (any ChildOrderNegotiator)?

    deinit { outbound?.finish() }

    /// Where the engine runs: the executor given to `init`, or its own.
    nonisolated let placement: EngineExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { placement.unowned }

    /// - Parameters:
    ///   - faultHook: test only: called at each ``FaultPoint`` (cpnpd exits there on request).
    ///   - sendsWithoutWaiting: hand each message, once its change is durable, to one sender task that
    ///     gives them to `sink` in order, instead of waiting for the sink before going on (cpnpd). With
    ///     it, `receive` may return before its answers reached the sink.
    ///   - executor: where the engine runs: in cpnpd, the event loop that reads and writes the
    ///     transport's socket, so that a datagram reaches the engine, and its answers the socket,
    ///     without a thread switch. nil: an executor of its own, as any actor.
    public init(
        configuration: ServerConfiguration, store: any OrderStore, sink: any ServerMessageSink, clock: any WallClock = SystemWallClock(),
        logger: Logger, faultHook: (@Sendable (FaultPoint) -> Void)? = nil, sendsWithoutWaiting: Bool = false,
        metrics: EngineMetrics = EngineMetrics(), executor: (any SerialExecutor)? = nil
    ) {
        self.init(
            configuration: configuration, store: store, sink: sink, clock: clock, logger: logger, faultHook: faultHook, manualTimers: false,
            sendsWithoutWaiting: sendsWithoutWaiting, metrics: metrics, executor: executor)
    }

    /// With `manualTimers`, timers only fire through ``fireDueTimers()`` (tests with a manual clock).
    init(
        configuration: ServerConfiguration, store: any OrderStore, sink: any ServerMessageSink, clock: any WallClock,
        logger: Logger, faultHook: (@Sendable (FaultPoint) -> Void)? = nil, manualTimers: Bool, sendsWithoutWaiting: Bool = false,
        metrics: EngineMetrics = EngineMetrics(), executor: (any SerialExecutor)? = nil
    ) {
        placement = EngineExecutor(executor)
        self.metrics = metrics
        if sendsWithoutWaiting {
            let (stream, continuation) = AsyncStream.makeStream(of: (bytes: [UInt8], session: CPNPSession).self)
            outbound = continuation
            Task { for await (bytes, session) in stream { await sink.send(bytes, on: session) } }
        } else {
            outbound = nil
        }
        inbox = Inbox(capacity: 8_192)
        instanceID = Self.newInstanceID()
        sharesStore = store.sharesOrders
        self.manualTimers = manualTimers
        self.faultHook = faultHook
        self.configuration = configuration
        self.store = store
        self.sink = sink
        self.clock = clock
        self.logger = logger
        decisionEngine = DecisionEngine(configuration: configuration)
        linksByID = Dictionary(configuration.policy.links.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        timers = TimerScheduler(clock: clock)
        quotationLimiter = RateLimiter(perMinute: configuration.rateLimits.quotationsPerMinute)
        failLimiter = RateLimiter(perMinute: configuration.rateLimits.failsPerMinute)
    }

    var machineConfiguration: ServerOrderStateMachine.Configuration {
        .init(retransmission: configuration.timers.retransmissionPolicy)
    }

    // MARK: - Recovery

    /// Loads the open orders and re-arms their timers (offer validity, expected offer time, requests
    /// for more time, scheduled activations, test periods); resumes what a crash interrupted. Returns the count.
    @discardableResult
    public func recover() async throws -> Int {
        if sharesStore { return try await recoverShared() }
        let now = clock.now()
        // The totals and counts of every open order come from the store; only the orders with something
        // in flight are loaded (docs/design/storage.md), the agreements at rest when their next message comes.
        orders.seed(reserved: try store.keptReservedTotals(), openByClient: try store.openOrderCountsByClient())
        let stored = try store.residentOrders()
        try await resume(stored, now: now)
        // The QUOTATION rate limiter starts where the previous process left it: the orders created in
        // the last minute took their tokens (RFC 8921 §9.2.5, §13).
        let minuteAgo = CPNPTimestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 60_000)
        for (client, times) in try store.orderCreationTimesByClient(createdSince: minuteAgo) {
            quotationLimiter.restore(client, events: times, since: minuteAgo, now: now)
        }
        // Rows written before the store knew which orders are at rest were loaded all the same.
        for storedOrder in stored { evictIfAtRest(storedOrder.providerOrderID, now: now) }
        logger.info("recovered open orders", metadata: ["in-memory": "\(orders.count)", "open": "\(openOrderCount)"])
        return stored.count
    }

    /// Loads orders a previous process (or a dead instance) left in flight: re-arms their timers and
    /// redoes the work a crash interrupted — decisions (PQOReceived, or AwaitingProcessing without an
    /// offer; an order held for an operator re-arms its request for more time), an ACCEPT received but
    /// not yet confirmed (AcceptReceived), a WITHDRAW answered PROCESSING but not yet confirmed.
    func resume(_ stored: [StoredOrder], now: CPNPTimestamp) async throws {
        for storedOrder in stored {
            try admit(storedOrder)
            for (timer, at) in storedOrder.machine.armedTimers(now: now) { arm(storedOrder.providerOrderID, .machine(timer), at: at) }
        }
        for storedOrder in stored {
            switch storedOrder.machine.state {
            case .pqoReceived, .awaitingProcessing:
                await decide(storedOrder.providerOrderID, now: now, resumed: true)
            case .acceptReceived:
                await react(.acceptReceived, order: storedOrder.providerOrderID, now: now)
            case .completed where storedOrder.machine.withdrawalPending:
                if let agreement = storedOrder.machine.agreement {
                    await react(.withdrawalRequested(agreement), order: storedOrder.providerOrderID, now: now)
                }
            default:
                break
            }
        }
    }

    /// Brings a stored open order into memory, with its reservations; the totals count it already.
    func admit(_ stored: StoredOrder) throws {
        var live = LiveOrder(machine: stored.machine, clientIdentity: stored.clientIdentity, identity: nil, clientAddress: stored.clientAddress)
        live.revision = stored.revision
        let held = try store.reservations(providerOrderID: stored.providerOrderID)
        (live.offered, live.committed) = (held.offered, held.committed)
        if stored.machine.isUpdate, let offer = stored.machine.offer { live.updateTarget = reservations(of: offer.offeredCPD, live) }
        orders.admit(stored.providerOrderID, live)
        byCustomer[OrderKey(identity: stored.clientIdentity, customerOrderID: stored.customerOrderID)] = stored.providerOrderID
    }

    /// Forgets an open order with nothing in flight (an agreement at rest, ``ServerOrderStore/isResident(_:now:)``):
    /// its next message or operator action reads it back from the store.
    func evictIfAtRest(_ providerOrderID: ProviderOrderID, now: CPNPTimestamp) {
        guard let live = orders[providerOrderID], ServerOrderStore.isOpen(live.machine), !ServerOrderStore.isResident(live.machine, now: now),
            !live.awaitingApproval, live.cascade == nil, live.unwrittenActions.isEmpty
        else { return }
        orders.evict(providerOrderID)
        let key = OrderKey(identity: live.clientIdentity, customerOrderID: live.machine.customerOrderID)
        if byCustomer[key] == providerOrderID { byCustomer[key] = nil }
    }

    /// The client's stored order for `key` when none is in memory: an open one (an agreement at rest)
    /// is admitted and nil returned; a closed one is returned, for ``answerForClosedOrder(_:stored:datagram:identity:now:)``.
    private func readBack(_ key: OrderKey) throws -> StoredOrder? {
        guard byCustomer[key] == nil, let stored = try store.order(clientIdentity: key.identity, customerOrderID: key.customerOrderID) else {
            return nil
        }
        guard stored.isOpen else { return stored }
        if orders[stored.providerOrderID] == nil { try admit(stored) }
        return nil
    }

    /// The order in memory, or read back from the store when it is open and at rest.
    func liveOrder(_ providerOrderID: ProviderOrderID) -> LiveOrder? {
        if let live = orders[providerOrderID] { return live }
        guard let stored = try? store.order(providerOrderID: providerOrderID), stored.isOpen, (try? admit(stored)) != nil else { return nil }
        return orders[providerOrderID]
    }

    // MARK: - Inbound

    /// Handles one received message (RFC 8921 §10.2), as a batch of one (``receive(batch:)``). Never
    /// throws: bad input is answered with FAIL (rate-limited) or dropped, and logged.
    public func receive(_ datagram: InboundDatagram) async {
        await receive(batch: [datagram])
    }

    func receiveOne(_ datagram: InboundDatagram) async {
        guard profile != nil else { return await receiveMessage(datagram) }
        let start = ContinuousClock.now
        await receiveMessage(datagram)
        profile?.add(.receive, ContinuousClock.now - start)
    }

    private func receiveMessage(_ datagram: InboundDatagram) async {
        var datagram = datagram
        if datagram.identity == nil, configuration.listen.transport == .plainUDP, let lab = configuration.listen.plainUDPCustomer {
            // Labs and benchmarks: plain UDP has no identity; `listen.plain-udp-customer` stands in.
            datagram.identity = ClientIdentity(names: [lab], subject: "plain-udp \(datagram.session.remote.host)")
        }
        let now = clock.now()
        let source = datagram.session.remote.description
        guard datagram.bytes.count <= datagram.maximumSize else {
            logger.warning("dropped oversized message", metadata: ["from": "\(source)", "bytes": "\(datagram.bytes.count)"])
            return
        }
        let identity = identityKey(datagram.identity, session: datagram.session)
        let parsed: CPNPCodec.ParsedMessage
        let limits = JSONParser.Limits(maxBytes: datagram.maximumSize)
        do {
            parsed = try measure(.decode) { () throws(CPNPDecodingError) -> CPNPCodec.ParsedMessage in
                // An ACCEPT's CPD is the offer's, and a QUOTATION's often one quoted lately: recognised by
                // their bytes, not parsed again.
                try CPNPCodec.parse(
                    datagram.bytes, limits: limits,
                    documents: { customerOrderID in
                        byCustomer[OrderKey(identity: identity, customerOrderID: customerOrderID)].flatMap {
                            orders[$0]?.machine.recognizableDocuments
                        }
                            ?? []
                    }, recent: &recentDocuments)
            }
        } catch {
            logger.notice("dropped unparseable message", metadata: ["from": "\(source)", "error": "\(error)"])
            return
        }
        let json = parsed.json
        let message: CPNPMessage
        do {
            message = try measure(.decode) { () throws(CPNPDecodingError) -> CPNPMessage in try CPNPCodec.decode(parsed) }
        } catch {
            logger.notice("invalid message", metadata: ["from": "\(source)", "error": "\(error)"])
            // FAIL 1 when the ids can be read (docs/protocol.md §6, A6), an unknown or missing method included; never
            // for an ACK, FAIL or PROCESSING (no answer loops).
            if let correlation = CPNPCodec.correlation(of: json), correlation.method.map({ ![.ack, .fail, .processing].contains($0) }) ?? true {
                await sendStatelessFail(
                    .messageValidationError, error.description, transactionID: correlation.transactionID,
                    customerOrderID: correlation.customerOrderID,
                    providerOrderID: nil, session: datagram.session, identity: datagram.identity, now: now)
            }
            return
        }
        metrics.received(message)
        let key = OrderKey(identity: identity, customerOrderID: message.customerOrderID)
        await enterBatch(key)
        if case .quotation(let quotation) = message, byCustomer[key].flatMap({ orders[$0] }) == nil,
            let refused = refusedQuotations[RefusedQuotationKey(identity: identity, transactionID: quotation.transactionID)]
        {
            // A retransmission of a QUOTATION already answered gets that answer again and changes
            // nothing, whatever became of its order (§11.3, §11.4).
            if refused.sequenceNumber == quotation.sequenceNumber {
                await sendLimitedFail(refused.answer, identity: identity, session: datagram.session, now: now)
            }
            return
        }
        let closed: StoredOrder?
        do {
            closed = try readBack(key)
        } catch {
            logger.error("store read failed; message dropped (the client retransmits)", metadata: ["from": "\(source)", "error": "\(error)"])
            return
        }
        if case .quotation(let quotation) = message, byCustomer[key].flatMap({ orders[$0] }) == nil {
            if await answerForClosedOrder(message, stored: closed, datagram: datagram, identity: identity, now: now) { return }
            await newQuotation(quotation, datagram: datagram, identity: identity, now: now) {
                recentDocuments.remember(carriedBy: message, parsed: parsed, limits: limits)
            }
            return
        }
        guard let providerOrderID = byCustomer[key], let openTransactionID = orders[providerOrderID]?.machine.transaction.id else {
            if await answerForClosedOrder(message, stored: closed, datagram: datagram, identity: identity, now: now) { return }
            await answerUnknownOrder(message, datagram: datagram, now: now)
            return
        }
        if let receivedProviderOrderID = message.providerOrderID, receivedProviderOrderID != providerOrderID {
            await answerUnknownOrder(message, datagram: datagram, now: now)
            return
        }
        if [.update, .withdraw, .activate].contains(message.method), let peerIdentity = datagram.identity,
            let profile = configuration.customerProfile(matching: peerIdentity.names),
            PortalSessions.customer(of: datagram.session.remote) == nil, !profile.admits(address: datagram.session.remote.host)
        {
            guard message.transactionID != openTransactionID else {
                await sendStatelessFail(
                    .authorizationFailed, "source address not allowed", transactionID: message.transactionID,
                    customerOrderID: message.customerOrderID,
                    providerOrderID: providerOrderID, session: datagram.session, identity: datagram.identity, now: now)
                return
            }
            let actions = mutate(providerOrderID) { machine, rng in
                machine.refuseNewTransaction(
                    message, status: .authorizationFailed, diagnostic: "source address not allowed", session: datagram.session, using: &rng)
            }
            await perform(actions, order: providerOrderID, now: now)
            return
        }
        let actions =
            orders.modify(providerOrderID) { (live: inout LiveOrder) -> [ServerOrderStateMachine.Action] in
                live.identity = datagram.identity ?? live.identity
                live.clientAddress = source
                if message.method == .update, live.machine.transaction.id != message.transactionID { live.negotiationStarted = .now }
                return live.machine.messageReceived(message, session: datagram.session, now: now, using: &rng)
            } ?? []
        receivingMethod = message.method
        await perform(actions, order: providerOrderID, now: now)
    }

    /// A QUOTATION for a new order; `validated` runs once the message is found valid.
    private func newQuotation(
        _ quotation: QuotationMessage, datagram: InboundDatagram, identity: String, now: CPNPTimestamp, validated: () -> Void = {}
    ) async {
        if let issue = CPNPMessage.quotation(quotation).validationIssues().first(where: { $0.severity == .error }) {
            await refuseQuotation(quotation, .messageValidationError, issue.description, identity: identity, session: datagram.session, now: now)
            return
        }
        validated()
        guard quotationLimiter.allow(identity, now: now), sharedQuotationRateAllows(identity, now: now) else {
            logger.warning("QUOTATION rate limit exceeded", metadata: ["client": "\(identity)"])
            await refuseQuotation(
                quotation, .administrativelyProhibited, "too many quotation orders; retry later", identity: identity, session: datagram.session,
                now: now)
            return
        }
        // A provider order id never equals a customer order id of that client (§13).
        var providerOrderID = ProviderOrderID.timeOrdered(at: now, using: &rng)
        while providerOrderID.rawValue == quotation.customerOrderID.rawValue || orders[providerOrderID] != nil
            || ((try? store.customerOrderIDExists(clientIdentity: identity, providerOrderID.rawValue)) ?? false)
        {
            providerOrderID = ProviderOrderID.timeOrdered(at: now, using: &rng)
        }
        let (machine, actions) = ServerOrderStateMachine.quotationReceived(
            quotation, session: datagram.session, providerOrderID: providerOrderID, now: now, configuration: machineConfiguration,
            requestValidated: true, using: &rng)
        orders[providerOrderID] = LiveOrder(
            machine: machine, clientIdentity: identity, identity: datagram.identity, clientAddress: datagram.session.remote.description,
            negotiationStarted: .now)
        byCustomer[OrderKey(identity: identity, customerOrderID: quotation.customerOrderID)] = providerOrderID
        logger.info(
            "QUOTATION received",
            metadata: ["order": "\(providerOrderID)", "customer-order": "\(quotation.customerOrderID)", "client": "\(identity)"])
        receivingMethod = .quotation
        await perform(actions, order: providerOrderID, now: now)
    }

    /// A message for an order of this client that already ended: its stored machine answers, so a
    /// retransmission whose answer was lost (the ACK of a WITHDRAW, DECLINE or CANCEL) gets that answer
    /// again and a repeated WITHDRAW gets ACK (§11.4, §9.2.8); a closed order never re-opens. False when
    /// the client has no such order.
    private func answerForClosedOrder(_ message: CPNPMessage, stored: StoredOrder?, datagram: InboundDatagram, identity: String, now: CPNPTimestamp)
        async -> Bool
    {
        guard let stored, !stored.isOpen,
            message.providerOrderID == nil || message.providerOrderID == stored.providerOrderID
        else { return false }
        // A QUOTATION belongs to the closed order only when it is of one of its transactions; else it
        // opens a new order with the same customer order id.
        if message.method == .quotation, message.transactionID != stored.machine.transaction.id,
            !stored.machine.closedTransactionIDs.contains(message.transactionID)
        {
            return false
        }
        // The stored machine answers through the same path as an open order's: its change is committed
        // with the batch, then its messages are sent, and it leaves memory again (GroupCommit.swift).
        let providerOrderID = stored.providerOrderID
        var closedOrder = LiveOrder(
            machine: stored.machine, clientIdentity: identity, identity: datagram.identity, clientAddress: datagram.session.remote.description)
        closedOrder.revision = stored.revision
        orders.admit(providerOrderID, closedOrder)
        let answer = mutate(providerOrderID) { machine, rng in machine.messageReceived(message, session: datagram.session, now: now, using: &rng) }
        guard let live = orders[providerOrderID], !ServerOrderStore.isOpen(live.machine) else {
            // A closed order never re-opens (and the open-order count it just took is given back).
            orders[providerOrderID] = nil
            return true
        }
        let actions = answer.filter { action in
            guard case .send(.fail(let fail), _) = action, !failLimiter.allow(identity, now: now) else { return true }
            logger.debug("FAIL rate limit reached; answer suppressed", metadata: ["client": "\(identity)", "status": "\(fail.statusCode.rawValue)"])
            return false
        }
        guard !actions.isEmpty else {
            orders[providerOrderID] = nil
            return true
        }
        await perform(actions, order: providerOrderID, now: now)
        return true
    }

    /// Refuses a QUOTATION before any order exists (validation, rate limit): the FAIL is remembered
    /// with its transaction, so a retransmission gets the same FAIL and is never decided later (§11.3).
    private func refuseQuotation(
        _ q: QuotationMessage, _ status: FailStatusCode, _ diagnostic: String, identity: String, session: CPNPSession, now: CPNPTimestamp
    ) async {
        let fail = FailMessage(
            sequenceNumber: .randomInitial(using: &rng), transactionID: q.transactionID, customerOrderID: q.customerOrderID,
            providerOrderID: nil, statusCode: status, diagnostic: diagnostic)
        let key = RefusedQuotationKey(identity: identity, transactionID: q.transactionID)
        if refusedQuotations[key] == nil {
            refusedQuotationOrder.append(key)
            if refusedQuotationOrder.count > Self.refusedQuotationMemory { refusedQuotations[refusedQuotationOrder.removeFirst()] = nil }
        }
        refusedQuotations[key] = RefusedQuotation(sequenceNumber: q.sequenceNumber, answer: fail)
        metrics.ended(.refused, after: nil)
        logger.notice("QUOTATION refused", metadata: ["client": "\(identity)", "status": "\(status.rawValue)", "diagnostic": "\(diagnostic)"])
        await sendLimitedFail(fail, identity: identity, session: session, now: now)
    }

    /// Sends a FAIL unless the client is over its FAIL rate (RFC 8921 §13).
    private func sendLimitedFail(_ fail: FailMessage, identity: String, session: CPNPSession, now: CPNPTimestamp) async {
        guard failLimiter.allow(identity, now: now) else {
            logger.debug("FAIL rate limit reached; answer suppressed", metadata: ["client": "\(identity)"])
            return
        }
        await send(.fail(fail), on: session)
    }

    private func answerUnknownOrder(_ message: CPNPMessage, datagram: InboundDatagram, now: CPNPTimestamp) async {
        switch message.method {
        case .ack, .fail, .processing, .quotation:
            logger.debug("discarded \(message.method) matching no order", metadata: ["from": "\(datagram.session.remote)"])
        default:
            await sendStatelessFail(
                .messageValidationError, "no order matches customer-order-id \(message.customerOrderID) for this client",
                transactionID: message.transactionID, customerOrderID: message.customerOrderID, providerOrderID: nil,
                session: datagram.session, identity: datagram.identity, now: now)
        }
    }

    private func sendStatelessFail(
        _ status: FailStatusCode, _ diagnostic: String, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID?, session: CPNPSession, identity: ClientIdentity?, now: CPNPTimestamp
    ) async {
        // Counted per customer, as every other FAIL is (RFC 8921 §13).
        let key = identityKey(identity, session: session)
        guard failLimiter.allow(key, now: now) else {
            logger.debug("FAIL rate limit reached; answer suppressed", metadata: ["client": "\(key)"])
            return
        }
        let fail = FailMessage(
            sequenceNumber: .randomInitial(using: &rng), transactionID: transactionID, customerOrderID: customerOrderID,
            providerOrderID: providerOrderID, statusCode: status, diagnostic: diagnostic)
        logger.notice("FAIL \(status.rawValue) sent", metadata: ["to": "\(session.remote)", "diagnostic": "\(fail.diagnostic ?? "")"])
        await send(.fail(fail), on: session)
    }

    /// Encodes and sends one message (measured when profiling); while a batch is open, once its
    /// transaction has committed.
    func send(_ machine: CPNPMessage, on session: CPNPSession) async {
        if batch != nil {
            batch!.steps.append(.send(machine, session))
            return
        }
        metrics.sent(machine)
        let bytes = measure(.encode) { CPNPCodec.encode(machine) }
        if let outbound {
            // Straight to the transport when it can take it without waiting (in order, on its event
            // loop); else through the sender task.
            if !sink.sendWithoutWaiting(bytes, on: session) { outbound.yield((bytes, session)) }
            return
        }
        guard profile != nil else { return await sink.send(bytes, on: session) }
        let start = ContinuousClock.now
        await sink.send(bytes, on: session)
        profile?.add(.send, ContinuousClock.now - start)
    }

    // MARK: - Timers

    func arm(_ order: ProviderOrderID, _ timer: EngineTimer, at: CPNPTimestamp) {
        let key = TimerKey(order: order, timer: timer)
        deadlines[key] = at
        guard !manualTimers else { return }
        timers.arm(key, at: at) { [weak self] key in
            await self?.timerFired(key)
        }
    }

    func cancelTimer(_ order: ProviderOrderID, _ timer: EngineTimer) {
        let key = TimerKey(order: order, timer: timer)
        deadlines[key] = nil
        timers.cancel(key)
    }

    func cancelTimers(of order: ProviderOrderID) {
        deadlines = deadlines.filter { $0.key.order != order }
        timers.cancelAll { $0.order == order }
    }

    func timerFired(_ key: TimerKey) async {
        await flushBatch()
        deadlines[key] = nil
        guard orders[key.order] != nil else { return }
        let now = clock.now()
        switch key.timer {
        case .machine(let timer):
            if timer == .retransmission { metrics.retransmitted() }
            let actions = mutate(key.order) { machine, _ in machine.timerFired(timer, now: now) }
            await perform(actions, order: key.order, now: now)
        case .moreTimeRequest:
            await requestMoreTime(key.order, now: now)
        }
    }

    /// Fires every timer due at the clock's time, earliest first, including those the firings arm
    /// (tests with a manual clock and `manualTimers`).
    func fireDueTimers() async {
        for _ in 0..<10_000 {
            let now = clock.now()
            guard let due = deadlines.filter({ $0.value <= now }).min(by: { $0.value < $1.value }) else { return }
            await timerFired(due.key)
        }
    }

    /// When `timer` of `order` is armed to fire, if it is.
    func deadline(_ order: ProviderOrderID, _ timer: EngineTimer) -> CPNPTimestamp? {
        deadlines[TimerKey(order: order, timer: timer)]
    }

    // MARK: - More time while an operator decides (RFC 8921 §9.2.2, §11.2.1, Figures 11 and 12)

    private func mayRequestMoreTime(_ live: LiveOrder) -> Bool {
        live.awaitingApproval && live.machine.state == .awaitingProcessing && live.machine.requestedOfferTime == nil
            && live.machine.expectedOfferTime != nil && !live.machine.moreTimeRefused
            && live.machine.moreTimeRequests < configuration.timers.moreTime.maximumRequests
    }

    /// Arms the next request for more time `more-time.request-before` the expected offer time in force.
    private func scheduleMoreTimeRequest(_ providerOrderID: ProviderOrderID) {
        guard let live = orders[providerOrderID], mayRequestMoreTime(live), let expectedOfferTime = live.machine.expectedOfferTime else {
            cancelTimer(providerOrderID, .moreTimeRequest)
            return
        }
        arm(providerOrderID, .moreTimeRequest, at: expectedOfferTime - configuration.timers.moreTime.requestBefore)
    }

    /// Sends PROCESSING with a new expected offer time; the client answers ACK or FAIL 7.
    private func requestMoreTime(_ providerOrderID: ProviderOrderID, now: CPNPTimestamp) async {
        guard let live = orders[providerOrderID], mayRequestMoreTime(live), let expectedOfferTime = live.machine.expectedOfferTime else { return }
        let until = max(expectedOfferTime, now) + configuration.timers.moreTime.extensionDuration
        let subcode: ProcessingSubcode? = live.approvalOffer == nil ? .upgradeOfLocalResources : nil
        let actions = mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in
            try machine.requestMoreTime(until: until, subcode: subcode, now: now)
        }
        guard !actions.isEmpty else { return }
        logger.notice(
            "order still awaits approval: more time requested",
            metadata: [
                "order": "\(providerOrderID)", "until": "\(until.rfc3339)", "request": "\(live.machine.moreTimeRequests + 1)",
            ])
        await perform(actions, order: providerOrderID, now: now)
    }

    // MARK: - Decisions (RFC 8921 §8.2, §12.2)

    /// Runs the decision engine for an order in PQOReceived/AwaitingProcessing.
    private func decide(_ providerOrderID: ProviderOrderID, now: CPNPTimestamp, resumed: Bool = false) async {
        guard let live = orders[providerOrderID] else { return }
        let machine = live.machine
        guard machine.state == .pqoReceived || machine.state == .awaitingProcessing else { return }
        let profile = profile(for: live)
        let identityPresent = live.identity != nil || profile != nil
        let free = measure(.inventory) { inventory(deciding: providerOrderID, live) }
        let decision = measure(.decide) {
            decisionEngine.decide(
                request: machine.requestedCPD, informationElements: machine.requestedInformationElements, profile: profile,
                identityPresent: identityPresent, inventory: free, now: now,
                // The portal's customers signed in with their certificate; source prefixes filter network peers.
                clientAddress: PortalSessions.customer(of: machine.transaction.session.remote) == nil ? machine.transaction.session.remote.host : nil,
                openOrders: max(0, orders.openCount(of: live.clientIdentity) - 1),
                updating: machine.isUpdate ? live.committed : nil, requestValidated: true)
        }
        if live.cascade != nil { return }
        if let (request, hold) = childOrderRequest(providerOrderID, live, decision: decision, profile: profile, now: now) {
            await holdForChildOrders(providerOrderID, request, hold, now: now)
            return
        }
        switch decision {
        case .fail(let code, let diagnostic):
            logger.info("order refused", metadata: ["order": "\(providerOrderID)", "status": "\(code.rawValue)", "diagnostic": "\(diagnostic)"])
            let actions = mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in
                try machine.reject(code, diagnostic: diagnostic, now: now)
            }
            await perform(actions, order: providerOrderID, now: now)
        case .offer(let offer):
            // No suspension point between the decision and the reservation: the actor may not
            // interleave another decision on the same inventory (§8.2; "never more than is free").
            var actions: [ServerOrderStateMachine.Action] = []
            if machine.state == .pqoReceived {
                // The OFFER follows at once: the PROCESSING before it announces no later time than the
                // customer's EXPECTED_RESPONSE_TIME, which would ask it for more time (RFC 8921 §9.2.2).
                var expectedOfferTime = now.adding(configuration.timers.expectedOfferTime)
                if let deadline = machine.customerExpectedResponseTime, deadline > now { expectedOfferTime = min(expectedOfferTime, deadline) }
                actions += mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in
                    try machine.acknowledge(expectedOfferTime: expectedOfferTime, now: now)
                }
            }
            actions += offerActions(providerOrderID, offer, now: now)
            await perform(actions, order: providerOrderID, now: now)
        case .needsApproval(let reason, let offer):
            orders[providerOrderID]?.awaitingApproval = true
            orders[providerOrderID]?.approvalOffer = offer
            logger.notice("order awaits administrative approval", metadata: ["order": "\(providerOrderID)", "reason": "\(reason)"])
            if machine.state == .pqoReceived {
                let expectedOfferTime = now.adding(configuration.timers.approvalExpectedOfferTime)
                // Escalated for lack of capacity: the operator may upgrade local resources (subcode 1, §9.2.2).
                let subcode: ProcessingSubcode? = offer == nil ? .upgradeOfLocalResources : nil
                let actions = mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in
                    try machine.acknowledge(expectedOfferTime: expectedOfferTime, subcode: subcode, now: now)
                }
                await perform(actions, order: providerOrderID, now: now)
            }
            scheduleMoreTimeRequest(providerOrderID)
        }
    }

    /// Records the offer's reservations and makes the offer, synchronously.
    func offerActions(_ providerOrderID: ProviderOrderID, _ offer: Offer, now: CPNPTimestamp, validUntil: CPNPTimestamp? = nil)
        -> [ServerOrderStateMachine.Action]
    {
        let recorded: Void? = orders.modify(providerOrderID) { live in
            if live.machine.isUpdate {
                // Hold what the update adds; the agreement in force keeps its own (§9.2.9).
                live.updateTarget = offer.reservations
                live.offered = DecisionEngine.reservationsDelta(old: live.committed, new: offer.reservations).filter { !$0.mbps.isNegative }
            } else {
                live.offered = offer.reservations
            }
            live.awaitingApproval = false
            live.approvalOffer = nil
        }
        guard recorded != nil else { return [] }
        cancelTimer(providerOrderID, .moreTimeRequest)
        let validity = validUntil.map { min($0, now.adding(configuration.timers.offerValidity)) } ?? now.adding(configuration.timers.offerValidity)
        logger.info(
            "OFFER made", metadata: ["order": "\(providerOrderID)", "satisfies-request": "\(offer.satisfiesRequest)", "gaps": "\(offer.gaps.count)"])
        // Equal requests get equal offers: the offer shares its encoding and reference with the last equal one.
        let offeredCPD = recentOffers.interned(offer.cpd)
        return mutateThrowing(providerOrderID) { machine, rng throws(OrderCommandError) in
            try machine.makeOffer(
                offeredCPD: offeredCPD, validityOfferTime: validity, informationElements: offer.informationElements, now: now, using: &rng)
        }
    }

    /// Applies an operator's decision (`cpnpd admin approve|reject`).
    public func administrativeDecision(
        _ providerOrderID: ProviderOrderID, approve: Bool, status: FailStatusCode = .administrativelyProhibited, diagnostic: String? = nil
    ) async -> String {
        await flushBatch()
        let now = clock.now()
        guard let live = liveOrder(providerOrderID) else { return "unknown or closed order" }
        guard live.machine.state == .awaitingProcessing || live.machine.state == .pqoReceived else {
            return "order is \(live.machine.state.rawValue), nothing to decide"
        }
        if approve {
            // Re-run the decision against the current inventory; approval is granted.
            let profile = profile(for: live)
            let decision = decisionEngine.decide(
                request: live.machine.requestedCPD, informationElements: live.machine.requestedInformationElements, profile: profile,
                identityPresent: true, inventory: inventory(deciding: providerOrderID, live), now: now,
                updating: live.machine.isUpdate ? live.committed : nil)
            switch decision {
            case .offer(let offer), .needsApproval(_, let offer?):
                await perform(offerActions(providerOrderID, offer, now: now), order: providerOrderID, now: now)
                return "approved: offer sent"
            case .fail(let code, let diagnosticText):
                let actions = mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in
                    try machine.reject(code, diagnostic: diagnosticText, now: now)
                }
                await perform(actions, order: providerOrderID, now: now)
                return "approved but nothing can be offered: FAIL \(code.rawValue) (\(diagnosticText))"
            case .needsApproval(_, nil):
                let actions = mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in
                    try machine.reject(.outOfResources, diagnostic: "no capacity", now: now)
                }
                await perform(actions, order: providerOrderID, now: now)
                return "approved but out of resources: FAIL 5"
            }
        }
        let actions = mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in
            try machine.reject(status, diagnostic: diagnostic ?? "rejected by the provider's administrator", now: now)
        }
        await perform(actions, order: providerOrderID, now: now)
        return "rejected: FAIL \(status.rawValue)"
    }

    /// Polls `admin_requests` written by `cpnpd admin` (another process) and applies them.
    public func processAdminRequests() async {
        guard let pending = try? store.pendingAdminRequests(limit: 100) else { return }
        for request in pending where isDrivenHere(request.providerOrderID) {
            let outcome: String
            switch request.action {
            case .approve: outcome = await administrativeDecision(request.providerOrderID, approve: true)
            case .reject(let code, let diagnostic):
                outcome = await administrativeDecision(request.providerOrderID, approve: false, status: code, diagnostic: diagnostic)
            }
            _ = try? store.markAdminRequestProcessed(id: request.id, at: clock.now(), outcome: outcome)
            logger.info("administrative request processed", metadata: ["order": "\(request.providerOrderID)", "outcome": "\(outcome)"])
        }
    }

    /// The customer profile of an order: from the certificate names, or (after a restart, before the
    /// client spoke again) from the stored identity.
    func profile(for live: LiveOrder) -> CustomerProfile? {
        live.identity.flatMap { configuration.customerProfile(matching: $0.names) }
            ?? configuration.customers.first { $0.identity == live.clientIdentity }
    }

    /// Free capacity for deciding `providerOrderID`: link capacities minus every other order's reservations and,
    /// for an UPDATE, minus the order's agreement in force (the decision engine gives it back itself).
    /// From the running totals: O(links), not O(open orders).
    func inventory(deciding providerOrderID: ProviderOrderID, _ live: LiveOrder) -> InventoryView {
        let own = orders[providerOrderID].map { $0.offered + $0.committed } ?? []
        return configuration.inventory(reservations: orders.reservations(minus: own, plus: live.machine.isUpdate ? live.committed : []))
    }

    /// The reservations of an offered CPD, recomputed after a restart for an UPDATE in progress: the
    /// concrete CPD names its links, so an empty inventory maps it as the decision did.
    private func reservations(of cpd: CPD, _ live: LiveOrder) -> [Reservation]? {
        let decision = decisionEngine.decide(
            request: cpd, informationElements: live.machine.requestedInformationElements, profile: profile(for: live),
            identityPresent: true, inventory: configuration.inventory(), now: clock.now(), updating: [])
        switch decision {
        case .offer(let offer), .needsApproval(_, let offer?): return offer.reservations
        default: return nil
        }
    }

    // MARK: - Performing actions

    private func mutate(
        _ providerOrderID: ProviderOrderID,
        _ body: (inout ServerOrderStateMachine, inout SystemRandomNumberGenerator) -> [ServerOrderStateMachine.Action]
    ) -> [ServerOrderStateMachine.Action] {
        orders.modify(providerOrderID) { live in body(&live.machine, &rng) } ?? []
    }

    /// A refused command changes nothing (each machine command checks before it changes), so the order is changed in place.
    func mutateThrowing(
        _ providerOrderID: ProviderOrderID,
        _ body: (inout ServerOrderStateMachine, inout SystemRandomNumberGenerator) throws(OrderCommandError) -> [ServerOrderStateMachine.Action]
    ) -> [ServerOrderStateMachine.Action] {
        do {
            return try orders.modify(providerOrderID) { (live: inout LiveOrder) throws(OrderCommandError) in try body(&live.machine, &rng) } ?? []
        } catch {
            logger.error("decision not applicable", metadata: ["order": "\(providerOrderID)", "error": "\(error)"])
            return []
        }
    }

    /// Performs a machine's actions: commit (with reservations and outbox) before any send, then
    /// sends, timers, and reactions to reports.
    func perform(_ actions: [ServerOrderStateMachine.Action], order providerOrderID: ProviderOrderID, now: CPNPTimestamp) async {
        let method = receivingMethod
        receivingMethod = nil
        guard !actions.isEmpty else { return }
        // Changed in place in the table: a copy taken out and written back would copy the order's box
        // whole, machine included, at its first change (LiveOrder is copy on write).
        let prepared = orders.modify(providerOrderID) { (live: inout LiveOrder) -> (OrderStep, OrderChange?) in
            prepareStep(actions, of: &live, order: providerOrderID, method: method, now: now)
        }
        guard let (step, change) = prepared else { return }
        // Durable with the open batch (or a batch of one, committed here), then sent; reactions run in
        // the next round (GroupCommit.swift). A failed commit withholds the sends and reloads the order.
        let standalone = batch == nil
        if standalone { batch = PendingBatch() }
        batch!.append(step, change: change)
        if standalone { await flushBatch() }
    }

    /// The change and the follow-up of ``perform(_:order:now:)``, with the order's fields updated. It
    /// runs inside the order table's `modify`: it must not read or change `orders`.
    private func prepareStep(
        _ actions: [ServerOrderStateMachine.Action], of live: inout LiveOrder, order providerOrderID: ProviderOrderID, method: MethodCode?,
        now: CPNPTimestamp
    ) -> (OrderStep, OrderChange?) {
        var outbox: [OutboxEvent] = []
        var followUps: [ServerOrderStateMachine.Event] = []
        var reservationsChanged = false
        for case .report(let event) in actions {
            switch event {
            case .agreementReached(let agreement):
                // An update replaces the agreement's reservations by the updated offer's (§9.2.9).
                live.committed = live.updateTarget ?? Reservation.aggregate(live.committed + live.offered)
                live.offered = []
                live.updateTarget = nil
                reservationsChanged = true
                outbox.append(outboxEvent(.agreement, agreement, live))
                if agreement.activation == .active { outbox.append(outboxEvent(.activation, agreement, live)) }
            case .negotiationEnded:
                live.offered = []
                live.updateTarget = nil
                live.awaitingApproval = false
                live.approvalOffer = nil
                reservationsChanged = true
            case .withdrawn(let agreement):
                live.committed = []
                reservationsChanged = true
                outbox.append(outboxEvent(.withdrawal, agreement, live))
            case .testPeriodEnded(let agreement):
                live.committed = []
                reservationsChanged = true
                outbox.append(outboxEvent(.expiry, agreement, live))
            case .activationChanged(let status):
                if let agreement = live.machine.agreement {
                    switch status {
                    case .active: outbox.append(outboxEvent(.activation, agreement, live))
                    case .inactive: outbox.append(outboxEvent(.deactivation, agreement, live))
                    case .scheduled: break
                    }
                }
            default:
                followUps.append(event)
            }
        }
        if actions.contains(where: { if case .armTimer(.offerValidity, _) = $0 { true } else { false } }) { reservationsChanged = true }
        let hasPersist = actions.contains { if case .persist = $0 { true } else { false } }
        // Commit only before a message reveals a change (RFC 8921 §8.11; docs/protocol.md §6): a QUOTATION
        // or ACCEPT received changes nothing a peer or the provisioning side sees until the decision or
        // the agreement that follows it, which commits it too. A crash before then loses only what the
        // customer's retransmission brings back.
        let deferred =
            hasPersist && outbox.isEmpty && !reservationsChanged
            && [.pqoReceived, .acceptReceived].contains(live.machine.state)
            && !actions.contains { if case .send = $0 { true } else { false } }
        var change: OrderChange?
        if deferred {
            live.unwrittenActions += actions.filter { if case .persist = $0 { true } else { false } }
        } else if hasPersist || !outbox.isEmpty {
            // A closing commit deletes the order's reservations itself; an open order gets its list when it changed.
            let held =
                reservationsChanged && ServerOrderStore.isOpen(live.machine)
                ? HeldCapacity(offered: Reservation.aggregate(live.offered), committed: Reservation.aggregate(live.committed)) : nil
            change = OrderChange(
                machine: live.machine, clientIdentity: live.clientIdentity, clientAddress: live.clientAddress, at: now,
                actions: live.unwrittenActions + actions, reservations: held, capacityLimits: capacityLimits(for: held ?? .empty), outbox: outbox)
            if sharesStore { shareChange(&change!, of: &live) }
            live.revision += 1
            live.unwrittenActions = []
        }
        let post = PostCommit(
            order: providerOrderID, actions: actions, state: live.machine.state, closes: !ServerOrderStore.isOpen(live.machine),
            key: OrderKey(identity: live.clientIdentity, customerOrderID: live.machine.customerOrderID), method: method)
        return (OrderStep(hasChange: change != nil, deferred: deferred, post: post, followUps: followUps, now: now), change)
    }

    /// Engine reactions to what the machine reports.
    func react(_ event: ServerOrderStateMachine.Event, order providerOrderID: ProviderOrderID, now: CPNPTimestamp) async {
        switch event {
        case .quotationReceived:
            await decide(providerOrderID, now: now)
        case .updateReceived:
            await decide(providerOrderID, now: now)
        case .moreTimeGranted(let until):
            logger.info("client granted more time", metadata: ["order": "\(providerOrderID)", "until": "\(until.rfc3339)"])
            scheduleMoreTimeRequest(providerOrderID)
        case .moreTimeRejected:
            // No more requests: the operator must decide before the expected offer time in force (§11.2.1).
            cancelTimer(providerOrderID, .moreTimeRequest)
            logger.notice(
                "client refused more time",
                metadata: [
                    "order": "\(providerOrderID)", "expected-offer-time": "\(orders[providerOrderID]?.machine.expectedOfferTime?.rfc3339 ?? "-")",
                ])
        case .acceptReceived:
            // Resources stay reserved as offered; commit them with Completed, then ACK (§11.2.1). A
            // CANCEL or an invalid message may have ended the negotiation meanwhile.
            guard orders[providerOrderID]?.machine.state == .acceptReceived else { return }
            if acceptsChildrenFirst(providerOrderID) {
                acceptChildrenThenConfirm(providerOrderID)
                return
            }
            let actions = mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in try machine.agreementConfirmed(now: now) }
            await perform(actions, order: providerOrderID, now: now)
        case .withdrawalRequested:
            // A test period that ended meanwhile has completed the withdrawal already.
            guard orders[providerOrderID]?.machine.withdrawalPending == true else { return }
            let actions = mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in try machine.withdrawalConfirmed(now: now) }
            await perform(actions, order: providerOrderID, now: now)
        default:
            break
        }
    }

    /// The limits the store re-checks in the commit: those of the resources the order holds after it.
    /// A change can only raise the totals there (elsewhere it holds nothing, so it released or kept
    /// nothing), so checking every link would only re-scan unchanged totals.
    private func capacityLimits(for held: HeldCapacity) -> [Reservation.Key: CPNPDecimal] {
        var out: [Reservation.Key: CPNPDecimal] = [:]
        for (_, reservation) in held.byKind {
            guard let link = linksByID[reservation.linkID] else { continue }
            out[reservation.key] = link.capacity[reservation.direction]
        }
        return out
    }

    /// A provisioning event of the order (RFC 8921 §8.2), recorded as delivered when no hook takes it.
    /// An event of the agreement, its accepted CPD stored once and named by the event (docs/design/storage.md).
    private func outboxEvent(_ kind: OutboxEventKind, _ agreement: Agreement, _ live: LiveOrder) -> OutboxEvent {
        OutboxEvent(
            kind: kind, payload: Self.payload(agreement, live), document: agreement.acceptedCPD,
            delivered: !ProvisioningWorker.handsOff(kind, configuration.provisioning))
    }

    /// The provisioning hook's view of the agreement; its CPD follows under `cpd` (``OutboxEvent/document``).
    static func payload(_ agreement: Agreement, _ live: LiveOrder) -> JSONValue {
        .object(
            JSONObject([
                ("provider-order-id", .string(agreement.providerOrderID.rawValue)),
                ("customer-order-id", .string(agreement.customerOrderID.rawValue)),
                ("customer", .string(live.clientIdentity)),
                ("activation-type", .string(agreement.activationType.rawValue)),
                ("activation", .string(agreement.activation.description)),
                ("purpose", .string(agreement.purpose.rawValue)),
            ]))
    }

    /// The key of a client's orders: its customer profile's identity. An authenticated client that
    /// matches no profile (or two) gets a key no profile can have, so it never reaches a customer's
    /// orders by a name in its certificate (§13).
    private func identityKey(_ identity: ClientIdentity?, session: CPNPSession) -> String {
        guard let identity else { return "unauthenticated:\(session.remote.host)" }
        return configuration.customerProfile(matching: identity.names)?.identity ?? "unmatched:\(identity.subject)"
    }

    // MARK: - Introspection (tests, admin)

    /// The live machine of an open order.
    public func machine(_ providerOrderID: ProviderOrderID) -> ServerOrderStateMachine? {
        orders[providerOrderID]?.machine ?? (try? store.order(providerOrderID: providerOrderID)).flatMap { $0.isOpen ? $0.machine : nil }
    }
    /// Open orders, in memory or at rest in the store.
    public var openOrderCount: Int { orders.openByClient.values.reduce(0, +) }
    /// Open orders in memory: those with something in flight.
    public var residentOrderCount: Int { orders.count }
    /// Orders waiting for an operator.
    public var ordersAwaitingApproval: [ProviderOrderID] { orders.all.filter { $0.value.awaitingApproval }.map(\.key) }

    /// What the gauges of `/metrics` show; the counts of orders and capacity are read from the store
    /// (every instance's). Throws when the store cannot be read. The open orders by state are counted
    /// on the caller's thread, not the engine's: the count reads every open order (about 0.5 s for
    /// 150,000 of them; docs/performance.md, round 18), and each scrape of `/metrics` asks for it.
    public nonisolated func gauges() async throws -> EngineGauges {
        let openOrdersByState = try store.openOrderCountsByState()
        return try await gauges(openOrdersByState: openOrdersByState)
    }

    private func gauges(openOrdersByState: [String: Int]) throws -> EngineGauges {
        var reserved: [String: [String: Double]] = [:]
        for (key, total) in try store.keptReservedTotals() {
            reserved[key.linkID, default: [:]][key.direction.rawValue] = Double(total.description) ?? 0
        }
        var capacity: [String: [String: Double]] = [:]
        for link in configuration.policy.links {
            capacity[link.id] = [
                "incoming": Double(link.capacity.incoming.description) ?? 0, "outgoing": Double(link.capacity.outgoing.description) ?? 0,
            ]
        }
        return EngineGauges(
            inboxDepth: inbox.state.withLock { $0.queue.count }, armedTimers: deadlines.count, residentOrders: orders.count,
            isReady: isReady, openOrdersByState: openOrdersByState, reservedMbps: reserved, capacityMbps: capacity,
            walCheckpoints: store.walCheckpoints)
    }
}
