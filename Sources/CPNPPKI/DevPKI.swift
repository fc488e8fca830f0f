import Foundation

/// The development PKI written by `cpnpd pki init` (docs/configuration.md `pki`): a CA, a server certificate for
/// `localhost`, `127.0.0.1` and `::1`, and named client certificates, as PEM files.
public enum DevPKI {
    /// File names inside the PKI directory.
    public enum File {
        /// CA certificate.
        public static let caCertificate = "ca.pem"
        /// CA private key.
        public static let caKey = "ca-key.pem"
        /// Server certificate.
        public static let serverCertificate = "server.pem"
        /// Server private key.
        public static let serverKey = "server-key.pem"
        /// Client certificate for `name`.
        public static func clientCertificate(_ name: String) -> String { "client-\(name).pem" }
        /// Client private key for `name`.
        public static func clientKey(_ name: String) -> String { "client-\(name)-key.pem" }
    }

    /// Creates the CA and the server certificate in `directory` (created if missing).
    /// - Parameters:
    ///   - directory: target directory.
    ///   - overwrite: replace existing files; otherwise fail with ``PKIError/fileExists(_:)``.
    /// - Returns: the CA, so that callers can issue more certificates.
    @discardableResult
    public static func initialize(directory: String, overwrite: Bool = false) throws -> CertificateAuthority {
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        if !overwrite {
            for name in [File.caCertificate, File.caKey, File.serverCertificate, File.serverKey] {
                let path = url.appendingPathComponent(name).path
                if FileManager.default.fileExists(atPath: path) { throw PKIError.fileExists(path) }
            }
        }
        let authority = try CertificateAuthority.generate()
        let server = try authority.issue(
            commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"], usage: .server)
        try write(try authority.issued.certificatePEM, to: url.appendingPathComponent(File.caCertificate), secret: false)
        try write(authority.issued.privateKeyPEM, to: url.appendingPathComponent(File.caKey), secret: true)
        try write(try server.certificatePEM, to: url.appendingPathComponent(File.serverCertificate), secret: false)
        try write(server.privateKeyPEM, to: url.appendingPathComponent(File.serverKey), secret: true)
        return authority
    }

    /// Issues a client certificate (CN and DNS SAN = `name`) signed by the CA in `directory`.
    /// - Parameters:
    ///   - name: the client's name, a DNS-style label (`[A-Za-z0-9.-]`, 1…253 characters).
    ///   - directory: a directory made by ``initialize(directory:overwrite:)``.
    /// - Returns: paths of the certificate and key files.
    @discardableResult
    public static func issueClient(name: String, directory: String) throws -> (certificate: String, key: String) {
        guard isValidClientName(name) else { throw PKIError.invalidClientName(name) }
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        let authority = try CertificateAuthority(
            certificatePEM: String(contentsOf: url.appendingPathComponent(File.caCertificate), encoding: .utf8),
            privateKeyPEM: String(contentsOf: url.appendingPathComponent(File.caKey), encoding: .utf8))
        let client = try authority.issue(commonName: name, dnsNames: [name], usage: .client)
        let certificate = url.appendingPathComponent(File.clientCertificate(name))
        let key = url.appendingPathComponent(File.clientKey(name))
        try write(try client.certificatePEM, to: certificate, secret: false)
        try write(client.privateKeyPEM, to: key, secret: true)
        return (certificate.path, key.path)
    }

    static func isValidClientName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 253
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x2E }
    }

    private static func write(_ text: String, to url: URL, secret: Bool) throws {
        try Data(text.utf8).write(to: url, options: .atomic)
        if secret {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        }
    }
}
