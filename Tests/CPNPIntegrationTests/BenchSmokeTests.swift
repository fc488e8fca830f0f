// Smoke test of the load generator (docs/performance.md): the built `cpnp-bench` runs a short benchmark against
// its own cpnpd child and reports what it measured as one JSON object. Counts only, never timings (the one
// duration checked is the lower bound a --rate schedule sets).
import CPNPStorage
import CPNPTesting
import Testing
import Foundation

@Suite("cpnp-bench smoke")
struct BenchSmokeTests {
    /// `cpnp-bench` next to the test bundle (built with the tests), or `CPNP_BENCH_BINARY`.
    static let binary = BuiltExecutable.locate("cpnp-bench", overriddenBy: "CPNP_BENCH_BINARY")

    /// Runs the built `cpnp-bench` with `arguments`; a hung run is killed after 180 s (it must never
    /// take more than a fraction of this).
    static func run(_ arguments: [String]) async throws -> (status: Int32, report: Data, errors: String) {
        let binary = try #require(Self.binary, "cpnp-bench not built next to the tests (swift build --build-tests)")
        return try await onOwnThread {
            let process = Process()
            process.executableURL = binary
            process.arguments = arguments
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            try process.run()
            let deadline = Date().addingTimeInterval(180)
            let watchdog = Thread {
                while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
                if process.isRunning { process.terminate() }
            }
            watchdog.start()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, data, errors)
        }
    }

    @Test("50 negotiations by 4 customers over DTLS: all completed, none failed, JSON report")
    func fiftyNegotiations() async throws {
        // A short warm-up and ping-pong keep the test to a few seconds; the figures themselves are not checked.
        let (status, data, errors) = try await Self.run([
            "--negotiations", "50", "--customers", "4", "--json", "--warmup", "200ms", "--ping-pong", "2000",
        ])
        #expect(status == 0, "cpnp-bench failed:\n\(errors)")

        let json = try #require(
            try JSONSerialization.jsonObject(with: data) as? [String: Any], "not a JSON object:\n\(String(decoding: data, as: UTF8.self))\n\(errors)")
        #expect(json["completed"] as? Int == 50, "report: \(String(decoding: data, as: UTF8.self))")
        #expect(json["failed"] as? Int == 0, "report: \(String(decoding: data, as: UTF8.self))")
        #expect((json["failures"] as? [String: Any])?.isEmpty == true)
        let messages = try #require(json["messages"] as? [String: Any])
        #expect((messages["sent"] as? Int ?? 0) >= 100, "two requests per negotiation at least")
        #expect((messages["received"] as? Int ?? 0) >= 100, "two answers per negotiation at least")
        let latency = try #require(json["latency"] as? [String: Any])
        #expect(latency["count"] as? Int == 50)
        #expect(json["server"] is [String: Any], "the cpnpd child's CPU and memory are reported")
        #expect(
            (json["settings"] as? [String: Any])?["customer-store"] as? String == "memory",
            "the customers keep their orders in a VolatileClientOrderStore")
    }

    @Test("--rate: 20 negotiations started on a schedule of 20 per second, by 4 customers: all completed, reported with the rate")
    func negotiationsOnASchedule() async throws {
        let (status, data, errors) = try await Self.run([
            "--negotiations", "20", "--customers", "4", "--rate", "20", "--json", "--warmup", "100ms", "--ping-pong", "200",
        ])
        #expect(status == 0, "cpnp-bench failed:\n\(errors)")
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(errors)")
        #expect(json["completed"] as? Int == 20 && json["failed"] as? Int == 0, "report: \(String(decoding: data, as: UTF8.self))")
        #expect((json["settings"] as? [String: Any])?["rate"] as? Double == 20)
        // Not a timing of the server: the schedule alone spaces the 20 starts over 0.95 s, however
        // fast the negotiations are (back to back, 4 customers do 20 in a fraction of that).
        #expect(try #require(json["seconds"] as? Double) >= 0.95, "report: \(String(decoding: data, as: UTF8.self))")
    }

    @Test("--database with a SQLite file: a second run continues on the store a first run's --work-dir kept")
    func secondRunOnAKeptStore() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-bench-smoke-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let common = ["--negotiations", "10", "--customers", "2", "--json", "--warmup", "100ms", "--ping-pong", "200"]
        let first = try await Self.run(common + ["--work-dir", directory.path])
        #expect(first.status == 0, "cpnp-bench failed:\n\(first.errors)")
        let file = directory.appendingPathComponent("cpnpd.sqlite").path
        let stored = try ServerOrderStore(path: file).orderCount()
        #expect(stored >= 10)

        let second = try await Self.run(common + ["--database", file])
        #expect(second.status == 0, "cpnp-bench failed:\n\(second.errors)")
        let json = try #require(try JSONSerialization.jsonObject(with: second.report) as? [String: Any])
        #expect(json["completed"] as? Int == 10 && json["failed"] as? Int == 0)
        #expect((json["settings"] as? [String: Any])?["database"] as? String == "sqlite", "a file is not a PostgreSQL database")
        #expect(json["database-process"] == nil, "no PostgreSQL server to measure")
        #expect(try ServerOrderStore(path: file).orderCount() >= stored + 10)
    }
}
