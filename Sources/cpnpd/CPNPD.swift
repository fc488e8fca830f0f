import ArgumentParser

/// `cpnpd`, the provider's CPNP server (RFC 8921 §8.2).
@main
struct CPNPD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpnpd",
        abstract: "CPNP (RFC 8921) provider server.",
        discussion: """
            With no subcommand, runs the server. With no --config it uses the embedded demo policy, \
            listens on 127.0.0.1:8921 over DTLS, keeps its orders in ./.cpnp/cpnpd.sqlite and makes a \
            development PKI in ./.cpnp/pki on first run.
            """,
        version: "0.1.0",
        subcommands: [RunCommand.self, CheckConfigCommand.self, AdminCommand.self, PKICommand.self],
        defaultSubcommand: RunCommand.self
    )
}
