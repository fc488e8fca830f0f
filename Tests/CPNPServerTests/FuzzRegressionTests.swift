// Replays the server fuzz target's regression inputs and seed corpus through the engine, with the
// fuzzer's own invariants (Sources/cpnp-fuzz-server-support).
import CPNPCore
import CPNPServerFuzzSupport
import Foundation
import Testing

private let fuzzRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fuzz")

private func inputs(_ directory: String) -> [String] {
    let url = fuzzRoot.appendingPathComponent(directory)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(directory)/\($0)" }
}

private func run(_ file: String) async throws -> ServerFuzzHarness.Outcome {
    let data = try #require(FileManager.default.contents(atPath: fuzzRoot.appendingPathComponent(file).path), "\(file) unreadable")
    return await ServerFuzzHarness.run(Array(data))
}

@Suite("Fuzz regressions: server engine (issue 6)")
struct ServerFuzzRegressionTests {
    @Test(arguments: inputs("regressions/server") + inputs("corpus/server"))
    func replayKeepsTheInvariants(file: String) async throws {
        let outcome = try await run(file)
        #expect(outcome.problems == [], "\(file)")
    }

    /// The seeds reach the live order's states: the fuzzer starts from there.
    @Test func seedFlowsReachLiveStates() async throws {
        func states(_ name: String) async throws -> [ServerOrderStateMachine.State] { try await run("corpus/server/\(name)").openStates }
        #expect(try await states("vector-02-processing.json") == [.offerProposed])
        #expect(try await states("flow-accept") == [.completed])
        #expect(try await states("flow-accept-activate-now") == [.completed])
        #expect(try await states("flow-accept-withdraw") == [])
        #expect(try await states("flow-decline") == [])
        #expect(try await states("flow-second-order").count == 2)
        let updated = try await run("corpus/server/flow-accept-update-accept")
        #expect(updated.sent.map(\.method) == [.ack, .processing, .offer, .ack], "\(updated.sent.map(\.method))")
        #expect(updated.openStates == [.completed])
    }
}
