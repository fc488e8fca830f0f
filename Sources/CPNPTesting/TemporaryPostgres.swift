// A throw-away PostgreSQL server for tests: its own cluster in a temporary directory, on a free
// loopback port, started with `initdb` and `pg_ctl` and removed afterwards. Never a system server.
public import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a ``TemporaryPostgres`` operation failed, in words (with the server log's tail when useful).
public struct TemporaryPostgresError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// A PostgreSQL server of its own, in a temporary directory, for one test (or one suite).
///
/// The superuser is `cpnp` with a random password; clients connect over TCP to `127.0.0.1:port`
/// with SCRAM-SHA-256. `fsync` is off (the data need not survive a machine crash), so it is fast.
/// When the process runs as root, the cluster belongs to the `postgres` system user (PostgreSQL
/// refuses to run as root). `deinit` stops the server and removes the directory.
public final class TemporaryPostgres: Sendable {
    /// How `pg_ctl stop` shuts the server down.
    public enum StopMode: String, Sendable {
        /// Disconnects clients, then a clean shutdown (a checkpoint).
        case fast
        /// Kills the server without a checkpoint: the next start recovers from the WAL.
        case immediate
    }

    /// The superuser's name.
    public static let user = "cpnp"

    /// The temporary directory: `data/` (the cluster), `log` (the server log), the Unix socket.
    public let directory: URL
    /// The superuser's password.
    public let password: String

    private let binaries: Binaries
    private let runAsPostgres: Bool
    private let state: Mutex<State>

    private struct State {
        var port: Int
        var isRunning: Bool
        var isRemoved: Bool
    }

    /// The TCP port on 127.0.0.1 (the same after a restart).
    public var port: Int { state.withLock { $0.port } }

    /// Whether the server was started and not stopped since.
    public var isRunning: Bool { state.withLock { $0.isRunning } }

    private var dataDirectory: URL { directory.appendingPathComponent("data") }
    private var logFile: URL { directory.appendingPathComponent("log") }

    private init(directory: URL, password: String, binaries: Binaries, runAsPostgres: Bool) {
        self.directory = directory
        self.password = password
        self.binaries = binaries
        self.runAsPostgres = runAsPostgres
        self.state = Mutex(State(port: 0, isRunning: false, isRemoved: false))
    }

    deinit {
        stop(mode: .immediate, removeDirectory: true)
    }

    // MARK: Starting

    /// Creates a cluster in a new temporary directory (named after `name`) and starts it on a free port.
    public static func start(name: String = "cpnp-test") async throws -> TemporaryPostgres {
        try await onOwnThread { try startBlocking(name: name) }
    }

    private static func startBlocking(name: String) throws -> TemporaryPostgres {
        let binaries = try Binaries.find()
        let runAsPostgres = getuid() == 0
        let directory = try makeTemporaryDirectory(name: name, forPostgresUser: runAsPostgres)
        let password = randomPassword()
        let server = TemporaryPostgres(directory: directory, password: password, binaries: binaries, runAsPostgres: runAsPostgres)
        // From here on, a failure removes the directory (deinit).
        let passwordFile = directory.appendingPathComponent("pwfile")
        try Data((password + "\n").utf8).write(to: passwordFile)
        chmod(passwordFile.path, 0o600)
        if runAsPostgres {
            try changeOwnerToPostgres(directory)
            try changeOwnerToPostgres(passwordFile)
        }
        try server.runServerTool(
            binaries.initdb,
            [
                "-D", server.dataDirectory.path, "-U", user, "--auth=scram-sha-256", "--pwfile=\(passwordFile.path)",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            ], what: "initdb")
        try? FileManager.default.removeItem(at: passwordFile)
        let configuration = server.dataDirectory.appendingPathComponent("postgresql.conf")
        let handle = try FileHandle(forWritingTo: configuration)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\ninclude 'cpnp-test.conf'\n".utf8))
        try handle.close()

        var lastFailure: TemporaryPostgresError?
        for _ in 0..<20 {
            let port = Int.random(in: 20000...60000)
            try server.writePortConfiguration(port)
            server.state.withLock { $0.port = port }
            let logSize = server.logData().count
            do {
                try server.startServer()
                return server
            } catch let failure as TemporaryPostgresError {
                // Only a port someone else took is worth another try.
                let attemptLog = String(decoding: server.logData().dropFirst(logSize), as: UTF8.self)
                guard attemptLog.contains("could not bind") || attemptLog.contains("already in use") else {
                    throw failure
                }
                lastFailure = failure
            }
        }
        throw lastFailure ?? TemporaryPostgresError("PostgreSQL found no free port")
    }

    /// Starts the server again on the same port and data directory (stopping it first if running).
    public func restart() async throws {
        try await onOwnThread {
            if self.isRunning { self.stop(mode: .fast) }
            try self.startServer()
        }
    }

    /// Stops the server (`pg_ctl stop -m mode -w`); with `removeDirectory`, also deletes its data.
    /// Synchronous, for `defer` and `deinit`: it holds its thread while pg_ctl waits.
    public func stop(mode: StopMode = .fast, removeDirectory: Bool = false) {
        let wasRunning = state.withLock { state in
            defer { state.isRunning = false }
            return state.isRunning
        }
        if wasRunning {
            _ = try? runServerTool(binaries.pgCtl, ["stop", "-D", dataDirectory.path, "-m", mode.rawValue, "-w", "-t", "60"], what: "pg_ctl stop")
        }
        if removeDirectory {
            let remove = state.withLock { state in
                defer { state.isRemoved = true }
                return !state.isRemoved
            }
            if remove { try? FileManager.default.removeItem(at: directory) }
        }
    }

    private func startServer() throws {
        try runServerTool(binaries.pgCtl, ["start", "-D", dataDirectory.path, "-w", "-t", "60", "-l", logFile.path], what: "pg_ctl start")
        state.withLock { $0.isRunning = true }
    }

    private func writePortConfiguration(_ port: Int) throws {
        let file = dataDirectory.appendingPathComponent("cpnp-test.conf")
        let text = """
            # Written by TemporaryPostgres (Sources/CPNPTesting): a throw-away test server.
            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(directory.path)'
            fsync = off
            synchronous_commit = on
            max_connections = 200

            """
        try Data(text.utf8).write(to: file)
        if runAsPostgres { try Self.changeOwnerToPostgres(file) }
    }

    // MARK: Clients

    /// `postgres://cpnp:PASSWORD@127.0.0.1:PORT/DATABASE`, the password percent-encoded.
    public func url(database: String = "postgres", user: String = TemporaryPostgres.user, password: String? = nil) -> String {
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text }
        return "postgres://\(encode(user)):\(encode(password ?? self.password))@127.0.0.1:\(port)/\(encode(database))"
    }

    /// Creates an empty database (`CREATE DATABASE`), so that each test has its own.
    public func createDatabase(_ name: String) async throws {
        let quoted = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        _ = try await psql("CREATE DATABASE \(quoted)")
    }

    /// Runs `sql` with `psql -X -A -t -v ON_ERROR_STOP=1` over TCP as the superuser (or with
    /// another `password`) and returns its output without the trailing newline; throws with
    /// psql's error output when it fails.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres", password: String? = nil) async throws -> String {
        try await onOwnThread { try self.psqlBlocking(sql, database: database, password: password) }
    }

    private func psqlBlocking(_ sql: String, database: String, password: String?) throws -> String {
        let result = try Self.run(
            binaries.psql,
            [
                "-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", String(port), "-U", Self.user, "-d", database, "-c", sql,
            ], environment: ["PGPASSWORD": password ?? self.password, "PGCONNECT_TIMEOUT": "30"], directory: directory)
        guard result.status == 0 else {
            throw TemporaryPostgresError(
                "psql failed (exit \(result.status)): \(result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        var output = result.standardOutput
        while output.hasSuffix("\n") { output.removeLast() }
        return output
    }

    /// The last `lines` lines of the server log.
    public func logTail(lines: Int = 20) -> String {
        String(decoding: logData(), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    private func logData() -> Data {
        (try? Data(contentsOf: logFile)) ?? Data()
    }

    // MARK: Processes

    /// Runs initdb/pg_ctl, as the `postgres` user when we are root; throws with the log's tail.
    private func runServerTool(_ tool: String, _ arguments: [String], what: String) throws {
        let (executable, allArguments) =
            runAsPostgres
            ? (Self.runuser, ["-u", "postgres", "--", tool] + arguments)
            : (tool, arguments)
        let result = try Self.run(executable, allArguments, environment: [:], directory: directory)
        guard result.status == 0 else {
            let output = (result.standardOutput + result.standardError).trimmingCharacters(in: .whitespacesAndNewlines)
            throw TemporaryPostgresError("\(what) failed (exit \(result.status)): \(output)\n--- server log (\(logFile.path)):\n\(logTail())")
        }
    }

    private struct Output {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// Runs a program to completion; its output goes through files (no pipe to fill up).
    ///
    /// posix_spawn and waitpid rather than Foundation's Process: on Linux, Process notices the exit
    /// through a descriptor the child inherits, and the server pg_ctl leaves behind would keep it open.
    /// Here the child gets only stdin, stdout and stderr.
    private static func run(_ executable: String, _ arguments: [String], environment: [String: String], directory: URL) throws -> Output {
        let (outFile, outDescriptor) = try captureFile()
        let (errFile, errDescriptor) = try captureFile()
        defer {
            close(outDescriptor)
            close(errDescriptor)
            unlink(outFile)
            unlink(errFile)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outDescriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, errDescriptor, 2)
        #if os(Linux)
            // glibc 2.34+ (not in Swift's Glibc module): close everything from 3 up, run in `directory`.
            typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
            let libc = dlopen(nil, RTLD_NOW)
            defer { if let libc { dlclose(libc) } }
            if let symbol = dlsym(libc, "posix_spawn_file_actions_addclosefrom_np") {
                _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
            }
            if let symbol = dlsym(libc, "posix_spawn_file_actions_addchdir_np") {
                _ = unsafeBitCast(symbol, to: ChangeDirectory.self)(&actions, directory.path)
            }
        #endif

        let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw TemporaryPostgresError("could not run \(executable): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw TemporaryPostgresError("waitpid for \(executable) failed: errno \(errno)") }
        }
        // Exit code when it exited, 128 + signal when a signal ended it.
        let signal = status & 0x7f
        let exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        func read(_ path: String) -> String {
            String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data(), as: UTF8.self)
        }
        return Output(status: exitStatus, standardOutput: read(outFile), standardError: read(errFile))
    }

    private static func captureFile() throws -> (String, Int32) {
        var template = Array((NSTemporaryDirectory() + "/cpnp-pg-output.XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw TemporaryPostgresError("mkstemp failed: errno \(errno)") }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return (path, descriptor)
    }

    // MARK: Set-up helpers

    private static var runuser: String {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") ? "/usr/sbin/runuser" : "/sbin/runuser"
    }

    private static func makeTemporaryDirectory(name: String, forPostgresUser: Bool) throws -> URL {
        // Short (the Unix socket path is limited to ~100 bytes) and, for root, reachable by postgres.
        let base = forPostgresUser ? "/tmp" : NSTemporaryDirectory()
        let safeName = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" }.prefix(30))
        var template = Array((base + "/" + safeName + ".XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw TemporaryPostgresError("mkdtemp in \(base) failed: errno \(errno)")
        }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // World-traversable, so that the postgres user reaches it (the data directory itself is 0700).
        chmod(path, 0o755)
        return URL(fileURLWithPath: path, isDirectory: true)
    }

    private static func changeOwnerToPostgres(_ url: URL) throws {
        guard let entry = getpwnam("postgres") else {
            throw TemporaryPostgresError("running as root, but there is no postgres system user: install Debian's postgresql package (.ci/run does)")
        }
        guard chown(url.path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
            throw TemporaryPostgresError("chown \(url.path) to postgres failed: errno \(errno)")
        }
    }

    private static func randomPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<24).map { _ in String(UInt8.random(in: 0...255, using: &generator), radix: 16) }
            .map { $0.count == 1 ? "0" + $0 : $0 }.joined()
    }

    /// Where initdb, pg_ctl, postgres and psql are: on PATH, else in Debian's highest
    /// `/usr/lib/postgresql/<version>/bin`.
    private struct Binaries: Sendable {
        var initdb: String
        var pgCtl: String
        var psql: String

        static func find() throws -> Binaries {
            let fileManager = FileManager.default
            var directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
            let versions = ((try? fileManager.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
                .compactMap { name in Double(name).map { (name, $0) } }
                .sorted { $0.1 > $1.1 }
            directories += versions.map { "/usr/lib/postgresql/\($0.0)/bin" }
            func locate(_ tool: String) throws -> String {
                for directory in directories where fileManager.isExecutableFile(atPath: directory + "/" + tool) {
                    return directory + "/" + tool
                }
                throw TemporaryPostgresError(
                    "PostgreSQL not installed (no \(tool) on PATH or in /usr/lib/postgresql/*/bin): install Debian's postgresql package (.ci/run does)"
                )
            }
            _ = try locate("postgres")
            return Binaries(initdb: try locate("initdb"), pgCtl: try locate("pg_ctl"), psql: try locate("psql"))
        }
    }
}
