import ArgumentParser
import CPNPPKI

/// `cpnpd pki …`: the development PKI for the secure transports (RFC 8921 §13 mutual auth).
struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Create a development CA, server and client certificates (P-256, for labs and tests).",
        subcommands: [Init.self, Client.self]
    )

    /// `cpnpd pki init --dir DIR`.
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write ca.pem, ca-key.pem, server.pem and server-key.pem (localhost, 127.0.0.1, ::1).")

        @Option(name: .long, help: "Directory for the PEM files.")
        var dir: String

        @Flag(name: .long, help: "Replace existing files.")
        var force = false

        func run() throws {
            try DevPKI.initialize(directory: dir, overwrite: force)
            print("wrote \(dir)/\(DevPKI.File.caCertificate), \(DevPKI.File.caKey), \(DevPKI.File.serverCertificate), \(DevPKI.File.serverKey)")
        }
    }

    /// `cpnpd pki client NAME --dir DIR`.
    struct Client: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a client certificate (CN and DNS SAN = NAME) signed by the CA in DIR.")

        @Argument(help: "The client's name (letters, digits, '-' and '.').")
        var name: String

        @Option(name: .long, help: "Directory made by 'cpnpd pki init'.")
        var dir: String

        func run() throws {
            let paths = try DevPKI.issueClient(name: name, directory: dir)
            print("wrote \(paths.certificate) and \(paths.key)")
        }
    }
}
