// Replays every fuzz regression input and the decoder seed corpus through the decoder, with the
// decoder fuzz target's own checks (Sources/cpnp-fuzz-support). Server inputs are NUL-separated
// datagrams: each is decoded.
import CPNPCore
import CPNPFuzzSupport
import Foundation
import Testing

private let fuzzRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fuzz")

private func inputs(_ directory: String) -> [String] {
    let url = fuzzRoot.appendingPathComponent(directory)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(directory)/\($0)" }
}

private func bytes(_ file: String) throws -> [UInt8] {
    Array(try #require(FileManager.default.contents(atPath: fuzzRoot.appendingPathComponent(file).path), "\(file) unreadable"))
}

@Suite("Fuzz regressions: decoder (issue 6)")
struct DecoderFuzzRegressionTests {
    @Test(arguments: inputs("regressions/decoder") + inputs("corpus/decoder"))
    func decoderInputsKeepTheInvariants(file: String) throws {
        #expect(DecoderFuzzCheck.problems(try bytes(file)) == [], "\(file)")
    }

    @Test(arguments: inputs("regressions/server"))
    func serverInputsDecodeCleanly(file: String) throws {
        for datagram in try bytes(file).split(separator: 0, omittingEmptySubsequences: false) {
            #expect(DecoderFuzzCheck.problems(Array(datagram)) == [], "\(file)")
        }
    }

    @Test func theCorpusIsThere() {
        #expect(inputs("corpus/decoder").count > 50)
    }
}
