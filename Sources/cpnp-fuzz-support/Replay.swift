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
