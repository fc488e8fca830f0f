import Dispatch
import Foundation
import Synchronization

/// Replays inputs through a fuzz target's checks outside libFuzzer: the `main` of the fuzz
/// executables in a normal build, so that they double as regression runners.
public enum FuzzReplay {
    /// Checks every file named in `arguments` (a directory stands for its files, sorted; options
    /// starting with `-` are ignored, as libFuzzer's would be). Prints one line per failing input
    /// and a summary; returns the exit status (0: every input passed).
    public static func run(arguments: [String], check: ([UInt8]) -> [String]) -> Int32 {
        let files = inputFiles(arguments.filter { !$0.hasPrefix("-") })
        guard !files.isEmpty else {
            FileHandle.standardError.write(Data("usage: \(CommandLine.arguments.first ?? "fuzz") FILE|DIR …  (no input found)\n".utf8))
            return 2
        }
        var failed = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("\(file): unreadable")
                failed += 1
                continue
            }
            let problems = check(Array(data))
            if !problems.isEmpty {
                failed += 1
                print("\(file): FAILED\n  " + problems.joined(separator: "\n  "))
            }
        }
        print("\(files.count) inputs, \(failed) failed")
        return failed == 0 ? 0 : 1
    }

    /// `--branches FILE|DIR …`: one line per input (`FILE<TAB>branch; branch…`), then how many
    /// inputs reach each branch. `scripts/fuzz.sh merge` uses it to keep an input per branch.
    public static func branches(arguments: [String], of input: ([UInt8]) -> [String]) -> Int32 {
        let files = inputFiles(arguments)
        var counts: [String: Int] = [:]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            let reached = Array(Set(input(Array(data)))).sorted()
            for feature in reached { counts[feature, default: 0] += 1 }
            print("\(file)\t\(reached.joined(separator: "; "))")
        }
        for (branch, count) in counts.sorted(by: { $0.key < $1.key }) { print("# \(count)\t\(branch)") }
        return files.isEmpty ? 2 : 0
    }

    /// `--keep MAX CONTROL_FILE OUT_DIR`: chooses at most `MAX` of the inputs of a libFuzzer merge
    /// (`-merge=1 -merge_control_file=CONTROL_FILE`, which lists the inputs and each one's
    /// coverage features) and copies them to `OUT_DIR`. First, for each branch (`branches` of an
    /// input) that some input reaches, the smallest input reaching it; then, greedily, the input
    /// adding the most features not yet covered, until `MAX` or no input adds any. Inputs with
    /// the same content count once. `scripts/fuzz.sh merge` uses it for Fuzz/regressions.
    public static func keep(arguments: [String], branches: ([UInt8]) -> [String]) -> Int32 {
        guard arguments.count == 3, let maxFiles = Int(arguments[0]), maxFiles > 0,
            let control = FileManager.default.contents(atPath: arguments[1])
        else {
            print("usage: \(CommandLine.arguments.first ?? "fuzz") --keep MAX CONTROL_FILE OUT_DIR")
            return 2
        }
        let lines = String(decoding: control, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count > 2, let count = Int(lines[0]), lines.count >= 2 + count else {
            print("\(arguments[1]): not a libFuzzer merge control file")
            return 2
        }
        let files = Array(lines[2..<(2 + count)])
        var features = [Set<UInt64>](repeating: [], count: count)
        for line in lines.dropFirst(2 + count) where line.hasPrefix("FT ") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let index = Int(fields[1]), index < count else { continue }
            features[index] = Set(fields.dropFirst(2).compactMap { UInt64($0) })
        }
        let contents = files.map { FileManager.default.contents(atPath: $0).map { Array($0) } }
        let reached = contents.map { $0.map { Set(branches($0)) } ?? [] }

        var kept: [Int] = []
        var covered = Set<UInt64>()
        var keptContents = Set<[UInt8]>()
        var keptBranches = Set<String>()
        func candidate(_ index: Int) -> Bool { contents[index].map { !keptContents.contains($0) } ?? false }
        func take(_ index: Int) {
            kept.append(index)
            covered.formUnion(features[index])
            keptContents.insert(contents[index]!)
            keptBranches.formUnion(reached[index])
        }
        for branch in Set(reached.joined()).sorted() where !keptBranches.contains(branch) {
            let reaching = (0..<count).filter { candidate($0) && reached[$0].contains(branch) }
            if let smallest = reaching.min(by: { (contents[$0]!.count, $0) < (contents[$1]!.count, $1) }) { take(smallest) }
        }
        while kept.count < maxFiles {
            var best: (index: Int, gain: Int)?
            for i in 0..<count where candidate(i) {
                let gain = features[i].subtracting(covered).count
                if gain > (best?.gain ?? 0) { best = (index: i, gain: gain) }
            }
            guard let best else { break }
            take(best.index)
        }

        let out = arguments[2]
        try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var names = Set<String>()
        var bytes = 0
        for i in kept {
            var name = files[i].split(separator: "/").last.map(String.init) ?? "input"
            while names.contains(name) { name = "x-" + name }
            names.insert(name)
            bytes += contents[i]!.count
            _ = FileManager.default.createFile(atPath: "\(out)/\(name)", contents: Data(contents[i]!))
        }
        let allFeatures = features.reduce(into: Set<UInt64>()) { $0.formUnion($1) }
        print(
            "\(count) inputs, \(allFeatures.count) features, \(Set(reached.joined()).count) branches; kept \(kept.count) inputs "
                + "(\(bytes) bytes), \(covered.count) features, \(keptBranches.count) branches, in \(out)")
        return 0
    }

    /// The regular files named by `paths`, directories expanded one level, in a stable order.
    public static func inputFiles(_ paths: [String]) -> [String] {
        var out: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                out += names.filter { !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" }
            } else {
                out.append(path)
            }
        }
        return out
    }

    /// Reports a violated invariant to libFuzzer: prints it and traps, so the input is saved.
    public static func crash(_ problems: [String]) -> Never {
        FileHandle.standardError.write(Data(("fuzz invariant violated:\n  " + problems.joined(separator: "\n  ") + "\n").utf8))
        fatalError("fuzz invariant violated")
    }
}

/// Runs `body` to completion from synchronous code (libFuzzer's callback), blocking the calling
/// thread, which must not be one of the concurrency pool's.
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = BlockingResult<T>()
    Task {
        let result = await body()
        box.value.withLock { $0 = result }
        box.done.signal()
    }
    box.done.wait()
    return box.value.withLock { $0! }
}

private final class BlockingResult<T: Sendable>: Sendable {
    let value = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
}
