// A real `cpnpd` process in its own temporary directory (Daemon), read through `cpnpd admin`
// (OrderView): the end-to-end tests' provider. Every wait is bounded.
public import CPNPCore
public import Foundation

/// A `cpnpd` child process in its own temporary directory.
public final class Daemon: @unchecked Sendable {
    /// `cpnpd` next to the test bundle, or `$CPNPD_BINARY`.
    public static let binary: URL? = BuiltExecutable.locate("cpnpd", overriddenBy: "CPNPD_BINARY")

    /// The exit status of `CPNPD_FAULT` crashes (cpnpd's TestFault).
    public static let faultExitStatus: Int32 = 86

    public var process = Process()
    public let directory: URL
    public let log: URL
    /// `--config FILE`, when the test wrote one; else the embedded demo.
    public let configurationFile: URL?
    public private(set) var port = 0
    /// The HTTP server's port (0 with `--no-http`).
    public private(set) var httpPort = 0
    public var pkiDirectory: URL { directory.appendingPathComponent(".cpnp/pki") }
    public var database: URL { directory.appendingPathComponent(".cpnp/cpnpd.sqlite") }
    /// Arguments added to every launch (e.g. `--reuse-port`).
    public var arguments: [String] = []
    /// A PostgreSQL database (`--database URL`) instead of the SQLite file in `directory`.
    public var databaseURL: String?

    private init(configuration: String?) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnpd-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        log = directory.appendingPathComponent("cpnpd.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        if let configuration {
            let file = directory.appendingPathComponent("cpnpd.yaml")
            try Data(configuration.utf8).write(to: file)
            configurationFile = file
        } else {
            configurationFile = nil
        }
    }

    /// Starts cpnpd (embedded defaults, or `configuration` as YAML) on an ephemeral port and waits
    /// for its ready line. `environment` is added to the test's (e.g. `CPNPD_FAULT`); `prepare`
    /// runs in the new directory before the first launch (e.g. to write its own PKI).
    public static func start(
        configuration: String? = nil, environment: [String: String] = [:], prepare: ((Daemon) async throws -> Void)? = nil
    ) async throws -> Daemon {
        let daemon = try Daemon(configuration: configuration)
        try await prepare?(daemon)
        try await daemon.launch(port: 0, environment: environment)
        return daemon
    }

    /// Starts one of several cpnpd sharing the PostgreSQL database at `databaseURL`: with the PKI of
    /// `sibling` when given (customers trust every instance), on `port` (0: an ephemeral one), with
    /// `arguments` added (e.g. `--reuse-port` to share a sibling's port).
    public static func start(
        sharing databaseURL: String, configuration: String? = nil, sibling: Daemon? = nil, port: Int = 0, arguments: [String] = [],
        environment: [String: String] = [:]
    ) async throws -> Daemon {
        let daemon = try Daemon(configuration: configuration)
        daemon.databaseURL = databaseURL
        daemon.arguments = ["--database", databaseURL] + arguments
        if let sibling {
            try FileManager.default.createDirectory(at: daemon.pkiDirectory.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: sibling.pkiDirectory, to: daemon.pkiDirectory)
        }
        try await daemon.launch(port: port, environment: environment)
        return daemon
    }

    /// The demo configuration (`Examples/cpnpd.yaml`) with its `timers` section replaced.
    public static func demoConfiguration(timers: String) throws -> String {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(of: "timers:"), let end = lines[start...].firstIndex(of: "") else {
            throw DaemonError(description: "no timers section in Examples/cpnpd.yaml")
        }
        lines.replaceSubrange(start..<end, with: ["timers:"] + timers.components(separatedBy: "\n").filter { !$0.isEmpty }.map { "  " + $0 })
        return lines.joined(separator: "\n")
    }

    /// Starts the daemon again in the same directory (same database, PKI and configuration) and port.
    public func restart(environment: [String: String] = [:]) async throws {
        process = Process()
        try await launch(port: port, environment: environment)
    }

    /// kill -9.
    public func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits (bounded) for the process to exit by itself; its status, or nil if it still runs.
    public func waitForExit(timeout: Duration = .seconds(20)) async throws -> Int32? {
        await process.ends(within: timeout) ? process.terminationStatus : nil
    }

    private func launch(port: Int, environment: [String: String]) async throws {
        try? FileManager.default.removeItem(at: log)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        guard let binary = Daemon.binary else { throw DaemonError(description: "cpnpd binary not found") }
        process.executableURL = binary
        // The HTTP server on an ephemeral port (tests run daemons side by side), unless the test chose.
        let http = arguments.contains("--http") || arguments.contains("--no-http") ? [] : ["--http", "127.0.0.1:0"]
        process.arguments = ["--listen", "127.0.0.1:\(port)"] + http + (configurationFile.map { ["--config", $0.path] } ?? []) + arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // A bound against a hang, not a timing: on two CPUs busy with the rest of the suite, a debug
        // cpnpd has taken close to 30 s to start.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            // Text or JSON logs (`--log-format json`).
            if let line = text.split(separator: "\n").first(where: { $0.contains("cpnpd ready") }),
                let range = line.range(of: "listen=127.0.0.1:") ?? line.range(of: "\"listen\":\"127.0.0.1:"),
                let port = Int(line[range.upperBound...].prefix { $0.isNumber })
            {
                self.port = port
                // The HTTP server starts with the service group, right after.
                if arguments.contains("--no-http") { return }
                if let line = text.split(separator: "\n").first(where: { $0.contains("HTTP server listening") }),
                    let range = line.range(of: "http=http") ?? line.range(of: "\"http\":\"http"),
                    let address = line[range.upperBound...].split(whereSeparator: { $0 == " " || $0 == "\"" }).first,
                    let colon = address.lastIndex(of: ":"),
                    let port = Int(address[address.index(after: colon)...])
                {
                    httpPort = port
                    return
                }
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        stop()
        throw DaemonError(description: "cpnpd did not become ready:\n" + logText)
    }

    public var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// `cpnpd admin …` against this daemon's database: its standard output and error.
    public func admin(_ arguments: [String]) async throws -> String {
        try await Daemon.command(["admin"] + arguments + ["--database", databaseURL ?? database.path]).output
    }

    /// Runs `cpnpd ARGS` (in `directory`, when given) to its end: exit status, standard output and error.
    public static func command(_ arguments: [String], in directory: URL? = nil) async throws -> (status: Int32, output: String) {
        guard let binary else { throw DaemonError(description: "cpnpd binary not found") }
        return try await BuiltExecutable.run(binary, arguments, in: directory)
    }

    /// The lines of `cpnpd admin orders` naming `providerOrderID`.
    public func orderLines(_ providerOrderID: ProviderOrderID) async throws -> [Substring] {
        try await admin(["orders"]).split(separator: "\n").filter { $0.contains(providerOrderID.rawValue) }
    }

    /// SIGTERM, then the exit status (kills after 10 s).
    public func terminate() async -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        if !(await process.ends(within: .seconds(10))) { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        return process.terminationStatus
    }

    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    /// Issues one more client certificate from the daemon's dev CA.
    public func issueClientCertificate(_ name: String) async throws {
        let (status, output) = try await Daemon.command(["pki", "client", name, "--dir", pkiDirectory.path])
        guard status == 0 else { throw DaemonError(description: "cpnpd pki client \(name) failed (exit \(status)):\n\(output)") }
    }
}

/// `cpnpd admin show` output: the server's view of one order.
public struct OrderView: CustomStringConvertible {
    public let text: String

    public init(_ text: String) { self.text = text }

    public var lines: [Substring] { text.split(separator: "\n") }
    /// `Completed`, `Cancelled`, … (without the "(closed)" mark).
    public var state: String? {
        lines.first { $0.hasPrefix("state: ") }.map { String($0.dropFirst(7).split(separator: " ")[0]) }
    }
    public var isClosed: Bool { lines.contains { $0.hasPrefix("state: ") && $0.hasSuffix("(closed)") } }
    /// e.g. `activation explicit, active, purpose permanent`.
    public var agreement: String? { lines.first { $0.hasPrefix("agreement: ") }.map { String($0.dropFirst(11)) } }
    /// `resource/direction` → Mbps, per reservation kind (`offered`, `committed`).
    public func reservations(_ kind: String) -> [String: String] {
        var reservations: [String: String] = [:]
        for line in lines where line.hasPrefix("reservation: ") && line.hasSuffix("(\(kind))") {
            let fields = line.split(separator: " ")
            reservations[String(fields[1])] = String(fields[2])
        }
        return reservations
    }
    public var hasReservations: Bool { lines.contains { $0.hasPrefix("reservation: ") } }
    /// Audit lines: `time  FROM → TO event [client]`.
    public var audit: [Substring] { lines.drop { $0 != "audit trail:" }.dropFirst().map { $0 } }
    /// How many audit entries entered `state`.
    public func entries(into state: String) -> Int { audit.filter { $0.contains("→ \(state) ") }.count }
    public func auditContains(_ event: String) -> Bool { audit.contains { $0.contains(event) } }
    public var description: String { text }

    /// The order as the customer's agreement stands: state, agreement and reservations, and the
    /// audit trail without the refusals it records (a refused UPDATE, WITHDRAW or ACTIVATE is kept
    /// with its FAIL, RFC 8921 §11.3, and changes nothing else).
    public var standing: [Substring] {
        lines.filter { line in
            !line.hasPrefix("revision") && !line.hasPrefix("updated") && !(line.contains(" refused: FAIL ") && !line.hasPrefix("state"))
        }
    }
}

/// A harness step that did not happen in time, or a daemon that did not start; the message says
/// what and includes the log where it helps.
public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Starts a daemon and a client, runs `body`, and always stops both.
public func withDaemon<T>(
    configuration: String? = nil, environment: [String: String] = [:], client name: String = "acme",
    _ body: (Daemon, TestClient) async throws -> T
) async throws -> T {
    let daemon = try await Daemon.start(configuration: configuration, environment: environment)
    defer { daemon.stop() }
    let client = try await TestClient(pki: daemon.pkiDirectory, name: name, serverPort: daemon.port)
    do {
        let result = try await body(daemon, client)
        await client.close()
        daemon.stop()
        try? FileManager.default.removeItem(at: daemon.directory)
        return result
    } catch {
        await client.close()
        throw DaemonError(description: "\(error)\n--- cpnpd log ---\n\(daemon.logText)")
    }
}
