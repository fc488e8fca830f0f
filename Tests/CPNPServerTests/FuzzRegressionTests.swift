// Replays the server fuzz target's regression inputs (Fuzz/regressions/server: the minimised fuzzer
// corpus and hand-made seeds, docs/fuzzing.md) and seed corpus through the engine, with the fuzzer's
// own invariants (Fuzz/Sources/cpnp-fuzz-server-support), and checks that the regressions reach every
// kind of answer the engine gives a client.
import CPNPCore
import CPNPServerFuzzSupport
import CPNPTesting
import Foundation
import Testing

private func run(_ file: String) async throws -> ServerFuzzHarness.Outcome {
    let data = try #require(FileManager.default.contents(atPath: fuzzRoot.appendingPathComponent(file).path), "\(file) unreadable")
    return await ServerFuzzHarness.run(Array(data))
}

/// Each regression input run once, shared by the tests below (a run builds a fresh engine and store).
private let regressionOutcomes = Task<[String: ServerFuzzHarness.Outcome], Never> {
    var outcomes: [String: ServerFuzzHarness.Outcome] = [:]
    for file in fuzzInputs("regressions/server") {
        guard let data = FileManager.default.contents(atPath: fuzzRoot.appendingPathComponent(file).path) else { continue }
        outcomes[file] = await ServerFuzzHarness.run(Array(data))
    }
    return outcomes
}

/// The answers the regression inputs must draw from the engine at least once
/// (``ServerFuzzHarness/answerKind(_:)``; RFC 8921 §9.2): PROCESSING, OFFER, ACK, a FAIL with
/// each status code the engine sends in the harness's world, and no answer at all, both to a
/// datagram that does not decode and to a message that does. Not listed: FAIL 2 and 3 (the
/// harness's client is always `acme`, authenticated, from an admitted address), FAIL 7 (only a
/// client sends it). Spelled out, so that losing the inputs of a branch, or a branch no longer
/// being taken, fails; no exact sequence is asserted.
private let serverAnswers: [String] = [
    "sent PROCESSING", "sent OFFER", "sent ACK",
    "sent FAIL 1", "sent FAIL 4", "sent FAIL 5", "sent FAIL 6", "sent FAIL 8",
    "silent discard: undecodable", "silent discard: decoded",
]

@Suite("Fuzz regressions: server engine")
struct ServerFuzzRegressionTests {
    @Test(arguments: fuzzInputs("regressions/server"))
    func regressionsKeepTheInvariants(file: String) async throws {
        let outcome = try #require(await regressionOutcomes.value[file], "\(file) unreadable")
        #expect(outcome.problems == [], "\(file)")
    }

    @Test(arguments: fuzzInputs("corpus/server"))
    func corpusKeepsTheInvariants(file: String) async throws {
        let outcome = try await run(file)
        #expect(outcome.problems == [], "\(file)")
    }

    @Test func theRegressionsAreThere() async {
        #expect(fuzzInputs("regressions/server").count >= serverAnswers.count)
        #expect(await regressionOutcomes.value.count == fuzzInputs("regressions/server").count)
    }

    /// The regressions alone draw every kind of answer: they are kept for that (docs/fuzzing.md).
    @Test func regressionsReachEveryAnswerKind() async {
        var reached: [String: Int] = [:]
        for outcome in await regressionOutcomes.value.values {
            for kind in outcome.answers.joined() { reached[kind, default: 0] += 1 }
        }
        let missing = serverAnswers.filter { reached[$0] == nil }
        #expect(missing == [], "no regression input draws \(missing); reached: \(reached.sorted { $0.key < $1.key })")
        #expect(Set(reached.keys).isSubset(of: serverAnswers), "unlisted answers: \(Set(reached.keys).subtracting(serverAnswers))")
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
