// The provider's server composed from its configuration: what `cpnpd run` runs, and what the tests'
// in-process provider runs (Sources/CPNPTesting/InProcessProvider.swift).
import CPNPCore
public import CPNPHTTP
import CPNPPKI
public import CPNPPolicy
public import CPNPServer
public import CPNPStorage
public import CPNPTransport
import Foundation
public import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// cpnpd: the order store, the development PKI on first start, the CPNP transport, the engine, the
/// customer portal, the child orders upstream (RFC 8921 §8.8) and the services that run them, composed
/// by ``start(configuration:options:logger:)`` and run by ``run()`` until a graceful shutdown
/// (RFC 8921 §8.2, §11.2; docs/configuration.md).
public final class ProviderDaemon: Sendable {
    /// What the executable adds to a configuration: how to name its sources in errors and logs, and
    /// the test-only fault hooks.
    public struct Options: Sendable {
        /// How errors name the database setting: `database` (from the file) or `--database`.
        public var databaseOption = "database"
        /// The configuration's source in the ready line: a file's path, or the embedded demo policy.
        public var configurationSource = "embedded demo policy"
        /// The metrics registry the engine, HTTP server and libraries report to (none: a private one).
        public var metrics: MetricsExporter?
        /// TEST ONLY: called at the engine's fault points (a crash test's deterministic exit).
        public var faultHook: (@Sendable (CPNPServerEngine.FaultPoint) -> Void)?
        /// TEST ONLY: a transport already made (e.g. one in memory) instead of the `listen` section's.
        public var transport: (any CPNPTransport)?
        /// TEST ONLY: wraps each upstream provider's transport (lossy child-order legs).
        public var wrapUpstreamTransport: (@Sendable (any CPNPTransport, String) -> any CPNPTransport)?

        public init() {}
    }

    /// A configuration `cpnpd` refuses to start with; the message names the setting at fault.
    public struct StartupError: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    public let configuration: ServerConfiguration
    public let store: ServerOrderStore
    public let transport: any CPNPTransport
    public let engine: CPNPServerEngine
    public let portal: CustomerPortal
    public let cascade: CascadeCoordinator?
    /// The orders the engine resumed from the store at start.
    public let recoveredOrders: Int
    private let group: ServiceGroup
    private let announceReady: @Sendable () -> Void
    private let logger: Logger

    /// Opens the store, makes the development PKI if its files are missing, binds the CPNP
    /// transport, and recovers the engine's orders, the portal's customers and the child orders; the
    /// services are ready for ``run()``. A bad setting throws ``StartupError`` naming it, before
    /// anything is written where possible.
    public static func start(configuration: ServerConfiguration, options: Options = Options(), logger: Logger) async throws -> ProviderDaemon {
        // The store first: a wrong database stops cpnpd before it writes anything.
        let store = try openStore(configuration.database, option: options.databaseOption)
        try ensureDevelopmentPKI(configuration.pki, logger: logger)
        // The HTTP server's credentials before any socket: beyond loopback it needs a token that exists.
        let operatorToken: String?
        do {
            operatorToken = configuration.http.enabled ? try DaemonHTTPServer.checkAuthentication(configuration.http, pki: configuration.pki) : nil
        } catch let problem as DaemonHTTPServer.ConfigurationProblem {
            throw StartupError(problem.description)
        }
        let transport: any CPNPTransport
        // With the embedded store, the engine runs on the event loop that reads and writes the CPNP
        // socket: no thread switch between a datagram and the engine, nor between the engine and its
        // answers. Not with a shared PostgreSQL store: during an outage a query may hang for seconds,
        // and the socket's loop must go on serving DTLS handshakes meanwhile (clients renew their
        // sessions when unanswered), so the engine keeps an executor of its own.
        var engineExecutor: (any SerialExecutor)?
        if let given = options.transport {
            transport = given
        } else {
            do {
                transport = try await startTransport(configuration, logger: logger)
            } catch let error as IOError {
                throw StartupError(
                    "listen \(configuration.listen.host):\(configuration.listen.port): cannot listen: \(error) (--listen HOST:PORT chooses another address)"
                )
            }
            if !store.sharesOrders { engineExecutor = engineEventLoops.next().executor }
        }
        let portalMailbox = PortalMailbox()
        let sink = TransportSink(transport: transport, portal: portalMailbox, logger: logger)
        let metrics = options.metrics ?? MetricsExporter()
        let engine = CPNPServerEngine(
            configuration: configuration, store: store, sink: sink, logger: logger, faultHook: options.faultHook, sendsWithoutWaiting: true,
            metrics: EngineMetrics(factory: metrics.factory), executor: engineExecutor)
        // The customer portal negotiates for customers in process (RFC 8921 §6, model 2); it resumes
        // its open orders as the engine does.
        let portal = CustomerPortal(engine: engine, configuration: configuration, directory: configuration.http.portalStore, logger: logger)
        portalMailbox.portal.withLock { $0 = portal }
        // Child orders towards the upstream providers (RFC 8921 §8.8): their engines first, so that the
        // orders the engine recovers in AwaitingProcessing resume their children (docs/cascade.md).
        var cascade: CascadeCoordinator?
        if !configuration.upstreams.isEmpty {
            do {
                let coordinator = try CascadeCoordinator(
                    configuration: configuration, engine: engine, logger: logger, wrapTransport: options.wrapUpstreamTransport)
                try await coordinator.start()
                await engine.setChildNegotiator(coordinator)
                cascade = coordinator
            } catch {
                await transport.close()
                throw StartupError("cascade: cannot start the upstream providers' clients: \(error)")
            }
        }
        let recovered = try await engine.recover()
        await cascade?.reconcile()
        await portal.resumeAll()
        let provisioning = ProvisioningWorker(configuration: configuration.provisioning, store: store, logger: logger, claimant: engine.instanceID)
        let address = transport.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        let readyMetadata: Logger.Metadata = [
            "listen": "\(address)", "transport": "\(configuration.listen.transport.rawValue)",
            "database": "\(databaseDescription(configuration.database))", "pki": "\(configuration.pki.directory)",
            "config": "\(options.configurationSource)", "recovered-orders": "\(recovered)",
        ]
        // "ready" once every listener is up: with the HTTP server, when it listens.
        let announceReady: @Sendable () -> Void = { logger.notice("cpnpd ready", metadata: readyMetadata) }
        var services = DaemonServices.make(engine: engine, transport: transport, provisioning: provisioning, logger: logger)
        if configuration.http.enabled {
            do {
                let dtls = transport as? DTLSTransport
                let sources = DaemonHTTPServer.Sources(engine: engine, metrics: metrics, store: store, portal: portal) {
                    dtls.map { dtlsTransport in
                        let statistics = dtlsTransport.statistics
                        return .init(
                            associations: statistics.associations, handshakesCompleted: statistics.handshakesCompleted,
                            handshakesFailed: statistics.handshakesFailed)
                    }
                }
                services.append(
                    try DaemonHTTPServer.make(
                        configuration.http, pki: configuration.pki, operatorToken: operatorToken, sources: sources, logger: logger,
                        onListening: { _ in announceReady() }))
                // The REST API's webhooks, from the audit trail (docs/api.md).
                services.append(WebhookDispatcher(store: store, claimant: engine.instanceID, logger: logger))
            } catch let problem as DaemonHTTPServer.ConfigurationProblem {
                await transport.close()
                throw StartupError(problem.description)
            }
        }
        return ProviderDaemon(
            configuration: configuration, store: store, transport: transport, engine: engine, portal: portal, cascade: cascade,
            recoveredOrders: recovered, group: ServiceGroup(services: services, gracefulShutdownSignals: [], logger: logger),
            announceReady: announceReady, logger: logger)
    }

    private init(
        configuration: ServerConfiguration, store: ServerOrderStore, transport: any CPNPTransport, engine: CPNPServerEngine,
        portal: CustomerPortal, cascade: CascadeCoordinator?, recoveredOrders: Int, group: ServiceGroup,
        announceReady: @escaping @Sendable () -> Void, logger: Logger
    ) {
        self.configuration = configuration
        self.store = store
        self.transport = transport
        self.engine = engine
        self.portal = portal
        self.cascade = cascade
        self.recoveredOrders = recoveredOrders
        self.group = group
        self.announceReady = announceReady
        self.logger = logger
    }

    /// Runs the services until ``triggerGracefulShutdown()``, then stops the portal and the child
    /// orders' clients. Logs "cpnpd ready" once every listener is up. The HTTP server's address in use
    /// throws ``StartupError``.
    public func run() async throws {
        if !configuration.http.enabled { announceReady() }
        do {
            try await group.run()
        } catch let error as IOError where configuration.http.enabled {
            // Only the HTTP server binds inside the group (the CPNP transport is bound in start).
            throw StartupError(
                "http.listen \(configuration.http.host):\(configuration.http.port): cannot listen: \(error) (--http HOST:PORT chooses another address, --no-http none)"
            )
        }
        await portal.shutdown()
        await cascade?.shutdown()
        logger.notice("cpnpd stopped")
    }

    /// Stops the services in reverse order, the inbox last (as SIGTERM does).
    public func triggerGracefulShutdown() async {
        await group.triggerGracefulShutdown()
    }

    /// The event loop of the CPNP socket and, with the embedded store, the engine: one thread of its
    /// own, apart from NIO's shared loops, since the engine blocks it while the store commits. Like
    /// those, it lives as long as the process.
    static let engineEventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private static func startTransport(_ configuration: ServerConfiguration, logger: Logger) async throws -> any CPNPTransport {
        let port = Int(configuration.listen.port)
        switch configuration.listen.transport {
        case .plainUDP:
            return try await PlainUDPTransport.bind(
                host: configuration.listen.host, port: port,
                receiveBufferSize: configuration.listen.receiveBufferBytes ?? 4 << 20, group: engineEventLoops, logger: logger)
        case .dtls:
            var dtlsConfiguration = DTLSTransportConfiguration(security: try security(configuration.pki))
            dtlsConfiguration.maximumAssociations = configuration.limits.maxAssociations
            dtlsConfiguration.idleTimeout = configuration.limits.associationIdleTimeout
            if let receiveBufferBytes = configuration.listen.receiveBufferBytes { dtlsConfiguration.receiveBufferSize = receiveBufferBytes }
            dtlsConfiguration.reusePort = configuration.listen.reusePort
            return try await DTLSTransport.server(
                host: configuration.listen.host, port: port, configuration: dtlsConfiguration, group: engineEventLoops, logger: logger)
        case .tls:
            let tlsConfiguration = TLSTransportConfiguration(security: try security(configuration.pki))
            return try await TLSTransport.server(
                host: configuration.listen.host, port: port, configuration: tlsConfiguration, group: engineEventLoops, logger: logger)
        }
    }

    private static func security(_ pki: PKIConfiguration) throws -> CPNPSecurityConfiguration {
        try CPNPSecurityConfiguration(certificateFile: pki.certificatePath, keyFile: pki.keyPath, trustRootsFile: pki.caPath)
    }
}

extension ProviderDaemon {
    /// Opens the configured order store: PostgreSQL when a URL is set, else the SQLite file (its
    /// folder made first). A bad URL, an unreachable server or refused credentials throw a
    /// ``StartupError`` that names `option` and the cause.
    public static func openStore(_ database: DatabaseConfiguration, option: String) throws -> ServerOrderStore {
        if let url = database.url {
            let location: PostgresLocation
            do { location = try PostgresLocation(url: url) } catch { throw StartupError("\(option): \(error)") }
            do { return try ServerOrderStore(postgres: location) } catch { throw StartupError("\(option): \(error)") }
        }
        let folder = (database.path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true)
        return try ServerOrderStore(path: database.path)
    }

    /// The store's location for logs: a URL without its password, or the file's path.
    public static func databaseDescription(_ database: DatabaseConfiguration) -> String {
        guard let url = database.url else { return database.path }
        return (try? PostgresLocation(url: url).description) ?? "an invalid PostgreSQL URL"
    }

    /// The customers of the demo policy, and an operator for the HTTPS console
    /// (`http.operator-identities`): the client certificates of the development PKI.
    public static let developmentClients = ["acme", "globex", "operator"]

    /// Makes the development PKI on first run when the configured files are missing
    /// (docs/configuration.md `pki`).
    public static func ensureDevelopmentPKI(_ pki: PKIConfiguration, logger: Logger) throws {
        let fileManager = FileManager.default
        guard !fileManager.fileExists(atPath: pki.certificatePath) else { return }
        guard !fileManager.fileExists(atPath: pki.caPath) else {
            throw StartupError("\(pki.caPath) exists but \(pki.certificatePath) does not: fix the PKI directory or remove it")
        }
        try DevPKI.initialize(directory: pki.directory)
        var clients: [String] = []
        for name in developmentClients {
            let issued = try DevPKI.issueClient(name: name, directory: pki.directory)
            clients.append(issued.certificate)
        }
        logger.notice(
            "created a development PKI (not for production)",
            metadata: [
                "directory": "\(pki.directory)", "ca": "\(pki.caPath)", "server-certificate": "\(pki.certificatePath)",
                "client-certificates": "\(clients.joined(separator: ", "))",
            ])
    }
}
