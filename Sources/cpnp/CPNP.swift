import ArgumentParser

/// `cpnp`, the customer's CPNP client (RFC 8921 §8.10, §11.1).
@main
struct CPNP: AsyncParsableCommand {
    /// The version of this implementation (the protocol VERSION is always 1).
    static let toolVersion = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "cpnp",
        abstract: "CPNP (RFC 8921) customer client.",
        discussion: """
            Talks to cpnpd over DTLS with the dev PKI in ./.cpnp/pki (identity acme) unless told \
            otherwise, and keeps its orders in ./.cpnp/cpnp.sqlite. Exit status: 0 success, 1 local \
            error, 2 refused by the server (FAIL), 3 no acceptable offer, 4 no answer in time, \
            5 transport security failure.
            """,
        version: "cpnp \(toolVersion) (CPNP version 1, RFC 8921)",
        subcommands: [
            Quote.self, Orders.self, Show.self, Accept.self, Decline.self, Cancel.self, Withdraw.self, Update.self, Activate.self,
            Validate.self, Inspect.self, Conformance.self, Catalog.self, Serve.self,
        ]
    )
}
