/// Pieces shared by the client and server order state machines (RFC 8921 §8.3–8.5, §11.3–11.4).

/// One end of a transport association.
public struct CPNPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The transport 4-tuple of a CPNP session entry (RFC 8921 §8.3), seen from the machine's owner:
/// `local` is this side, `remote` the peer.
public struct CPNPSession: Sendable, Hashable, CustomStringConvertible {
    public var local: CPNPEndpoint
    public var remote: CPNPEndpoint
    public init(local: CPNPEndpoint, remote: CPNPEndpoint) {
        self.local = local
        self.remote = remote
    }
    public var description: String { "\(local)<->\(remote)" }
}

/// RETRANS_TIMER and the maximum retry count (RFC 8921 §8.5, §11.4; docs/protocol.md §5.1).
public struct RetransmissionPolicy: Sendable, Hashable {
    /// First retransmission interval; doubles at each retry. Default 1 s.
    public var initialInterval: Duration
    /// Retransmissions after the first send. Default 3.
    public var maximumRetries: Int
    /// Minimum spacing between two resends of a cached answer to duplicates (rate limit, §11.4).
    public var cachedAnswerMinimumInterval: Duration

    public init(initialInterval: Duration = .seconds(1), maximumRetries: Int = 3, cachedAnswerMinimumInterval: Duration = .milliseconds(250)) {
        self.initialInterval = initialInterval
        self.maximumRetries = max(0, maximumRetries)
        self.cachedAnswerMinimumInterval = cachedAnswerMinimumInterval
    }

    /// The interval before retransmission number `retries + 1`: initial × 2^retries.
    public func interval(afterRetries retries: Int) -> Duration {
        initialInterval * (1 << min(retries, 20))
    }
}

/// Incoming and outgoing sequence numbers of one side of a transaction (RFC 8921 §11.3).
public struct SequenceCounters: Sendable, Hashable {
    /// The number the next new message will carry.
    public private(set) var nextOutgoing: SequenceNumber
    /// The number of the last legitimate message received; nil before the first.
    public private(set) var lastIncoming: SequenceNumber?

    public init(initialOutgoing: SequenceNumber, lastIncoming: SequenceNumber? = nil) {
        self.nextOutgoing = initialOutgoing
        self.lastIncoming = lastIncoming
    }

    /// How a received sequence number compares with the stored incoming one (docs/protocol.md §5.1).
    public enum Classification: Sendable, Hashable {
        /// Lower: discard.
        case stale
        /// Equal: a retransmission; resend the cached answer, change nothing.
        case duplicate
        /// Greater (or the first): process.
        case fresh
    }

    public func classify(_ n: SequenceNumber) -> Classification {
        guard let last = lastIncoming else { return .fresh }
        if n < last { return .stale }
        if n == last { return .duplicate }
        return .fresh
    }

    /// Takes the number for a new outgoing message and increments the counter.
    public mutating func takeOutgoing() -> SequenceNumber {
        defer { nextOutgoing &+= 1 }
        return nextOutgoing
    }

    /// Records a legitimate incoming message.
    public mutating func accept(_ n: SequenceNumber) { lastIncoming = n }
}

/// A request awaiting its answer, retransmitted on RETRANS_TIMER (RFC 8921 §11.4).
public struct PendingRequest: Sendable, Hashable {
    public var message: CPNPMessage
    /// Retransmissions done so far.
    public var retries: Int
    public init(message: CPNPMessage, retries: Int = 0) {
        self.message = message
        self.retries = retries
    }
}

/// The last incoming message handled and the answer sent to it, resent when a retransmission
/// of that message arrives (RFC 8921 §11.4; docs/protocol.md §6, A20).
public struct CachedExchange: Sendable, Hashable {
    public var incoming: CPNPMessage
    public var answer: CPNPMessage?
    public var lastResend: CPNPTimestamp?
    public init(incoming: CPNPMessage, answer: CPNPMessage? = nil) {
        self.incoming = incoming
        self.answer = answer
    }

    /// The cached answer when `message` repeats the cached incoming one and the resend rate limit
    /// allows it now (RFC 8921 §11.4); records the resend.
    mutating func answerToResend(for message: CPNPMessage, now: CPNPTimestamp, policy: RetransmissionPolicy) -> CPNPMessage? {
        guard incoming == message, let answer else { return nil }
        if let last = lastResend, now < last.adding(policy.cachedAnswerMinimumInterval) { return nil }
        lastResend = now
        return answer
    }
}

/// Why a received message was silently discarded. Engines log it; nothing is sent.
public enum DiscardReason: Sendable, Hashable, CustomStringConvertible {
    /// Sequence number lower than the stored incoming one (RFC 8921 §11.3).
    case staleSequenceNumber
    /// A retransmission with no answer to resend (or within the resend rate limit).
    case duplicate
    /// No open transaction matches the transaction id / order ids (RFC 8921 §10.1).
    case unknownTransaction
    /// The transport 4-tuple differs from the transaction's (RFC 8921 §10).
    case sessionMismatch
    /// Identifiers or CPD do not match the order (RFC 8921 §10.1).
    case mismatch(String)
    /// The message is not expected in the current state.
    case unexpected(MethodCode, inState: String)
    /// A response-type message (ACK, FAIL, PROCESSING) that needs no answer and matched nothing.
    case unsolicitedResponse(MethodCode)
    /// The timer that fired is no longer relevant.
    case staleTimer

    public var description: String {
        switch self {
        case .staleSequenceNumber: "stale sequence number"
        case .duplicate: "duplicate without an answer to resend"
        case .unknownTransaction: "no matching transaction"
        case .sessionMismatch: "4-tuple does not match the session"
        case .mismatch(let s): "mismatch: \(s)"
        case .unexpected(let m, let s): "\(m) unexpected in state \(s)"
        case .unsolicitedResponse(let m): "unsolicited \(m)"
        case .staleTimer: "stale timer"
        }
    }
}

/// An error thrown by a local command (accept, withdraw, …) that is not allowed now.
/// The machine's state is unchanged when it is thrown.
public struct OrderCommandError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case invalidState = "invalid-state"
        case offerExpired = "offer-expired"
        case noPendingDecision = "no-pending-decision"
        case activationNotExplicit = "activation-not-explicit"
        case localOnly = "local-only"
        case invalidArgument = "invalid-argument"
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(message) (\(code.rawValue))" }
}

/// How an agreement is currently switched (RFC 8921 §9.2.11).
public enum ActivationStatus: Sendable, Hashable, CustomStringConvertible {
    case inactive
    case active
    case scheduled(CPNPTimestamp)

    public var description: String {
        switch self {
        case .inactive: "inactive"
        case .active: "active"
        case .scheduled(let t): "scheduled at \(t.rfc3339)"
        }
    }
}

/// A reached agreement: the accepted CPD and what identifies it (RFC 8921 §8.11, §9.2.4).
public struct Agreement: Sendable, Hashable {
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var nonce: Nonce
    public var acceptedCPD: CPD
    /// The offer's information elements (cost, negotiation options).
    public var informationElements: InformationElements?
    public var activationType: ActivationType
    public var purpose: Purpose
    public var testPeriodEnd: CPNPTimestamp?
    public var activationSchedule: CPNPTimestamp?
    public var activation: ActivationStatus
    public var agreedAt: CPNPTimestamp

    /// The negotiated options: the offer's, falling back on the request's.
    static func make(
        offer: OfferMessage, requestOptions: NegotiationOptions?, agreedAt: CPNPTimestamp
    ) -> Agreement {
        let o = offer.informationElements?.negotiationOptions
        let type = o?.activationType ?? requestOptions?.activationType ?? .immediate
        let purpose = o?.purpose ?? requestOptions?.purpose ?? .permanent
        let schedule = o?.activationSchedule ?? requestOptions?.activationSchedule
        var status = ActivationStatus.inactive
        switch type {
        case .immediate: status = .active
        case .scheduled: status = schedule.map { $0 <= agreedAt ? .active : .scheduled($0) } ?? .active
        case .explicit: status = .inactive
        }
        return Agreement(
            customerOrderID: offer.customerOrderID, providerOrderID: offer.providerOrderID, nonce: offer.nonce,
            acceptedCPD: offer.offeredCPD, informationElements: offer.informationElements,
            activationType: type, purpose: purpose,
            testPeriodEnd: purpose == .testing ? (o?.testPeriodEnd ?? requestOptions?.testPeriodEnd) : nil,
            activationSchedule: schedule, activation: status, agreedAt: agreedAt)
    }
}
