import CPNPTesting
import Testing
@testable import CPNPCore

@Suite struct JSONFuzzTests {
    /// Every seed document is valid JSON (otherwise the fuzzer starts from noise).
    @Test func seedsAreValid() throws {
        for doc in FuzzCorpus.all {
            let value = try JSONParser.parse(doc)
            #expect(try JSONParser.parse(JSONSerializer.serialize(value)) == value)
        }
    }

    /// The mutator is deterministic for a given seed.
    @Test func mutatorIsDeterministic() {
        var a = JSONMutator(seed: 42, corpus: FuzzCorpus.all)
        var b = JSONMutator(seed: 42, corpus: FuzzCorpus.all)
        for _ in 0..<200 { #expect(a.next(mutations: 2) == b.next(mutations: 2)) }
    }

    /// ≥ 100,000 random mutations: the parser never crashes, and every input either parses
    /// to a value that re-serializes (byte-identically twice) and re-parses to an equal
    /// value, or is refused with a `CPNPDecodingError` (the only error type it can throw).
    @Test func mutationFuzz() async throws {
        // Off the pool (``computeOffThePool(_:)``); the issues are recorded here, on the test's task.
        let outcome = await computeOffThePool {
            let totalMutations = 100_000
            var mutator = JSONMutator(seed: 0xC0FF_EE00_8921, corpus: FuzzCorpus.all)
            let limits = JSONParser.Limits(maxBytes: 16_384, maxDepth: 32, maxStringLength: 4096)
            var out = MessageFuzzTests.Outcome()
            var mutations = 0
            while mutations < totalMutations {
                // 1…5 mutations per input (3 on average) keeps the per-mutation cost low.
                let count = 1 + mutator.rng.below(5)
                mutations += count
                let input = mutator.next(mutations: count)
                do throws(CPNPDecodingError) {
                    let value = try JSONParser.parse(input, limits: limits)
                    out.accepted += 1
                    let bytes = JSONSerializer.serialize(value)
                    let again = try JSONParser.parse(bytes, limits: limits)
                    if again != value || JSONSerializer.serialize(again) != bytes {
                        out.failures.append("round trip failed for \(String(decoding: input, as: UTF8.self))")
                    }
                } catch {
                    out.codes[error.code, default: 0] += 1
                    if error.reason.isEmpty { out.failures.append("empty reason for \(error.code)") }
                }
            }
            return out
        }
        for failure in outcome.failures.prefix(5) { Issue.record(Comment(rawValue: failure)) }
        #expect(outcome.failures.isEmpty, "\(outcome.failures.count) failures")
        // Sanity: the fuzzer exercises both outcomes and many error kinds.
        #expect(outcome.accepted > 100)
        #expect(outcome.codes.count >= 5, "error codes seen: \(outcome.codes)")
    }
}
