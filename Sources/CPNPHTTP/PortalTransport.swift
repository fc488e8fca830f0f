import CPNPCore
import CPNPServer
import CPNPTransport
import NIOCore
import Synchronization

/// The in-process transport between the portal's client engine of one customer and the server
/// engine (RFC 8921 §6, deployment model 2): a QUOTATION the portal sends is submitted to the engine
/// as if it came from the customer's authenticated client; the engine's answers come back through
/// ``receive(_:)``. Nothing touches the network.
final class PortalTransport: CPNPTransport {
    /// The addresses the client engine sees (IPv6 discard-only prefix, RFC 6666: never on a wire).
    static let clientAddress = try! SocketAddress(ipAddress: "100::1", port: 1)
    static let serverAddress = try! SocketAddress(ipAddress: "100::2", port: CPNPTransportDefaults.port)
    static let server = CPNPPeer(address: serverAddress, serverName: "portal")

    let kind = CPNPTransportKind.inProcess
    let maximumMessageSize = CPNPTransportDefaults.maximumDatagramMessageSize
    let localAddress: SocketAddress? = PortalTransport.clientAddress
    let inbound: AsyncStream<CPNPInboundMessage>
    let failures: AsyncStream<CPNPTransportError>
    private let inboundContinuation: AsyncStream<CPNPInboundMessage>.Continuation
    private let failuresContinuation: AsyncStream<CPNPTransportError>.Continuation
    private let customer: String
    private let engine: CPNPServerEngine
    private let closed = Atomic<Bool>(false)

    /// - Parameters:
    ///   - customer: the customer profile's identity the portal signed in (its client certificate).
    ///   - engine: where the customer's messages go.
    init(customer: String, engine: CPNPServerEngine) {
        self.customer = customer
        self.engine = engine
        (inbound, inboundContinuation) = AsyncStream.makeStream(of: CPNPInboundMessage.self, bufferingPolicy: .bufferingNewest(1024))
        (failures, failuresContinuation) = AsyncStream.makeStream(of: CPNPTransportError.self, bufferingPolicy: .bufferingNewest(16))
    }

    func send(_ message: [UInt8], to peer: CPNPPeer) async throws(CPNPTransportError) {
        guard !closed.load(ordering: .relaxed) else { throw CPNPTransportError(.closed, peer: peer.address) }
        guard message.count <= maximumMessageSize else {
            throw CPNPTransportError(.messageTooLarge(size: message.count, limit: maximumMessageSize), peer: peer.address)
        }
        let session = CPNPSession(
            local: CPNPEndpoint(host: Self.serverAddress.ipAddress ?? "100::2", port: UInt16(CPNPTransportDefaults.port)),
            remote: PortalSessions.endpoint(for: customer))
        let identity = ClientIdentity(names: [customer], subject: "customer portal: \(customer)")
        engine.submit(InboundDatagram(bytes: message, session: session, identity: identity, maximumSize: maximumMessageSize))
    }

    /// A message from the engine to this customer's portal client.
    func receive(_ bytes: [UInt8]) {
        guard !closed.load(ordering: .relaxed) else { return }
        inboundContinuation.yield(CPNPInboundMessage(bytes: bytes, peer: Self.server, identity: nil, localAddress: Self.clientAddress))
    }

    func close() async {
        closed.store(true, ordering: .relaxed)
        inboundContinuation.finish()
        failuresContinuation.finish()
    }
}
