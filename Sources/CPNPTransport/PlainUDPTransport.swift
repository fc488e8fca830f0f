public import Logging
public import NIOCore
public import NIOPosix

/// CPNP over unprotected UDP: one message per datagram, no authentication, no encryption.
///
/// RFC 8921 §13 requires DTLS or TLS; this exists for labs and tests and only runs when a
/// caller asks for it by name. It logs a warning at start.
public final class PlainUDPTransport: CPNPTransport {
    public var kind: CPNPTransportKind { .plainUDP }
    public var maximumMessageSize: Int { CPNPTransportDefaults.maximumDatagramMessageSize }
    public let localAddress: SocketAddress?
    public let inbound: AsyncStream<CPNPInboundMessage>
    public let failures: AsyncStream<CPNPTransportError>
    private let channel: any Channel
    private let failureContinuation: AsyncStream<CPNPTransportError>.Continuation
    private let receiver: InboundReceiverBox

    private init(
        channel: any Channel, inbound: AsyncStream<CPNPInboundMessage>, failures: AsyncStream<CPNPTransportError>,
        failureContinuation: AsyncStream<CPNPTransportError>.Continuation, receiver: InboundReceiverBox
    ) {
        self.channel = channel
        self.receiver = receiver
        self.localAddress = channel.localAddress
        self.inbound = inbound
        self.failures = failures
        self.failureContinuation = failureContinuation
    }

    /// Binds an unprotected UDP endpoint (server or client alike).
    /// - Parameters:
    ///   - host: address to bind.
    ///   - port: port; 0 picks an ephemeral one.
    ///   - receiveBufferSize: SO_RCVBUF.
    ///   - group: event loops.
    ///   - logger: receives the start warning and drop notices.
    public static func bind(
        host: String, port: Int, receiveBufferSize: Int = 4 << 20,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "cpnp.transport.udp")
    ) async throws -> PlainUDPTransport {
        let (inbound, continuation) = AsyncStream.makeStream(of: CPNPInboundMessage.self, bufferingPolicy: .bufferingOldest(16_384))
        let (failures, failureContinuation) = AsyncStream.makeStream(of: CPNPTransportError.self, bufferingPolicy: .bufferingNewest(1024))
        let receiver = InboundReceiverBox()
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: port != 0 ? 1 : 0)  // never on ephemeral ports
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            // As DTLS: up to this many datagrams per wake-up, handled by an engine on this loop as one batch.
            .channelOption(.maxMessagesPerRead, value: 64)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PlainUDPHandler(inbound: continuation, receiver: receiver, logger: logger))
                }
            }
            .bind(host: host, port: port).get()
        logger.warning(
            "plain UDP transport enabled: CPNP messages are neither authenticated nor encrypted (RFC 8921 §13 requires DTLS or TLS); use for labs and tests only",
            metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return PlainUDPTransport(
            channel: channel, inbound: inbound, failures: failures, failureContinuation: failureContinuation, receiver: receiver)
    }

    public func deliverInbound(to receiver: @escaping CPNPInboundReceiver) -> Bool {
        self.receiver.set(receiver)
        return true
    }

    public func sendWithoutWaiting(
        _ message: [UInt8], to peer: CPNPPeer, onFailure: @escaping @Sendable (CPNPTransportError) -> Void
    ) -> Bool {
        guard !refusedAsTooLarge(message, limit: maximumMessageSize, peer: peer, onFailure: onFailure) else { return true }
        let envelope = AddressedEnvelope(remoteAddress: peer.address, data: channel.allocator.buffer(bytes: message))
        channel.writeWithoutWaiting(envelope, onFailure: onFailure) { error in CPNPTransportError(.io, peer: peer.address, detail: "\(error)") }
        return true
    }

    public func send(_ message: [UInt8], to peer: CPNPPeer) async throws(CPNPTransportError) {
        guard message.count <= maximumMessageSize else {
            throw CPNPTransportError(.messageTooLarge(size: message.count, limit: maximumMessageSize), peer: peer.address)
        }
        let envelope = AddressedEnvelope(remoteAddress: peer.address, data: channel.allocator.buffer(bytes: message))
        do {
            try await channel.writeAndFlush(envelope)
        } catch {
            throw CPNPTransportError(.io, peer: peer.address, detail: "\(error)")
        }
    }

    public func close() async {
        try? await channel.close()
        failureContinuation.finish()
    }
}

final class PlainUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let inbound: AsyncStream<CPNPInboundMessage>.Continuation
    private let receiver: InboundReceiverBox
    private let logger: Logger

    init(inbound: AsyncStream<CPNPInboundMessage>.Continuation, receiver: InboundReceiverBox, logger: Logger) {
        self.inbound = inbound
        self.receiver = receiver
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.data.readableBytes <= CPNPTransportDefaults.maximumDatagramMessageSize else {
            logger.warning("dropped oversized datagram", metadata: ["peer": "\(envelope.remoteAddress)", "bytes": "\(envelope.data.readableBytes)"])
            return
        }
        let message = CPNPInboundMessage(
            bytes: Array(envelope.data.readableBytesView), peer: CPNPPeer(address: envelope.remoteAddress), identity: nil,
            localAddress: context.channel.localAddress)
        // To the receiver deliverInbound named, on this loop; else to the stream.
        if let receive = receiver.receiver { receive(message) } else { inbound.yield(message) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // UDP errors (e.g. ICMP port unreachable) are not fatal for a datagram socket.
        logger.debug("UDP error", metadata: ["error": "\(error)"])
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbound.finish()
        context.fireChannelInactive()
    }
}
