import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The directory of a cpnpd child: configuration, database, PKI and log.
/// The size of an SQLite database file with its write-ahead log.
func databaseBytes(_ database: URL) -> Int64 {
    func size(_ path: String) -> Int64 { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0 }
    return size(database.path) + size(database.path + "-wal")
}

struct WorkDirectory: Sendable {
    let url: URL
    /// Removed at the end unless the user chose it.
    let temporary: Bool

    init(path: String?) throws {
        if let path {
            url = URL(fileURLWithPath: path)
            temporary = false
        } else {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-bench-\(getpid())-\(UUID().uuidString.prefix(8))")
            temporary = true
        }
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    var database: URL { url.appendingPathComponent("cpnpd.sqlite") }
    var pki: URL { url.appendingPathComponent("pki") }
    var log: URL { url.appendingPathComponent("cpnpd.log") }
}

/// A cpnpd child process, started with the bench configuration on an ephemeral loopback port.
final class DaemonProcess: @unchecked Sendable {
    /// How long cpnpd took to become ready (it recovers every open order first).
    struct Readiness: Sendable {
        var seconds: Double
        var recoveredOrders: Int?
        var databaseBytes: Int64
    }

    let process = Process()
    let work: WorkDirectory
    /// Its log: `cpnpd.log`, or `cpnpd-N.log` for the N-th of several instances.
    let log: URL
    private(set) var port = 0
    private(set) var readiness = Readiness(seconds: 0, recoveredOrders: nil, databaseBytes: 0)
    var pid: Int32 { process.processIdentifier }

    private init(work: WorkDirectory, instance: Int) {
        self.work = work
        log = instance == 0 ? work.log : work.url.appendingPathComponent("cpnpd-\(instance).log")
    }

    /// The binary: `explicit`, else `CPNPD_BINARY`, else `cpnpd` next to this executable.
    static func locate(_ explicit: String?) throws -> URL {
        let fileManager = FileManager.default
        if let path = explicit ?? ProcessInfo.processInfo.environment["CPNPD_BINARY"] {
            guard fileManager.isExecutableFile(atPath: path) else { throw BenchError("\(path) is not an executable") }
            return URL(fileURLWithPath: path)
        }
        let own = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidate = own.appendingPathComponent("cpnpd")
        guard fileManager.isExecutableFile(atPath: candidate.path) else {
            throw BenchError("no cpnpd next to cpnp-bench (\(candidate.path)): build it (swift build --product cpnpd) or give --cpnpd PATH")
        }
        return candidate
    }

    /// Starts cpnpd on `port` (0: an ephemeral one) with the SQLite file of `work`, or the PostgreSQL
    /// `database` that several instances share (with `reusePort`, on one port).
    static func start(
        binary: URL, work: WorkDirectory, configurationFile: URL, transport: String, logLevel: String,
        database: String? = nil, instance: Int = 0, port: Int = 0, reusePort: Bool = false
    ) async throws -> DaemonProcess {
        let daemon = DaemonProcess(work: work, instance: instance)
        let fileManager = FileManager.default
        try? fileManager.removeItem(at: daemon.log)
        _ = fileManager.createFile(atPath: daemon.log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: daemon.log)
        daemon.process.executableURL = binary
        daemon.process.arguments =
            [
                "--config", configurationFile.path, "--listen", "127.0.0.1:\(port)", "--transport", transport,
                "--database", database ?? work.database.path, "--pki", work.pki.path, "--log-level", logLevel, "--http", "127.0.0.1:0",
            ] + (reusePort ? ["--reuse-port"] : [])
        daemon.process.currentDirectoryURL = work.url
        daemon.process.standardOutput = handle
        daemon.process.standardError = handle
        daemon.process.standardInput = FileHandle.nullDevice
        let started = ContinuousClock.now
        try daemon.process.run()
        // Recovery of a large preloaded database can take a while: wait as long as the process lives.
        while true {
            let text = (try? String(contentsOf: daemon.log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("cpnpd ready") }),
                let range = line.range(of: "listen=127.0.0.1:"),
                let port = Int(line[range.upperBound...].prefix { $0.isNumber })
            {
                daemon.port = port
                var recovered: Int?
                if let marker = line.range(of: "recovered-orders=") { recovered = Int(line[marker.upperBound...].prefix { $0.isNumber }) }
                daemon.readiness = Readiness(
                    seconds: (ContinuousClock.now - started).seconds, recoveredOrders: recovered, databaseBytes: databaseBytes(work.database))
                return daemon
            }
            if !daemon.process.isRunning {
                throw BenchError("cpnpd exited with status \(daemon.process.terminationStatus) before it was ready:\n\(daemon.logTail())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The last lines of its log.
    func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// SIGTERM, then SIGKILL after 10 s; removes a temporary work directory unless `keep`.
    func stop(keep: Bool) async {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(10)
            while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        if work.temporary && !keep { try? FileManager.default.removeItem(at: work.url) }
    }
}
