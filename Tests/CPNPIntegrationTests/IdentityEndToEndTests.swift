// Server identity end to end (RFC 8921 §8.1; RFC 6125): the `cpnp` CLI refuses a real cpnpd whose
// certificate chains to the trusted CA but does not name the server dialled — only the subject CN
// does, or the subjectAltNames name another host — with exit status 5 and a message saying what
// the certificate must present, and accepts a certificate whose IP-ID names it. The certificates
// come from `cpnpd pki` and, for the odd server certificates, the openssl tool with the same CA.
import CPNPCore
import CPNPTesting
import Foundation
import Testing

/// The `openssl` binary, if installed.
let opensslTool: URL? = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }
    .map { URL(fileURLWithPath: $0) }

@Suite(
    "Server identity against a real cpnpd",
    .enabled(if: Daemon.binary != nil && CLI.binary != nil && opensslTool != nil, "cpnpd/cpnp not built, or no openssl tool"),
    .serialized)
struct IdentityEndToEndTests {
    /// A dev PKI (`cpnpd pki init`, clients acme and globex) in `directory`, or a new directory.
    @discardableResult
    static func makePKI(in directory: URL? = nil) async throws -> URL {
        let directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-identity-\(UUID().uuidString)")
        try await run(Daemon.binary!, ["pki", "init", "--dir", directory.path])
        for client in ["acme", "globex"] { try await run(Daemon.binary!, ["pki", "client", client, "--dir", directory.path]) }
        return directory
    }

    /// Prepares `daemon`'s own PKI directory so that its server certificate also carries the SRV-ID
    /// `_cpnp.DOMAIN` (RFC 4985), as a provider reached through `_cpnp._udp.DOMAIN` needs.
    static func serverCertificateWithSRVID(domain: String) -> (Daemon) async throws -> Void {
        { daemon in
            try await makePKI(in: daemon.pkiDirectory)
            try await issueServer(
                "server", commonName: "localhost",
                san: "DNS:localhost,IP:127.0.0.1,IP:::1,otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_cpnp.\(domain)", in: daemon.pkiDirectory)
        }
    }

    /// Issues `NAME.pem` / `NAME-key.pem` (P-256, serverAuth) from the PKI's CA with subject CN
    /// `commonName` and the subjectAltName `san` (openssl syntax), or no subjectAltName at all.
    static func issueServer(_ name: String, commonName: String, san: String?, in pki: URL) async throws {
        let csr = pki.appendingPathComponent("\(name).csr")
        let extensions = pki.appendingPathComponent("\(name).ext")
        let lines =
            ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth"]
            + (san.map { ["subjectAltName=\($0)"] } ?? [])
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: extensions)
        try await run(
            opensslTool!,
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", pki.appendingPathComponent("\(name)-key.pem").path, "-subj", "/O=CPNP/CN=\(commonName)", "-out", csr.path,
            ])
        try await run(
            opensslTool!,
            [
                "x509", "-req", "-in", csr.path, "-CA", pki.appendingPathComponent("ca.pem").path,
                "-CAkey", pki.appendingPathComponent("ca-key.pem").path, "-set_serial", "\(UInt32.random(in: 1...UInt32.max))",
                "-days", "2", "-extfile", extensions.path, "-out", pki.appendingPathComponent("\(name).pem").path,
            ])
    }

    static func run(_ tool: URL, _ arguments: [String]) async throws {
        let (status, output) = try await BuiltExecutable.run(tool, arguments)
        guard status == 0 else {
            throw DaemonError(description: "\(tool.lastPathComponent) \(arguments.joined(separator: " ")): \(output)")
        }
    }

    /// The demo configuration serving `certificate` from `pki`.
    static func configuration(pki: URL, certificate: String) throws -> String {
        var yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        for (old, new) in [
            ("directory: ./.cpnp/pki", "directory: \(pki.path)"), ("cert: server.pem", "cert: \(certificate).pem"),
            ("key: server-key.pem", "key: \(certificate)-key.pem"),
        ] {
            guard yaml.contains(old) else { throw DaemonError(description: "Examples/cpnpd.yaml no longer contains \"\(old)\"") }
            yaml = yaml.replacingOccurrences(of: old, with: new)
        }
        return yaml
    }

    /// `cpnp quote … --yes` against `daemon` dialled as `host`, with acme's certificate from `pki`.
    static func quote(_ daemon: Daemon, host: String, pki: URL) async throws -> CLI.Result {
        try await CLI.runRaw(
            [
                "quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--yes", "--server", "\(host):\(daemon.port)",
                "--pki", pki.path, "--database", pki.appendingPathComponent("cpnp-\(UUID().uuidString).sqlite").path,
            ], in: pki)
    }

    @Test(.timeLimit(.minutes(3)))
    func cpnpRefusesAServerWhoseCertificateDoesNotNameIt() async throws {
        let pki = try await Self.makePKI()
        defer { try? FileManager.default.removeItem(at: pki) }
        // Right CA, subject CN = the address and host dialled, but no subjectAltName at all: OpenSSL's
        // own host check would fall back to the CN and accept it.
        try await Self.issueServer("server-cn-only", commonName: "localhost", san: nil, in: pki)
        // Right CA, CN = the address dialled, subjectAltNames naming another host.
        try await Self.issueServer("server-wrong-name", commonName: "127.0.0.1", san: "DNS:cpnp.example.net,IP:192.0.2.7", in: pki)
        // Positive control from the same CA: the IP-ID names 127.0.0.1, the CN names nothing useful.
        try await Self.issueServer("server-ip-id", commonName: "somewhere-else", san: "IP:127.0.0.1", in: pki)

        for (certificate, host, requirement) in [
            ("server-cn-only", "localhost", "DNS-ID localhost"), ("server-cn-only", "127.0.0.1", "IP-ID 127.0.0.1"),
            ("server-wrong-name", "127.0.0.1", "IP-ID 127.0.0.1"), ("server-wrong-name", "localhost", "DNS-ID localhost"),
        ] {
            let daemon = try await Daemon.start(configuration: try Self.configuration(pki: pki, certificate: certificate))
            defer { daemon.stop() }
            let r = try await Self.quote(daemon, host: host, pki: pki)
            #expect(r.status == 5, "\(certificate) dialled as \(host): exit \(r.status)\n\(r.stdout)\n\(r.stderr)")
            #expect(r.stderr.contains("does not match"), "\(r.stderr)")
            #expect(r.stderr.contains(requirement), "\(certificate) dialled as \(host): \(r.stderr)")
            // The client stopped in the handshake: the daemon has no order.
            #expect(try await daemon.admin(["orders"]).contains("(no orders)"))
        }

        let daemon = try await Daemon.start(configuration: try Self.configuration(pki: pki, certificate: "server-ip-id"))
        defer { daemon.stop() }
        let ok = try await Self.quote(daemon, host: "127.0.0.1", pki: pki)
        #expect(ok.status == 0, "\(ok.stdout)\n\(ok.stderr)")
        #expect(ok.stdout.contains("is Completed"))
        let refused = try await Self.quote(daemon, host: "localhost", pki: pki)
        #expect(refused.status == 5, "\(refused.stderr)")
    }

    /// A provider found through `_cpnp._udp.provider.example` whose certificate names only the SRV
    /// target (127.0.0.1, localhost) is refused: the target came from an unsigned DNS answer.
    @Test(.timeLimit(.minutes(2)))
    func cpnpRefusesAServerFoundBySRVWhoseCertificateNamesOnlyTheTarget() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let dns = try LoopbackDNSResponder(srv: ["_cpnp._udp.provider.example": (UInt16(daemon.port), "127.0.0.1")])
        defer { dns.stop() }
        let cli = try CLI(daemon: daemon)
        let r = try await cli.run(
            ["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--server", "provider.example", "--yes"],
            environment: ["CPNP_DNS_SERVER": "127.0.0.1:\(dns.port)"])
        #expect(r.status == 5, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("SRV-ID _cpnp.provider.example or DNS-ID provider.example"), "\(r.stderr)")
        #expect(try await daemon.admin(["orders"]).contains("(no orders)"))
    }
}
