// libFuzzer target for the message decoder (issue 6). Built with `-sanitize=fuzzer -D CPNP_LIBFUZZER`
// (scripts/fuzz.sh), libFuzzer calls `LLVMFuzzerTestOneInput`; in a normal build, `main` replays
// the files or directories given as arguments (a regression runner).
import CPNPFuzzSupport
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let problems = DecoderFuzzCheck.problems(bytes)
    if !problems.isEmpty { FuzzReplay.crash(problems) }
    return 0
}

#if !CPNP_LIBFUZZER
@main
enum DecoderReplay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "--make-seeds" {
            exit(makeSeeds(Array(arguments.dropFirst())))
        }
        exit(FuzzReplay.run(arguments: arguments, check: DecoderFuzzCheck.problems))
    }

    /// `--make-seeds VECTORS OUT`: copies the golden vectors (`valid/` and `invalid/`) that fit in a datagram.
    static func makeSeeds(_ arguments: [String]) -> Int32 {
        guard arguments.count == 2 else {
            print("usage: cpnp-fuzz-decoder --make-seeds VECTORS_DIR OUT_DIR")
            return 2
        }
        let (vectors, out) = (arguments[0], arguments[1])
        try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var written = 0
        for kind in ["valid", "invalid"] {
            for file in FuzzReplay.inputFiles(["\(vectors)/\(kind)"]) {
                guard let data = FileManager.default.contents(atPath: file), data.count <= 16_384 else { continue }
                let name = "\(kind)-" + (file.split(separator: "/").last.map(String.init) ?? "seed")
                if FileManager.default.createFile(atPath: "\(out)/\(name)", contents: data) { written += 1 }
            }
        }
        print("\(written) seeds written to \(out)")
        return written > 0 ? 0 : 1
    }
}
#endif
