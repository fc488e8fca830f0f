// A CPNP network in memory for tests: the provider's end and any number of customers' ends, no
// sockets, no DTLS (what HummingbirdTesting's `.router` mode is to an HTTP server).
public import CPNPTransport
public import NIOCore
import Synchronization

/// Ends that deliver to each other by address, as UDP on loopback would, each customer's end
/// carrying the identity its development client certificate would give it (RFC 8921 §13). A message
/// to an address with no end is lost, as a datagram would be.
public final class InMemoryLink: Sendable {
    /// The provider's end, at 127.0.0.1:4805 (the CPNP port).
    public let provider: End
    private let ends = Mutex<[SocketAddress: End]>([:])
    private let nextPort = Atomic<Int>(40_000)

    public init() {
        let address = try! SocketAddress(ipAddress: "127.0.0.1", port: CPNPTransportDefaults.port)
        provider = End(address: address, identity: nil)
        provider.link.withLock { $0 = self }
        ends.withLock { $0[address] = provider }
    }

    /// A new customer's end, on its own port, authenticated as the client certificate `name`.
    public func customer(_ name: String = "acme") -> End {
        let address = try! SocketAddress(ipAddress: "127.0.0.1", port: nextPort.add(1, ordering: .relaxed).newValue)
        let identity = CPNPPeerIdentity(subject: "CN=\(name)", commonName: name, dnsNames: [], ipAddresses: [], certificateDER: [])
        let end = End(address: address, identity: identity)
        end.link.withLock { $0 = self }
        ends.withLock { $0[address] = end }
        return end
    }

    /// The peer a customer sends to.
    public var providerPeer: CPNPPeer { CPNPPeer(address: provider.address, serverName: "localhost") }

    fileprivate func deliver(_ bytes: [UInt8], from sender: End, to address: SocketAddress) {
        guard let receiver = ends.withLock({ $0[address] }) else { return }
        receiver.receive(CPNPInboundMessage(bytes: bytes, peer: CPNPPeer(address: sender.address), identity: sender.identity, localAddress: address))
    }

    fileprivate func remove(_ end: End) {
        _ = ends.withLock { $0.removeValue(forKey: end.address) }
    }

    /// One end of the link: a ``CPNPTransport`` of kind `in-process`.
    public final class End: CPNPTransport {
        public let kind = CPNPTransportKind.inProcess
        public let maximumMessageSize = CPNPTransportDefaults.maximumDatagramMessageSize
        public let inbound: AsyncStream<CPNPInboundMessage>
        public let failures: AsyncStream<CPNPTransportError>
        let address: SocketAddress
        /// What the other ends see as this end's certificate.
        let identity: CPNPPeerIdentity?
        fileprivate let link = Mutex<InMemoryLink?>(nil)
        private let inboundContinuation: AsyncStream<CPNPInboundMessage>.Continuation
        private let failuresContinuation: AsyncStream<CPNPTransportError>.Continuation
        private let closed = Atomic<Bool>(false)

        public var localAddress: SocketAddress? { address }

        fileprivate init(address: SocketAddress, identity: CPNPPeerIdentity?) {
            self.address = address
            self.identity = identity
            (inbound, inboundContinuation) = AsyncStream.makeStream(of: CPNPInboundMessage.self, bufferingPolicy: .bufferingNewest(4_096))
            (failures, failuresContinuation) = AsyncStream.makeStream(of: CPNPTransportError.self, bufferingPolicy: .bufferingNewest(16))
        }

        public func send(_ message: [UInt8], to peer: CPNPPeer) async throws(CPNPTransportError) {
            guard !closed.load(ordering: .relaxed) else { throw CPNPTransportError(.closed, peer: peer.address) }
            guard message.count <= maximumMessageSize else {
                throw CPNPTransportError(.messageTooLarge(size: message.count, limit: maximumMessageSize), peer: peer.address)
            }
            link.withLock { $0 }?.deliver(message, from: self, to: peer.address)
        }

        fileprivate func receive(_ message: CPNPInboundMessage) {
            guard !closed.load(ordering: .relaxed) else { return }
            inboundContinuation.yield(message)
        }

        public func close() async {
            guard !closed.exchange(true, ordering: .relaxed) else { return }
            link.withLock { link in
                link?.remove(self)
                link = nil
            }
            inboundContinuation.finish()
            failuresContinuation.finish()
        }
    }
}
