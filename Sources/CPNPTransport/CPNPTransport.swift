public import NIOCore

/// Where a message goes, or came from (RFC 8921 §8.1, §8.3 transport session).
public struct CPNPPeer: Sendable, Hashable, CustomStringConvertible {
    /// The peer's transport address (IP and port).
    public var address: SocketAddress
    /// The name the client dialled (DNS name or IP literal), which the server certificate must
    /// carry as DNS-ID or IP-ID (RFC 6125; RFC 8921 §8.1). `nil`: verify the IP address itself.
    /// Ignored on the server side.
    public var serverName: String?

    /// Creates a peer.
    /// - Parameters:
    ///   - address: IP address and port.
    ///   - serverName: name to verify in the server certificate (clients only).
    public init(address: SocketAddress, serverName: String? = nil) {
        self.address = address
        self.serverName = serverName
    }

    /// A CPNP server reached by IP literal or host name, verified against `host`.
    /// - Parameters:
    ///   - host: DNS name or IP address literal.
    ///   - port: UDP/TCP port; 8921 by default (docs/protocol.md §2.1).
    public static func server(host: String, port: Int = CPNPTransportDefaults.port) throws -> CPNPPeer {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        return CPNPPeer(address: address, serverName: host)
    }

    /// The name that identity verification uses: ``serverName`` or the IP literal.
    var verificationName: String {
        serverName ?? address.ipAddress ?? "\(address)"
    }

    public var description: String {
        serverName.map { "\($0) (\(address))" } ?? "\(address)"
    }
}

/// The authenticated identity of the peer, from its certificate (RFC 8921 §13): the server
/// maps it to a customer profile, the client checks it is the server it contacted.
public struct CPNPPeerIdentity: Sendable, Hashable {
    /// The subject distinguished name (RFC 4514 string).
    public var subject: String
    /// The subject's common name, if any.
    public var commonName: String?
    /// DNS-ID subjectAltNames.
    public var dnsNames: [String]
    /// IP-ID subjectAltNames, as text.
    public var ipAddresses: [String]
    /// The DER certificate, for callers that need more.
    public var certificateDER: [UInt8]

    /// Creates an identity.
    public init(subject: String, commonName: String?, dnsNames: [String], ipAddresses: [String], certificateDER: [UInt8]) {
        self.subject = subject
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.certificateDER = certificateDER
    }
}

/// One received CPNP message with who sent it and over which session (RFC 8921 §8.3).
public struct CPNPInboundMessage: Sendable {
    /// The message bytes (one JSON document, docs/protocol.md §2.1).
    public var bytes: [UInt8]
    /// Where it came from; pass it to ``CPNPTransport/send(_:to:)`` to reply.
    public var peer: CPNPPeer
    /// The authenticated peer certificate identity; `nil` on plain UDP.
    public var identity: CPNPPeerIdentity?
    /// Our address of the session 4-tuple.
    public var localAddress: SocketAddress?
    /// The peer's address of the session 4-tuple.
    public var remoteAddress: SocketAddress { peer.address }

    /// Creates an inbound message.
    public init(bytes: [UInt8], peer: CPNPPeer, identity: CPNPPeerIdentity?, localAddress: SocketAddress?) {
        self.bytes = bytes
        self.peer = peer
        self.identity = identity
        self.localAddress = localAddress
    }
}

/// Which transport an implementation provides (docs/protocol.md §2.1).
public enum CPNPTransportKind: String, Sendable, Hashable {
    /// DTLS 1.2 over UDP: the default (RFC 8921 §8.1).
    case dtls
    /// TLS 1.3/1.2 over TCP with 4-byte length framing, for documents too large for a datagram.
    case tls
    /// Unprotected UDP, for labs and tests only.
    case plainUDP = "plain-udp"
    /// Messages handed over in memory, within one process: the customer portal of `cpnpd`, which
    /// negotiates for customers who have no CPNP client (RFC 8921 §6, deployment model 2).
    case inProcess = "in-process"
}

/// Defaults from docs/protocol.md §2.1.
public enum CPNPTransportDefaults {
    /// The project's default CPNP port (RFC 8921 assigns none).
    public static let port = 8921
    /// Largest message in one datagram (DTLS or plain UDP).
    public static let maximumDatagramMessageSize = 16_384
    /// Largest message over TLS/TCP.
    public static let maximumStreamMessageSize = 1 << 20
}

/// The one interface the client and server engines use to move CPNP messages.
///
/// Implementations: ``DTLSTransport`` (default), ``TLSTransport``, ``PlainUDPTransport``.
public protocol CPNPTransport: Sendable {
    /// Which transport this is.
    var kind: CPNPTransportKind { get }
    /// Largest message ``send(_:to:)`` accepts.
    var maximumMessageSize: Int { get }
    /// The bound local address (useful with port 0).
    var localAddress: SocketAddress? { get }
    /// Received messages. Single consumer; finishes when the transport is closed.
    var inbound: AsyncStream<CPNPInboundMessage> { get }
    /// Security failures (rejected handshakes, timeouts), each also logged once. Single consumer.
    var failures: AsyncStream<CPNPTransportError> { get }
    /// Sends one message. Clients create the secure session on first use (and again after a
    /// fatal alert); servers can only answer peers with an established session.
    /// - Parameters:
    ///   - message: the encoded message.
    ///   - peer: the destination.
    /// - Throws: ``CPNPTransportError``; `.messageTooLarge` without touching the network.
    func send(_ message: [UInt8], to peer: CPNPPeer) async throws(CPNPTransportError)
    /// Closes all sessions (close_notify) and the socket, and finishes ``inbound``.
    func close() async
    /// See the extension: false unless the transport implements it.
    func deliverInbound(to receiver: @escaping CPNPInboundReceiver) -> Bool
    /// See the extension: false unless the transport implements it.
    func sendWithoutWaiting(_ message: [UInt8], to peer: CPNPPeer, onFailure: @escaping @Sendable (CPNPTransportError) -> Void) -> Bool
}

/// The check every ``CPNPTransport/sendWithoutWaiting(_:to:onFailure:)`` makes first: a message
/// over `limit` fails through `onFailure` without touching the network. True when it did.
func refusedAsTooLarge(_ message: [UInt8], limit: Int, peer: CPNPPeer, onFailure: (CPNPTransportError) -> Void) -> Bool {
    guard message.count > limit else { return false }
    onFailure(CPNPTransportError(.messageTooLarge(size: message.count, limit: limit), peer: peer.address))
    return true
}

extension Channel {
    /// Writes `value` without waiting: on this channel's event loop at once, from elsewhere queued
    /// there, in order. A failed write goes to `onFailure`, as `failure` names it.
    func writeWithoutWaiting<Value: Sendable>(
        _ value: Value, onFailure: @escaping @Sendable (CPNPTransportError) -> Void,
        failure: @escaping @Sendable (any Error) -> CPNPTransportError
    ) {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenFailure { error in onFailure(failure(error)) }
        writeAndFlush(value, promise: promise)
    }
}

/// Where a transport hands each received message, once ``CPNPTransport/deliverInbound(to:)`` named it.
public typealias CPNPInboundReceiver = @Sendable (CPNPInboundMessage) -> Void

extension CPNPTransport {
    /// Hands each message received from now on to `receiver`, on the thread that read it, instead of
    /// to ``inbound`` (which still finishes when the transport closes; what it already holds stays
    /// there). No task switch between the socket and the receiver. False: this transport cannot, and
    /// ``inbound`` goes on.
    public func deliverInbound(to receiver: @escaping CPNPInboundReceiver) -> Bool { false }

    /// Queues one message without waiting for it to be written: messages queued by one caller go out
    /// in order, and a failure goes to `onFailure` (``send(_:to:)`` would have thrown it). False: this
    /// transport cannot; use ``send(_:to:)``.
    public func sendWithoutWaiting(
        _ message: [UInt8], to peer: CPNPPeer, onFailure: @escaping @Sendable (CPNPTransportError) -> Void
    ) -> Bool { false }
}
