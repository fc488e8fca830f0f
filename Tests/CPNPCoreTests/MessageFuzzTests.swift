import CPNPTesting
import Testing
@testable import CPNPCore

/// Mutation fuzzing of the message decoder, seeded from the valid golden vectors
/// (Tests/CPNPCoreTests/Vectors/valid), with the mutator and PRNG of Support/Mutator.swift.
///
/// Every mutated input must either be refused with a ``CPNPDecodingError`` or decode to a
/// message whose semantic validation runs and whose encoding is deterministic and decodes
/// back to an equal message. The run is split into shards with fixed seeds so that it is
/// reproducible and uses every core (swift-testing runs the shards in parallel).
@Suite struct MessageFuzzTests {
    static let shards = 4
    static let inputsPerShard = 25_000  // 100,000 mutated inputs in all

    static let corpus: [[UInt8]] = {
        (try? VectorFiles.valid().map(\.bytes)) ?? []
    }()

    /// Cumulative selection weights of the seeds, proportional to 1/size, so that every seed
    /// gets the same budget of bytes to parse: picking uniformly would spend most of the run
    /// re-parsing the 4 KB CPDs (a debug build parses ~75 ns/byte). The seeds that carry a
    /// CPD still get about one input in twenty (≈ 5,000 inputs), the rest go to the variety
    /// of message kinds and attributes.
    static let cumulativeWeights: [Int] = {
        var total = 0
        return corpus.map { doc in
            total += 100_000_000 / max(doc.count, 1)
            return total
        }
    }()

    /// A seed drawn with ``cumulativeWeights``, with 1…3 mutations: most inputs stay close to
    /// a valid message, so the fuzzer reaches the message decoder rather than stopping at
    /// the first syntax error.
    static func nextInput(_ mutator: inout JSONMutator) -> [UInt8] {
        let r = mutator.rng.below(cumulativeWeights.last!)
        var doc = corpus[cumulativeWeights.firstIndex { r < $0 }!]
        for _ in 0...mutator.rng.below(3) { mutator.mutate(&doc) }
        return doc
    }

    /// What a fuzzer run found (also `JSONFuzzTests`'s).
    struct Outcome: Sendable {
        var accepted = 0
        var codes: [CPNPDecodingError.Code: Int] = [:]
        var failures: [String] = []
    }

    /// Runs `count` mutated inputs from `seed` (off the pool: ``computeOffThePool(_:)``).
    static func run(seed: UInt64, count: Int) -> Outcome {
        var mutator = JSONMutator(seed: seed, corpus: corpus)
        var out = Outcome()
        for _ in 0..<count {
            let input = nextInput(&mutator)
            let message: CPNPMessage
            do {
                message = try CPNPCodec.decode(input, limits: .datagram)
            } catch {
                out.codes[error.code, default: 0] += 1
                if error.reason.isEmpty { out.failures.append("empty reason for \(error.code)") }
                continue
            }
            out.accepted += 1
            _ = message.validationIssues()
            let bytes = CPNPCodec.encode(message)
            do {
                let again = try CPNPCodec.decode(bytes, limits: .stream)
                if again != message || CPNPCodec.encode(again) != bytes {
                    out.failures.append("round trip differs: \(String(decoding: input, as: UTF8.self))")
                }
            } catch {
                out.failures.append("re-encoding does not decode (\(error)): \(String(decoding: input, as: UTF8.self))")
            }
        }
        return out
    }

    @Test func corpusIsTheValidVectors() throws {
        #expect(Self.corpus.count >= 16)
        for doc in Self.corpus { _ = try CPNPCodec.decode(doc) }
    }

    @Test(arguments: 0..<shards) func mutatedMessagesNeverCrashAndRoundTrip(shard: Int) async throws {
        try #require(Self.corpus.count >= 16, "the valid vectors are missing")
        let outcome = await computeOffThePool { Self.run(seed: 0x8921_F022 &+ UInt64(shard) &* 0x9E37_79B9, count: Self.inputsPerShard) }
        for f in outcome.failures.prefix(5) { Issue.record(Comment(rawValue: f)) }
        #expect(outcome.failures.isEmpty, "\(outcome.failures.count) failures")
        // Sanity: both outcomes and many kinds of error are exercised.
        #expect(outcome.accepted > Self.inputsPerShard / 100, "accepted \(outcome.accepted)")
        #expect(outcome.codes.count >= 8, "error codes seen: \(outcome.codes)")
    }
}
