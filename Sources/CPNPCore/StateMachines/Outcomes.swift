// What a machine call may end in besides actions: a silent discard's reason, a refused local command.

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
        case .mismatch(let detail): "mismatch: \(detail)"
        case .unexpected(let messageType, let state): "\(messageType) unexpected in state \(state)"
        case .unsolicitedResponse(let messageType): "unsolicited \(messageType)"
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
