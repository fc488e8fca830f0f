import ArgumentParser

/// `cpnpd`, the provider's CPNP server (RFC 8921 §8.2).
@main
struct CPNPD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpnpd",
        abstract: "CPNP (RFC 8921) provider server.",
        subcommands: [PKICommand.self]
    )

    func run() async throws {
        print("cpnpd: the server engine is not implemented yet (see issue 4).")
        throw ExitCode(2)
    }
}
