/// Opening and configuring the SQLite databases behind the order stores (RFC 8921 §8.11: "persistent
/// storage of orders is recommended", so that a reboot loses no order; §12.1: every state change is
/// time-stamped and kept for audit).
///
/// Both stores use GRDB. A file-backed store is a `DatabasePool` in WAL mode: readers never block the
/// writer, and several processes (the daemon and `cpnpd admin …`, or two `cpnp` commands) can open the
/// same file. A write waits up to ``StoreOptions/busyTimeout`` for another process's write lock before it
/// fails with `SQLITE_BUSY`. Commits are durable on return (`PRAGMA synchronous = FULL`).
public import CPNPCore
import Foundation
import GRDB

/// Options for opening a store file.
public struct StoreOptions: Sendable, Hashable {
    /// How long a write waits for another connection or process holding the write lock. Default 5 s.
    public var busyTimeout: Duration
    /// Open the file read-only (e.g. an inspection tool). The file must exist and be migrated.
    public var readOnly: Bool
    /// Create missing parent directories of the file. Default true.
    public var createDirectories: Bool

    public init(busyTimeout: Duration = .seconds(5), readOnly: Bool = false, createDirectories: Bool = true) {
        self.busyTimeout = busyTimeout
        self.readOnly = readOnly
        self.createDirectories = createDirectories
    }
}

/// Errors raised by the order stores, beyond SQLite's own (which pass through unchanged, e.g.
/// `SQLITE_BUSY` when another process keeps the write lock longer than the busy timeout).
///
/// Whenever one is thrown by a write, the write's transaction was rolled back: nothing was stored.
public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The order's stored revision is not the one the change was computed from (a concurrent writer).
    case revisionConflict(orderID: String, expected: Int64, actual: Int64?)
    /// The provider order id is already assigned to another order (another client, or another customer
    /// order id): named here by its owner. Pick another id (RFC 8921 §9.1.2), or fix the routing.
    case providerOrderIDInUse(providerOrderID: String, clientIdentity: String, customerOrderID: String)
    /// Another open order of the same client already uses this customer order id.
    case openOrderExists(customerOrderID: String, providerOrderID: String)
    /// A closed (Cancelled) order cannot hold reservations.
    case reservationsOnClosedOrder(providerOrderID: String)
    /// Committing the reservations would book more than a link's capacity in one direction.
    case capacityExceeded(Reservation.Key, total: CPNPDecimal, limit: CPNPDecimal)
    /// A new order would give the client more open orders than its cap (RFC 8921 §13).
    case openOrderLimitReached(clientIdentity: String, limit: Int)
    /// The administrative request was already carried out (by this or another instance).
    case adminRequestAlreadyProcessed(id: Int64)
    /// No order with this id.
    case unknownOrder(String)
    /// A stored row cannot be read back (bad snapshot, unknown state name…).
    case corruptRow(table: String, key: String, reason: String)
    /// An argument is out of range.
    case invalidArgument(String)
    /// The database server refused a statement: its SQLSTATE (when it gave one) and message.
    case database(code: String?, message: String)
    /// The database server cannot be reached, or the connection broke: nothing of the call is known
    /// to be stored (a commit whose answer was lost may have been; its revision tells).
    case databaseUnavailable(String)

    public var description: String {
        switch self {
        case .revisionConflict(let orderID, let expected, let actual):
            "order \(orderID): stored revision is \(actual.map(String.init) ?? "none"), expected \(expected)"
        case .providerOrderIDInUse(let providerOrderID, let identity, let customerOrderID):
            "provider order id \(providerOrderID) is already the order \(customerOrderID) of client \"\(identity)\""
        case .openOrderExists(let customerOrderID, let providerOrderID):
            "customer order id \(customerOrderID) is already used by the open order \(providerOrderID)"
        case .reservationsOnClosedOrder(let providerOrderID):
            "order \(providerOrderID) is closed and cannot hold reservations"
        case .capacityExceeded(let key, let total, let limit):
            "\(key) would be booked at \(total), above its capacity \(limit)"
        case .openOrderLimitReached(let identity, let limit):
            "client \"\(identity)\" already has \(limit) open orders, its cap"
        case .adminRequestAlreadyProcessed(let requestID):
            "administrative request \(requestID) was already processed"
        case .unknownOrder(let providerOrderID):
            "no order \(providerOrderID)"
        case .corruptRow(let table, let key, let reason):
            "\(table) row \(key) cannot be read: \(reason)"
        case .invalidArgument(let detail):
            detail
        case .database(let code, let message):
            code.map { "the database refused: \(message) (SQLSTATE \($0))" } ?? "the database refused: \(message)"
        case .databaseUnavailable(let detail):
            "the database is unavailable: \(detail)"
        }
    }

    /// A conflict with a concurrent writer that re-running the transaction resolves (PostgreSQL's
    /// serialization failure or deadlock).
    public var isSerializationConflict: Bool {
        guard case .database(let code?, _) = self else { return false }
        return code == "40001" || code == "40P01"
    }
}

/// The shared plumbing of both stores.
enum StoreDatabase {
    /// Parser limits for stored JSON: snapshots are bigger and deeper than one datagram.
    static let jsonLimits = JSONParser.Limits.stored

    /// Opens a WAL-mode pool on `path` and migrates it.
    static func openPool(path: String, options: StoreOptions, label: String, migrator: DatabaseMigrator) throws -> DatabasePool {
        if options.createDirectories && !options.readOnly {
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            }
        }
        let pool = try DatabasePool(path: path, configuration: configuration(options: options, label: label))
        if !options.readOnly {
            // A commit that returns is on disk, even across a power loss: a peer may observe it right
            // after (RFC 8921 §8.11; docs/design/storage.md, "The rule"). Set here, on the writer, since
            // the pool's WAL set-up runs after `prepareDatabase` and sets `synchronous = NORMAL`, which
            // syncs only at checkpoints. Readers never commit.
            try pool.writeWithoutTransaction { connection in try connection.execute(sql: "PRAGMA synchronous = FULL") }
            try migrate(pool, with: migrator)
        }
        return pool
    }

    /// Opens a private in-memory database (tests, dry runs) and migrates it.
    static func openInMemory(label: String, migrator: DatabaseMigrator) throws -> DatabaseQueue {
        let queue = try DatabaseQueue(configuration: configuration(options: StoreOptions(), label: label))
        try migrate(queue, with: migrator)
        return queue
    }

    static func configuration(options: StoreOptions, label: String) -> Configuration {
        var config = Configuration()
        config.label = label
        config.readonly = options.readOnly
        config.foreignKeysEnabled = true
        let (seconds, attoseconds) = options.busyTimeout.components
        config.busyMode = .timeout(max(0, Double(seconds) + Double(attoseconds) / 1e18))
        config.prepareDatabase { connection in
            if !connection.configuration.readonly {
                // The writer's page cache holds the pages a group commit touches (orders, their indexes,
                // reservations, totals) instead of reading them back from the file at each commit:
                // 32 MiB where SQLite's default is 2 MiB. Readers keep the default.
                try connection.execute(sql: "PRAGMA cache_size = -32768")
                // Each change of a group commit has its own savepoint, whose journal (the pages as they
                // were before it) went to a temporary file: about three quarters of the bytes cpnpd wrote
                // per negotiation. It stays in memory instead; it lives for one transaction.
                try connection.execute(sql: "PRAGMA temp_store = MEMORY")
            }
        }
        return config
    }

    /// Runs the migrations. Two processes opening a new file at once may race on the first
    /// migration: each migration is one transaction, so the loser's attempt rolls back, and the retry
    /// sees it applied.
    static func migrate(_ writer: any DatabaseWriter, with migrator: DatabaseMigrator) throws {
        var attempt = 0
        while true {
            do {
                try migrator.migrate(writer)
                return
            } catch {
                attempt += 1
                if attempt >= 4 { throw error }
                if try writer.read({ try migrator.hasCompletedMigrations($0) }) { return }
            }
        }
    }

    // MARK: - Value conversions

    static func text(_ json: JSONValue) -> String { JSONSerializer.serializeString(json) }

    static func json(_ text: String, table: String, key: String) throws -> JSONValue {
        do {
            return try JSONParser.parse(Array(text.utf8), limits: jsonLimits)
        } catch {
            throw StoreError.corruptRow(table: table, key: key, reason: error.description)
        }
    }

    static func ms(_ t: CPNPTimestamp) -> Int64 { t.millisecondsSinceEpoch }
    static func time(_ ms: Int64) -> CPNPTimestamp { CPNPTimestamp(millisecondsSinceEpoch: ms) }
    static func time(_ ms: Int64?) -> CPNPTimestamp? { ms.map { CPNPTimestamp(millisecondsSinceEpoch: $0) } }

    /// `EXPLAIN QUERY PLAN` details of a statement, for tests that check the hot paths use indexes.
    static func queryPlan(_ reader: any DatabaseReader, sql: String, arguments: StatementArguments) throws -> [String] {
        try reader.read { connection in
            try Row.fetchAll(connection, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
        }
    }
}

extension DatabaseWriter {
    /// A read that leaves the connection's prepared statements prepared. GRDB reads a one-connection
    /// database (a `DatabaseQueue`, the in-memory stores) under `PRAGMA query_only = 1` … `0`, and
    /// SQLite expires every prepared statement when that flag changes, so the next write would prepare
    /// all of its statements again. That connection runs one call at a time, so nothing is written
    /// between the statements of a read: it reads without the switch. A pool reads on its own connections.
    func readKeepingStatements<T>(_ body: (Database) throws -> T) throws -> T {
        if let queue = self as? DatabaseQueue { return try queue.inDatabase(body) }
        return try read(body)
    }
}

extension Row {
    /// Fetches with a cached (prepared once per connection) statement.
    static func fetchOne(_ connection: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> Row? {
        try Row.fetchOne(connection.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchAll(_ connection: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> [Row] {
        try Row.fetchAll(connection.cachedStatement(sql: sql), arguments: arguments)
    }
}

extension DatabaseValueConvertible where Self: StatementColumnConvertible {
    static func fetchOne(_ connection: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> Self? {
        try Self.fetchOne(connection.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchAll(_ connection: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> [Self] {
        try Self.fetchAll(connection.cachedStatement(sql: sql), arguments: arguments)
    }
}
