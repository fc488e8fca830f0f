// libFuzzer target for the message decoder (docs/fuzzing.md). Built with `-sanitize=fuzzer -D CPNP_LIBFUZZER`
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
            if arguments.first == "--keep" {
                exit(FuzzReplay.keep(arguments: Array(arguments.dropFirst()), branches: { [DecoderFuzzCheck.branch($0)] }))
            }
            if arguments.first == "--branches" {
                exit(FuzzReplay.branches(arguments: Array(arguments.dropFirst())) { [DecoderFuzzCheck.branch($0)] })
            }
            exit(FuzzReplay.run(arguments: arguments, check: DecoderFuzzCheck.problems))
        }

        /// `--make-seeds VECTORS OUT`: the golden vectors that fit in a datagram: each `valid/` file as
        /// it is, and the raw message of each `invalid/` file (its `input`, or `input-hex` decoded;
        /// the file itself is a description of the defect, Tests/CPNPCoreTests/Vectors/README.md).
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
                    guard let contents = FileManager.default.contents(atPath: file),
                        let data = kind == "valid" ? contents : rawMessage(ofInvalidVector: contents), data.count <= 16_384
                    else { continue }
                    let name = "\(kind)-" + (file.split(separator: "/").last.map(String.init) ?? "seed")
                    if FileManager.default.createFile(atPath: "\(out)/\(name)", contents: data) { written += 1 }
                }
            }
            print("\(written) seeds written to \(out)")
            return written > 0 ? 0 : 1
        }

        /// The `input` (or `input-hex`) of an invalid vector: the bytes a receiver must refuse.
        static func rawMessage(ofInvalidVector contents: Data) -> Data? {
            guard let vector = (try? JSONSerialization.jsonObject(with: contents)) as? [String: Any] else { return nil }
            if let input = vector["input"] as? String { return Data(input.utf8) }
            guard let hex = vector["input-hex"] as? String, hex.count % 2 == 0 else { return nil }
            var bytes: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
                bytes.append(byte)
                index = next
            }
            return Data(bytes)
        }
    }
#endif
