// A customer for the end-to-end tests: the core's ClientOrderStateMachine over the real DTLS client
// transport with a development client certificate, or over an in-memory link (TestClient), and the
// client engine as a patient customer configures it. Every wait is bounded.
public import CPNPClient
public import CPNPCore
public import CPNPStorage
public import CPNPTransport
public import Foundation
import Logging
import NIOCore
public import Synchronization

/// Buffers what a transport receives (one consumer of its stream).
final class Inbox: Sendable {
    let messages = Mutex<[CPNPInboundMessage]>([])
    func take() -> [CPNPInboundMessage] {
        messages.withLock { messages in
            defer { messages.removeAll() }
            return messages
        }
    }
}

/// A client: the core's client machine over the real DTLS client transport (or an in-memory link),
/// with a log of what it received and what its application learned.
public final class TestClient: Sendable {
    public let transport: any CPNPTransport
    public let server: CPNPPeer
    public let session: CPNPSession
    private let inbox = Inbox()
    private let log = Mutex<(received: [CPNPMessage], events: [ClientOrderStateMachine.Event])>(([], []))
    /// How the application answers a request for more time; nil leaves it unanswered.
    public let grantsMoreTime = Mutex<Bool?>(true)

    /// A client with the dev certificate `name`, bound to `host` (another loopback address such as
    /// 127.0.0.2 tests source-address filters), talking to the daemon at 127.0.0.1:`serverPort`.
    public convenience init(pki: URL, name: String, serverPort: Int, host: String = "127.0.0.1") async throws {
        let security = try CPNPSecurityConfiguration(
            certificateFile: pki.appendingPathComponent("client-\(name).pem").path,
            keyFile: pki.appendingPathComponent("client-\(name)-key.pem").path,
            trustRootsFile: pki.appendingPathComponent("ca.pem").path)
        let transport = try await DTLSTransport.client(bindingTo: host, configuration: DTLSTransportConfiguration(security: security))
        self.init(transport: transport, server: try CPNPPeer.server(host: "127.0.0.1", port: serverPort))
    }

    /// A client on `transport` (e.g. a customer's end of an ``InMemoryLink``), talking to `server`.
    public init(transport: any CPNPTransport, server: CPNPPeer) {
        self.transport = transport
        self.server = server
        let local = CPNPEndpoint(host: transport.localAddress?.ipAddress ?? "127.0.0.1", port: UInt16(transport.localAddress?.port ?? 0))
        session = CPNPSession(
            local: local, remote: CPNPEndpoint(host: server.address.ipAddress ?? "127.0.0.1", port: UInt16(server.address.port ?? 0)))
        Task { [inbox] in
            for await message in transport.inbound { inbox.messages.withLock { $0.append(message) } }
        }
    }

    public func close() async { await transport.close() }

    /// As customer `name` of `daemon`: QUOTATION, then ACCEPT of the OFFER, until Completed; the order.
    public static func agree(_ customerOrderID: String, _ cpd: CPD, with daemon: Daemon, name: String = "acme") async throws
        -> ClientOrderStateMachine
    {
        let client = try await TestClient(pki: daemon.pkiDirectory, name: name, serverPort: daemon.port)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID(customerOrderID)!)
        var generator = SystemRandomNumberGenerator()
        try await client.act(&order) { try $0.quote(requestedCPD: cpd, session: client.session, now: TestClient.now(), using: &generator) }
        try await client.run(&order, until: { $0.state == .offerReceived })
        try await client.act(&order) { try $0.accept(now: TestClient.now()) }
        try await client.run(&order, until: { $0.state == .completed })
        await client.close()
        return order
    }

    public static func now() -> CPNPTimestamp {
        CPNPTimestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)))
    }

    /// Every message received so far by ``run(_:timeout:until:)``, and what the application learned.
    public var received: [CPNPMessage] { log.withLock { $0.received } }
    public var events: [ClientOrderStateMachine.Event] { log.withLock { $0.events } }

    /// Performs a machine's actions: sends its messages, records its reports, and answers a request
    /// for more time as ``grantsMoreTime`` says.
    public func perform(_ actions: [ClientOrderStateMachine.Action], _ order: inout ClientOrderStateMachine) async throws {
        for action in actions {
            switch action {
            case .send(let message):
                try await transport.send(CPNPCodec.encode(message), to: server)
            case .report(let event):
                log.withLock { $0.events.append(event) }
                if case .moreTimeRequested = event, let grant = grantsMoreTime.withLock({ $0 }) {
                    try await perform(order.moreTimeDecided(granted: grant, now: Self.now()), &order)
                }
            default:
                break
            }
        }
    }

    /// Runs a local command of `order` (quote, accept, withdraw …) and performs its actions.
    public func act(_ order: inout ClientOrderStateMachine, _ command: (inout ClientOrderStateMachine) throws -> [ClientOrderStateMachine.Action])
        async throws
    {
        let actions = try command(&order)
        try await perform(actions, &order)
    }

    /// Feeds received messages to `order` until `done` holds; fails after `timeout`. While a request
    /// is pending and nothing arrives for a second, renews the DTLS session (the server may have
    /// restarted) and fires the retransmission timer; while the server processes the request and
    /// nothing arrives for `silenceProbeAfter` (the engine's default interval), it fires the silence
    /// probe the same way (RFC 8921 §11.4).
    public func run(
        _ order: inout ClientOrderStateMachine, timeout: Duration = .seconds(30), silenceProbeAfter: Duration = .seconds(15),
        until done: (ClientOrderStateMachine) -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var quietSince = ContinuousClock.now
        while !done(order) {
            guard ContinuousClock.now < deadline else { throw DaemonError(description: "timed out in state \(order.state.rawValue)") }
            let batch = inbox.take()
            for inbound in batch {
                let message = try CPNPCodec.decode(inbound.bytes)
                log.withLock { $0.received.append(message) }
                try await perform(order.messageReceived(message, session: session, now: Self.now()), &order)
            }
            if batch.isEmpty {
                if ContinuousClock.now - quietSince > .seconds(1), order.transaction?.pending != nil {
                    await (transport as? DTLSTransport)?.renewSession(with: server)
                    try await perform(order.timerFired(.retransmission, now: Self.now()), &order)
                    quietSince = ContinuousClock.now
                } else if ContinuousClock.now - quietSince > silenceProbeAfter, order.state == .serverProcessing {
                    await (transport as? DTLSTransport)?.renewSession(with: server)
                    try await perform(order.timerFired(.silenceProbe, now: Self.now()), &order)
                    quietSince = ContinuousClock.now
                }
                try await Task.sleep(for: .milliseconds(20))
            } else {
                quietSince = ContinuousClock.now
            }
        }
    }

    // MARK: Raw messages (bad input)

    public func send(_ message: CPNPMessage) async throws { try await sendRaw(CPNPCodec.encode(message)) }

    public func sendRaw(_ bytes: [UInt8]) async throws { try await transport.send(bytes, to: server) }

    /// Takes and decodes everything received and not yet consumed (floods and their answers).
    public func takeReceived() throws -> [CPNPMessage] { try inbox.take().map { try CPNPCodec.decode($0.bytes) } }

    /// Sends `probe` (which must get an answer) and returns everything received before and with that
    /// answer. The server handles messages in order, so an answer to anything sent before the probe
    /// would arrive first: an empty `before` shows that an earlier message was answered with silence.
    /// Exact repeats of messages ``run(_:timeout:until:)`` already received are left out.
    public func roundTrip(_ probe: CPNPMessage, timeout: Duration = .seconds(10)) async throws -> (before: [CPNPMessage], answer: CPNPMessage) {
        try await send(probe)
        let deadline = ContinuousClock.now + timeout
        var before: [CPNPMessage] = []
        while ContinuousClock.now < deadline {
            let batch = inbox.take()
            for (index, inbound) in batch.enumerated() {
                let message = try CPNPCodec.decode(inbound.bytes)
                if message.transactionID == probe.transactionID {
                    inbox.messages.withLock { $0.insert(contentsOf: batch[(index + 1)...], at: 0) }
                    return (before, message)
                }
                // A late copy of an answer already received (the server resending its cached answer to
                // an earlier retransmission, e.g. on a loaded machine) answers nothing new.
                if received.contains(message) { continue }
                before.append(message)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw DaemonError(description: "no answer to \(probe.method) (received before: \(before.map(\.method)))")
    }
}

/// A fresh customer order id with a readable prefix.
public func customerOrderID(_ prefix: String) -> CustomerOrderID {
    CustomerOrderID("\(prefix)-\(UUID().uuidString.prefix(8))")!
}

/// acme's client engine over DTLS (its certificate from `pki`), retrying as a patient customer does:
/// 300 ms doubling 7 times, a WITHDRAW's lost final ACK asked again after a minute.
public func customerEngine(pki: URL, store: ClientOrderStore? = nil) async throws -> CPNPClientEngine {
    let security = try CPNPSecurityConfiguration(
        certificateFile: pki.appendingPathComponent("client-acme.pem").path, keyFile: pki.appendingPathComponent("client-acme-key.pem").path,
        trustRootsFile: pki.appendingPathComponent("ca.pem").path)
    let transport = try await DTLSTransport.client(
        bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: security), logger: quietLogger("e2e-customer"))
    return try await customerEngine(transport: transport, store: store)
}

/// acme's client engine on `transport` (e.g. its end of an ``InMemoryLink``), retrying as
/// ``customerEngine(pki:store:)`` does.
public func customerEngine(transport: any CPNPTransport, store: ClientOrderStore? = nil) async throws -> CPNPClientEngine {
    let engine = CPNPClientEngine(
        transport: transport, store: try store ?? ClientOrderStore.inMemory(),
        configuration: CPNPClientEngine.Configuration(
            machine: .init(
                retransmission: RetransmissionPolicy(initialInterval: .milliseconds(300), maximumRetries: 7), withdrawalRetryInterval: .seconds(60)),
            expectedResponseTime: .seconds(60), renewSessionWhenUnanswered: true),
        logger: quietLogger("e2e-customer"))
    await engine.start()
    return engine
}
