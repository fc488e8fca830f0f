/// A DTLS failure a user can act on (RFC 8921 §13: mutual authentication; RFC 7525).
///
/// Each ``Code`` is a distinct, understandable reason. `reportedByPeer` tells whether this
/// side rejected the peer (`false`) or the peer rejected us with a fatal alert (`true`).
public struct DTLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the association failed.
    public enum Code: Sendable, Hashable {
        /// The peer's certificate does not chain to a configured trust root.
        case unknownCA
        /// A certificate in the chain is expired (or not yet valid).
        case certificateExpired
        /// The server certificate matches neither the DNS-ID nor the IP-ID dialled (RFC 6125).
        case nameMismatch
        /// The client presented no certificate, but mutual authentication is required (§13).
        case noClientCertificate
        /// The handshake did not complete in time (retransmissions exhausted).
        case handshakeTimeout
        /// The message exceeds what one DTLS record/datagram can carry.
        case messageTooLarge
        /// The configuration (certificates, keys, cipher policy) could not be loaded.
        case invalidConfiguration
        /// The association is not established (yet) or already closed.
        case notEstablished
        /// Any other handshake or record-layer failure.
        case handshakeFailed
    }

    /// The reason.
    public var code: Code
    /// `true` when the peer sent the fatal alert that ended the handshake.
    public var reportedByPeer: Bool
    /// OpenSSL's diagnostic text, for the log line.
    public var detail: String

    /// Creates an error.
    /// - Parameters:
    ///   - code: the reason.
    ///   - reportedByPeer: whether the peer reported it with an alert.
    ///   - detail: diagnostic text.
    public init(_ code: Code, reportedByPeer: Bool = false, detail: String = "") {
        self.code = code
        self.reportedByPeer = reportedByPeer
        self.detail = detail
    }

    public var description: String {
        let who = reportedByPeer ? "peer rejected us" : "we rejected the peer"
        return "DTLSError.\(code) (\(who))\(detail.isEmpty ? "" : ": \(detail)")"
    }
}
