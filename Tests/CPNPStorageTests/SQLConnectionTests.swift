// The SQLite connection of the stores (Sources/CPNPStorage/SQLDatabase.swift, GRDBConnection): GRDB's
// cached statements, their arguments bound and their rows read with SQLite's C API.
@testable import CPNPStorage
import GRDB
import Testing

@Suite struct SQLConnectionTests {
    /// Texts (empty, non-ASCII, with a NUL, large), integers at their limits and NULL come back as bound.
    @Test func valuesComeBackAsTheyWereBound() throws {
        let queue = try DatabaseQueue()
        try queue.write { database in
            let connection = GRDBConnection(database: database)
            try connection.executeLater("CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT, number INTEGER, absent TEXT)", [])
            let texts = ["", "é 😀 \u{10FFFF}", "a\u{0}b", String(repeating: "0123456789", count: 20_000)]
            let numbers: [Int64] = [0, -1, Int64.min, Int64.max]
            for (index, (text, number)) in zip(texts, numbers).enumerated() {
                try connection.executeLater("INSERT INTO t (id, text, number, absent) VALUES (?, ?, ?, ?)", [index, text, number, SQLValue.null])
            }
            let rows = try connection.query("SELECT id, text, number, absent FROM t ORDER BY id", [])
            #expect(try rows.map { try $0.text("text") } == texts)
            #expect(try rows.map { try $0.integer("number") } == numbers)
            #expect(rows.allSatisfy { $0["absent"] == .null && $0[3] == .null })
            // The same cached statement, other arguments: absent of the previous binding remains.
            #expect(try connection.query("SELECT text FROM t WHERE id = ?", [2]).map { try $0.text("text") } == ["a\u{0}b"])
            #expect(try connection.query("SELECT text FROM t WHERE id = ?", [7]).isEmpty)
            #expect(try connection.scalarInteger("SELECT COUNT(*) FROM t WHERE text = ?", [""]) == 1)
            #expect(try connection.execute("UPDATE t SET absent = ? WHERE number < ?", ["set", 0]) == 2)
        }
    }

    /// A wrong number of arguments and a failing statement throw, and leave the statement usable.
    @Test func errorsThrowAndLeaveTheStatementUsable() throws {
        let queue = try DatabaseQueue()
        try queue.write { database in
            let connection = GRDBConnection(database: database)
            try connection.executeLater("CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT NOT NULL)", [])
            let insert = "INSERT INTO t (id, text) VALUES (?, ?)"
            #expect(throws: DatabaseError.self) { try connection.executeLater(insert, [1]) }
            #expect(throws: DatabaseError.self) { try connection.executeLater(insert, [1, "a", "extra"]) }
            try connection.executeLater(insert, [1, "a"])
            do {
                try connection.executeLater(insert, [1, "again"])
                Issue.record("a repeated primary key was inserted")
            } catch let error as DatabaseError {
                #expect(error.resultCode == .SQLITE_CONSTRAINT && error.sql == insert)
            }
            #expect(throws: DatabaseError.self) { try connection.executeLater(insert, [2, SQLValue.null]) }
            try connection.executeLater(insert, [2, "b"])
            #expect(try connection.query("SELECT text FROM t ORDER BY id", []).map { try $0.text("text") } == ["a", "b"])
        }
    }
}
