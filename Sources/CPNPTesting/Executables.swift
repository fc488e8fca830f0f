// The project's executables as the tests find and run them.
public import Foundation

/// An executable of this package, built next to the test bundle (`swift build --build-tests`).
public enum BuiltExecutable {
    /// `$environmentVariable` when it is set (nil if that file is not executable), else `name` in the
    /// products directory: the directory holding the test bundle, whatever the scratch path.
    public static func locate(_ name: String, overriddenBy environmentVariable: String) -> URL? {
        let fileManager = FileManager.default
        if let path = ProcessInfo.processInfo.environment[environmentVariable] {
            return fileManager.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
        }
        var directories: [URL] = []
        // Linux: the .xctest executable; macOS: a bundle directory.
        if let executable = Bundle.main.executableURL { directories.append(executable.resolvingSymlinksInPath().deletingLastPathComponent()) }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        directories.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
        return directories.map { $0.appendingPathComponent(name) }.first { fileManager.isExecutableFile(atPath: $0.path) }
    }

    /// What to do with a process's standard error.
    public enum StandardError: Sendable {
        /// Into the same output as standard output, in order.
        case merged
        /// Dropped.
        case discarded
    }

    /// Runs `executable ARGUMENTS` (in `directory`, when given) to its end, with an empty standard
    /// input: its exit status and its output.
    public static func run(
        _ executable: URL, _ arguments: [String], in directory: URL? = nil, standardError: StandardError = .merged
    ) async throws -> (status: Int32, output: String) {
        try await onOwnThread { try runBlocking(executable, arguments, in: directory, standardError: standardError) }
    }

    private static func runBlocking(
        _ executable: URL, _ arguments: [String], in directory: URL?, standardError: StandardError
    ) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = pipe
        process.standardError = standardError == .merged ? pipe : FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
