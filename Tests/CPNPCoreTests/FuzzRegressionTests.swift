// Replays the decoder fuzz regressions (Fuzz/regressions/decoder: the minimised fuzzer corpus and
// hand-made seeds, docs/fuzzing.md) and the seed corpus through the decoder fuzz target's own
// checks (Fuzz/Sources/cpnp-fuzz-support), and checks that the regressions reach every decoder branch.
// Server inputs are NUL-separated datagrams: each is decoded.
import CPNPCore
import CPNPFuzzSupport
import CPNPTesting
import Foundation
import Testing

private func bytes(_ file: String) throws -> [UInt8] {
    Array(try #require(FileManager.default.contents(atPath: fuzzRoot.appendingPathComponent(file).path), "\(file) unreadable"))
}

/// The decoder branches the regression inputs must reach (``DecoderFuzzCheck/branch(_:)``): every
/// METHOD_CODE decoded (RFC 8921 §9.1) and every kind of ``CPNPDecodingError`` raised. Spelled
/// out, so that losing the inputs of a branch, or a branch no longer being taken, fails.
private let decoderBranches: [String] = [
    "decoded QUOTATION", "decoded PROCESSING", "decoded OFFER", "decoded ACCEPT", "decoded DECLINE", "decoded ACK",
    "decoded CANCEL", "decoded WITHDRAW", "decoded UPDATE", "decoded FAIL", "decoded ACTIVATE",
    "rejected malformed-json", "rejected invalid-utf8", "rejected duplicate-key", "rejected nesting-too-deep",
    "rejected document-too-large", "rejected string-too-long", "rejected not-an-object", "rejected missing-field",
    "rejected wrong-type", "rejected out-of-range", "rejected invalid-value", "rejected unsupported-version",
    "rejected unknown-method",
]

@Suite("Fuzz regressions: decoder")
struct DecoderFuzzRegressionTests {
    @Test(arguments: fuzzInputs("regressions/decoder") + fuzzInputs("corpus/decoder"))
    func decoderInputsKeepTheInvariants(file: String) throws {
        #expect(DecoderFuzzCheck.problems(try bytes(file)) == [], "\(file)")
    }

    @Test(arguments: fuzzInputs("regressions/server"))
    func serverInputsDecodeCleanly(file: String) throws {
        for datagram in try bytes(file).split(separator: 0, omittingEmptySubsequences: false) {
            #expect(DecoderFuzzCheck.problems(Array(datagram)) == [], "\(file)")
        }
    }

    @Test func theInputsAreThere() {
        #expect(fuzzInputs("corpus/decoder").count > 50)
        #expect(fuzzInputs("regressions/decoder").count >= decoderBranches.count)
        #expect(fuzzInputs("regressions/server").count >= 10)
    }

    /// The regressions alone reach every branch: they are kept for that (docs/fuzzing.md).
    @Test func regressionsReachEveryDecoderBranch() throws {
        var reached: [String: Int] = [:]
        for file in fuzzInputs("regressions/decoder") {
            reached[DecoderFuzzCheck.branch(try bytes(file)), default: 0] += 1
        }
        let missing = decoderBranches.filter { reached[$0] == nil }
        #expect(missing == [], "no regression input reaches \(missing); reached: \(reached.sorted { $0.key < $1.key })")
        #expect(Set(reached.keys).isSubset(of: decoderBranches), "unlisted branches: \(Set(reached.keys).subtracting(decoderBranches))")
    }

    /// The list above names every method and every decoding error kind there is.
    @Test func theBranchListIsComplete() {
        let all = MethodCode.allCases.map { "decoded \($0.name)" } + CPNPDecodingError.Code.allCases.map { "rejected \($0.rawValue)" }
        #expect(Set(decoderBranches) == Set(all))
        #expect(decoderBranches.count == all.count)
    }
}
