import ArgumentParser
import CoreMetrics
import CPNPCore
import CPNPDaemon
import CPNPHTTP
import CPNPPKI
import CPNPPolicy
import CPNPServer
import CPNPStorage
import CPNPTransport
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `cpnpd run`: the daemon (RFC 8921 §8.2, §11.2).
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the CPNP server (the default).")

    @Option(name: .long, help: "YAML configuration file (default: the embedded demo policy).")
    var config: String?

    @Option(name: .long, help: "Override the listen address, host:port (e.g. 127.0.0.1:0 for an ephemeral port).")
    var listen: String?

    @Option(name: .long, help: "Override the transport: dtls, tls or plain-udp.")
    var transport: String?

    @Option(name: .long, help: "Override the order store: a SQLite file's path, or postgres://USER[:PASSWORD]@HOST[:PORT]/DB.")
    var database: String?

    @Option(name: .long, help: "Override the PKI directory.")
    var pki: String?

    @Flag(name: .long, help: "Share the listen port with other cpnpd on this host (SO_REUSEPORT; with a shared PostgreSQL database).")
    var reusePort = false

    @Option(name: .long, help: "Override the HTTP server's address (health, readiness, metrics), host:port; default 127.0.0.1:8922.")
    var http: String?

    @Flag(name: .long, help: "Do not start the HTTP server.")
    var noHTTP = false

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log format: text (default) or json (one object per line).")
    var logFormat: String = "text"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        switch logFormat {
        case "text": break
        case "json": LoggingSystem.bootstrap { _ in JSONLogHandler(level: level) }
        default: throw ValidationError("--log-format must be text or json")
        }
        var logger = Logger(label: "cpnpd")
        logger.logLevel = level
        var configuration = try loadConfiguration(config)
        if let listen {
            guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
                throw ValidationError("--listen must be host:port")
            }
            configuration.listen.host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            configuration.listen.port = port
        }
        if let transport {
            guard let kind = CPNPPolicy.TransportKind(rawValue: transport) else { throw ValidationError("--transport must be dtls, tls or plain-udp") }
            configuration.listen.transport = kind
        }
        if let database, let problem = configuration.database.set(commandLine: database) { throw ValidationError("--database: \(problem)") }
        if let pki { configuration.pki.directory = pki }
        if reusePort { configuration.listen.reusePort = true }
        if let http {
            guard let (host, port) = HTTPConfiguration.address(http) else { throw ValidationError("--http must be host:port") }
            (configuration.http.host, configuration.http.port) = (host, port)
        }
        if noHTTP { configuration.http.enabled = false }

        // The store first: a wrong database stops cpnpd before it writes anything.
        let store = try openStore(configuration.database, option: database == nil ? "database" : "--database")
        try ensureDevelopmentPKI(configuration.pki, logger: logger)
        // The HTTP server's credentials before any socket: beyond loopback it needs a token that exists.
        let operatorToken: String?
        do {
            operatorToken = configuration.http.enabled ? try DaemonHTTPServer.checkAuthentication(configuration.http, pki: configuration.pki) : nil
        } catch let problem as DaemonHTTPServer.ConfigurationProblem {
            throw ValidationError(problem.description)
        }
        let transport = try await startTransport(configuration, logger: logger)
        let portalMailbox = PortalMailbox()
        let sink = TransportSink(transport: transport, portal: portalMailbox, logger: logger)
        // One Prometheus registry for the engine's metrics and any library's that uses swift-metrics.
        let metrics = MetricsExporter()
        MetricsSystem.bootstrap(metrics.factory)
        let engine = CPNPServerEngine(
            configuration: configuration, store: store, sink: sink, logger: logger, faultHook: try TestFault.hook(), sendsWithoutWaiting: true,
            metrics: EngineMetrics(factory: metrics.factory))
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
                    configuration: configuration, engine: engine, logger: logger, wrapTransport: try TestFault.upstreamChaos())
                try await coordinator.start()
                await engine.setChildNegotiator(coordinator)
                cascade = coordinator
            } catch {
                await transport.close()
                throw ValidationError("cascade: cannot start the upstream providers' clients: \(error)")
            }
        }
        let recovered = try await engine.recover()
        await cascade?.reconcile()
        await portal.resumeAll()
        let provisioning = ProvisioningWorker(configuration: configuration.provisioning, store: store, logger: logger, claimant: engine.instanceID)
        // SIGTERM and SIGINT are caught from here on: one arriving right after the ready line still
        // stops cpnpd gracefully, once the service group runs.
        do { try ShutdownSignals.shared.install() } catch { throw ValidationError("\(error)") }
        let address = transport.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        let readyMetadata: Logger.Metadata = [
            "listen": "\(address)", "transport": "\(configuration.listen.transport.rawValue)",
            "database": "\(databaseDescription(configuration.database))", "pki": "\(configuration.pki.directory)",
            "config": "\(config ?? "embedded demo policy")", "recovered-orders": "\(recovered)",
        ]
        // "ready" once every listener is up: with the HTTP server, when it listens.
        let readyLogger = logger
        let announceReady: @Sendable () -> Void = { readyLogger.notice("cpnpd ready", metadata: readyMetadata) }
        var services = DaemonServices.make(engine: engine, transport: transport, provisioning: provisioning, logger: logger)
        if configuration.http.enabled {
            do {
                let dtls = transport as? DTLSTransport
                let sources = DaemonHTTPServer.Sources(engine: engine, metrics: metrics, store: store, portal: portal) {
                    dtls.map { dtlsTransport in
                        let statistics = dtlsTransport.statistics
                        return .init(associations: statistics.associations, handshakesCompleted: statistics.handshakesCompleted,
                                     handshakesFailed: statistics.handshakesFailed)
                    }
                }
                services.append(try DaemonHTTPServer.make(
                    configuration.http, pki: configuration.pki, operatorToken: operatorToken, sources: sources, logger: logger,
                    onListening: { _ in announceReady() }))
                // The REST API's webhooks, from the audit trail (docs/api.md).
                services.append(WebhookDispatcher(store: store, claimant: engine.instanceID, logger: logger))
            } catch let problem as DaemonHTTPServer.ConfigurationProblem {
                await transport.close()
                throw ValidationError(problem.description)
            }
        }
        if !configuration.http.enabled { announceReady() }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [], logger: logger)
        ShutdownSignals.shared.onSignal { await group.triggerGracefulShutdown() }
        do {
            try await group.run()
        } catch let error as IOError where configuration.http.enabled {
            // Only the HTTP server binds inside the group (the CPNP transport is bound above).
            throw ValidationError("http.listen \(configuration.http.host):\(configuration.http.port): cannot listen: \(error) (--http HOST:PORT chooses another address, --no-http none)")
        }
        await portal.shutdown()
        await cascade?.shutdown()
        logger.notice("cpnpd stopped")
    }

    private func startTransport(_ configuration: ServerConfiguration, logger: Logger) async throws -> any CPNPTransport {
        let port = Int(configuration.listen.port)
        switch configuration.listen.transport {
        case .plainUDP:
            return try await PlainUDPTransport.bind(host: configuration.listen.host, port: port,
                                                    receiveBufferSize: configuration.listen.receiveBufferBytes ?? 4 << 20, logger: logger)
        case .dtls:
            var dtlsConfiguration = DTLSTransportConfiguration(security: try security(configuration.pki))
            dtlsConfiguration.maximumAssociations = configuration.limits.maxAssociations
            dtlsConfiguration.idleTimeout = configuration.limits.associationIdleTimeout
            if let receiveBufferBytes = configuration.listen.receiveBufferBytes { dtlsConfiguration.receiveBufferSize = receiveBufferBytes }
            dtlsConfiguration.reusePort = configuration.listen.reusePort
            return try await DTLSTransport.server(host: configuration.listen.host, port: port, configuration: dtlsConfiguration,
                                                  logger: logger)
        case .tls:
            let tlsConfiguration = TLSTransportConfiguration(security: try security(configuration.pki))
            return try await TLSTransport.server(host: configuration.listen.host, port: port, configuration: tlsConfiguration, logger: logger)
        }
    }

    private func security(_ pki: PKIConfiguration) throws -> CPNPSecurityConfiguration {
        try CPNPSecurityConfiguration(certificateFile: pki.certificatePath, keyFile: pki.keyPath, trustRootsFile: pki.caPath)
    }
}

/// Loads a configuration file, or the embedded demo; prints every error with its path.
func loadConfiguration(_ path: String?) throws -> ServerConfiguration {
    guard let path else { return .demo }
    switch ConfigurationLoader.load(contentsOfFile: path) {
    case .success(let configuration): return configuration
    case .failure(let errors):
        for error in errors.errors { printError("\(path): \(error.descriptionWithLine)") }
        throw ExitCode(1)
    }
}

/// Makes the development PKI on first run when the configured files are missing (docs/configuration.md `pki`).
func ensureDevelopmentPKI(_ pki: PKIConfiguration, logger: Logger) throws {
    let fileManager = FileManager.default
    guard !fileManager.fileExists(atPath: pki.certificatePath) else { return }
    guard !fileManager.fileExists(atPath: pki.caPath) else {
        throw ValidationError("\(pki.caPath) exists but \(pki.certificatePath) does not: fix the PKI directory or remove it")
    }
    try DevPKI.initialize(directory: pki.directory)
    var clients: [String] = []
    // Customers of the demo policy, and an operator for the HTTPS console (http.operator-identities).
    for name in ["acme", "globex", "operator"] {
        let issued = try DevPKI.issueClient(name: name, directory: pki.directory)
        clients.append(issued.certificate)
    }
    logger.notice("created a development PKI (not for production)", metadata: [
        "directory": "\(pki.directory)", "ca": "\(pki.caPath)", "server-certificate": "\(pki.certificatePath)",
        "client-certificates": "\(clients.joined(separator: ", "))",
    ])
}

/// TEST ONLY: deterministic crash points for the end-to-end crash tests, never for production.
/// `CPNPD_FAULT` lists comma-separated points where the process `_exit`s at once (as `kill -9` would,
/// without flushing anything):
/// - `crash-before-send:METHOD` (e.g. `ack`): right before sending such a message, after the state
///   change it reveals was committed;
/// - `crash-after-commit:STATE` (e.g. `AcceptReceived`): right after an order reached that state and
///   what it must make durable there was committed.
enum TestFault {
    static let exitStatus: Int32 = 86

    static func hook(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (@Sendable (CPNPServerEngine.FaultPoint) -> Void)? {
        guard let spec = environment["CPNPD_FAULT"], !spec.isEmpty else { return nil }
        var points: Set<CPNPServerEngine.FaultPoint> = []
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2, parts[0] == "crash-before-send", let method = MethodCode.allCases.first(where: { $0.name.lowercased() == parts[1].lowercased() }) {
                points.insert(.sending(method))
            } else if parts.count == 2, parts[0] == "crash-after-commit", let state = ServerOrderStateMachine.State(rawValue: parts[1]) {
                points.insert(.committed(state))
            } else {
                throw ValidationError("CPNPD_FAULT: unknown fault point \(item) (crash-before-send:METHOD or crash-after-commit:STATE)")
            }
        }
        printError("cpnpd: TEST FAULT INJECTION ENABLED (CPNPD_FAULT=\(spec))")
        let armed = points
        return { point in
            guard armed.contains(point) else { return }
            printError("cpnpd: test fault \(point): exiting")
            _exit(exitStatus)
        }
    }
}

extension TestFault {
    /// `CPNPD_UPSTREAM_CHAOS=drop=P,duplicate=P[,seed=N]`: loses and duplicates messages on the
    /// upstream leg (child orders, docs/cascade.md) with the project's ChaosTransport, both ways.
    static func upstreamChaos(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (@Sendable (any CPNPTransport, String) -> any CPNPTransport)? {
        guard let spec = environment["CPNPD_UPSTREAM_CHAOS"], !spec.isEmpty else { return nil }
        var values: [String: Double] = [:]
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["drop", "duplicate", "seed"].contains(parts[0]), let value = Double(parts[1]), value >= 0, parts[0] == "seed" || value <= 1 else {
                throw ValidationError("CPNPD_UPSTREAM_CHAOS: \(item) is not drop=P, duplicate=P or seed=N")
            }
            values[parts[0]] = value
        }
        printError("cpnpd: TEST FAULT INJECTION ENABLED (CPNPD_UPSTREAM_CHAOS=\(spec))")
        let faults = ChaosTransport.Faults(drop: values["drop"] ?? 0, duplicate: values["duplicate"] ?? 0)
        let seed = UInt64(values["seed"] ?? 1)
        return { transport, _ in ChaosTransport(wrapping: transport, outgoing: faults, incoming: faults, seed: seed) }
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
