// TemporaryPostgres (Sources/CPNPTesting) on a real PostgreSQL: a database of its own, data that
// survives a restart, password authentication, and nothing left behind once it is released.
import CPNPTesting
import Foundation
import Testing
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("TemporaryPostgres", .serialized)
struct TemporaryPostgresTests {
    @Test("a row written survives a fast and an immediate stop, and a wrong password is refused")
    func dataSurvivesRestartsAndPasswordIsChecked() async throws {
        let server = try await TemporaryPostgres.start()
        #expect(server.isRunning)
        let port = server.port
        #expect((20000...60000).contains(port))
        #expect(server.url(database: "orders") == "postgres://cpnp:\(server.password)@127.0.0.1:\(port)/orders")

        try await server.createDatabase("orders")
        try await server.psql("CREATE TABLE item (id integer PRIMARY KEY, name text NOT NULL)", database: "orders")
        try await server.psql("INSERT INTO item VALUES (1, 'first')", database: "orders")
        #expect(try await server.psql("SELECT id, name FROM item ORDER BY id", database: "orders") == "1|first")
        // The database is its own: the default one has no such table.
        await #expect(throws: TemporaryPostgresError.self) { try await server.psql("SELECT count(*) FROM item") }

        server.stop()
        #expect(!server.isRunning)
        await #expect(throws: TemporaryPostgresError.self) { try await server.psql("SELECT 1") }

        try await server.restart()
        #expect(server.isRunning)
        #expect(server.port == port)
        #expect(try await server.psql("SELECT id, name FROM item ORDER BY id", database: "orders") == "1|first")

        // A committed row survives a crash-like stop (the restart replays the WAL).
        try await server.psql("INSERT INTO item VALUES (2, 'second')", database: "orders")
        server.stop(mode: .immediate)
        try await server.restart()
        #expect(try await server.psql("SELECT id, name FROM item ORDER BY id", database: "orders") == "1|first\n2|second")

        let refusal = await #expect(throws: TemporaryPostgresError.self) {
            try await server.psql("SELECT 1", password: "not-the-password")
        }
        #expect(refusal?.description.contains("password authentication failed") == true)
    }

    @Test("releasing the server stops it and removes its directory")
    func releaseStopsAndRemoves() async throws {
        var server: TemporaryPostgres? = try await TemporaryPostgres.start(name: "cpnp-release-test")
        let directory = try #require(server?.directory)
        let pidFile = directory.appendingPathComponent("data/postmaster.pid")
        let firstLine = try String(contentsOf: pidFile, encoding: .utf8).split(separator: "\n").first
        let pid = try #require(firstLine.flatMap { pid_t($0) })
        #expect(isAlive(pid))

        server = nil
        // The last reference may be the starting thread's for a moment (onOwnThread resumes with a
        // copy of its result, then releases its own): the server stops when that one goes.
        let deadline = ContinuousClock.now + .seconds(10)
        while FileManager.default.fileExists(atPath: directory.path) || isAlive(pid), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!FileManager.default.fileExists(atPath: directory.path))
        #expect(!isAlive(pid))
    }

    /// Whether the process runs: it exists and, on Linux, is not a zombie (the server is not our
    /// child; its new parent may reap it only later).
    private func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        #if os(Linux)
            // /proc/PID/stat: "PID (command) STATE ..."
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let afterCommand = stat.range(of: ") ", options: .backwards)
            else { return false }
            return !stat[afterCommand.upperBound...].hasPrefix("Z")
        #else
            return true
        #endif
    }
}
