/// The SQL the order stores speak, over either engine: SQLite (through GRDB, the embedded default) or
/// PostgreSQL (through postgres-nio, for several `cpnpd` on one database). The store's logic is
/// written once against ``SQLConnection``; only the schema and a few statements differ by
/// ``SQLDialect`` (docs/design/storage.md).
import GRDB
import GRDBSQLite

/// The SQL engine behind a store.
public enum SQLDialect: String, Sendable, Hashable {
    case sqlite
    case postgres
}

/// A value bound to or read from a statement. The stores use integers, text and NULL only; a
/// boolean is an integer 0 or 1 in both engines.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case text(String)
}

/// A Swift value that binds as a ``SQLValue``.
public protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
}

extension SQLValue: SQLBindable {
    public var sqlValue: SQLValue { self }
}

extension String: SQLBindable {
    public var sqlValue: SQLValue { .text(self) }
}

extension Int64: SQLBindable {
    public var sqlValue: SQLValue { .integer(self) }
}

extension Int: SQLBindable {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
}

extension Bool: SQLBindable {
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
}

extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// One row of a result, read by column name or position. A value of the wrong type is a corrupt row
/// (``StoreError/corruptRow(table:key:reason:)``): the stores read only their own schema.
public struct SQLRow: Sendable {
    let columns: [String]
    let values: [SQLValue]

    public subscript(_ index: Int) -> SQLValue { values[index] }

    public subscript(_ column: String) -> SQLValue {
        guard let index = columns.firstIndex(of: column) else { return .null }
        return values[index]
    }

    public func text(_ column: String) throws -> String {
        guard case .text(let value) = self[column] else { throw Self.mismatch(column, "text", self[column]) }
        return value
    }

    public func optionalText(_ column: String) throws -> String? {
        switch self[column] {
        case .null: nil
        case .text(let value): value
        case let other: throw Self.mismatch(column, "text or NULL", other)
        }
    }

    public func integer(_ column: String) throws -> Int64 {
        guard case .integer(let value) = self[column] else { throw Self.mismatch(column, "an integer", self[column]) }
        return value
    }

    public func optionalInteger(_ column: String) throws -> Int64? {
        switch self[column] {
        case .null: nil
        case .integer(let value): value
        case let other: throw Self.mismatch(column, "an integer or NULL", other)
        }
    }

    public func bool(_ column: String) throws -> Bool { try integer(column) != 0 }

    private static func mismatch(_ column: String, _ expected: String, _ found: SQLValue) -> StoreError {
        StoreError.corruptRow(table: "result", key: column, reason: "expected \(expected), found \(found)")
    }
}

/// One connection, inside a transaction the ``SQLDatabase`` opened. Statements use `?` placeholders
/// in both dialects.
public protocol SQLConnection {
    var dialect: SQLDialect { get }
    /// Runs a statement and returns its rows (a `SELECT`, or a write with `RETURNING`).
    func query(_ sql: String, _ arguments: [any SQLBindable]) throws -> [SQLRow]
    /// Runs a statement and returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int
    /// Runs a write whose result the caller does not need yet: PostgreSQL sends it without waiting
    /// (pipelined), and its error, if any, is thrown by the next call that waits. SQLite runs it now.
    func executeLater(_ sql: String, _ arguments: [any SQLBindable]) throws
    /// Runs `body` in a savepoint: rolled back alone when it throws, kept otherwise.
    func inSavepoint<T>(_ body: () throws -> T) throws -> T
}

extension SQLConnection {
    public func query(_ sql: String) throws -> [SQLRow] { try query(sql, []) }

    /// `insert` (`INSERT INTO table (columns)`) of every row in one statement, `then` appended (e.g.
    /// an `ON CONFLICT` clause), with ``executeLater(_:_:)``; nothing when there is no row.
    public func insertLater(_ insert: String, rows: [[any SQLBindable]], then clause: String = "") throws {
        guard let width = rows.first?.count else { return }
        let row = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        let values = Array(repeating: row, count: rows.count).joined(separator: ", ")
        try executeLater("\(insert) VALUES \(values)\(clause.isEmpty ? "" : " " + clause)", rows.flatMap { $0 })
    }

    public func queryOne(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> SQLRow? {
        try query(sql, arguments).first
    }

    /// The first column of the first row, or nil when there is no row or it is NULL.
    public func scalar(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> SQLValue? {
        guard let row = try queryOne(sql, arguments), let value = row.values.first, value != .null else { return nil }
        return value
    }

    public func scalarInteger(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> Int64? {
        switch try scalar(sql, arguments) {
        case .integer(let value)?: value
        case nil: nil
        case let other?: throw StoreError.corruptRow(table: "result", key: sql, reason: "expected an integer, found \(other)")
        }
    }

    public func scalarText(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> String? {
        switch try scalar(sql, arguments) {
        case .text(let value)?: value
        case nil: nil
        case let other?: throw StoreError.corruptRow(table: "result", key: sql, reason: "expected text, found \(other)")
        }
    }
}

/// A database a store reads and writes: each call is one transaction on one connection.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// A read: sees only committed data.
    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// A read of several statements that all see the same committed state (one snapshot): no commit
    /// lands between them.
    func snapshot<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// A write transaction: all of `body` or nothing. On PostgreSQL it is re-run from the start when
    /// the server reports a deadlock with another writer, so `body` must not change anything outside
    /// the database.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// A read of the latest committed state for a few indexed lookups on the engine's hot path (an
    /// order by its ids). Like ``read(_:)``, it sees committed data only; an engine may answer it on
    /// the connection that writes, outside any transaction, where a reader of a pool pays a
    /// transaction and a schema check per call.
    func lookup<T>(_ body: (any SQLConnection) throws -> T) throws -> T
}

extension SQLDatabase {
    public func lookup<T>(_ body: (any SQLConnection) throws -> T) throws -> T { try read(body) }
}

// MARK: - SQLite, through GRDB

/// A GRDB database (pool or queue) as a ``SQLDatabase``.
struct GRDBDatabase: SQLDatabase {
    let writer: any DatabaseWriter
    var dialect: SQLDialect { .sqlite }

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try writer.readKeepingStatements { connection in try body(GRDBConnection(database: connection)) }
    }

    /// GRDB's reads are transactions already: their statements see one snapshot of the WAL (a queue
    /// runs one call at a time, so nothing is written between them).
    func snapshot<T>(_ body: (any SQLConnection) throws -> T) throws -> T { try read(body) }

    /// One `BEGIN IMMEDIATE` … `COMMIT` transaction, as GRDB's `write` runs it, but with both statements
    /// prepared once and cached: GRDB prepares them again at every call, 2.7 % of the engine's thread
    /// with one customer (docs/performance.md, round 17). They run through GRDB's statements, so its
    /// transaction observers (`afterNextTransaction`, KeptTotals.swift) see the commit.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try writer.writeWithoutTransaction { database in
            try database.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            do {
                let result = try body(GRDBConnection(database: database))
                try database.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                return result
            } catch {
                // SQLite may have rolled back already (e.g. a full disk): only an open transaction is.
                if database.isInsideTransaction { try? database.rollback() }
                throw error
            }
        }
    }

    /// On the writer's connection, between its transactions: it sees every commit of this process
    /// and no uncommitted change (GRDB runs one write at a time there), and its statements stay
    /// prepared. A pool's `read` opens a transaction and checks the schema version at every call:
    /// 85 % of the cost of the engine's lookups (docs/performance.md, round 14).
    func lookup<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try writer.writeWithoutTransaction { connection in try body(GRDBConnection(database: connection)) }
    }
}

/// A GRDB `Database` (inside its `read` or `write`) as a ``SQLConnection``; statements are prepared
/// once per connection and cached.
struct GRDBConnection: SQLConnection {
    let database: Database
    var dialect: SQLDialect { .sqlite }

    // The statements are GRDB's, prepared once and cached; their arguments are bound and their rows
    // read with SQLite's C API on the statement's handle (`Statement.sqliteStatement`). GRDB's
    // `StatementArguments` boxed each value twice, and its `Row`s copied each row (docs/performance.md,
    // round 9).

    func query(_ sql: String, _ arguments: [any SQLBindable]) throws -> [SQLRow] {
        let statement = try database.cachedStatement(sql: sql)
        let columns = statement.columnNames
        var rows: [SQLRow] = []
        try run(statement, arguments) { handle in
            var values: [SQLValue] = []
            values.reserveCapacity(columns.count)
            for index in 0..<CInt(columns.count) { values.append(Self.column(handle, index)) }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    func execute(_ sql: String, _ arguments: [any SQLBindable]) throws -> Int {
        try run(try database.cachedStatement(sql: sql), arguments) { _ in }
        return database.changesCount
    }

    func executeLater(_ sql: String, _ arguments: [any SQLBindable]) throws {
        try run(try database.cachedStatement(sql: sql), arguments) { _ in }
    }

    /// Binds `arguments` to `statement`, steps it to its end, calling `row` at each row, and resets it.
    private func run(_ statement: Statement, _ arguments: [any SQLBindable], row: (SQLiteStatement) -> Void) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        guard Int(sqlite3_bind_parameter_count(handle)) == arguments.count else {
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE, message: "\(arguments.count) arguments for \(sqlite3_bind_parameter_count(handle)) parameters",
                sql: statement.sql)
        }
        for (offset, argument) in arguments.enumerated() {
            let index = CInt(offset + 1)
            let code: CInt
            switch argument.sqlValue {
            case .null: code = sqlite3_bind_null(handle, index)
            case .integer(let integer): code = sqlite3_bind_int64(handle, index, integer)
            case .text(var text):
                code = text.withUTF8 { bytes in
                    // A pointer to an empty buffer may be nil, which SQLite would bind as NULL.
                    sqlite3_bind_text(
                        handle, index, bytes.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(("" as StaticString).utf8Start),
                        CInt(bytes.count), Self.transient)
                }
            }
            guard code == SQLITE_OK else { throw failure(code, statement) }
        }
        while true {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: row(handle)
            case SQLITE_DONE: return
            case let code: throw failure(code, statement)
            }
        }
    }

    private func failure(_ code: CInt, _ statement: Statement) -> DatabaseError {
        let message = database.sqliteConnection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
    }

    /// SQLite copies a bound text at once (`SQLITE_TRANSIENT`, a macro Swift does not import).
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    /// Column `index` of the current row.
    private static func column(_ handle: SQLiteStatement, _ index: CInt) -> SQLValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, index))
        case SQLITE_FLOAT:
            let double = sqlite3_column_double(handle, index)
            return Int64(exactly: double).map(SQLValue.integer) ?? .text(String(double))
        default:
            // Text, or a blob read as UTF-8 text.
            guard let bytes = sqlite3_column_text(handle, index) else { return .text("") }
            let count = Int(sqlite3_column_bytes(handle, index))
            return .text(String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self))
        }
    }

    /// One write transaction, `BEGIN IMMEDIATE` … `COMMIT`, both statements prepared once and cached:
    /// GRDB's `write` prepares its `BEGIN` and `COMMIT` again at every call. For a store whose
    /// transactions GRDB does not observe (the customer's); call it inside `writeWithoutTransaction`.
    func immediateTransaction<T>(_ body: () throws -> T) throws -> T {
        try executeLater("BEGIN IMMEDIATE TRANSACTION", [])
        do {
            let result = try body()
            try executeLater("COMMIT TRANSACTION", [])
            return result
        } catch {
            // SQLite may have rolled back already (e.g. a full disk): only an open transaction is.
            if let connection = database.sqliteConnection, sqlite3_get_autocommit(connection) == 0 {
                try? executeLater("ROLLBACK TRANSACTION", [])
            }
            throw error
        }
    }

    /// Inside a transaction, the savepoint's statements are prepared once and cached: GRDB's
    /// `inSavepoint` prepares its `SAVEPOINT` and `RELEASE` again at every call. A rollback to the
    /// savepoint that fails throws ``SavepointRollbackFailure``: the changes made since the
    /// savepoint may still be in the transaction, so the caller must not commit it.
    func inSavepoint<T>(_ body: () throws -> T) throws -> T {
        guard database.isInsideTransaction else {
            var result: T?
            try database.inSavepoint {
                result = try body()
                return .commit
            }
            return result!
        }
        try executeLater("SAVEPOINT cpnp_change", [])
        do {
            let result = try body()
            // A release that fails rolls the change back too: left open, the savepoint would be
            // committed with the transaction.
            try executeLater("RELEASE SAVEPOINT cpnp_change", [])
            return result
        } catch {
            do {
                try executeLater("ROLLBACK TRANSACTION TO SAVEPOINT cpnp_change", [])
                try executeLater("RELEASE SAVEPOINT cpnp_change", [])
            } catch let rollbackError {
                throw SavepointRollbackFailure(error: rollbackError, cause: error)
            }
            throw error
        }
    }

}

/// A rollback to a savepoint failed: what was written since the savepoint may still be in the
/// transaction, which must be rolled back whole (``SQLConnection/inSavepoint(_:)``).
struct SavepointRollbackFailure: Error, CustomStringConvertible {
    var error: any Error
    /// The error that asked for the rollback.
    var cause: any Error

    var description: String { "rolling a change back to its savepoint failed (\(error)) after: \(cause)" }
}
