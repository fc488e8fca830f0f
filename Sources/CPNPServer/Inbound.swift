public import CPNPCore

/// The authenticated identity of a client, from its certificate (RFC 8921 §13).
public struct ClientIdentity: Sendable, Hashable, CustomStringConvertible {
    /// Names to match customer profiles against: the subject CN and the DNS SANs.
    public var names: [String]
    /// The subject distinguished name, for logs and the audit trail.
    public var subject: String

    public init(names: [String], subject: String) {
        self.names = names
        self.subject = subject
    }

    public var description: String { names.first ?? subject }
}

/// One received datagram (or framed TLS message), as the transport adapter hands it to the engine.
public struct InboundDatagram: Sendable {
    public var bytes: [UInt8]
    /// The session 4-tuple seen from the server (`local` = server, `remote` = client).
    public var session: CPNPSession
    /// nil on plain UDP.
    public var identity: ClientIdentity?
    /// The transport's message size limit (16,384 for datagrams, 1 MiB for TLS).
    public var maximumSize: Int

    public init(bytes: [UInt8], session: CPNPSession, identity: ClientIdentity?, maximumSize: Int = 16_384) {
        self.bytes = bytes
        self.session = session
        self.identity = identity
        self.maximumSize = maximumSize
    }
}

/// Where the engine sends messages: the transport adapter.
public protocol ServerMessageSink: Sendable {
    /// Sends one encoded message on `session` (to `session.remote`).
    func send(_ bytes: [UInt8], on session: CPNPSession) async
    /// Queues one encoded message without waiting; messages queued one after another go out in that
    /// order. False: this sink cannot for `session`, use ``send(_:on:)``.
    func sendWithoutWaiting(_ bytes: [UInt8], on session: CPNPSession) -> Bool
}

extension ServerMessageSink {
    public func sendWithoutWaiting(_ bytes: [UInt8], on session: CPNPSession) -> Bool { false }
}

/// The sessions of the provider's customer portal (RFC 8921 §6, deployment model 2): the portal
/// negotiates for a customer in the same process, and its messages reach the engine without a
/// network. Their remote end is `portal/IDENTITY`, a host no socket address can take, so the
/// transport adapter hands answers to the portal, and the customer is known after a restart.
public enum PortalSessions {
    static let prefix = "portal/"

    /// The remote end of the portal's sessions for the customer with profile identity `identity`.
    public static func endpoint(for identity: String) -> CPNPEndpoint {
        CPNPEndpoint(host: prefix + identity, port: 0)
    }

    /// The customer whose portal session `endpoint` is, or nil for a network peer.
    public static func customer(of endpoint: CPNPEndpoint) -> String? {
        endpoint.host.hasPrefix(prefix) ? String(endpoint.host.dropFirst(prefix.count)) : nil
    }
}
