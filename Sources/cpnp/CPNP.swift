import ArgumentParser

/// `cpnp`, the customer's CPNP client (RFC 8921 §8.10, §11.1).
@main
struct CPNP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpnp",
        abstract: "CPNP (RFC 8921) customer client.",
        subcommands: []
    )
}
