import ArgumentParser
import CoreMetrics
import CPNPCore
import CPNPDaemon
import CPNPHTTP
import CPNPPolicy
import CPNPServer
import CPNPTransport
import Foundation
import Logging

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
            guard let kind = CPNPPolicy.TransportKind(rawValue: transport) else {
                throw ValidationError("--transport must be dtls, tls or plain-udp")
            }
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

        // One Prometheus registry for the engine's metrics and any library's that uses swift-metrics.
        let metrics = MetricsExporter()
        MetricsSystem.bootstrap(metrics.factory)
        var options = ProviderDaemon.Options()
        options.databaseOption = database == nil ? "database" : "--database"
        options.configurationSource = config ?? "embedded demo policy"
        options.metrics = metrics
        options.faultHook = try TestFault.hook()
        options.wrapUpstreamTransport = try TestFault.upstreamChaos()
        do {
            let daemon = try await ProviderDaemon.start(configuration: configuration, options: options, logger: logger)
            // SIGTERM and SIGINT are caught from here on: one arriving right after the ready line still
            // stops cpnpd gracefully, once the service group runs.
            do { try ShutdownSignals.shared.install() } catch { throw ValidationError("\(error)") }
            ShutdownSignals.shared.onSignal { await daemon.triggerGracefulShutdown() }
            try await daemon.run()
        } catch let error as ProviderDaemon.StartupError {
            throw ValidationError(error.description)
        }
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

/// TEST ONLY: deterministic crash points for the end-to-end crash tests, never for production.
/// `CPNPD_FAULT` lists comma-separated points where the process `_exit`s at once (as `kill -9` would,
/// without flushing anything):
/// - `crash-before-send:METHOD` (e.g. `ack`): right before sending such a message, after the state
///   change it reveals was committed;
/// - `crash-after-commit:STATE` (e.g. `AcceptReceived`): right after an order reached that state and
///   what it must make durable there was committed.
enum TestFault {
    static let exitStatus: Int32 = 86

    static func hook(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (@Sendable (CPNPServerEngine.FaultPoint) -> Void)?
    {
        guard let spec = environment["CPNPD_FAULT"], !spec.isEmpty else { return nil }
        var points: Set<CPNPServerEngine.FaultPoint> = []
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2, parts[0] == "crash-before-send",
                let method = MethodCode.allCases.first(where: { $0.name.lowercased() == parts[1].lowercased() })
            {
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
    static func upstreamChaos(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (
        @Sendable (any CPNPTransport, String) -> any CPNPTransport
    )? {
        guard let spec = environment["CPNPD_UPSTREAM_CHAOS"], !spec.isEmpty else { return nil }
        var values: [String: Double] = [:]
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["drop", "duplicate", "seed"].contains(parts[0]), let value = Double(parts[1]), value >= 0,
                parts[0] == "seed" || value <= 1
            else {
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
