// One transaction's bookkeeping, shared by the client and server order state machines (RFC 8921 §8.5,
// §11.3–11.4): the retransmission policy, sequence numbers, the request awaiting its answer, the cached answer.

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

/// One transaction of an order as either side keeps it (RFC 8921 §8.4, §11.3–11.4): its id and
/// session, the sequence numbers, the request awaiting its answer, and the last exchange, whose answer
/// a duplicate gets again. The server's machine keeps it as it is; the client's adds what its own
/// requests need (``ClientOrderStateMachine/Transaction``).
public struct OrderTransaction: Sendable, Hashable {
    public var id: TransactionID
    /// The 4-tuple the transaction runs on (§8.4).
    public var session: CPNPSession
    public var sequence: SequenceCounters
    /// This side's request awaiting its answer, retransmitted on RETRANS_TIMER (§11.4).
    public var pending: PendingRequest?
    public var cache: CachedExchange?

    public init(
        id: TransactionID, session: CPNPSession, sequence: SequenceCounters, pending: PendingRequest? = nil, cache: CachedExchange? = nil
    ) {
        self.id = id
        self.session = session
        self.sequence = sequence
        self.pending = pending
        self.cache = cache
    }

    /// What a message of this transaction is, by its sequence number (§11.3, §11.4).
    public enum Arrival: Sendable, Hashable {
        /// Older than the last legitimate message: discard.
        case stale
        /// A retransmission of the last one: `answer` is the cached answer to send again, nil when
        /// there is none or the resend rate limit holds it back; nothing else changes.
        case duplicate(answer: CPNPMessage?)
        /// New: to be handled, then ``record(_:)``ed if legitimate.
        case fresh
    }

    /// Classifies `message` by its sequence number; a duplicate's answer counts as resent now.
    public mutating func arrival(of message: CPNPMessage, now: CPNPTimestamp, policy: RetransmissionPolicy) -> Arrival {
        switch sequence.classify(message.sequenceNumber) {
        case .stale: .stale
        case .duplicate: .duplicate(answer: cache?.answerToResend(for: message, now: now, policy: policy))
        case .fresh: .fresh
        }
    }

    /// Records a legitimate message: its sequence number, and the exchange a duplicate of it is
    /// answered from (§11.3, §11.4).
    public mutating func record(_ message: CPNPMessage) {
        sequence.accept(message.sequenceNumber)
        cache = CachedExchange(incoming: message)
    }

    /// RETRANS_TIMER of the pending request fired (§11.4): the message to send again and when the
    /// timer fires next (the interval doubles at each retry), or nil once the retries are exhausted
    /// (the pending request stays, for the machine to end it).
    public mutating func retransmission(now: CPNPTimestamp, policy: RetransmissionPolicy) -> (message: CPNPMessage, next: CPNPTimestamp)? {
        guard var request = pending, request.retries < policy.maximumRetries else { return nil }
        request.retries += 1
        pending = request
        return (request.message, now.adding(policy.interval(afterRetries: request.retries)))
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

    public func classify(_ sequenceNumber: SequenceNumber) -> Classification {
        guard let last = lastIncoming else { return .fresh }
        if sequenceNumber < last { return .stale }
        if sequenceNumber == last { return .duplicate }
        return .fresh
    }

    /// Takes the number for a new outgoing message and increments the counter.
    public mutating func takeOutgoing() -> SequenceNumber {
        defer { nextOutgoing &+= 1 }
        return nextOutgoing
    }

    /// Records a legitimate incoming message.
    public mutating func accept(_ sequenceNumber: SequenceNumber) { lastIncoming = sequenceNumber }
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
