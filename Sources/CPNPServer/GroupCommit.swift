import CPNPCore
import Logging
import CPNPPolicy
import CPNPStorage
import CPNPRuntime
import Synchronization

/// Group commit (docs/design/storage.md): the engine handles the datagrams that queued up while it was busy as one
/// batch, and commits the order changes they cause in ONE store transaction (one WAL commit and fsync),
/// each change in its own savepoint. Durability is unchanged: every message a change reveals is sent
/// only after the transaction holding that change committed (RFC 8921 §8.11), and a change that fails
/// is rolled back alone, its order reloaded from the store and its messages withheld.
///
/// Ordering per order is unchanged too. The changes an order's *reactions* cause (a QUOTATION's
/// decision, an ACCEPT's confirmation, a WITHDRAW's release) wait for the next round: the batch commits,
/// its messages go out, then the reactions run and their changes form the next round's transaction.
/// A second datagram for an order already in the batch closes the batch first.
extension CPNPServerEngine {
    /// One step of an open batch, performed in order once the batch's transaction has committed.
    enum BatchStep {
        /// An order's change and what follows it. Indirect: a step is large (its actions), and a batch's
        /// steps are read twice after the commit.
        indirect case order(OrderStep)
        /// A message that reveals no change of an open order (a stateless FAIL, an answer for a closed order).
        case send(CPNPMessage, CPNPSession)
    }

    struct OrderStep {
        /// Whether it has a change, the next of ``PendingBatch/changes`` (none when its actions only send or arm timers).
        var hasChange: Bool
        /// Its state change waits for the order's next commit (nothing it causes reveals it).
        var deferred = false
        var post: PostCommit
        var followUps: [ServerOrderStateMachine.Event]
        var now: CPNPTimestamp
    }

    /// What ``CPNPServerEngine/perform(_:order:now:)`` does once the change is durable.
    struct PostCommit {
        var order: ProviderOrderID
        var actions: [ServerOrderStateMachine.Action]
        /// The state committed (for the test fault hook).
        var state: ServerOrderStateMachine.State
        /// The order closed with this change: forget it once its messages are sent.
        var closes: Bool
        var key: OrderKey
        /// The received message that caused the change, if one did (for the log).
        var method: MethodCode?
    }

    struct PendingBatch {
        var steps: [BatchStep] = []
        /// The steps' changes, in order: what the store commits, kept apart so that none is copied out of its step.
        var changes: [OrderChange] = []
        /// Orders that datagrams of this batch addressed (client identity and customer order id).
        var touched: Set<OrderKey> = []

        mutating func append(_ step: OrderStep, change: OrderChange?) {
            if let change { changes.append(change) }
            steps.append(.order(step))
        }
    }

    /// Datagrams waiting for the engine (``CPNPServerEngine/submit(_:)``), bounded. A datagram identical to
    /// one still queued from the same session (a client's retransmission while the server is busy,
    /// RFC 8921 §11.4) is coalesced with it: handling it again would only repeat the same answer.
    final class Inbox: Sendable {
        /// A queued datagram, equal to another with the same session and bytes, hashed once when it
        /// arrives: the set looks it up when it is queued and again when the engine takes it.
        struct Entry: Hashable {
            let datagram: InboundDatagram
            /// The session and the bytes, the bytes hashed in one block, not byte by byte as `[UInt8]` hashes them.
            let digest: Int

            init(_ datagram: InboundDatagram) {
                self.datagram = datagram
                var hasher = Hasher()
                hasher.combine(datagram.session)
                hasher.combine(datagram.bytes.count)
                datagram.bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
                digest = hasher.finalize()
            }

            func hash(into hasher: inout Hasher) { hasher.combine(digest) }

            static func == (lhs: Entry, rhs: Entry) -> Bool {
                lhs.digest == rhs.digest && lhs.datagram.session == rhs.datagram.session && lhs.datagram.bytes == rhs.datagram.bytes
            }
        }

        struct State {
            var queue: [Entry] = []
            /// The queued datagrams, for coalescing copies.
            var queued: Set<Entry> = []
            var draining = false
            var dropped = 0
            var coalesced = 0
        }

        let state = Mutex(State())
        let capacity: Int
        init(capacity: Int) { self.capacity = capacity }
    }

    /// Group commit figures since start.
    public struct CommitStatistics: Sendable, Hashable {
        /// Batches of datagrams handled, and the datagrams in them.
        public var batches = 0
        public var datagrams = 0
        /// Store transactions written by batches, and the order changes in them.
        public var transactions = 0
        public var changes = 0
        /// The most changes one transaction held.
        public var largestTransaction = 0
        /// Time spent waiting for the store's commits, in total: divided by `transactions`, the commit latency.
        public var commitTime: Duration = .zero
        /// Changes the store refused (rolled back alone; their orders reloaded, their messages withheld).
        public var failedChanges = 0
        /// Datagrams dropped because the inbox was full (the client retransmits, RFC 8921 §11.4).
        public var inboxDropped = 0
        /// Copies of a datagram still queued, coalesced with it (retransmissions while the engine was busy).
        public var inboxCoalesced = 0
    }

    /// The largest batch taken from the inbox at once.
    static let maximumBatch = 256

    // MARK: - Intake

    /// Queues a received datagram without waiting for the engine (cpnpd's receive loop): what queues
    /// while the engine is busy is handled, and committed, as one batch. A copy of a datagram still
    /// queued is coalesced with it. False when the inbox is full and the datagram was dropped
    /// (silently, as the network may; the client retransmits).
    @discardableResult
    public nonisolated func submit(_ datagram: InboundDatagram) -> Bool {
        let entry = Inbox.Entry(datagram)
        let (accepted, startDrain) = inbox.state.withLock { state -> (Bool, Bool) in
            guard state.queue.count < inbox.capacity else {
                if state.queued.contains(entry) {
                    state.coalesced += 1
                    return (true, false)
                }
                state.dropped += 1
                return (false, false)
            }
            guard state.queued.insert(entry).inserted else {
                state.coalesced += 1
                return (true, false)
            }
            state.queue.append(entry)
            if state.draining { return (true, false) }
            state.draining = true
            return (true, true)
        }
        // Enqueued on the engine's executor from this thread: on the transport's event loop, no thread
        // switch (a plain Task would start on the global pool and hop from there).
        guard startDrain else { return accepted }
        if #available(macOS 26, *) { Task.immediate { await self.drainInbox() } } else { Task { await self.drainInbox() } }
        return accepted
    }

    /// Datagrams queued and not yet taken by the engine.
    public nonisolated var inboxDepth: Int { inbox.state.withLock { $0.queue.count } }

    /// Handles the inbox batch by batch until it is empty.
    func drainInbox() async {
        while true {
            let (next, dropped, coalesced) = inbox.state.withLock { state -> ([InboundDatagram], Int, Int) in
                let counts = (state.dropped, state.coalesced)
                state.dropped = 0
                state.coalesced = 0
                guard !state.queue.isEmpty else {
                    state.draining = false
                    return ([], counts.0, counts.1)
                }
                let count = min(state.queue.count, Self.maximumBatch)
                let taken = state.queue.prefix(count).map(\.datagram)
                for entry in state.queue.prefix(count) { state.queued.remove(entry) }
                state.queue.removeFirst(count)
                return (taken, counts.0, counts.1)
            }
            commitStatistics.inboxCoalesced += coalesced
            if dropped > 0 {
                commitStatistics.inboxDropped += dropped
                logger.warning("inbox full: datagrams dropped", metadata: ["dropped": "\(dropped)", "capacity": "\(inbox.capacity)"])
            }
            guard !next.isEmpty else { return }
            await receive(batch: next)
        }
    }

    /// Handles several received messages as one batch: their changes are committed together (group
    /// commit), then their messages are sent, in arrival order.
    public func receive(batch datagrams: [InboundDatagram]) async {
        await flushBatch()
        commitStatistics.batches += 1
        commitStatistics.datagrams += datagrams.count
        for datagram in datagrams {
            if batch == nil { batch = PendingBatch() }
            await receiveOne(datagram)
        }
        await flushBatch()
    }

    /// Called before a datagram for `key` is handled: a batch that already holds a change of that
    /// order is committed (and its messages sent) first, so that the order's state is durable and its
    /// changes stay in sequence.
    func enterBatch(_ key: OrderKey) async {
        guard batch != nil else { return }
        if batch!.touched.contains(key) { await flushBatch(reopen: true) }
        batch?.touched.insert(key)
    }

    // MARK: - Commit

    /// Commits the open batch in one transaction, performs its steps in order (sends, timers), then runs
    /// the reactions of its orders as the next round, until no reaction remains. With `reopen`, leaves
    /// an empty batch open.
    func flushBatch(reopen: Bool = false) async {
        var touched: Set<OrderKey> = []
        while let pendingBatch = batch {
            batch = nil
            touched.formUnion(pendingBatch.touched)
            guard !pendingBatch.steps.isEmpty else { break }
            let changes = pendingBatch.changes
            var results: [Result<Int64, any Error>] = []
            if !changes.isEmpty {
                let started = ContinuousClock.now
                do {
                    results = try measure(.commit) { try store.commit(batch: changes) }
                } catch {
                    results = changes.map { _ in .failure(error) }
                    if sharesStore, case StoreError.databaseUnavailable? = error as? StoreError { markNotReady(error) }
                }
                commitStatistics.commitTime += ContinuousClock.now - started
                metrics.committed(changes: changes.count, in: ContinuousClock.now - started)
                commitStatistics.transactions += 1
                commitStatistics.changes += changes.count
                commitStatistics.largestTransaction = max(commitStatistics.largestTransaction, changes.count)
            }
            // Failed changes first: reload their orders before anything else runs.
            var outcome: [Bool] = []
            var failed = Set<ProviderOrderID>()
            var index = 0
            for step in pendingBatch.steps {
                guard case .order(let orderStep) = step else { continue }
                var succeeded = !failed.contains(orderStep.post.order)
                if orderStep.hasChange {
                    if case .failure(let error) = results[index], succeeded {
                        logger.error("commit failed; messages withheld", metadata: ["order": "\(orderStep.post.order)", "error": "\(error)"])
                        succeeded = false
                    }
                    index += 1
                }
                if !succeeded { failed.insert(orderStep.post.order) }
                outcome.append(succeeded)
            }
            commitStatistics.failedChanges += failed.count
            if !failed.isEmpty { metrics.failed(changes: failed.count) }
            for providerOrderID in failed { reload(providerOrderID) }
            if sharesStore, !failed.isEmpty, results.contains(where: Self.isSharedLimitConflict) { refreshSharedCounts() }

            var reactions: [(ProviderOrderID, [ServerOrderStateMachine.Event], CPNPTimestamp)] = []
            var outcomes = outcome.makeIterator()
            for step in pendingBatch.steps {
                switch step {
                case .send(let message, let session):
                    await send(message, on: session)
                case .order(let orderStep):
                    guard outcomes.next() == true else { continue }
                    if orderStep.hasChange || orderStep.deferred { faultHook?(.committed(orderStep.post.state)) }
                    await runEffects(orderStep.post)
                    if !orderStep.followUps.isEmpty { reactions.append((orderStep.post.order, orderStep.followUps, orderStep.now)) }
                }
            }
            guard !reactions.isEmpty else { break }
            batch = PendingBatch()
            for (providerOrderID, events, now) in reactions {
                for event in events { await react(event, order: providerOrderID, now: now) }
            }
        }
        if reopen {
            batch = PendingBatch()
        } else {
            // An agreement read back for a message that changed nothing (a discarded copy) leaves again.
            let now = clock.now()
            for key in touched { if let providerOrderID = byCustomer[key] { evictIfAtRest(providerOrderID, now: now) } }
        }
    }

    /// The sends, timers and bookkeeping after an order change is durable.
    func runEffects(_ post: PostCommit) async {
        let providerOrderID = post.order
        for action in post.actions {
            switch action {
            case .send(let message, let session):
                faultHook?(.sending(message.method))
                await send(message, on: session)
            case .sendToChildProvider:
                // The engine never starts the machine's nested child order: child orders go through the
                // ChildOrderNegotiator, several upstreams at once (Cascade.swift, docs/protocol.md §5.9).
                logger.warning(
                    "a nested child order's message has no route; child orders go through the cascade coordinator",
                    metadata: ["order": "\(providerOrderID)"])
            case .armTimer(let timer, let time):
                arm(providerOrderID, .machine(timer), at: time)
            case .cancelTimer(let timer):
                cancelTimer(providerOrderID, .machine(timer))
            case .discard(let reason):
                logger.debug("discarded", metadata: ["order": "\(providerOrderID)", "reason": "\(reason)"])
            case .persist(let from, let to, let event):
                guard from != to else { break }
                let logged = logger.logLevel <= .info
                guard logged || events.hasSubscribers else { break }
                let live = orders[providerOrderID]
                if logged {
                    var metadata: Logger.Metadata = ["order": "\(providerOrderID)", "from": "\(from.rawValue)", "to": "\(to.rawValue)"]
                    if let method = post.method { metadata["method"] = "\(method.name)" }
                    if let live {
                        metadata["client"] = "\(live.clientIdentity)"
                        metadata["customer-order"] = "\(live.machine.customerOrderID)"
                    }
                    logger.info("\(from.rawValue) → \(to.rawValue): \(event)", metadata: metadata)
                }
                if let live, events.hasSubscribers {
                    events.publish(
                        .init(
                            providerOrderID: providerOrderID, customerOrderID: live.machine.customerOrderID, clientIdentity: live.clientIdentity,
                            from: from, to: to, event: event, at: clock.now()))
                }
            case .report(let event):
                countOutcome(event, order: providerOrderID)
                notifyChildNegotiator(event, order: providerOrderID)
            }
        }
        if post.closes, let live = orders[providerOrderID], !ServerOrderStore.isOpen(live.machine) {
            orders[providerOrderID] = nil
            byCustomer[post.key] = nil
            cancelTimers(of: providerOrderID)
        }
        evictIfAtRest(providerOrderID, now: clock.now())
    }

    /// A negotiation that ended, or an agreement withdrawn, for the metrics (once durable).
    private func countOutcome(_ event: ServerOrderStateMachine.Event, order providerOrderID: ProviderOrderID) {
        let outcome: EngineMetrics.Outcome
        switch event {
        case .agreementReached: outcome = .agreed
        case .negotiationEnded(let end): outcome = EngineMetrics.outcome(end)
        case .withdrawn:
            metrics.withdrawn()
            return
        default: return
        }
        let started = orders[providerOrderID]?.negotiationStarted
        if started != nil { orders.modify(providerOrderID) { $0.negotiationStarted = nil } }
        metrics.ended(outcome, after: started.map { ContinuousClock.now - $0 })
    }

    /// After a failed commit: the order as the store has it (machine and reservations, timers re-armed),
    /// or forgotten when the store has it closed or not at all.
    func reload(_ providerOrderID: ProviderOrderID) {
        guard let live = orders[providerOrderID] else { return }
        let key = OrderKey(identity: live.clientIdentity, customerOrderID: live.machine.customerOrderID)
        do {
            guard let stored = try store.order(providerOrderID: providerOrderID), stored.isOpen else {
                orders[providerOrderID] = nil
                if byCustomer[key] == providerOrderID { byCustomer[key] = nil }
                cancelTimers(of: providerOrderID)
                return
            }
            var reloaded = live
            reloaded.machine = stored.machine
            let held = try store.reservations(providerOrderID: providerOrderID)
            (reloaded.offered, reloaded.committed) = (held.offered, held.committed)
            if !stored.machine.isUpdate { reloaded.updateTarget = nil }
            reloaded.unwrittenActions = []
            reloaded.revision = stored.revision
            // The work the failed change carried (a decision, an agreement, a withdrawal) is redone by
            // the upkeep, once the store takes writes again.
            if sharesStore { ordersToResume.insert(providerOrderID) }
            if sharesStore, let owner = stored.owner, owner != instanceID {
                // Another instance took the order over: it drives it now (SharedStore.swift).
                logger.notice("order taken over by another instance", metadata: ["order": "\(providerOrderID)", "owner": "\(owner)"])
                orders.evict(providerOrderID)
                if byCustomer[key] == providerOrderID { byCustomer[key] = nil }
                cancelTimers(of: providerOrderID)
                return
            }
            orders[providerOrderID] = reloaded
            // A change that was never written (ACCEPT received) may have cancelled timers the stored machine still has.
            for (timer, time) in stored.machine.armedTimers(now: clock.now()) { arm(providerOrderID, .machine(timer), at: time) }
        } catch {
            // The store cannot even be read: forget the order here; a restart recovers it from disk, and
            // with a shared store the upkeep reads it again once the database answers (SharedStore.swift).
            logger.error(
                "order reload failed; order dropped from memory until the store answers again",
                metadata: ["order": "\(providerOrderID)", "error": "\(error)"])
            if sharesStore, live.revision > 0 { ordersToResume.insert(providerOrderID) }
            orders[providerOrderID] = nil
            if byCustomer[key] == providerOrderID { byCustomer[key] = nil }
            cancelTimers(of: providerOrderID)
        }
    }
}
