// cpnp-bench: how fast cpnpd negotiates (docs/performance.md). C concurrent customers, each a CPNPClientEngine on
// its own client transport, run full negotiations (QUOTATION → OFFER → ACCEPT → ACK, optionally
// WITHDRAW) against a cpnpd child process (or a running server), after a warm-up. Prints completed
// negotiations/s, messages/s, latency percentiles, retransmissions, failures by kind, the server's CPU
// time and peak memory, and a bare UDP ping-pong on the same loopback as the physical reference.
//
// docs/performance.md has the commands and the figures measured with it.

import ArgumentParser
import CPNPClient
import CPNPCore
import CPNPTransport
import Foundation
import Logging
import NIOCore

@main
struct CPNPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpnp-bench",
        abstract: "Load generator: concurrent customers negotiating with cpnpd (docs/performance.md).",
        discussion: """
            Without --server, starts cpnpd itself (the binary next to cpnp-bench, or --cpnpd) in a temporary \
            directory with Examples/cpnpd.yaml whose rate limits, open-order caps and link capacities are \
            raised so that the policy never limits the run, and with its own dev PKI.
            """)

    @Option(name: .long, help: "A running server, HOST:PORT (default: start a cpnpd child process).")
    var server: String?

    @Option(name: .long, help: "The dev PKI of --server (ca.pem, client-IDENTITY.pem, client-IDENTITY-key.pem).")
    var pki: String?

    @Option(name: .long, help: "PID of --server, to report its CPU time and peak memory.")
    var serverPid: Int32?

    @Option(name: .long, help: "The client identity every customer uses.")
    var identity: String = "acme"

    @Option(name: .long, help: "Concurrent customers, each with its own engine and transport.")
    var customers: Int = 16

    @Option(name: .long, help: "Measured negotiations, in total (exclusive with --duration).")
    var negotiations: Int?

    @Option(name: .long, help: "Measurement duration, e.g. 10s, 2m (default 10s unless --negotiations).")
    var duration: String?

    @Option(
        name: .long, help: "Warm-up, excluded from the figures: at least this long, and each customer's first negotiations (--warmup-negotiations).")
    var warmup: String = "1s"

    @Option(name: .long, help: "Negotiations each customer completes during the warm-up (its handshake included).")
    var warmupNegotiations: Int = 1

    @Option(
        name: .long,
        help: """
            Start negotiations at this many per second in total, on a fixed schedule shared by the customers (open loop), \
            instead of each customer starting its next one when the last ended. Latency counts from the scheduled start, \
            so a server that falls behind shows it.
            """)
    var rate: Double?

    @Flag(name: .long, help: "WITHDRAW each agreement after its ACK (one more round trip and commit).")
    var withdraw = false

    @Option(name: .long, help: "The customers' first retransmission interval (RFC 8921 §11.4; doubles at each retry). Default: the library's, 1s.")
    var retransmissionInterval: String = "1s"

    @Option(name: .long, help: "The customers' EXPECTED_RESPONSE_TIME for each QUOTATION. Default: the library's, 30s.")
    var expectedResponseTime: String = "30s"

    @Flag(inversion: .prefixedNo, help: "Re-handshake (DTLS) when a request stays unanswered (the library's default).")
    var renewSession = true

    @Option(
        name: .long,
        help: "Each customer's order store: memory (VolatileClientOrderStore, the default) or sqlite (ClientOrderStore in memory, rounds 1 to 12).")
    var customerStore: String = "memory"

    @Option(
        name: .long,
        help: "Transport: dtls (default), tls, or plain-udp (the cpnpd child takes every client for --identity: listen.plain-udp-customer).")
    var transport: String = "dtls"

    @Option(name: .long, help: "Before starting cpnpd, store N orders in its database (closed and open, see --preload-open-percent).")
    var preload: Int = 0

    @Option(name: .long, help: "Share of preloaded orders that are open agreements (the rest: withdrawn, declined, refused).")
    var preloadOpenPercent: Int = 10

    @Option(
        name: .long,
        help: """
            A PostgreSQL database (postgres://…) for the cpnpd child(ren), instead of a SQLite file of their own; its server's CPU is \
            reported too. Or an existing SQLite file, e.g. that of an earlier --preload run's --work-dir.
            """)
    var database: String?

    /// Whether `--database` names a PostgreSQL database rather than a SQLite file.
    var databaseIsPostgres: Bool { database.map { $0.hasPrefix("postgres://") || $0.hasPrefix("postgresql://") } ?? false }

    @Option(name: .long, help: "cpnpd children sharing --database and one port (SO_REUSEPORT); the customers are spread over them by the kernel.")
    var instances: Int = 1

    @Option(name: .long, help: "The cpnpd binary (default: next to cpnp-bench; or CPNPD_BINARY).")
    var cpnpd: String?

    @Option(name: .long, help: "The configuration to raise the limits of (default: Examples/cpnpd.yaml of the repository).")
    var baseConfig: String?

    @Option(name: .long, help: "The Requested CPD (JSON) of every QUOTATION (default: a built-in 3-site L3VPN).")
    var cpd: String?

    @Option(
        name: .customLong("distinct-cpds"),
        help:
            "QUOTATIONs carry this many distinct CPDs (the request, its customer named \"bench variant N\"); each customer takes them in turn from a random start. Above 16, no receiver recognises a document quoted or offered for another order."
    )
    var distinctCPDs: Int = 1

    @Option(name: .long, help: "Round trips of the bare UDP ping-pong reference (0: skip it).")
    var pingPong: Int = 20_000

    @Option(name: .long, help: "cpnpd's log level (its log goes to a file in the work directory).")
    var serverLogLevel: String = "notice"

    @Option(name: .long, help: "Work directory of the cpnpd child (kept afterwards); default: a temporary one, removed.")
    var workDir: String?

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Flag(name: .long, help: "Progress on standard error.")
    var verbose = false

    func validate() throws {
        guard customers >= 1 else { throw ValidationError("--customers must be at least 1") }
        // Each distinct CPD is built up front and held for the run: any number above 16 defeats recognition.
        guard (1...10_000).contains(distinctCPDs) else { throw ValidationError("--distinct-cpds must be from 1 to 10000") }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a number of negotiations per second above 0") }
        if let count = negotiations, count < 1 { throw ValidationError("--negotiations must be at least 1") }
        if negotiations != nil && duration != nil { throw ValidationError("give --negotiations or --duration, not both") }
        if let text = duration, Duration(text: text) == nil { throw ValidationError("--duration: expected e.g. 10s, 500ms, 2m") }
        guard Duration(text: warmup) != nil else { throw ValidationError("--warmup: expected e.g. 1s, 500ms") }
        guard let interval = Duration(text: retransmissionInterval), interval > .zero else {
            throw ValidationError("--retransmission-interval: expected e.g. 1s, 500ms")
        }
        guard let responseTime = Duration(text: expectedResponseTime), responseTime > .zero else {
            throw ValidationError("--expected-response-time: expected e.g. 30s")
        }
        guard warmupNegotiations >= 0 else { throw ValidationError("--warmup-negotiations must not be negative") }
        guard ["dtls", "tls", "plain-udp"].contains(transport) else { throw ValidationError("--transport must be dtls, tls or plain-udp") }
        guard ["memory", "sqlite"].contains(customerStore) else { throw ValidationError("--customer-store must be memory or sqlite") }
        guard preload >= 0 else { throw ValidationError("--preload must not be negative") }
        guard (0...100).contains(preloadOpenPercent) else { throw ValidationError("--preload-open-percent must be 0…100") }
        if server != nil && preload > 0 { throw ValidationError("--preload needs the cpnpd child (no --server)") }
        if server != nil && pki == nil { throw ValidationError("--server needs --pki DIR (its dev PKI)") }
        guard instances >= 1 else { throw ValidationError("--instances must be at least 1") }
        if instances > 1 && !databaseIsPostgres {
            throw ValidationError("--instances needs --database postgres://… (one SQLite file has one writer)")
        }
        if instances > 1 && transport != "dtls" { throw ValidationError("--instances shares a port over dtls only") }
        if database != nil && (server != nil || preload > 0) {
            throw ValidationError("--database is for the cpnpd children, without --server or --preload")
        }
        guard pingPong >= 0 else { throw ValidationError("--ping-pong must not be negative") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .critical
            return handler
        }
        let progress = ProgressLog(enabled: verbose)
        let startedAt = Date()
        let loadBefore = LoadAverage.read()

        let request = try cpd.map(BenchCPD.load) ?? BenchCPD.builtIn()
        let quotationSize = BenchCPD.quotationSize(request)

        // 1. The physical reference, before anything else runs.
        var reference: PingPong.Result?
        if pingPong > 0 {
            progress.say("UDP ping-pong: \(pingPong) round trips of \(quotationSize) bytes")
            reference = try PingPong.run(roundTrips: pingPong, messageSize: quotationSize)
        }

        // 2. The server: a cpnpd child (optionally preloaded), or the one given.
        var daemons: [DaemonProcess] = []
        var preloadReport: Preloader.Report?
        let target: CPNPPeer
        let pkiDirectory: String
        var serverPIDs = serverPid.map { [$0] } ?? []
        if let server {
            target = try Self.peer(server)
            pkiDirectory = pki!
        } else {
            let work = try WorkDirectory(path: workDir)
            let config = try BenchConfiguration.make(baseConfig: baseConfig, transport: transport, identity: identity, directory: work.url)
            if preload > 0 {
                progress.say("preloading \(preload) orders (\(preloadOpenPercent)% open agreements)")
                preloadReport = try await Preloader(configuration: config.configuration, request: request, openPercent: preloadOpenPercent)
                    .run(count: preload, database: work.database, progress: progress)
            }
            progress.say("starting cpnpd (\(transport)\(instances > 1 ? ", \(instances) instances" : ""))")
            for instance in 0..<instances {
                let daemon = try await DaemonProcess.start(
                    binary: try DaemonProcess.locate(cpnpd), work: work, configurationFile: config.file,
                    transport: transport, logLevel: serverLogLevel, database: database, instance: instance,
                    port: daemons.first?.port ?? 0, reusePort: instances > 1)
                daemons.append(daemon)
                progress.say(
                    "cpnpd ready in \(String(format: "%.2f", daemon.readiness.seconds)) s on port \(daemon.port) (work directory \(work.url.path))")
            }
            serverPIDs = daemons.map(\.pid)
            target = CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: daemons[0].port), serverName: "localhost")
            pkiDirectory = work.pki.path
        }

        // 3. The customers and the run.
        let result: LoadRun.Result
        do {
            let settings = LoadRun.Settings(
                customers: customers, identity: identity, transport: transport, pki: pkiDirectory, server: target,
                requests: BenchCPD.variants(of: request, count: distinctCPDs), withdraw: withdraw, customerStore: customerStore,
                stop: negotiations.map { .count($0) } ?? .duration(Duration(text: duration ?? "10s")!), rate: rate,
                warmup: Duration(text: warmup)!, warmupNegotiations: warmupNegotiations, serverPIDs: serverPIDs,
                measuresDatabase: databaseIsPostgres,
                engine: CPNPClientEngine.Configuration(
                    machine: ClientOrderStateMachine.Configuration(
                        retransmission: RetransmissionPolicy(initialInterval: Duration(text: retransmissionInterval)!)),
                    expectedResponseTime: Duration(text: expectedResponseTime)!, renewSessionWhenUnanswered: renewSession))
            result = try await LoadRun(settings: settings, progress: progress).run()
        } catch {
            for daemon in daemons { await daemon.stop(keep: true) }
            throw error
        }
        for daemon in daemons { await daemon.stop(keep: true) }
        let serverLog = daemons.first.map { $0.logTail() }
        // Each instance logs its group-commit figures when it stops: the mean commit latency among them.
        let commitLatencies = daemons.compactMap { daemon -> Double? in
            guard let line = daemon.logTail(lines: 40).split(separator: "\n").last(where: { $0.contains("commit-mean-ms=") }),
                let marker = line.range(of: "commit-mean-ms=")
            else { return nil }
            return Double(line[marker.upperBound...].prefix { $0.isNumber || $0 == "." })
        }
        if let work = daemons.first?.work, work.temporary, workDir == nil { try? FileManager.default.removeItem(at: work.url) }

        let report = Report(
            settings: Report.Settings(
                transport: transport, customers: customers, identity: identity, withdraw: withdraw,
                stop: negotiations.map { "\($0) negotiations" } ?? "duration \(duration ?? "10s")", warmup: warmup,
                warmupNegotiations: warmupNegotiations, server: server ?? "cpnpd child", preload: preload,
                quotationBytes: quotationSize, distinctCPDs: distinctCPDs, serverLogLevel: server == nil ? serverLogLevel : nil,
                database: databaseIsPostgres ? "postgresql" : (server == nil ? "sqlite" : nil), instances: server == nil ? instances : nil,
                retransmissionInterval: retransmissionInterval, expectedResponseTime: expectedResponseTime, renewSession: renewSession,
                customerStore: customerStore, rate: rate),
            run: result, reference: reference, preload: preloadReport, daemon: daemons.first?.readiness,
            commitLatencyMilliseconds: commitLatencies.isEmpty ? nil : commitLatencies.reduce(0, +) / Double(commitLatencies.count),
            loadBefore: loadBefore, loadAfter: LoadAverage.read(), startedAt: startedAt, serverLogTail: serverLog)
        if json {
            print(report.json())
        } else {
            print(report.text())
        }
    }

    static func peer(_ text: String) throws -> CPNPPeer {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw ValidationError("--server must be HOST:PORT")
        }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return try CPNPPeer.server(host: host, port: port)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var microseconds: UInt64 { UInt64(max(0, seconds * 1e6).rounded()) }
}

/// A line on standard error when --verbose.
struct ProgressLog: Sendable {
    let enabled: Bool
    func say(_ line: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data(("cpnp-bench: " + line + "\n").utf8))
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
