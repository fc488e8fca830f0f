/// The order store on PostgreSQL, through postgres-nio: several `cpnpd` processes share one
/// database (docs/deployment.md). Calls are synchronous, like the SQLite store's: the caller's thread
/// waits for the server's answers, which arrive on NIO's event loops.
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// Where a PostgreSQL order store lives: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?OPTIONS]`
/// (also `postgresql://`). Options: `sslmode` (`disable`, `prefer`, `require`, `verify-full`;
/// default `prefer`), `sslrootcert` (a PEM file of CA certificates, for `verify-full`),
/// `connect_timeout` (seconds, default 10), `query_timeout` (seconds a statement's answer may take
/// before the connection is given up, default 10), `pool_size` (idle connections kept, default 4).
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public var rootCertificatePath: String?
    public var connectTimeoutSeconds: Int
    public var queryTimeoutSeconds: Int
    public var poolSize: Int

    /// Whether `text` is meant as a PostgreSQL URL (its scheme), whether or not it is a valid one.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses a URL; the error says what is wrong with it, never the password.
    public init(url text: String) throws(StoreError) {
        guard Self.isURL(text) else { throw .invalidArgument("not a PostgreSQL URL: it must start with postgres:// or postgresql://") }
        guard let url = URLComponents(string: text) else { throw .invalidArgument("not a valid URL") }
        guard let host = url.host, !host.isEmpty else { throw .invalidArgument("the URL names no host (postgres://USER@HOST:PORT/DATABASE)") }
        guard let user = url.user, !user.isEmpty else { throw .invalidArgument("the URL names no user (postgres://USER@HOST:PORT/DATABASE)") }
        let database = String(url.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw .invalidArgument("the URL names no database (postgres://USER@HOST:PORT/DATABASE)")
        }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = url.port ?? 5432
        guard (1...65535).contains(port) else { throw .invalidArgument("port \(port) is out of range") }
        self.user = url.user?.removingPercentEncoding ?? user
        self.password = url.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database.removingPercentEncoding ?? database
        tls = .prefer
        rootCertificatePath = nil
        connectTimeoutSeconds = 10
        queryTimeoutSeconds = 10
        poolSize = 4
        for item in url.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw .invalidArgument("sslmode \"\(value)\" is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tls = mode
            case "sslrootcert":
                rootCertificatePath = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds > 0 else { throw .invalidArgument("connect_timeout must be a positive number of seconds") }
                connectTimeoutSeconds = seconds
            case "query_timeout":
                guard let seconds = Int(value), seconds > 0 else { throw .invalidArgument("query_timeout must be a positive number of seconds") }
                queryTimeoutSeconds = seconds
            case "pool_size":
                guard let size = Int(value), (1...64).contains(size) else { throw .invalidArgument("pool_size must be between 1 and 64") }
                poolSize = size
            default:
                throw .invalidArgument("unknown URL option \"\(item.name)\" (known: sslmode, sslrootcert, connect_timeout, query_timeout, pool_size)")
            }
        }
        if rootCertificatePath != nil, tls != .verifyFull {
            throw .invalidArgument("sslrootcert is used with sslmode=verify-full only")
        }
    }

    /// The URL without its password, for logs.
    public var description: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "postgres://\(user)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }
}

/// A pool of PostgreSQL connections as a ``SQLDatabase``. A write is one `READ COMMITTED` transaction
/// that locks the rows its checks depend on (the order, the client, the kept totals) before it writes,
/// re-run when the server reports a deadlock or serialization failure (SQLSTATE 40P01, 40001): that is
/// what keeps capacity, revisions and the open-order rules exact across several `cpnpd`
/// (docs/design/storage.md).
final class PostgresSQLDatabase: SQLDatabase {
    let location: PostgresLocation
    private let configuration: PostgresConnection.Configuration
    private let idle = Mutex<[PostgresConnection]>([])
    private let nextID = Atomic<Int>(1)
    private let logger: Logger
    /// How often a write is re-run after serialization conflicts before the conflict is the error.
    static let conflictRetries = 30

    var dialect: SQLDialect { .postgres }

    init(location: PostgresLocation) throws {
        self.location = location
        let tls: PostgresConnection.Configuration.TLS
        switch location.tls {
        case .disable:
            tls = .disable
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            let context = try Self.context(configuration)
            tls = location.tls == .prefer ? .prefer(context) : .require(context)
        case .verifyFull:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let path = location.rootCertificatePath {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
                } catch {
                    throw StoreError.invalidArgument("sslrootcert \(path): cannot read its certificates (\(error))")
                }
            }
            tls = .require(try Self.context(configuration))
        }
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls)
        configuration.options.connectTimeout = .seconds(Int64(location.connectTimeoutSeconds))
        self.configuration = configuration
        var logger = Logger(label: "cpnp.postgres")
        logger.logLevel = .critical
        self.logger = logger
    }

    private static func context(_ configuration: TLSConfiguration) throws -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw StoreError.invalidArgument("cannot set up TLS to the database: \(error)")
        }
    }

    deinit {
        for connection in idle.withLock({ $0 }) { try? connection.close().wait() }
    }

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try withConnection { connection in try body(connection) }
    }

    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try transaction("BEGIN ISOLATION LEVEL READ COMMITTED", body)
    }

    func snapshot<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    /// A transaction opened by `begin`; re-run on a serialization conflict.
    func transaction<T>(_ begin: String, _ body: (any SQLConnection) throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try withConnection { sql in
                    try sql.run(begin)
                    do {
                        let result = try body(sql)
                        try sql.run("COMMIT")
                        return result
                    } catch {
                        if !sql.connection.isClosed { try? sql.run("ROLLBACK") }
                        throw error
                    }
                }
            } catch let error as StoreError where error.isSerializationConflict && attempt < Self.conflictRetries {
                attempt += 1
                // Back off a little, at random, so that the writers that collided do not collide again.
                usleep(UInt32.random(in: 200...(1_000 * UInt32(min(attempt, 10)))))
            }
        }
    }

    /// Takes an idle connection or opens one; gives it back afterwards unless it broke. Idle
    /// connections the server closed meanwhile (it restarted) are dropped, not used.
    private func withConnection<T>(_ body: (PostgresSQLConnection) throws -> T) throws -> T {
        var reusable: PostgresConnection?
        while reusable == nil, let connection = idle.withLock({ $0.popLast() }) {
            if !connection.isClosed { reusable = connection }
        }
        let connection = try reusable ?? connect()
        do {
            let result = try body(
                PostgresSQLConnection(connection: connection, logger: logger, timeout: .seconds(Int64(location.queryTimeoutSeconds))))
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    private func release(_ connection: PostgresConnection) {
        guard !connection.isClosed else { return }
        let keep = idle.withLock { idle in
            guard idle.count < location.poolSize else { return false }
            idle.append(connection)
            return true
        }
        // The connection must outlive its closing (postgres-nio checks it is closed when released).
        if !keep { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
    }

    private func connect() throws -> PostgresConnection {
        let connectionID = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        do {
            return try PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: connectionID, logger: logger
            ).wait()
        } catch {
            throw StoreError.databaseUnavailable("cannot connect to \(location): \(PostgresSQLConnection.describe(error))")
        }
    }
}

/// One PostgreSQL connection as a ``SQLConnection``: `?` placeholders become `$1`, `$2`, ….
struct PostgresSQLConnection: SQLConnection {
    let connection: PostgresConnection
    let logger: Logger
    /// Writes sent and not yet waited for (``executeLater(_:_:)``), in the order they were sent.
    private let pending = PendingWrites()
    /// How long an answer may take: past it the connection is closed and the call fails (a server
    /// gone without closing the connection must not hang the engine).
    let timeout: TimeAmount
    var dialect: SQLDialect { .postgres }

    private static let translated = Mutex<[String: String]>([:])

    func query(_ sql: String, _ arguments: [any SQLBindable]) throws -> [SQLRow] {
        let result = try send(sql, arguments)
        var columns: [String]?
        return try result.rows.map { row in
            var values: [SQLValue] = []
            var names: [String] = []
            for cell in row {
                if columns == nil { names.append(cell.columnName) }
                values.append(try Self.value(cell))
            }
            if columns == nil { columns = names }
            return SQLRow(columns: columns!, values: values)
        }
    }

    func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int {
        try send(sql, arguments).metadata.rows ?? 0
    }

    func executeLater(_ sql: String, _ arguments: [any SQLBindable]) throws {
        pending.futures.append(connection.query(Self.query(sql, arguments), logger: logger))
    }

    /// The savepoint is opened and released without waiting; the body's pipelined writes are waited
    /// for before it is released, so that one that fails rolls back this change alone.
    func inSavepoint<T>(_ body: () throws -> T) throws -> T {
        try executeLater("SAVEPOINT cpnp_change", [])
        do {
            let result = try body()
            try waitForPending()
            try executeLater("RELEASE SAVEPOINT cpnp_change", [])
            return result
        } catch {
            if !connection.isClosed { try? run("ROLLBACK TO SAVEPOINT cpnp_change") }
            throw error
        }
    }

    /// A statement without arguments or rows (transaction control, DDL).
    func run(_ sql: String) throws {
        _ = try send(sql, [])
    }

    /// Sends the statement at once (behind any pipelined writes: the server runs them in order), then
    /// waits for the writes and for its own answer.
    private func send(_ sql: String, _ arguments: [any SQLBindable]) throws -> PostgresQueryResult {
        let future = connection.query(Self.query(sql, arguments), logger: logger)
        do {
            try waitForPending()
            return try answer(future)
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Waits for the pipelined writes; throws the first one's error (the later ones then only report
    /// the aborted transaction).
    private func waitForPending() throws {
        let futures = pending.futures
        pending.futures.removeAll()
        var first: (any Error)?
        for future in futures {
            do { _ = try answer(future) } catch { if first == nil { first = error } }
        }
        if let first { throw first as? StoreError ?? Self.storeError(first) }
    }

    static func query(_ sql: String, _ arguments: [any SQLBindable]) -> PostgresQuery {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument.sqlValue {
            case .null: binds.appendNull()
            case .integer(let integer): binds.append(integer)
            case .text(let text): binds.append(text)
            }
        }
        return PostgresQuery(unsafeSQL: arguments.isEmpty ? sql : translate(sql), binds: binds)
    }

    /// Waits for `future` at most ``timeout``; then closes the connection and fails.
    private func answer<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let promise = connection.eventLoop.makePromise(of: T.self)
        let settled = NIOLockedValueBox(false)
        @Sendable func first() -> Bool {
            settled.withLockedValue { done in
                defer { done = true }; return !done
            }
        }
        future.whenComplete { result in if first() { promise.completeWith(result) } }
        let connection = self.connection
        let seconds = timeout.nanoseconds / 1_000_000_000
        let timer = connection.eventLoop.scheduleTask(in: timeout) {
            guard first() else { return }
            promise.fail(StoreError.databaseUnavailable("no answer from the database within \(seconds) s; connection closed"))
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        }
        defer { timer.cancel() }
        return try promise.futureResult.wait()
    }

    /// `?` → `$n`, outside quoted text. Translations are cached: the stores use a fixed set of statements.
    static func translate(_ sql: String) -> String {
        if let known = translated.withLock({ $0[sql] }) { return known }
        var out = ""
        var placeholderCount = 0
        var quoted = false
        for character in sql {
            if character == "'" { quoted.toggle() }
            if character == "?" && !quoted {
                placeholderCount += 1
                out += "$\(placeholderCount)"
            } else {
                out.append(character)
            }
        }
        translated.withLock { if $0.count < 1_024 { $0[sql] = out } }
        return out
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        do {
            switch cell.dataType {
            case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
            case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
            default: return .text(try cell.decode(String.self))
            }
        } catch {
            throw StoreError.corruptRow(table: "result", key: cell.columnName, reason: "cannot decode a \(cell.dataType) value")
        }
    }

    /// A server error with its SQLSTATE and message; a lost connection as ``StoreError/databaseUnavailable(_:)``.
    static func storeError(_ error: any Error) -> StoreError {
        guard let error = error as? PSQLError else { return .database(code: nil, message: "\(error)") }
        if let info = error.serverInfo {
            let code = info[.sqlState]
            // Class 08 (connection exception) and 57P01…57P03 (the server shuts down or starts up).
            if let code, code.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(code) {
                return .databaseUnavailable(describe(error))
            }
            return .database(code: code, message: info[.message] ?? "server error")
        }
        return .databaseUnavailable(describe(error))
    }

    /// What went wrong, in words (postgres-nio's own description hides the details on purpose).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo {
            return "\(info[.message] ?? "server error") (SQLSTATE \(info[.sqlState] ?? "?"))"
        }
        var text = "\(error.code)"
        if let underlying = error.underlying { text += ": \(underlying)" }
        return text
    }
}

/// The pipelined writes of one connection (used by one thread at a time, inside one transaction).
final class PendingWrites {
    var futures: [EventLoopFuture<PostgresQueryResult>] = []
}
