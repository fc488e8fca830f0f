// A real provider in process: CPNPServerEngine + SQLite store + a real DTLS server transport on loopback,
// with a dev PKI made in a temporary directory. Clients use the real DTLS client transport.
import CPNPClient
import CPNPCore
import CPNPDaemon
import CPNPPKI
import CPNPPolicy
import CPNPRuntime
import CPNPServer
import CPNPStorage
import CPNPTransport
import CPNPTesting
import Foundation
import Logging
import NIOCore

/// A fresh dev PKI (CA, server, clients acme and globex) in a temporary directory.
struct TestPKI {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-client-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        _ = try DevPKI.initialize(directory: directory.path)
        for name in ["acme", "globex"] { _ = try DevPKI.issueClient(name: name, directory: directory.path) }
    }

    func path(_ file: String) -> String { directory.appendingPathComponent(file).path }

    var server: CPNPSecurityConfiguration {
        get throws {
            try CPNPSecurityConfiguration(
                certificateFile: path(DevPKI.File.serverCertificate), keyFile: path(DevPKI.File.serverKey),
                trustRootsFile: path(DevPKI.File.caCertificate))
        }
    }

    func client(_ name: String) throws -> CPNPSecurityConfiguration {
        try CPNPSecurityConfiguration(
            certificateFile: path(DevPKI.File.clientCertificate(name)), keyFile: path(DevPKI.File.clientKey(name)),
            trustRootsFile: path(DevPKI.File.caCertificate))
    }
}

/// The demo policy with generous rate limits.
func providerConfiguration(baseFee: CPNPDecimal? = nil) -> ServerConfiguration {
    var c = ServerConfiguration.demo
    c.rateLimits.quotationsPerMinute = 100_000
    c.rateLimits.failsPerMinute = 100_000
    for i in c.customers.indices {
        c.customers[i].maxOpenOrders = 100_000
        if let baseFee { c.customers[i].pricing?.baseFee = baseFee }
    }
    if let baseFee { c.pricing.baseFee = baseFee }
    return c
}

/// A provider engine answering over a real transport.
final class InProcessProvider: Sendable {
    let engine: CPNPServerEngine
    let transport: any CPNPTransport
    let store: ServerOrderStore
    let loop: Task<Void, Never>

    /// Starts a provider on 127.0.0.1 (ephemeral port) over `transport` (default: DTLS with `pki`).
    init(
        pki: TestPKI, configuration: ServerConfiguration = providerConfiguration(), transport: (any CPNPTransport)? = nil,
        store: ServerOrderStore? = nil
    ) async throws {
        let t: any CPNPTransport
        if let transport {
            t = transport
        } else {
            t = try await DTLSTransport.server(
                host: "127.0.0.1", port: 0, configuration: DTLSTransportConfiguration(security: try pki.server),
                logger: quietLogger("cpnp-client-test"))
        }
        self.transport = t
        let s = try store ?? ServerOrderStore.inMemory()
        self.store = s
        let engine = CPNPServerEngine(
            configuration: configuration, store: s, sink: TransportSink(transport: t, logger: quietLogger("cpnpd-test")),
            logger: quietLogger("cpnpd-test"))
        self.engine = engine
        _ = try await engine.recover()
        // cpnpd's inbox service (Sources/CPNPDaemon): submitted to the engine's inbox, batched, group-committed.
        let inbox = InboxService(engine: engine, transport: t, logger: quietLogger("cpnpd-test"))
        loop = Task { try? await inbox.run() }
    }

    var port: Int { transport.localAddress?.port ?? 0 }

    func peer() throws -> CPNPPeer { try CPNPPeer.server(host: "127.0.0.1", port: port) }

    func stop() async {
        await transport.close()
        loop.cancel()
    }
}

/// A client engine for `identity` over a real DTLS client transport, with an in-memory store unless given;
/// with `onEventLoop`, the engine runs on the transport's event loop.
func makeClient(
    pki: TestPKI, identity: String = "acme", store: ClientOrderStore? = nil, port: Int = 0,
    configuration: CPNPClientEngine.Configuration = .init(), onEventLoop: Bool = false
) async throws -> (CPNPClientEngine, ClientOrderStore) {
    let s = try store ?? ClientOrderStore.inMemory()
    let t = try await DTLSTransport.client(
        bindingTo: "127.0.0.1", port: port, configuration: DTLSTransportConfiguration(security: try pki.client(identity)),
        logger: quietLogger("cpnp-client-test"))
    let engine = CPNPClientEngine(
        transport: t, store: s, configuration: configuration, logger: quietLogger("cpnp-client-test"),
        executor: onEventLoop ? t.eventLoop.executor : nil)
    await engine.start()
    return (engine, s)
}

/// Fast retransmission for tests that exercise it.
func fastConfiguration(expectedResponseTime: Duration = .seconds(20)) -> CPNPClientEngine.Configuration {
    CPNPClientEngine.Configuration(
        machine: .init(
            retransmission: RetransmissionPolicy(initialInterval: .milliseconds(200), maximumRetries: 4), withdrawalRetryInterval: .seconds(2)),
        expectedResponseTime: expectedResponseTime)
}
