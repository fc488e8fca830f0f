// libFuzzer target for the server's message handling (docs/fuzzing.md): see ServerFuzzHarness. Built with
// `-sanitize=fuzzer -D CPNP_LIBFUZZER` (scripts/fuzz.sh), libFuzzer calls `LLVMFuzzerTestOneInput`;
// in a normal build, `main` replays the files or directories given as arguments.
import CPNPCore
import CPNPFuzzSupport
import CPNPServerFuzzSupport
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let problems = ServerFuzzHarness.problems(bytes)
    if !problems.isEmpty { FuzzReplay.crash(problems) }
    return 0
}

#if !CPNP_LIBFUZZER
    @main
    enum ServerReplay {
        static func main() {
            let arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "--make-seeds" {
                exit(makeSeeds(Array(arguments.dropFirst())))
            }
            if arguments.first == "--stats" {
                exit(stats(FuzzReplay.inputFiles(Array(arguments.dropFirst()))))
            }
            if arguments.first == "--keep" {
                exit(
                    FuzzReplay.keep(
                        arguments: Array(arguments.dropFirst()),
                        branches: { input in
                            runBlocking { await ServerFuzzHarness.run(input).answers.flatMap { $0 } }
                        }))
            }
            if arguments.first == "--branches" {
                exit(
                    FuzzReplay.branches(arguments: Array(arguments.dropFirst())) { input in
                        runBlocking { await ServerFuzzHarness.run(input).answers.flatMap { $0 } }
                    })
            }
            exit(FuzzReplay.run(arguments: arguments, check: ServerFuzzHarness.problems))
        }

        /// `--stats FILE|DIR …`: how far the inputs get: final states of the open orders, messages sent.
        static func stats(_ files: [String]) -> Int32 {
            let outcomes = files.compactMap { file in
                FileManager.default.contents(atPath: file).map { data in runBlocking { await ServerFuzzHarness.run(Array(data)) } }
            }
            func show(_ title: String, _ counts: [String: Int]) {
                print(title + counts.sorted { $0.value > $1.value }.map { " \($0.key) \($0.value)" }.joined(separator: ","))
            }
            show("open orders' final states (per order):", outcomes.flatMap(\.openStates).reduce(into: [:]) { $0["\($1)", default: 0] += 1 })
            show("inputs that closed every order:", ["yes": outcomes.filter(\.openStates.isEmpty).count])
            show("messages sent after the seeded OFFER:", outcomes.flatMap(\.sent).reduce(into: [:]) { $0["\($1.method)", default: 0] += 1 })
            print("\(outcomes.count) inputs, \(outcomes.filter { !$0.problems.isEmpty }.count) with problems")
            return 0
        }

        /// `--make-seeds VECTORS OUT`: the golden vectors of `VECTORS/valid` and flows built from them.
        static func makeSeeds(_ arguments: [String]) -> Int32 {
            guard arguments.count == 2 else {
                print("usage: cpnp-fuzz-server --make-seeds VECTORS_DIR OUT_DIR")
                return 2
            }
            var vectors: [String: [UInt8]] = [:]
            for file in FuzzReplay.inputFiles(["\(arguments[0])/valid"]) {
                if let data = FileManager.default.contents(atPath: file), let name = file.split(separator: "/").last {
                    vectors[String(name)] = Array(data)
                }
            }
            let inputs = vectors
            let seeds = runBlocking { await ServerFuzzHarness.seeds(vectors: inputs) }
            try? FileManager.default.createDirectory(atPath: arguments[1], withIntermediateDirectories: true)
            for seed in seeds {
                _ = FileManager.default.createFile(atPath: "\(arguments[1])/\(seed.name)", contents: Data(seed.bytes))
            }
            print("\(seeds.count) seeds written to \(arguments[1])")
            return seeds.isEmpty ? 1 : 0
        }
    }
#endif
