import CPNPDTLS
import Foundation
public import Logging
public import NIOCore
import NIOConcurrencyHelpers
public import NIOPosix
import NIOSSL
import SwiftASN1
import X509
import NIOTLS

/// Settings of the TLS/TCP transport.
public struct TLSTransportConfiguration: Sendable {
    /// Certificates and trust roots; the same identity rules as DTLS (RFC 8921 §13).
    public var security: CPNPSecurityConfiguration
    /// A connection whose handshake has not finished by then fails with `.handshakeTimeout`.
    public var handshakeTimeout: Duration = .seconds(10)
    /// Largest frame (docs/protocol.md §2.1: 1 MiB).
    public var maximumMessageSize: Int = CPNPTransportDefaults.maximumStreamMessageSize

    /// Creates a configuration with defaults.
    /// - Parameter security: certificates and trust roots.
    public init(security: CPNPSecurityConfiguration) {
        self.security = security
    }
}

/// CPNP over TLS 1.3 (or 1.2) over TCP with a 4-byte big-endian length prefix per message
/// (docs/protocol.md §2.1), for documents too large for one datagram. swift-nio-ssl (BoringSSL).
public final class TLSTransport: CPNPTransport {
    public var kind: CPNPTransportKind { .tls }
    public let maximumMessageSize: Int
    public let localAddress: SocketAddress?
    public let inbound: AsyncStream<CPNPInboundMessage>
    public let failures: AsyncStream<CPNPTransportError>

    private let shared: TLSShared
    private let serverChannel: (any Channel)?

    private init(
        shared: TLSShared, serverChannel: (any Channel)?, inbound: AsyncStream<CPNPInboundMessage>, failures: AsyncStream<CPNPTransportError>
    ) {
        self.shared = shared
        self.serverChannel = serverChannel
        self.localAddress = serverChannel?.localAddress
        self.inbound = inbound
        self.failures = failures
        self.maximumMessageSize = shared.configuration.maximumMessageSize
    }

    /// Starts a TLS server that requires client certificates from the configured CA.
    /// - Parameters:
    ///   - host: address to bind.
    ///   - port: TCP port; 0 picks an ephemeral one.
    ///   - configuration: certificates and limits.
    ///   - group: event loops.
    ///   - logger: where failures are logged.
    public static func server(
        host: String, port: Int = CPNPTransportDefaults.port, configuration: TLSTransportConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "cpnp.transport.tls")
    ) async throws -> TLSTransport {
        let shared = try TLSShared(role: .server, configuration: configuration, group: group, logger: logger)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    _ = try shared.addHandlers(to: channel, peer: nil)
                }
            }
            .bind(host: host, port: port).get()
        logger.info("TLS server listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return TLSTransport(shared: shared, serverChannel: channel, inbound: shared.inbound, failures: shared.failures)
    }

    /// Creates a TLS client; connections are opened on first send to each server.
    /// - Parameters:
    ///   - configuration: certificates and limits.
    ///   - group: event loops.
    ///   - logger: where failures are logged.
    public static func client(
        configuration: TLSTransportConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "cpnp.transport.tls")
    ) throws -> TLSTransport {
        let shared = try TLSShared(role: .client, configuration: configuration, group: group, logger: logger)
        return TLSTransport(shared: shared, serverChannel: nil, inbound: shared.inbound, failures: shared.failures)
    }

    public func send(_ message: [UInt8], to peer: CPNPPeer) async throws(CPNPTransportError) {
        guard message.count <= maximumMessageSize else {
            throw CPNPTransportError(.messageTooLarge(size: message.count, limit: maximumMessageSize), peer: peer.address)
        }
        let channel = try await shared.channel(for: peer)
        do {
            try await channel.writeAndFlush(channel.allocator.buffer(bytes: message))
        } catch {
            throw shared.lastError(for: peer.address) ?? CPNPTransportError(.io, peer: peer.address, detail: "\(error)")
        }
    }

    public func close() async {
        try? await serverChannel?.close()
        await shared.closeAll()
    }

    public func deliverInbound(to receiver: @escaping CPNPInboundReceiver) -> Bool {
        shared.receiver.set(receiver)
        return true
    }

    /// A server's answer on the connection its peer opened. False for a client (its first send
    /// dials) and for a peer with no connection: ``send(_:to:)`` reports that.
    public func sendWithoutWaiting(
        _ message: [UInt8], to peer: CPNPPeer, onFailure: @escaping @Sendable (CPNPTransportError) -> Void
    ) -> Bool {
        guard shared.role == .server, let connection = shared.connection(to: peer.address) else { return false }
        guard !refusedAsTooLarge(message, limit: maximumMessageSize, peer: peer, onFailure: onFailure) else { return true }
        let shared = self.shared
        // Accepted connections are registered once established: the future has its channel, and on
        // the channel's event loop the write happens at once, in order.
        connection.whenComplete { result in
            switch result {
            case .success(let channel):
                channel.writeWithoutWaiting(channel.allocator.buffer(bytes: message), onFailure: onFailure) { error in
                    shared.lastError(for: peer.address) ?? CPNPTransportError(.io, peer: peer.address, detail: "\(error)")
                }
            case .failure(let error):
                onFailure(error as? CPNPTransportError ?? CPNPTransportError(.noSession, peer: peer.address, detail: "\(error)"))
            }
        }
        return true
    }
}

/// State shared by the transport object and its channel handlers.
final class TLSShared: Sendable {
    enum Role { case client, server }

    let role: Role
    let configuration: TLSTransportConfiguration
    let sslContext: NIOSSLContext
    let trustRoots: [Certificate]
    let group: any EventLoopGroup
    let logger: Logger
    let inbound: AsyncStream<CPNPInboundMessage>
    let inboundContinuation: AsyncStream<CPNPInboundMessage>.Continuation
    let failures: AsyncStream<CPNPTransportError>
    let failureContinuation: AsyncStream<CPNPTransportError>.Continuation
    /// Established connections by remote address (server: accepted; client: dialled).
    private let connections = NIOLockedValueBox<[SocketAddress: EventLoopFuture<any Channel>]>([:])
    /// The receiver ``TLSTransport/deliverInbound(to:)`` named, read by each connection's handler.
    let receiver = InboundReceiverBox()
    private let errors = NIOLockedValueBox<[SocketAddress: CPNPTransportError]>([:])
    private let closed = NIOLockedValueBox(false)

    init(role: Role, configuration: TLSTransportConfiguration, group: any EventLoopGroup, logger: Logger) throws {
        self.role = role
        self.configuration = configuration
        self.group = group
        self.logger = logger
        let security = configuration.security
        let roots = try NIOSSLCertificate.fromPEMBytes(Array(security.trustRootsPEM.utf8))
        self.trustRoots = try roots.map { try Certificate(derEncoded: $0.toDERBytes()) }
        var tls: TLSConfiguration
        switch role {
        case .server:
            guard let chainPEM = security.certificateChainPEM, let keyPEM = security.privateKeyPEM else {
                throw CPNPTransportError(.handshakeFailed, detail: "a TLS server needs a certificate and key")
            }
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8))
            let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            tls.certificateVerification = .noHostnameVerification  // client cert required, chain checked
        case .client:
            tls = TLSConfiguration.makeClientConfiguration()
            if let chainPEM = security.certificateChainPEM, let keyPEM = security.privateKeyPEM {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8)).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
            }
            // Chain and name are checked in `verify` (NIOSSL's own hostname check also accepts an
            // IP SAN matching the socket, which is not the RFC 6125 reference identity).
            tls.certificateVerification = .noHostnameVerification
        }
        tls.trustRoots = .certificates(roots)
        tls.minimumTLSVersion = .tlsv12
        tls.cipherSuites =
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
        self.sslContext = try NIOSSLContext(configuration: tls)
        (inbound, inboundContinuation) = AsyncStream.makeStream(of: CPNPInboundMessage.self, bufferingPolicy: .bufferingOldest(16_384))
        (failures, failureContinuation) = AsyncStream.makeStream(of: CPNPTransportError.self, bufferingPolicy: .bufferingNewest(1024))
    }

    /// Pipeline: TLS, length-prefix framing (docs/protocol.md §2.1), session handler.
    func addHandlers(to channel: any Channel, peer: CPNPPeer?) throws -> TLSSessionHandler {
        let outcome = TLSVerificationOutcome()
        let expectedName = peer?.verificationName
        // What the peer's certificate must be for: a server's when we dial, a client's when we accept.
        let usage: ExtendedKeyUsage.Usage = peer == nil ? .clientAuth : .serverAuth
        let verify: NIOSSLCustomVerificationCallback = { [trustRoots] certificates, promise in
            Task {
                let result = await TLSShared.verify(
                    certificates, trustRoots: trustRoots, expectedName: expectedName, usage: usage, outcome: outcome)
                promise.succeed(result)
            }
        }
        let tlsHandler: NIOSSLHandler
        if let peer {
            let name = peer.serverName.flatMap { ServerReferenceIdentity($0).serverNameIndication }
            tlsHandler = try NIOSSLClientHandler(context: sslContext, serverHostname: name, customVerificationCallback: verify)
        } else {
            tlsHandler = NIOSSLServerHandler(context: sslContext, customVerificationCallback: verify)
        }
        let session = TLSSessionHandler(shared: self, peer: peer, outcome: outcome)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(tlsHandler)
        try sync.addHandler(ByteToMessageHandler(LengthPrefixFrameDecoder(maximum: configuration.maximumMessageSize)))
        try sync.addHandler(MessageToByteHandler(LengthPrefixFrameEncoder()))
        try sync.addHandler(session)
        return session
    }

    /// Chain validation with swift-certificates, classifying the reason (expired vs unknown CA)
    /// so that users get a precise error, then the extended key usage and the RFC 6125 name check (``CPNPPeerIdentity/matches(referenceIdentity:)``).
    static func verify(
        _ presented: [NIOSSLCertificate], trustRoots: [Certificate], expectedName: String?, usage: ExtendedKeyUsage.Usage,
        outcome: TLSVerificationOutcome
    ) async -> NIOSSLVerificationResult {
        do {
            let chain = try presented.map { try Certificate(derEncoded: $0.toDERBytes()) }
            guard let leaf = chain.first else { return .failed }
            let now = Date()
            if chain.contains(where: { now < $0.notValidBefore || now > $0.notValidAfter }) {
                outcome.set(.certificateExpired)
                return .failed
            }
            var verifier = Verifier(rootCertificates: CertificateStore(trustRoots)) {
                RFC5280Policy()
            }
            let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
            switch result {
            case .validCertificate:
                // Extended key usage, as OpenSSL checks it for DTLS (its "ssl_client"/"ssl_server"
                // purposes): a server certificate is not a client's, nor the other way round.
                if let purposes = try leaf.extensions.extendedKeyUsage, !purposes.contains(usage), !purposes.contains(.any) {
                    outcome.set(.unknownCA)
                    return .failed
                }
                if let expectedName {
                    let identity = try CPNPPeerIdentity(certificateDER: presented[0].toDERBytes())
                    guard identity.matches(referenceIdentity: expectedName) else {
                        outcome.set(.nameMismatch)
                        return .failed
                    }
                }
                return .certificateVerified
            case .couldNotValidate:
                outcome.set(.unknownCA)
                return .failed
            }
        } catch {
            outcome.set(.unknownCA)
            return .failed
        }
    }

    /// The connection to `address`, if there is one (established or, for a client, being dialled).
    func connection(to address: SocketAddress) -> EventLoopFuture<any Channel>? {
        connections.withLockedValue { $0[address] }
    }

    func channel(for peer: CPNPPeer) async throws(CPNPTransportError) -> any Channel {
        let future: EventLoopFuture<any Channel>? = connections.withLockedValue { table in
            if let existing = table[peer.address] { return existing }
            guard role == .client else { return nil }
            let connection = connect(to: peer)
            table[peer.address] = connection
            return connection
        }
        guard let future else { throw CPNPTransportError(.noSession, peer: peer.address) }
        do {
            return try await future.get()
        } catch {
            connections.withLockedValue { if $0[peer.address] === future { $0[peer.address] = nil } }
            if let error = error as? CPNPTransportError { throw error }
            throw lastError(for: peer.address) ?? CPNPTransportError(.io, peer: peer.address, detail: "\(error)")
        }
    }

    private func connect(to peer: CPNPPeer) -> EventLoopFuture<any Channel> {
        let eventLoop = group.next()
        let ready = eventLoop.makePromise(of: (any Channel).self)
        let timeout = TimeAmount(configuration.handshakeTimeout)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let session = try self.addHandlers(to: channel, peer: peer)
                    session.ready = ready
                }
            }
        bootstrap.connect(to: peer.address).whenComplete { result in
            switch result {
            case .failure(let error):
                ready.fail(CPNPTransportError(.io, peer: peer.address, detail: "connect: \(error)"))
            case .success(let channel):
                let handshakeTimer = channel.eventLoop.scheduleTask(in: timeout) {
                    let error = CPNPTransportError(.handshakeTimeout, peer: peer.address)
                    ready.fail(error)
                    channel.close(promise: nil)
                }
                // The timer bounds the handshake only: an established connection stays open.
                ready.futureResult.whenComplete { result in
                    switch result {
                    case .success: handshakeTimer.cancel()
                    case .failure: channel.close(promise: nil)
                    }
                }
            }
        }
        return ready.futureResult
    }

    func registered(_ channel: any Channel, address: SocketAddress) {
        guard role == .server else { return }
        connections.withLockedValue { $0[address] = channel.eventLoop.makeSucceededFuture(channel) }
    }

    func unregistered(_ channel: any Channel, address: SocketAddress) {
        guard let future = connections.withLockedValue({ $0[address] }) else { return }
        future.whenSuccess { existing in
            guard existing === channel else { return }
            self.connections.withLockedValue { table in
                if table[address] === future { table[address] = nil }
            }
        }
    }

    func report(_ error: CPNPTransportError) {
        if let peer = error.peer { errors.withLockedValue { $0[peer] = error } }
        logger.error("\(error)")
        failureContinuation.yield(error)
    }

    func lastError(for address: SocketAddress) -> CPNPTransportError? {
        errors.withLockedValue { $0[address] }
    }

    func closeAll() async {
        let all = connections.withLockedValue { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for future in all {
            if let channel = try? await future.get() { try? await channel.close() }
        }
        inboundContinuation.finish()
        failureContinuation.finish()
    }
}

/// Why the custom verification callback failed, read by the session handler's error mapping.
final class TLSVerificationOutcome: Sendable {
    private let box = NIOLockedValueBox<CPNPTransportError.Code?>(nil)
    func set(_ code: CPNPTransportError.Code) { box.withLockedValue { $0 = code } }
    var code: CPNPTransportError.Code? { box.withLockedValue { $0 } }
}

/// Per-connection handler: delivers frames with the peer identity and maps TLS errors.
final class TLSSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let shared: TLSShared
    private let peer: CPNPPeer?
    private let outcome: TLSVerificationOutcome
    var ready: EventLoopPromise<any Channel>?
    private var identity: CPNPPeerIdentity?
    private var remote: SocketAddress?
    private var handshakeDone = false
    private var reported = false

    init(shared: TLSShared, peer: CPNPPeer?, outcome: TLSVerificationOutcome) {
        self.shared = shared
        self.peer = peer
        self.outcome = outcome
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.channel.remoteAddress
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            handshakeDone = true
            if let certificate = try? context.channel.pipeline.syncOperations.nioSSL_peerCertificate(),
                let der = try? certificate.toDERBytes()
            {
                identity = try? CPNPPeerIdentity(certificateDER: der)
            }
            if let remote { shared.registered(context.channel, address: remote) }
            ready?.succeed(context.channel)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let remote else { return }
        let message = CPNPInboundMessage(
            bytes: Array(frame.readableBytesView), peer: peer ?? CPNPPeer(address: remote), identity: identity,
            localAddress: context.channel.localAddress)
        // To the receiver deliverInbound named, on this connection's loop; else to the stream.
        if let receive = shared.receiver.receiver { receive(message) } else { shared.inboundContinuation.yield(message) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let mapped = classify(error)
        if !reported {
            reported = true
            shared.report(mapped)
        }
        ready?.fail(mapped)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let remote { shared.unregistered(context.channel, address: remote) }
        ready?.fail(CPNPTransportError(.closed, peer: remote))
        context.fireChannelInactive()
    }

    private func classify(_ error: any Error) -> CPNPTransportError {
        let address = remote ?? peer?.address
        if error is LengthPrefixFrameDecoder.FrameTooLarge {
            return CPNPTransportError(
                .messageTooLarge(size: 0, limit: shared.configuration.maximumMessageSize), peer: address, detail: "received frame dropped")
        }
        if let code = outcome.code {
            return CPNPTransportError(code, peer: address, detail: "\(error)")
        }
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return CPNPTransportError(.nameMismatch, peer: address, detail: "\(error)")
        }
        let text = "\(error)".uppercased()
        let hasCredentials = shared.configuration.security.certificateChainPEM != nil
        if text.contains("CERTIFICATE_EXPIRED") {
            return CPNPTransportError(.certificateExpired, peer: address, reportedByPeer: true, detail: "\(error)")
        }
        if text.contains("UNKNOWN_CA") {
            return CPNPTransportError(.unknownCA, peer: address, reportedByPeer: true, detail: "\(error)")
        }
        if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") {
            return CPNPTransportError(.noClientCertificate, peer: address, detail: "\(error)")
        }
        if text.contains("CERTIFICATE_REQUIRED") || (!hasCredentials && text.contains("HANDSHAKE_FAILURE")) {
            return CPNPTransportError(.noClientCertificate, peer: address, reportedByPeer: true, detail: "\(error)")
        }
        if error is NIOSSLError || error is BoringSSLError || !handshakeDone {
            return CPNPTransportError(.handshakeFailed, peer: address, reportedByPeer: text.contains("ALERT"), detail: "\(error)")
        }
        return CPNPTransportError(.io, peer: address, detail: "\(error)")
    }
}

/// 4-byte big-endian length prefix, then the message (docs/protocol.md §2.1).
struct LengthPrefixFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    struct FrameTooLarge: Error {}
    let maximum: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maximum else { throw FrameTooLarge() }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let frame = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Writes the 4-byte big-endian length, then the message (docs/protocol.md §2.1).
struct LengthPrefixFrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = ByteBuffer

    func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.writeInteger(UInt32(data.readableBytes))
        out.writeImmutableBuffer(data)
    }
}
