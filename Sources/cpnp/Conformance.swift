import ArgumentParser
import CPNPConformance
import CPNPCore
import CPNPTransport
import Foundation

/// `cpnp conformance`: plays the conformance vectors (conformance/README.md) against a CPNP server.
struct Conformance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play the CPNP conformance vectors against a server over DTLS.",
        discussion: """
            Prints one line per case (PASS id title, FAIL id title: reason, SKIP id: why), then \
            'N passed, M failed' (', K skipped' when some were skipped). Exit status: 0 when no case \
            failed, 1 otherwise. Cases that restart the server or approve a held order run only with \
            --restart-command or --approve-command; see docs/conformance.md.
            """
    )

    @Option(name: .long, help: "The server, HOST:PORT ([v6]:PORT); port 8921 when omitted.")
    var server: String

    @OptionGroup var credentials: CredentialOptions

    @Option(name: .long, help: "Directory of the case files.")
    var cases: String = "conformance/cases"

    @Option(name: .long, help: "The target profile: what the server serves, refuses and how fast it answers.")
    var target: String = "conformance/targets/cpnpd-defaults.json"

    @Option(name: .long, help: "Run only the cases whose id contains this text.")
    var filter: String?

    @Option(name: .long, help: "Shell command that restarts the server and returns once it is ready.")
    var restartCommand: String?

    @Option(name: .long, help: "Shell command that approves a held order; {{provider-order-id}} is replaced by its id.")
    var approveCommand: String?

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func run() async throws {
        let (host, port) = try Self.hostAndPort(server)
        let all: [ConformanceCase]
        let profile: TargetProfile
        let security: CPNPSecurityConfiguration
        do {
            all = try ConformanceLoader.loadCases(directory: cases)
            profile = try ConformanceLoader.loadTarget(file: target)
            security = try credentials.security()
        } catch {
            Diagnostics.write("error: \(error)")
            throw ExitCode.failure
        }
        let selected = filter.map { fragment in all.filter { $0.id.contains(fragment) } } ?? all
        var hooks = ConformanceHooks()
        if let restartCommand {
            hooks.restart = { try await Self.shell(restartCommand) }
        }
        if let approveCommand {
            hooks.approve = { providerOrderID in
                try await Self.shell(approveCommand.replacingOccurrences(of: "{{provider-order-id}}", with: providerOrderID))
            }
        }
        let runner = ConformanceRunner(host: host, port: port, security: security, target: profile, hooks: hooks)
        let asJSON = json
        let results = await runner.run(selected) { result in
            if !asJSON { Self.output(result.line) }
        }
        let summary = ConformanceSummary(results)
        if json {
            let list = results.map { result -> JSONValue in
                var object = JSONObject([
                    ("id", .string(result.id)), ("title", .string(result.title)),
                    ("rfc", .array(result.references.map(JSONValue.string))),
                ])
                switch result.outcome {
                case .passed: object["outcome"] = .string("pass")
                case .failed(let why): object["outcome"] = .string("fail"); object["reason"] = .string(why)
                case .skipped(let why): object["outcome"] = .string("skip"); object["reason"] = .string(why)
                }
                return .object(object)
            }
            Self.output(
                JSONSerializer.serializeString(
                    .object(
                        JSONObject([
                            ("cases", .array(list)), ("passed", .number(CPNPDecimal(Int64(summary.passed)))),
                            ("failed", .number(CPNPDecimal(Int64(summary.failed)))), ("skipped", .number(CPNPDecimal(Int64(summary.skipped)))),
                        ]))))
        } else {
            Self.output(summary.line)
        }
        if summary.failed > 0 { throw ExitCode.failure }
    }

    /// Writes one line to standard output at once (the progress of a long run).
    static func output(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// `HOST:PORT`, `[V6]:PORT`, `HOST` (port 8921).
    static func hostAndPort(_ text: String) throws -> (String, Int) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (host, CPNPTransportDefaults.port) }
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else {
                throw ValidationError("--server: bad port in \(text)")
            }
            return (host, port)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 1, !text.isEmpty { return (text, CPNPTransportDefaults.port) }
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw ValidationError("--server must be HOST:PORT, got \(text)")
        }
        return (String(parts[0]), port)
    }

    /// Runs `command` with /bin/sh; fails on a non-zero exit status. The shell is waited for with
    /// waitpid: Foundation's termination notice waits until every descendant that inherited its
    /// descriptors exits, and a restart command leaves the restarted server running.
    static func shell(_ command: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardOutput = FileHandle.standardError
        try process.run()
        var status: Int32 = 0
        while true {
            var raw: Int32 = 0
            let reaped = waitpid(process.processIdentifier, &raw, WNOHANG)
            if reaped == process.processIdentifier {
                status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
                break
            }
            if reaped == -1 {
                // Already reaped by Foundation.
                while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
                status = process.terminationStatus
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        if status != 0 { throw CLIError("`\(command)` exited with status \(status)") }
    }
}
