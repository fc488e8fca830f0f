// A provider in the test's own process: cpnpd's engine and services (Sources/CPNPDaemon) over DTLS on
// loopback, with the development PKI and the SQLite store cpnpd would make, in a temporary directory.
import CPNPDaemon
public import CPNPPolicy
public import CPNPServer
import CPNPPKI
import CPNPStorage
public import CPNPTransport
public import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// cpnpd's inbox, operator-request, provisioning services and engine, run in process (no HTTP server,
/// portal or upstreams). `cpnpd admin … --database` reads and drives it as it does a daemon.
public final class InProcessProvider: Sendable {
    /// The temporary directory holding `.cpnp/pki` and `.cpnp/cpnpd.sqlite`, as cpnpd's defaults do.
    public let directory: URL
    public let engine: CPNPServerEngine
    public let transport: DTLSTransport
    private let group: ServiceGroup
    private let running: Task<Void, Never>

    public var pkiDirectory: URL { directory.appendingPathComponent(".cpnp/pki") }
    public var database: URL { directory.appendingPathComponent(".cpnp/cpnpd.sqlite") }
    /// The DTLS port on 127.0.0.1.
    public var port: Int { transport.localAddress?.port ?? 0 }

    /// Starts a provider with `configuration` (default: the embedded demo policy, as `cpnpd` without
    /// `--config`); its PKI, database and listen address are set here. The development PKI has the
    /// clients `acme`, `globex` and `operator`, as cpnpd's first start makes it.
    public static func start(configuration: ServerConfiguration = .demo) async throws -> InProcessProvider {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnpd-in-process-\(UUID().uuidString)")
        return try await InProcessProvider(directory: directory, configuration: configuration)
    }

    private init(directory: URL, configuration: ServerConfiguration) async throws {
        self.directory = directory
        var configuration = configuration
        configuration.pki.directory = directory.appendingPathComponent(".cpnp/pki").path
        configuration.database.path = directory.appendingPathComponent(".cpnp/cpnpd.sqlite").path
        configuration.database.url = nil
        try FileManager.default.createDirectory(atPath: configuration.pki.directory, withIntermediateDirectories: true)
        _ = try DevPKI.initialize(directory: configuration.pki.directory)
        for name in ["acme", "globex", "operator"] { _ = try DevPKI.issueClient(name: name, directory: configuration.pki.directory) }
        let logger = quietLogger("cpnpd-in-process")
        let store = try ServerOrderStore(path: configuration.database.path)
        let security = try CPNPSecurityConfiguration(
            certificateFile: configuration.pki.certificatePath, keyFile: configuration.pki.keyPath, trustRootsFile: configuration.pki.caPath)
        var transportConfiguration = DTLSTransportConfiguration(security: security)
        transportConfiguration.maximumAssociations = configuration.limits.maxAssociations
        transportConfiguration.idleTimeout = configuration.limits.associationIdleTimeout
        transport = try await DTLSTransport.server(host: "127.0.0.1", port: 0, configuration: transportConfiguration, logger: logger)
        engine = CPNPServerEngine(
            configuration: configuration, store: store, sink: TransportSink(transport: transport, logger: logger), logger: logger,
            sendsWithoutWaiting: true)
        _ = try await engine.recover()
        let provisioning = ProvisioningWorker(configuration: configuration.provisioning, store: store, logger: logger, claimant: engine.instanceID)
        let group = ServiceGroup(
            services: DaemonServices.make(engine: engine, transport: transport, provisioning: provisioning, logger: logger),
            gracefulShutdownSignals: [], logger: logger)
        self.group = group
        running = Task { try? await group.run() }
    }

    /// Stops the services gracefully (as SIGTERM stops cpnpd) and removes the directory.
    public func stop() async {
        await group.triggerGracefulShutdown()
        await running.value
        try? FileManager.default.removeItem(at: directory)
    }
}
