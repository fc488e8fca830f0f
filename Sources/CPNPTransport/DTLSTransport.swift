import CPNPDTLS
#if canImport(Glibc)
    import Glibc
#endif
public import Logging
public import NIOCore
import NIOConcurrencyHelpers
public import NIOPosix

/// Settings of the DTLS/UDP transport (RFC 8921 §8.1 default transport, §13).
public struct DTLSTransportConfiguration: Sendable {
    /// Certificates and trust roots.
    public var security: CPNPSecurityConfiguration
    /// Datagram payload limit for handshake flights (path MTU handling).
    public var mtu: Int = 1400
    /// Hard cap of the server's association table (DoS defence, §13).
    public var maximumAssociations: Int = 10_000
    /// An association without traffic for this long is dropped.
    public var idleTimeout: Duration = .seconds(300)
    /// A handshake not finished within this fails with `.handshakeTimeout`.
    public var handshakeTimeout: Duration = .seconds(10)
    /// SO_RCVBUF for the socket. Linux's default queues only ~256 datagrams.
    public var receiveBufferSize: Int = 4 << 20
    /// Lifetime of a cookie secret before rotation.
    public var cookieSecretLifetime: Duration = .seconds(300)
    /// SO_REUSEPORT on a server's socket: several processes listen on one port, and the kernel keeps
    /// each client's 4-tuple with one of them; when that one dies, its clients' datagrams go to the
    /// others (docs/deployment.md).
    public var reusePort = false

    /// Creates a configuration with defaults.
    /// - Parameter security: certificates and trust roots.
    public init(security: CPNPSecurityConfiguration) {
        self.security = security
    }
}

/// CPNP over DTLS 1.2 over UDP, the default transport (RFC 8921 §8.1), on OpenSSL 3.
///
/// A server demultiplexes by remote address into a table of associations, behind a stateless
/// cookie exchange; a client keeps one association per server and handshakes again after a
/// fatal alert. Every inbound message carries the peer's certificate identity (§13).
public final class DTLSTransport: CPNPTransport {
    public var kind: CPNPTransportKind { .dtls }
    public var maximumMessageSize: Int { CPNPTransportDefaults.maximumDatagramMessageSize }
    public let localAddress: SocketAddress?
    public let inbound: AsyncStream<CPNPInboundMessage>
    public let failures: AsyncStream<CPNPTransportError>
    private let channel: any Channel
    private let stats: DTLSStatsBox
    private let receiver: InboundReceiverBox

    /// The event loop that reads and writes the socket: an engine that runs on it
    /// (``NIOCore/EventLoop/executor``) receives and sends without a thread switch.
    public var eventLoop: any EventLoop { channel.eventLoop }

    private init(
        channel: any Channel, inbound: AsyncStream<CPNPInboundMessage>, failures: AsyncStream<CPNPTransportError>, stats: DTLSStatsBox,
        receiver: InboundReceiverBox
    ) {
        self.channel = channel
        self.localAddress = channel.localAddress
        self.inbound = inbound
        self.failures = failures
        self.stats = stats
        self.receiver = receiver
    }

    /// Starts a DTLS server.
    /// - Parameters:
    ///   - host: address to bind, e.g. `127.0.0.1`.
    ///   - port: UDP port; 0 picks an ephemeral one.
    ///   - configuration: certificates, limits and timers.
    ///   - group: event loops.
    ///   - logger: where failures are logged.
    public static func server(
        host: String, port: Int = CPNPTransportDefaults.port, configuration: DTLSTransportConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "cpnp.transport.dtls")
    ) async throws -> DTLSTransport {
        try await start(role: .server, host: host, port: port, configuration: configuration, group: group, logger: logger)
    }

    /// Starts a DTLS client endpoint bound to an ephemeral port, or to `port` to carry on a
    /// transaction begun from it (its 4-tuple is part of the session entry, RFC 8921 §8.3).
    /// - Parameters:
    ///   - host: local address to bind (`127.0.0.1`, `0.0.0.0`, `::`).
    ///   - port: local port; 0 picks an ephemeral one.
    ///   - configuration: certificates, limits and timers.
    ///   - group: event loops.
    ///   - logger: where failures are logged.
    public static func client(
        bindingTo host: String = "0.0.0.0", port: Int = 0, configuration: DTLSTransportConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "cpnp.transport.dtls")
    ) async throws -> DTLSTransport {
        try await start(role: .client, host: host, port: port, configuration: configuration, group: group, logger: logger)
    }

    private static func start(
        role: DTLSConfiguration.Role, host: String, port: Int, configuration: DTLSTransportConfiguration,
        group: any EventLoopGroup, logger: Logger
    ) async throws -> DTLSTransport {
        var dtls = DTLSConfiguration(
            role: role, credentials: configuration.security.dtlsCredentials,
            trustRootsPEM: configuration.security.trustRootsPEM, mtu: configuration.mtu)
        dtls.cipherList = DTLSConfiguration.rfc7525CipherList
        let context = try DTLSContext(configuration: dtls, cookieSecretLifetime: configuration.cookieSecretLifetime)
        let (inbound, inboundContinuation) = AsyncStream.makeStream(of: CPNPInboundMessage.self, bufferingPolicy: .bufferingOldest(16_384))
        let (failures, failureContinuation) = AsyncStream.makeStream(of: CPNPTransportError.self, bufferingPolicy: .bufferingNewest(1024))
        let stats = DTLSStatsBox()
        let receiver = InboundReceiverBox()
        // SO_REUSEADDR only for a fixed server port: on an ephemeral client port it lets Linux
        // hand the same port to two sockets, and one of them never receives its replies.
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: role == .server && port != 0 ? 1 : 0)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(configuration.receiveBufferSize))
            .channelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: role == .server && configuration.reusePort ? 1 : 0)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            // Up to this many datagrams per wake-up before the loop runs its queued work (an engine
            // on this loop then handles them as one batch); NIO's default is 4.
            .channelOption(.maxMessagesPerRead, value: 64)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try DTLSDemuxHandler(
                        role: role, context: context, configuration: configuration, inbound: inboundContinuation, receiver: receiver,
                        failures: failureContinuation, stats: stats, logger: logger)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: host, port: port).get()
        return DTLSTransport(channel: channel, inbound: inbound, failures: failures, stats: stats, receiver: receiver)
    }

    public func deliverInbound(to receiver: @escaping CPNPInboundReceiver) -> Bool {
        self.receiver.set(receiver)
        return true
    }

    public func sendWithoutWaiting(
        _ message: [UInt8], to peer: CPNPPeer, onFailure: @escaping @Sendable (CPNPTransportError) -> Void
    ) -> Bool {
        guard !refusedAsTooLarge(message, limit: maximumMessageSize, peer: peer, onFailure: onFailure) else { return true }
        channel.writeWithoutWaiting(DTLSOutbound(bytes: message, peer: peer), onFailure: onFailure) { error in
            error as? CPNPTransportError ?? CPNPTransportError(.closed, peer: peer.address, detail: "\(error)")
        }
        return true
    }

    public func send(_ message: [UInt8], to peer: CPNPPeer) async throws(CPNPTransportError) {
        guard message.count <= maximumMessageSize else {
            throw CPNPTransportError(.messageTooLarge(size: message.count, limit: maximumMessageSize), peer: peer.address)
        }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(DTLSOutbound(bytes: message, peer: peer), promise: promise)
        do {
            try await promise.futureResult.get()
        } catch let error as CPNPTransportError {
            throw error
        } catch {
            throw CPNPTransportError(.closed, peer: peer.address, detail: "\(error)")
        }
    }

    public func close() async {
        try? await channel.close()
    }

    /// Forgets the association with `peer`, so that the next send handshakes again from the same
    /// socket and the session 4-tuple stays the same (RFC 8921 §8.3). A client calls it when its
    /// requests go unanswered: a server that restarted has lost the association silently, and
    /// DTLS gives no signal for that (RFC 6347 §4.2.8 covers only client restarts). No effect on
    /// a server transport, nor on an association still in its handshake: that one is new already,
    /// and a second handshake would meet the first one's flight on its way back (its
    /// ServerKeyExchange signs the other ClientHello's random: the new handshake fails).
    public func renewSession(with peer: CPNPPeer) async {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(DTLSOutbound(bytes: [], peer: peer, renewSession: true), promise: promise)
        try? await promise.futureResult.get()
    }

    /// Counters for tests and the benchmark: current associations and the high-water mark.
    public var statistics: DTLSTransportStatistics { stats.value }
}

/// Counters of a DTLS transport.
public struct DTLSTransportStatistics: Sendable {
    /// Associations in the table now.
    public var associations = 0
    /// The largest table size ever seen.
    public var maximumAssociationsSeen = 0
    /// HelloVerifyRequests sent (stateless).
    public var helloVerifyRequests = 0
    /// Datagrams dropped (garbage, unknown peers, oversized, table full).
    public var droppedDatagrams = 0
    /// Handshakes completed.
    public var handshakesCompleted = 0
    /// Handshakes failed.
    public var handshakesFailed = 0
}

/// The receiver ``DTLSTransport/deliverInbound(to:)`` named, read by the handler on the event loop.
final class InboundReceiverBox: Sendable {
    /// The closure sits in a struct: held directly as the box's generic value, every `inout` access
    /// would re-abstract it and store it back wrapped in one more thunk, a chain that grows per read.
    private struct Holder {
        var receiver: CPNPInboundReceiver?
    }
    private let box = NIOLockedValueBox(Holder())
    var receiver: CPNPInboundReceiver? { box.withLockedValue { $0.receiver } }
    func set(_ receiver: @escaping CPNPInboundReceiver) { box.withLockedValue { $0.receiver = receiver } }
}

final class DTLSStatsBox: Sendable {
    private let box = NIOLockedValueBox(DTLSTransportStatistics())
    var value: DTLSTransportStatistics { box.withLockedValue { $0 } }
    func update(_ body: (inout DTLSTransportStatistics) -> Void) { box.withLockedValue(body) }
}

struct DTLSOutbound {
    var bytes: [UInt8]
    var peer: CPNPPeer
    /// Forget the association with `peer` first (client only); with no bytes, only that.
    var renewSession = false
}

/// Event-loop-confined demultiplexer: one association per remote address.
final class DTLSDemuxHandler: ChannelDuplexHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundIn = DTLSOutbound
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private final class Entry {
        let association: DTLSAssociation
        let peer: CPNPPeer
        var lastActivity: NIODeadline
        let handshakeDeadline: NIODeadline
        var retransmission: Scheduled<Void>?
        var pending: [(bytes: [UInt8], promise: EventLoopPromise<Void>?)] = []
        var identity: CPNPPeerIdentity?
        /// The random of the ClientHello that started the association (server side): a hello with
        /// another one is a new client on the same port, not a retransmission.
        var clientRandom: ArraySlice<UInt8>?
        init(association: DTLSAssociation, peer: CPNPPeer, now: NIODeadline, handshakeTimeout: Duration, clientRandom: ArraySlice<UInt8>? = nil) {
            self.association = association
            self.peer = peer
            self.clientRandom = clientRandom
            self.lastActivity = now
            self.handshakeDeadline = now + TimeAmount(handshakeTimeout)
        }
    }

    private let role: DTLSConfiguration.Role
    private let context: DTLSContext
    private let configuration: DTLSTransportConfiguration
    private let listener: DTLSCookieListener?
    private let inbound: AsyncStream<CPNPInboundMessage>.Continuation
    private let receiver: InboundReceiverBox
    private let failures: AsyncStream<CPNPTransportError>.Continuation
    private let stats: DTLSStatsBox
    private let logger: Logger
    private var entries: [SocketAddress: Entry] = [:]
    private var sweeper: RepeatedTask?
    private var localAddress: SocketAddress?
    private var lastFullTableLog: NIODeadline = .distantPast
    /// Largest datagram accepted: a full 16 KiB record plus generous header/AEAD overhead.
    private let maximumDatagram = CPNPTransportDefaults.maximumDatagramMessageSize + 256

    init(
        role: DTLSConfiguration.Role, context: DTLSContext, configuration: DTLSTransportConfiguration,
        inbound: AsyncStream<CPNPInboundMessage>.Continuation, receiver: InboundReceiverBox,
        failures: AsyncStream<CPNPTransportError>.Continuation, stats: DTLSStatsBox, logger: Logger
    ) throws {
        self.role = role
        self.context = context
        self.configuration = configuration
        self.listener = role == .server ? try DTLSCookieListener(context: context) : nil
        self.inbound = inbound
        self.receiver = receiver
        self.failures = failures
        self.stats = stats
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        localAddress = context.channel.localAddress
        let interval = TimeAmount(min(configuration.idleTimeout, configuration.handshakeTimeout) / 4)
        let clamped = max(TimeAmount.milliseconds(50), min(interval, .seconds(1)))
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        sweeper = context.eventLoop.scheduleRepeatedTask(initialDelay: clamped, delay: clamped) { _ in
            let (handler, context) = bound.value
            handler.sweep(context: context)
        }
        if role == .server {
            logger.info("DTLS 1.2 server listening", metadata: ["address": "\(context.channel.localAddress.map { "\($0)" } ?? "?")"])
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        sweeper?.cancel()
        for entry in entries.values {
            entry.retransmission?.cancel()
            for item in entry.pending { item.promise?.fail(CPNPTransportError(.closed, peer: entry.peer.address)) }
        }
        entries.removeAll()
        publishCount()
        inbound.finish()
        failures.finish()
        context.fireChannelInactive()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Say goodbye (close_notify) to every peer before the socket goes.
        for (address, entry) in entries {
            for datagram in entry.association.close() { write(datagram, to: address, context: context) }
        }
        context.flush()
        context.close(mode: mode, promise: promise)
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let remote = envelope.remoteAddress
        let buffer = envelope.data
        guard buffer.readableBytes <= maximumDatagram else {
            logger.warning("dropped oversized datagram", metadata: ["peer": "\(remote)", "bytes": "\(buffer.readableBytes)"])
            stats.update { $0.droppedDatagrams += 1 }
            return
        }
        let datagram = Array(buffer.readableBytesView)
        if let entry = entries[remote] {
            // RFC 6347 §4.2.8: a ClientHello (epoch 0) on an established association means the
            // client restarted (or a new client reuses the port); on an association still in its
            // handshake, so does a hello with another random (the client restarted mid-handshake).
            // Answer statelessly; only a valid cookie replaces the old association, so a forged
            // hello cannot tear it down.
            if let listener, Self.isClientHello(datagram),
                entry.association.state == .established || Self.clientRandom(datagram).map({ $0 != entry.clientRandom }) ?? false
            {
                switch listener.receive(datagram: datagram, peerAddress: Self.addressBytes(remote)) {
                case .reply(let datagrams):
                    stats.update { $0.helloVerifyRequests += 1 }
                    for datagram in datagrams { write(datagram, to: remote, context: context) }
                    return
                case .accepted(let association, let output):
                    logger.debug("DTLS client restarted, new association replaces the old one", metadata: ["peer": "\(remote)"])
                    remove(remote, entry: entry)
                    let fresh = Entry(
                        association: association, peer: CPNPPeer(address: remote), now: .now(), handshakeTimeout: configuration.handshakeTimeout,
                        clientRandom: Self.clientRandom(datagram))
                    entries[remote] = fresh
                    publishCount()
                    handle(output, entry: fresh, address: remote, context: context)
                    return
                case .drop:
                    break
                }
            }
            entry.lastActivity = .now()
            let output = entry.association.receive(datagram: datagram)
            handle(output, entry: entry, address: remote, context: context)
            return
        }
        guard let listener else {
            // §13: the client silently discards what does not come from a server it contacted.
            stats.update { $0.droppedDatagrams += 1 }
            return
        }
        switch listener.receive(datagram: datagram, peerAddress: Self.addressBytes(remote)) {
        case .drop:
            stats.update { $0.droppedDatagrams += 1 }
        case .reply(let datagrams):
            stats.update { $0.helloVerifyRequests += 1 }
            for datagram in datagrams { write(datagram, to: remote, context: context) }
        case .accepted(let association, let output):
            guard makeRoom(now: .now()) else {
                stats.update { $0.droppedDatagrams += 1 }
                if NIODeadline.now() - lastFullTableLog > .seconds(10) {
                    lastFullTableLog = .now()
                    logger.warning("\(CPNPTransportError(.tooManySessions, peer: remote))", metadata: ["cap": "\(configuration.maximumAssociations)"])
                }
                return
            }
            let entry = Entry(
                association: association, peer: CPNPPeer(address: remote), now: .now(), handshakeTimeout: configuration.handshakeTimeout,
                clientRandom: Self.clientRandom(datagram))
            entries[remote] = entry
            publishCount()
            handle(output, entry: entry, address: remote, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Datagram sockets survive errors such as ICMP port unreachable; keep serving.
        logger.debug("UDP error", metadata: ["error": "\(error)"])
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    /// Frees a slot if the table is full by evicting the oldest unfinished handshake.
    private func makeRoom(now: NIODeadline) -> Bool {
        if entries.count < configuration.maximumAssociations { return true }
        var victim: (SocketAddress, Entry)?
        for (address, entry) in entries where entry.association.state == .handshaking {
            if victim == nil || entry.lastActivity < victim!.1.lastActivity { victim = (address, entry) }
        }
        guard let (address, entry) = victim else { return false }
        remove(address, entry: entry)
        return true
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outbound = unwrapOutboundIn(data)
        let address = outbound.peer.address
        if outbound.renewSession {
            if role == .client, let entry = entries[address], entry.association.state != .handshaking {
                for pending in entry.pending { pending.promise?.fail(CPNPTransportError(.closed, peer: address, detail: "session renewed")) }
                entry.pending = []
                remove(address, entry: entry)
            }
            if outbound.bytes.isEmpty {
                promise?.succeed()
                return
            }
        }
        if let entry = entries[address] {
            switch entry.association.state {
            case .established:
                sendEstablished(outbound.bytes, entry: entry, address: address, promise: promise, context: context)
            case .handshaking:
                entry.pending.append((outbound.bytes, promise))
            case .closed, .failed:
                remove(address, entry: entry)
                self.write(context: context, data: data, promise: promise)
            }
            return
        }
        guard role == .client else {
            promise?.fail(CPNPTransportError(.noSession, peer: address))
            return
        }
        do {
            let association = try DTLSAssociation.client(context: self.context, serverName: outbound.peer.verificationName)
            let entry = Entry(association: association, peer: outbound.peer, now: .now(), handshakeTimeout: configuration.handshakeTimeout)
            entry.pending.append((outbound.bytes, promise))
            entries[address] = entry
            publishCount()
            handle(association.start(), entry: entry, address: address, context: context)
        } catch {
            promise?.fail(CPNPTransportError(error, peer: address))
        }
    }

    private func sendEstablished(
        _ bytes: [UInt8], entry: Entry, address: SocketAddress, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext
    ) {
        do {
            let datagrams = try entry.association.write(bytes)
            entry.lastActivity = .now()
            for (index, datagram) in datagrams.enumerated() {
                write(datagram, to: address, context: context, promise: index == datagrams.count - 1 ? promise : nil)
            }
            if datagrams.isEmpty { promise?.succeed() }
        } catch {
            promise?.fail(CPNPTransportError(error, peer: address))
        }
    }

    // MARK: association outputs

    private func handle(_ output: DTLSOutput, entry: Entry, address: SocketAddress, context: ChannelHandlerContext) {
        for datagram in output.datagrams { write(datagram, to: address, context: context) }
        switch output.event {
        case .established:
            if let der = entry.association.peerCertificateDER {
                entry.identity = try? CPNPPeerIdentity(certificateDER: der)
            }
            stats.update { $0.handshakesCompleted += 1 }
            logger.debug(
                "DTLS association established",
                metadata: [
                    "peer": "\(address)", "cipher": "\(entry.association.cipherSuite ?? "?")",
                    "subject": "\(entry.identity?.subject ?? "?")",
                ])
            let pending = entry.pending
            entry.pending = []
            for item in pending { sendEstablished(item.bytes, entry: entry, address: address, promise: item.promise, context: context) }
        case .closed:
            logger.debug("DTLS association closed by peer", metadata: ["peer": "\(address)"])
            remove(address, entry: entry)
        case .failed(let dtlsError):
            fail(entry: entry, address: address, error: CPNPTransportError(dtlsError, peer: address))
        case nil:
            break
        }
        if !output.messages.isEmpty {
            let receiver = receiver.receiver
            for message in output.messages {
                let received = CPNPInboundMessage(bytes: message, peer: entry.peer, identity: entry.identity, localAddress: localAddress)
                if let receiver { receiver(received) } else { inbound.yield(received) }
            }
        }
        context.flush()
        if entries[address] === entry { armTimer(entry: entry, address: address, context: context) }
    }

    private func fail(entry: Entry, address: SocketAddress, error: CPNPTransportError) {
        stats.update { $0.handshakesFailed += 1 }
        logger.error("\(error)")
        failures.yield(error)
        for item in entry.pending { item.promise?.fail(error) }
        entry.pending = []
        remove(address, entry: entry)
    }

    private func remove(_ address: SocketAddress, entry: Entry) {
        entry.retransmission?.cancel()  // never retransmit to a rejected peer
        entry.retransmission = nil
        if entries[address] === entry {
            entries[address] = nil
            publishCount()
        }
    }

    private func armTimer(entry: Entry, address: SocketAddress, context: ChannelHandlerContext) {
        entry.retransmission?.cancel()
        entry.retransmission = nil
        guard let timeout = entry.association.timeout else { return }
        let bound = NIOLoopBound((self, context, entry), eventLoop: context.eventLoop)
        entry.retransmission = context.eventLoop.scheduleTask(in: TimeAmount(timeout) + .milliseconds(1)) {
            let (handler, context, entry) = bound.value
            guard handler.entries[address] === entry else { return }
            handler.handle(entry.association.handleTimeout(), entry: entry, address: address, context: context)
        }
    }

    private func sweep(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        let idle = TimeAmount(configuration.idleTimeout)
        for (address, entry) in entries {
            switch entry.association.state {
            case .handshaking where now > entry.handshakeDeadline:
                let error = DTLSError(
                    .handshakeTimeout,
                    detail:
                        "no handshake within \(configuration.handshakeTimeout), stuck in '\(entry.association.handshakeState)', timer \(entry.association.timeout.map { "\($0)" } ?? "none")"
                )
                entry.association.abandon(error)
                fail(entry: entry, address: address, error: CPNPTransportError(error, peer: address))
            case _ where now - entry.lastActivity > idle:
                logger.debug("DTLS association idle, dropped", metadata: ["peer": "\(address)"])
                remove(address, entry: entry)
            default:
                break
            }
        }
    }

    private func publishCount() {
        let count = entries.count
        stats.update {
            $0.associations = count
            $0.maximumAssociationsSeen = max($0.maximumAssociationsSeen, count)
        }
    }

    private func write(_ datagram: [UInt8], to address: SocketAddress, context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        let buffer = context.channel.allocator.buffer(bytes: datagram)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: buffer)), promise: promise)
    }

    /// A DTLS handshake record in epoch 0 carrying a ClientHello (RFC 6347 §4.1, §4.2.2).
    static func isClientHello(_ datagram: [UInt8]) -> Bool {
        datagram.count > DTLSRecords.headerLength && datagram[0] == 22 && datagram[3] == 0 && datagram[4] == 0
            && datagram[DTLSRecords.headerLength] == 1
    }

    /// The 32-byte random of an unfragmented ClientHello (RFC 6347 §4.2.2: record header, handshake
    /// header, client_version, random).
    static func clientRandom(_ datagram: [UInt8]) -> ArraySlice<UInt8>? {
        let handshake = DTLSRecords.headerLength
        let random = handshake + 12 + 2
        guard isClientHello(datagram), datagram.count >= random + 32,
            datagram[handshake + 6] == 0, datagram[handshake + 7] == 0, datagram[handshake + 8] == 0  // fragment offset 0
        else { return nil }
        return datagram[random..<(random + 32)]
    }

    /// Stable bytes of an IP address and port, the input of the cookie HMAC.
    static func addressBytes(_ address: SocketAddress) -> [UInt8] {
        let port = address.port ?? 0
        return Array((address.ipAddress ?? "\(address)").utf8) + [UInt8(truncatingIfNeeded: port >> 8), UInt8(truncatingIfNeeded: port)]
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
