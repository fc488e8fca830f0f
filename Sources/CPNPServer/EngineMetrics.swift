public import CoreMetrics
import CPNPCore
public import CPNPStorage

/// What the engine counts for monitoring, through swift-metrics (cpnpd exports them in the
/// Prometheus format at `/metrics`; names and labels in docs/console.md). Every metric is made once,
/// for each label value, when the engine starts: counting is an atomic add.
public struct EngineMetrics: Sendable {
    /// How a negotiation ended (RFC 8921 §9.2): an agreement, or a Cancelled order and why.
    public enum Outcome: String, Sendable, CaseIterable {
        /// ACK of an ACCEPT: an agreement (or an updated one) was reached (§9.2.7).
        case agreed
        /// The provider refused: FAIL (§9.2.4), before or after an order existed.
        case refused
        /// The customer declined the offer (§9.2.8).
        case declined
        /// The customer cancelled the negotiation (§9.2.10).
        case cancelled
        /// The offer's validity or the expected offer time ran out (§9.1.7, §9.1.8).
        case expired
    }

    let received: [MethodCode: Counter]
    let sent: [MethodCode: Counter]
    let fails: [FailStatusCode: Counter]
    let outcomes: [Outcome: Counter]
    let withdrawals: Counter
    let retransmissions: Counter
    let negotiationDuration: [Outcome: CoreMetrics.Timer]
    let commitDuration: CoreMetrics.Timer
    let changesPerCommit: Recorder
    let failedChanges: Counter

    /// - Parameter factory: where the metrics live; the default is the process's ``MetricsSystem``
    ///   (no-op until bootstrapped).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        func counters<Key: Hashable>(_ keys: some Sequence<Key>, _ label: String, _ dimensions: (Key) -> [(String, String)]) -> [Key: Counter] {
            Dictionary(uniqueKeysWithValues: keys.map { ($0, Counter(label: label, dimensions: dimensions($0), factory: factory)) })
        }
        received = counters(MethodCode.allCases, "cpnp_messages_total") { [("method", $0.name), ("direction", "received")] }
        sent = counters(MethodCode.allCases, "cpnp_messages_total") { [("method", $0.name), ("direction", "sent")] }
        fails = counters(FailStatusCode.allCases, "cpnp_fails_sent_total") { [("status_code", "\($0.rawValue)")] }
        outcomes = counters(Outcome.allCases, "cpnp_negotiations_total") { [("outcome", $0.rawValue)] }
        withdrawals = Counter(label: "cpnp_withdrawals_total", factory: factory)
        retransmissions = Counter(label: "cpnp_retransmissions_total", factory: factory)
        negotiationDuration = Dictionary(
            uniqueKeysWithValues: Outcome.allCases.map {
                ($0, CoreMetrics.Timer(label: "cpnp_negotiation_duration_seconds", dimensions: [("outcome", $0.rawValue)], factory: factory))
            })
        commitDuration = CoreMetrics.Timer(label: "cpnp_commit_duration_seconds", factory: factory)
        changesPerCommit = Recorder(label: "cpnp_commit_changes", factory: factory)
        failedChanges = Counter(label: "cpnp_commit_failed_changes_total", factory: factory)
    }

    func received(_ message: CPNPMessage) { received[message.method]?.increment() }

    func sent(_ message: CPNPMessage) {
        sent[message.method]?.increment()
        if case .fail(let fail) = message { fails[fail.statusCode]?.increment() }
    }

    func ended(_ outcome: Outcome, after duration: Duration?) {
        outcomes[outcome]?.increment()
        if let duration { negotiationDuration[outcome]?.recordNanoseconds(Self.nanoseconds(duration)) }
    }

    func committed(changes: Int, in duration: Duration) {
        commitDuration.recordNanoseconds(Self.nanoseconds(duration))
        changesPerCommit.record(changes)
    }

    func failed(changes: Int) { failedChanges.increment(by: changes) }
    func withdrawn() { withdrawals.increment() }
    func retransmitted() { retransmissions.increment() }

    static func outcome(_ end: ServerOrderStateMachine.NegotiationEnd) -> Outcome {
        switch end {
        case .declined: .declined
        case .cancelledByClient: .cancelled
        case .offerExpired, .expectedOfferTimeElapsed: .expired
        case .rejected: .refused
        }
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// What the engine holds, read when metrics are scraped (gauges).
public struct EngineGauges: Sendable {
    /// Datagrams waiting in the inbox.
    public var inboxDepth: Int
    /// Timers armed in this process.
    public var armedTimers: Int
    /// Orders held in memory (those with something in flight).
    public var residentOrders: Int
    /// Whether commits reach the store (``CPNPServerEngine/isReady``).
    public var isReady: Bool
    /// Open orders per RFC state name, every instance's (read from the store).
    public var openOrdersByState: [String: Int]
    /// Capacity reserved (offered and committed) per link and direction ("incoming"/"outgoing"), from the store.
    public var reservedMbps: [String: [String: Double]]
    /// Capacity of each configured link per direction.
    public var capacityMbps: [String: [String: Double]]
    /// The checkpoints of the store's log so far; nil when it keeps none (PostgreSQL).
    public var walCheckpoints: WALCheckpointCounts?

    public init(
        inboxDepth: Int, armedTimers: Int, residentOrders: Int, isReady: Bool, openOrdersByState: [String: Int],
        reservedMbps: [String: [String: Double]], capacityMbps: [String: [String: Double]], walCheckpoints: WALCheckpointCounts? = nil
    ) {
        self.inboxDepth = inboxDepth
        self.armedTimers = armedTimers
        self.residentOrders = residentOrders
        self.isReady = isReady
        self.openOrdersByState = openOrdersByState
        self.reservedMbps = reservedMbps
        self.capacityMbps = capacityMbps
        self.walCheckpoints = walCheckpoints
    }
}
