// Smoke test of the load generator (docs/performance.md): the built `cpnp-bench` runs a short benchmark against
// its own cpnpd child and reports what it measured as one JSON object. Counts only, never timings.
import CPNPTesting
import Testing
import Foundation

@Suite("cpnp-bench smoke")
struct BenchSmokeTests {
    /// `cpnp-bench` next to the test bundle (built with the tests), or `CPNP_BENCH_BINARY`.
    static let binary = BuiltExecutable.locate("cpnp-bench", overriddenBy: "CPNP_BENCH_BINARY")

    @Test("50 negotiations by 4 customers over DTLS: all completed, none failed, JSON report")
    func fiftyNegotiations() async throws {
        let binary = try #require(Self.binary, "cpnp-bench not built next to the tests (swift build --build-tests)")
        // A short warm-up and ping-pong keep the test to a few seconds; the figures themselves are not checked.
        // Bounded: a hung run is killed (it must never take more than a fraction of this).
        let (status, data, errors) = try await onOwnThread {
            let process = Process()
            process.executableURL = binary
            process.arguments = ["--negotiations", "50", "--customers", "4", "--json", "--warmup", "200ms", "--ping-pong", "2000"]
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
}
