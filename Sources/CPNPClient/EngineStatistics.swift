import CPNPCore
import Synchronization

/// Counters of a ``CPNPClientEngine``, for load generators and monitoring. Thread-safe and
/// lock-free: read them at any time with ``snapshot``; the engine only ever increments them.
public final class CPNPClientEngineStatistics: Sendable {
    /// The counters at one instant.
    public struct Snapshot: Sendable, Hashable {
        /// CPNP messages the engine handed to its send queues (first sends and retransmissions).
        public var messagesSent: Int
        /// CPNP messages received from the transport (before decoding and validation).
        public var messagesReceived: Int
        /// Requests sent again because their retransmission timer fired unanswered (RFC 8921 §11.4).
        public var retransmissions: Int
        /// Withdrawal cycles that ended without the provider's ACK: administrator alarms (RFC 8921 §11.1.2).
        public var unconfirmedWithdrawals: Int

        public init(messagesSent: Int = 0, messagesReceived: Int = 0, retransmissions: Int = 0, unconfirmedWithdrawals: Int = 0) {
            self.messagesSent = messagesSent
            self.messagesReceived = messagesReceived
            self.retransmissions = retransmissions
            self.unconfirmedWithdrawals = unconfirmedWithdrawals
        }

        /// Counter by counter, `self − earlier`: what happened in between.
        public func subtracting(_ earlier: Snapshot) -> Snapshot {
            Snapshot(
                messagesSent: messagesSent - earlier.messagesSent, messagesReceived: messagesReceived - earlier.messagesReceived,
                retransmissions: retransmissions - earlier.retransmissions,
                unconfirmedWithdrawals: unconfirmedWithdrawals - earlier.unconfirmedWithdrawals)
        }
    }

    private let sent = Atomic<Int>(0)
    private let received = Atomic<Int>(0)
    private let retransmitted = Atomic<Int>(0)
    private let unconfirmed = Atomic<Int>(0)

    public init() {}

    /// The current values.
    public var snapshot: Snapshot {
        Snapshot(
            messagesSent: sent.load(ordering: .relaxed), messagesReceived: received.load(ordering: .relaxed),
            retransmissions: retransmitted.load(ordering: .relaxed), unconfirmedWithdrawals: unconfirmed.load(ordering: .relaxed))
    }

    func countSent() { sent.add(1, ordering: .relaxed) }
    func countReceived() { received.add(1, ordering: .relaxed) }
    func countUnconfirmedWithdrawal() { unconfirmed.add(1, ordering: .relaxed) }

    /// Counts a retransmission when a fired retransmission timer made the machine send again.
    func countTimer(_ timer: ClientOrderStateMachine.Timer, _ actions: [ClientOrderStateMachine.Action]) {
        guard timer == .retransmission, actions.contains(where: { if case .send = $0 { true } else { false } }) else { return }
        retransmitted.add(1, ordering: .relaxed)
    }
}
