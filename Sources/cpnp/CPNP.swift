import ArgumentParser

/// `cpnp`, the customer's CPNP client (RFC 8921 §8.10, §11.1).
@main
struct CPNP: AsyncParsableCommand {
    /// The version of this implementation (the protocol VERSION is always 1).
    static let toolVersion = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "cpnp",
        abstract: "CPNP (RFC 8921) customer client.",
        version: "cpnp \(toolVersion) (CPNP version 1, RFC 8921)",
        subcommands: [Inspect.self, Validate.self]
    )
}
