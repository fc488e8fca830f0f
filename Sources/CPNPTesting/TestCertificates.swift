// The certificates of the in-process and loopback DTLS/TLS tests, made once per process in memory
// with the development PKI (Sources/CPNPPKI).
public import CPNPDTLS
import CPNPPKI
public import CPNPTransport
import Foundation

/// The test PKI: a CA, a second CA nobody trusts, and server and client certificates that are good,
/// misnamed, expired or from the other CA, for the mutual authentication of RFC 8921 §8.1.
///
/// Each certificate is a pair (certificate chain PEM, private key PEM).
public struct TestCertificates: Sendable {
    /// The CA that issued every certificate below except ``clientOtherCA``.
    public let caPEM: String
    /// "Some Other CA", which issued ``clientOtherCA``.
    public let otherCAPEM: String
    /// `localhost`, `127.0.0.1` and `::1`; serverAuth.
    public let server: (String, String)
    /// `elsewhere.example` only; serverAuth.
    public let serverWrongName: (String, String)
    /// Like ``server`` but expired a day ago.
    public let serverExpired: (String, String)
    /// `customer-a`; clientAuth.
    public let client: (String, String)
    /// `intruder`, from the other CA; clientAuth.
    public let clientOtherCA: (String, String)
    /// `customer-old`, expired a day ago; clientAuth.
    public let clientExpired: (String, String)

    /// The certificates every test of the process shares.
    public static let shared: TestCertificates = try! TestCertificates()

    /// Generates two fresh CAs and issues every certificate.
    public init() throws {
        let ca = try CertificateAuthority.generate()
        let other = try CertificateAuthority.generate(commonName: "Some Other CA")
        func pair(_ certificate: IssuedCertificate) throws -> (String, String) { (try certificate.certificatePEM, certificate.privateKeyPEM) }
        let monthAgo = Date().addingTimeInterval(-30 * 86400)
        let dayAgo = Date().addingTimeInterval(-86400)
        caPEM = try ca.issued.certificatePEM
        otherCAPEM = try other.issued.certificatePEM
        server = try pair(ca.issue(commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"], usage: .server))
        serverWrongName = try pair(ca.issue(commonName: "elsewhere", dnsNames: ["elsewhere.example"], usage: .server))
        serverExpired = try pair(ca.issue(
            commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], usage: .server, notBefore: monthAgo, notAfter: dayAgo))
        client = try pair(ca.issue(commonName: "customer-a", dnsNames: ["customer-a"], usage: .client))
        clientOtherCA = try pair(other.issue(commonName: "intruder", dnsNames: ["intruder"], usage: .client))
        clientExpired = try pair(ca.issue(
            commonName: "customer-old", dnsNames: ["customer-old"], usage: .client, notBefore: monthAgo, notAfter: dayAgo))
    }

    /// A transport's security configuration presenting `pair` (none: no certificate) and trusting
    /// `trust` (default: ``caPEM``).
    public func security(_ pair: (String, String)?, trust: String? = nil) -> CPNPSecurityConfiguration {
        CPNPSecurityConfiguration(certificateChainPEM: pair?.0, privateKeyPEM: pair?.1, trustRootsPEM: trust ?? caPEM)
    }
}

extension DTLSCredentials {
    /// The credentials of a ``TestCertificates`` pair (certificate chain PEM, private key PEM).
    public init(_ pair: (String, String)) {
        self.init(certificateChainPEM: pair.0, privateKeyPEM: pair.1)
    }
}
