import ArgumentParser
import CPNPCore
import Foundation

/// Reads a document named on the command line (`-` for standard input), refusing more than
/// the TLS stream limit of 1 MiB (docs/protocol.md §2.1) without reading further.
enum Input {
    static let maxBytes = JSONParser.Limits.stream.maxBytes

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// ``read(_:)`` for a command whose only output is its verdict: an unreadable input is written to
    /// standard error and ends the command with exit status 1.
    static func readOrFail(_ name: String) throws -> [UInt8] {
        do {
            return try read(name)
        } catch {
            Diagnostics.write("error: \(error)")
            throw ExitCode.failure
        }
    }

    static func read(_ name: String) throws(Failure) -> [UInt8] {
        let handle: FileHandle
        if name == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let opened = FileHandle(forReadingAtPath: name) else { throw Failure(description: "\(name): cannot open the file") }
            handle = opened
        }
        defer { if name != "-" { try? handle.close() } }
        var bytes: [UInt8] = []
        do {
            // One byte over the limit is enough to know the document is too large.
            while bytes.count <= maxBytes, let chunk = try handle.read(upToCount: min(65_536, maxBytes + 1 - bytes.count)), !chunk.isEmpty {
                bytes += chunk
            }
        } catch {
            throw Failure(description: "\(name): \(error.localizedDescription)")
        }
        return bytes
    }
}

/// Writes diagnostics to standard error.
enum Diagnostics {
    static func error(_ path: JSONPath, _ message: String) { write("error: \(path): \(message)") }
    static func warning(_ path: JSONPath, _ message: String) { write("warning: \(path): \(message)") }

    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Prints the issues (errors, then warnings) and tells whether there is no error.
    static func report(_ issues: [CPDValidationIssue]) -> Bool {
        for issue in issues where issue.severity == .error { error(issue.path, issue.message) }
        for issue in issues where issue.severity == .warning { warning(issue.path, issue.message) }
        return issues.errors.isEmpty
    }
}
