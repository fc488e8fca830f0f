// The transport 4-tuple a CPNP session entry names (RFC 8921 §8.3), shared by both order state machines.

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
