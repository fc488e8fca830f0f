public import NIOCore
import CPNPDTLS

/// A transport failure a user understands: each case is distinct and is logged in one
/// clear line when it happens.
public struct CPNPTransportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reason.
    public enum Code: Sendable, Hashable {
        /// The peer's certificate does not chain to our CA (or ours not to theirs, if reported by peer).
        case unknownCA
        /// A certificate is expired or not yet valid.
        case certificateExpired
        /// The server certificate does not carry the dialled name (RFC 6125).
        case nameMismatch
        /// The client sent no certificate; mutual authentication is mandatory (RFC 8921 §13).
        case noClientCertificate
        /// No handshake completed within the deadline.
        case handshakeTimeout
        /// The message is larger than this transport carries; use the TLS transport.
        case messageTooLarge(size: Int, limit: Int)
        /// Another handshake failure (cipher mismatch, protocol error, fatal alert).
        case handshakeFailed
        /// A server was asked to send to a peer it has no secure session with.
        case noSession
        /// The server refused a new session because its association table is full.
        case tooManySessions
        /// The transport is closed.
        case closed
        /// Socket or connection error.
        case io
    }

    /// The reason.
    public var code: Code
    /// The peer concerned, if any.
    public var peer: SocketAddress?
    /// `true` when the peer rejected us with a fatal alert, `false` when we rejected the peer.
    public var reportedByPeer: Bool
    /// Extra diagnostics (OpenSSL/BoringSSL text).
    public var detail: String

    /// Creates an error.
    public init(_ code: Code, peer: SocketAddress? = nil, reportedByPeer: Bool = false, detail: String = "") {
        self.code = code
        self.peer = peer
        self.reportedByPeer = reportedByPeer
        self.detail = detail
    }

    /// One line for the log, saying what happened and what to do.
    public var description: String {
        let who = peer.map { " with \($0)" } ?? ""
        let side = reportedByPeer ? "the peer rejected our certificate" : "we rejected the peer's certificate"
        let text: String
        switch code {
        case .unknownCA:
            text = "handshake\(who) failed: unknown CA (\(side): it does not chain to the configured CA)"
        case .certificateExpired:
            text = "handshake\(who) failed: certificate expired or not yet valid (\(side))"
        case .nameMismatch:
            text = "handshake\(who) failed: the server certificate does not match the dialled name (RFC 6125 DNS-ID/IP-ID)"
        case .noClientCertificate:
            text = "handshake\(who) failed: no client certificate (mutual authentication is required, RFC 8921 §13)"
        case .handshakeTimeout:
            text = "handshake\(who) timed out (no answer: wrong address/port, or the server is down)"
        case .messageTooLarge(let size, let limit):
            text = "message of \(size) bytes is too large for a datagram (limit \(limit)); use the TLS transport for large documents"
        case .handshakeFailed:
            text =
                reportedByPeer
                ? "handshake\(who) failed: the peer rejected us (its alert gives no precise reason)"
                : "handshake\(who) failed"
        case .noSession:
            text = "no secure session\(who): the server can only answer peers that contacted it"
        case .tooManySessions:
            text = "association table full; new session\(who) refused"
        case .closed:
            text = "transport closed"
        case .io:
            text = "I/O error\(who)"
        }
        return detail.isEmpty ? text : "\(text) [\(detail)]"
    }

    init(_ error: DTLSError, peer: SocketAddress?) {
        let code: Code
        switch error.code {
        case .unknownCA: code = .unknownCA
        case .certificateExpired: code = .certificateExpired
        case .nameMismatch: code = .nameMismatch
        case .noClientCertificate: code = .noClientCertificate
        case .handshakeTimeout: code = .handshakeTimeout
        case .messageTooLarge: code = .messageTooLarge(size: 0, limit: CPNPTransportDefaults.maximumDatagramMessageSize)
        case .invalidConfiguration, .handshakeFailed: code = .handshakeFailed
        case .notEstablished: code = .noSession
        }
        self.init(code, peer: peer, reportedByPeer: error.reportedByPeer, detail: error.detail)
    }
}
