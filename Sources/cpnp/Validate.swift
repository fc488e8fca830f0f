import ArgumentParser
import CPNPCore

/// `cpnp validate FILE|-`: checks a bare CPD document (docs/protocol.md §2.7).
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a Connectivity Provisioning Document (a bare CPD, not a message).",
        discussion: """
            Reads FILE, or standard input when FILE is '-', up to 1 MiB. Errors go to standard \
            error as 'error: <path>: <reason>'. Exit status: 0 valid, 1 invalid.
            """
    )

    @Argument(help: "The CPD file, or '-' for standard input.")
    var file: String

    func run() throws {
        let bytes = try Input.readOrFail(file)
        let cpd: CPD
        do {
            cpd = try CPD(json: JSONParser.parse(bytes, limits: .stream), at: .root)
        } catch {
            Diagnostics.error(error.path, "\(error.reason) (\(error.code.rawValue))")
            throw ExitCode.failure
        }
        for line in MessageFormatter.cpdLines(cpd, name: "CPD") { print(line) }
        let issues = cpd.validate(at: .root)
        guard Diagnostics.report(issues) else { throw ExitCode.failure }
        print(issues.isEmpty ? "valid" : "valid (\(issues.count) warning\(issues.count == 1 ? "" : "s"))")
    }
}
