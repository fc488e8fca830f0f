import ArgumentParser
import CPNPCore

/// `cpnp inspect FILE|-`: decodes, shows and validates one CPNP message.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode, display and validate one CPNP message (JSON, docs/protocol.md).",
        discussion: """
            Reads FILE, or standard input when FILE is '-', up to the TLS stream limit of 1 MiB.
            Errors go to standard error as 'error: <path>: <reason>'. Exit status: 0 valid, \
            1 invalid.
            """
    )

    @Argument(help: "The message file, or '-' for standard input.")
    var file: String

    @Flag(help: "Also print the message as pretty-printed canonical JSON.")
    var json = false

    func run() throws {
        let bytes = try Input.readOrFail(file)
        let message: CPNPMessage
        do {
            message = try CPNPCodec.decode(bytes, limits: .stream)
        } catch {
            Diagnostics.error(error.path, "\(error.reason) (\(error.code.rawValue))")
            throw ExitCode.failure
        }
        for line in MessageFormatter.lines(for: message, size: bytes.count) { print(line) }
        if json {
            print(JSONSerializer.serializeString(CPNPCodec.encodeJSON(message), pretty: true))
        }
        let issues = message.validationIssues()
        guard Diagnostics.report(issues) else { throw ExitCode.failure }
        print(issues.isEmpty ? "valid" : "valid (\(issues.count) warning\(issues.count == 1 ? "" : "s"))")
    }
}
