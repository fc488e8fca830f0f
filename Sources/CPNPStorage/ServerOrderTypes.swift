/// Values written to and read from a ``ServerOrderStore``.
public import CPNPCore

// MARK: - Orders

/// Whether a server order counts as open.
///
/// An order is **open** while a negotiation is in progress or an agreement is in force: every RFC 8921
/// §8.11.2 state but Cancelled (PQOReceived, AwaitingProcessing, OfferProposed, ProcessingReceived,
/// AcceptReceived, Completed, the Child* states). It is **closed** once Cancelled — declined, cancelled,
/// failed, expired, withdrawn, or at the end of its test period — unless a message of its last
/// transaction still awaits retransmission. Open orders are what a restarted server reloads to re-arm
/// its timers (§11.2), and what the per-client cap on open orders counts (§13).
extension ServerOrderStore {
    public static func isOpen(_ machine: ServerOrderStateMachine) -> Bool {
        machine.state != .cancelled || machine.transaction.pending != nil
    }

    /// Whether an engine keeps the order in memory (docs/design/storage.md): while it is open and
    /// something is in flight — a negotiation, a transaction awaiting its answer or retransmitting, a
    /// withdrawal, or a timer (offer validity, test period end, scheduled activation). An agreement at
    /// rest (Completed, nothing pending, no timer) is read from the store when its next message comes.
    public static func isResident(_ machine: ServerOrderStateMachine, now: CPNPTimestamp) -> Bool {
        guard isOpen(machine) else { return false }
        return machine.state != .completed || machine.transaction.pending != nil || machine.withdrawalPending
            || !machine.armedTimers(now: now).isEmpty
    }
}

/// An order as stored, without its machine: what a listing shows.
public struct OrderSummary: Sendable, Hashable {
    public var providerOrderID: ProviderOrderID
    public var customerOrderID: CustomerOrderID
    /// The authenticated identity of the client's certificate (RFC 8921 §13).
    public var clientIdentity: String
    /// The client's transport address of the latest change, `host:port` (`[v6]:port`).
    public var clientAddress: String
    /// The RFC 8921 §8.11.2 state.
    public var state: ServerOrderStateMachine.State
    /// See ``ServerOrderStore/isOpen(_:)``.
    public var isOpen: Bool
    public var createdAt: CPNPTimestamp
    public var updatedAt: CPNPTimestamp
    /// 1 on creation, +1 at each commit; see ``OrderChange/expectedRevision``.
    public var revision: Int64
    /// The `cpnpd` instance that keeps the order in memory and drives it (several instances on one
    /// database, docs/deployment.md), or nil when none does (at rest, closed, or a single instance).
    public var owner: String? = nil
}

/// An order as stored, with its state machine restored from the stored snapshot.
public struct StoredOrder: Sendable, Hashable {
    public var summary: OrderSummary
    /// The machine, exactly as committed; re-arm ``ServerOrderStateMachine/armedTimers(now:)`` after a restart.
    public var machine: ServerOrderStateMachine

    public var providerOrderID: ProviderOrderID { summary.providerOrderID }
    public var customerOrderID: CustomerOrderID { summary.customerOrderID }
    public var clientIdentity: String { summary.clientIdentity }
    public var clientAddress: String { summary.clientAddress }
    public var state: ServerOrderStateMachine.State { summary.state }
    public var isOpen: Bool { summary.isOpen }
    public var owner: String? { summary.owner }
    public var createdAt: CPNPTimestamp { summary.createdAt }
    public var updatedAt: CPNPTimestamp { summary.updatedAt }
    public var revision: Int64 { summary.revision }
}

// MARK: - Audit

/// One entry of the audit trail: a state change with its time, event and client (RFC 8921 §8.11, §12.1).
/// An order, its reservations and its audit trail, read together (``ServerOrderStore/details(providerOrderID:)``).
public struct OrderDetails: Sendable {
    public var order: StoredOrder
    public var reservations: HeldCapacity
    public var audit: [AuditEntry]
}

public struct AuditEntry: Sendable, Hashable {
    /// Increasing in the order entries were written.
    public var id: Int64
    public var providerOrderID: ProviderOrderID
    public var at: CPNPTimestamp
    /// The state names of RFC 8921 §8.11.2 (equal when the state did not change, e.g. "ACTIVATE received").
    public var from: ServerOrderStateMachine.State
    public var to: ServerOrderStateMachine.State
    public var event: String
    public var clientAddress: String
    public var clientIdentity: String
}

// MARK: - Provisioning outbox

/// The kind of a provisioning hand-off event (docs/configuration.md `provisioning`; the "Network
/// Provisioning Manager" of RFC 8921 §8.2). Open-ended: engines may use their own kinds.
public struct OutboxEventKind: RawRepresentable, Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    public var description: String { rawValue }

    /// An agreement was reached (ACK of an ACCEPT, or of an UPDATE).
    public static let agreement: OutboxEventKind = "agreement"
    /// The agreement's service was activated (now or at its scheduled time, §9.2.11).
    public static let activation: OutboxEventKind = "activation"
    /// The agreement's service was deactivated (ACTIVATE with schedule 0, §9.2.11).
    public static let deactivation: OutboxEventKind = "deactivation"
    /// The customer withdrew the agreement (§9.2.8).
    public static let withdrawal: OutboxEventKind = "withdrawal"
    /// The agreement ended, e.g. at the end of a test period (§9.1.10.3).
    public static let expiry: OutboxEventKind = "expiry"
}

/// A provisioning event to append to the outbox within an ``OrderChange``.
public struct OutboxEvent: Sendable, Hashable {
    public var kind: OutboxEventKind
    /// The order as JSON, handed to the provisioning hook.
    public var payload: JSONValue
    /// The order's CPD, stored once (table `documents`) and named by its reference in the event's row
    /// (docs/design/storage.md); a reader finds it in ``OutboxEntry/payload`` under `cpd`, after the
    /// payload's own members. Requires an object payload.
    public var document: CPD?
    /// First delivery attempt not before this time; nil = at the change's time.
    public var notBefore: CPNPTimestamp?
    /// Recorded as delivered when committed: nothing is configured to receive this event, so it stays
    /// in the log (audit) without a delivery round.
    public var delivered: Bool

    public init(kind: OutboxEventKind, payload: JSONValue, document: CPD? = nil, notBefore: CPNPTimestamp? = nil, delivered: Bool = false) {
        self.kind = kind
        self.payload = payload
        self.document = document
        self.notBefore = notBefore
        self.delivered = delivered
    }
}

/// A stored outbox event and its delivery record.
public struct OutboxEntry: Sendable, Hashable {
    /// Increasing in the order events were committed.
    public var id: Int64
    public var providerOrderID: ProviderOrderID
    public var kind: OutboxEventKind
    /// The event's payload, with its document (``OutboxEvent/document``) under `cpd`.
    public var payload: JSONValue
    public var createdAt: CPNPTimestamp
    /// Delivery attempts made so far (successful or not).
    public var attempts: Int
    public var nextAttemptAt: CPNPTimestamp
    public var deliveredAt: CPNPTimestamp?
    public var lastError: String?
}

// MARK: - Administrative requests

/// An operator's decision on an order held for administrative validation (docs/configuration.md
/// `approval`; RFC 8921 §8.2:
/// the provider's decision may involve a manual step).
public enum AdminAction: Sendable, Hashable {
    /// Go on: the engine makes its offer.
    case approve
    /// Refuse the order with FAIL `code` (RFC 8921 §9.2.10) and an optional diagnostic.
    case reject(FailStatusCode, diagnostic: String?)
}

/// An administrative request written by `cpnpd admin approve|reject`, processed by the daemon.
public struct AdminRequest: Sendable, Hashable {
    public var id: Int64
    public var providerOrderID: ProviderOrderID
    public var action: AdminAction
    /// Who asked (operator or host name), when known.
    public var requestedBy: String?
    public var createdAt: CPNPTimestamp
    public var processedAt: CPNPTimestamp?
    /// What the daemon did with it, e.g. "offer sent" or "order is no longer awaiting a decision".
    public var outcome: String?
}

/// Marks an administrative request processed within an ``OrderChange``.
public struct AdminRequestResult: Sendable, Hashable {
    public var id: Int64
    public var outcome: String
    public init(id: Int64, outcome: String) {
        self.id = id
        self.outcome = outcome
    }
}

// MARK: - The unit of writing

/// One atomic change of one order: everything ``ServerOrderStore/commit(_:)`` writes in a single
/// transaction. Commit it before sending the message that reveals it (docs/design/storage.md: an OFFER
/// is durable before it leaves; the ACK of an ACCEPT is sent only once Completed is durable).
public struct OrderChange: Sendable, Hashable {
    /// A state change for the audit trail (RFC 8921 §8.11, §12.1): one per `.persist` action.
    public struct Transition: Sendable, Hashable {
        public var from: ServerOrderStateMachine.State
        public var to: ServerOrderStateMachine.State
        public var event: String
        public init(from: ServerOrderStateMachine.State, to: ServerOrderStateMachine.State, event: String) {
            self.from = from
            self.to = to
            self.event = event
        }
    }

    /// The machine after the event; its snapshot, state and ids are stored.
    public var machine: ServerOrderStateMachine
    /// The authenticated identity of the client (its certificate's), RFC 8921 §13.
    public var clientIdentity: String
    /// The client's address for this change and its audit entries, `host:port`.
    public var clientAddress: String
    /// When the change happened: audit time stamps, `updated_at` (and `created_at` for a new order).
    public var at: CPNPTimestamp
    /// Audit entries to append, in order.
    public var transitions: [Transition]
    /// When non-nil, replaces every reservation of the order, offered and committed (``HeldCapacity/empty``
    /// releases them all). When nil they are kept — except that a closed order never holds any: they are
    /// released. Amounts are exact and never negative (a CHECK constraint refuses it, failing the commit).
    public var reservations: HeldCapacity?
    /// When non-empty, the commit fails with ``StoreError/capacityExceeded(_:total:limit:)`` if, after the
    /// replacement, the total reserved (offered + committed, all orders) on one of these links and
    /// directions exceeds its limit. Checked inside the write transaction, so it holds under any concurrency.
    public var capacityLimits: [Reservation.Key: CPNPDecimal]
    /// Provisioning events to append to the outbox.
    public var outbox: [OutboxEvent]
    /// Administrative requests this change settles.
    public var processedAdminRequests: [AdminRequestResult]
    /// When set, the commit fails with ``StoreError/revisionConflict(orderID:expected:actual:)`` unless the
    /// stored revision equals it (0 = the order must not exist yet).
    public var expectedRevision: Int64?
    /// The instance that keeps the order in memory while it is resident (``OrderSummary/owner``);
    /// stored as nil when the order is not resident.
    public var owner: String?
    /// For a new open order: the commit fails with ``StoreError/openOrderLimitReached(clientIdentity:limit:)``
    /// when the client already has this many open orders (RFC 8921 §13), counted inside the write
    /// transaction, so that several writers never exceed it.
    public var openOrderLimit: Int?
    /// Whether a restarted engine loads the order at once (``ServerOrderStore/isResident(_:now:)``).
    public var resident: Bool { ServerOrderStore.isResident(machine, now: at) }

    public init(
        machine: ServerOrderStateMachine, clientIdentity: String, clientAddress: String? = nil, at: CPNPTimestamp,
        transitions: [Transition] = [], reservations: HeldCapacity? = nil, capacityLimits: [Reservation.Key: CPNPDecimal] = [:],
        outbox: [OutboxEvent] = [], processedAdminRequests: [AdminRequestResult] = [], expectedRevision: Int64? = nil
    ) {
        self.machine = machine
        self.clientIdentity = clientIdentity
        self.clientAddress = clientAddress ?? machine.transaction.session.remote.description
        self.at = at
        self.transitions = transitions
        self.reservations = reservations
        self.capacityLimits = capacityLimits
        self.outbox = outbox
        self.processedAdminRequests = processedAdminRequests
        self.expectedRevision = expectedRevision
    }

    /// A change whose audit entries are the `.persist` actions among `actions`, as the machine returned them.
    public init(
        machine: ServerOrderStateMachine, clientIdentity: String, clientAddress: String? = nil, at: CPNPTimestamp,
        actions: [ServerOrderStateMachine.Action], reservations: HeldCapacity? = nil,
        capacityLimits: [Reservation.Key: CPNPDecimal] = [:], outbox: [OutboxEvent] = [],
        processedAdminRequests: [AdminRequestResult] = [], expectedRevision: Int64? = nil
    ) {
        self.init(
            machine: machine, clientIdentity: clientIdentity, clientAddress: clientAddress, at: at,
            transitions: Self.transitions(in: actions), reservations: reservations, capacityLimits: capacityLimits,
            outbox: outbox, processedAdminRequests: processedAdminRequests, expectedRevision: expectedRevision)
    }

    /// The `.persist` actions of a machine's answer, as audit transitions.
    public static func transitions(in actions: [ServerOrderStateMachine.Action]) -> [Transition] {
        actions.compactMap { action in
            if case .persist(let from, let to, let event) = action { Transition(from: from, to: to, event: event) } else { nil }
        }
    }
}

/// Why ``ServerOrderStore/commit(batch:)`` did not attempt a change.
public enum BatchCommitError: Error, Sendable, Hashable, CustomStringConvertible {
    /// An earlier change of the same order in the batch failed; this one was computed from it.
    case earlierChangeFailed(providerOrderID: String)

    public var description: String {
        switch self {
        case .earlierChangeFailed(let providerOrderID): "order \(providerOrderID): an earlier change in the same batch failed"
        }
    }
}
