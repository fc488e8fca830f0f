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
        let authority = try CertificateAuthority.generate()
        let other = try CertificateAuthority.generate(commonName: "Some Other CA")
        func pair(_ certificate: IssuedCertificate) throws -> (String, String) { (try certificate.certificatePEM, certificate.privateKeyPEM) }
        let monthAgo = Date().addingTimeInterval(-30 * 86400)
        let dayAgo = Date().addingTimeInterval(-86400)
        caPEM = try authority.issued.certificatePEM
        otherCAPEM = try other.issued.certificatePEM
        server = try pair(authority.issue(commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"], usage: .server))
        serverWrongName = try pair(authority.issue(commonName: "elsewhere", dnsNames: ["elsewhere.example"], usage: .server))
        serverExpired = try pair(
            authority.issue(
                commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], usage: .server, notBefore: monthAgo, notAfter: dayAgo))
        client = try pair(authority.issue(commonName: "customer-a", dnsNames: ["customer-a"], usage: .client))
        clientOtherCA = try pair(other.issue(commonName: "intruder", dnsNames: ["intruder"], usage: .client))
        clientExpired = try pair(
            authority.issue(
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

/// Server certificates that name the server in different ways (RFC 6125; RFC 8921 §8.1), from an
/// "Identity Test CA" of their own: clients trust its ``caPEM``, while servers keep trusting
/// ``TestCertificates``' CA for client certificates.
///
/// Each certificate is a pair (certificate chain PEM, private key PEM); all are for serverAuth.
public struct TestIdentityCertificates: Sendable {
    /// The CA that issued every certificate below.
    public let caPEM: String
    /// Subject CN `localhost` and no subjectAltName.
    public let commonNameOnly: (String, String)
    /// CN `localhost`, but DNS-ID `cpnp.example.net` and IP-ID `192.0.2.7`.
    public let wrongDNS: (String, String)
    /// CN `127.0.0.1`, but DNS-ID `cpnp.example.net` only.
    public let wrongName: (String, String)
    /// IP-ID `127.0.0.1` only.
    public let ipOnly: (String, String)
    /// DNS-ID `*.provider.example` only.
    public let wildcard: (String, String)
    /// SRV-ID `_cpnp.provider.example` only (RFC 4985).
    public let srvOnly: (String, String)
    /// DNS-ID `provider.example`, the SRV name's source domain.
    public let sourceDomainDNS: (String, String)
    /// CN `provider.example` and DNS-ID `cpnp1.provider.example`, the SRV record's target only.
    public let srvTargetOnly: (String, String)

    /// The certificates every test of the process shares.
    public static let shared: TestIdentityCertificates = try! TestIdentityCertificates()

    /// Generates the CA and issues every certificate.
    public init() throws {
        let authority = try CertificateAuthority.generate(commonName: "Identity Test CA")
        func pair(_ certificate: IssuedCertificate) throws -> (String, String) { (try certificate.certificatePEM, certificate.privateKeyPEM) }
        caPEM = try authority.issued.certificatePEM
        commonNameOnly = try pair(authority.issue(commonName: "localhost", usage: .server))
        wrongDNS = try pair(authority.issue(commonName: "localhost", dnsNames: ["cpnp.example.net"], ipAddresses: ["192.0.2.7"], usage: .server))
        wrongName = try pair(authority.issue(commonName: "127.0.0.1", dnsNames: ["cpnp.example.net"], usage: .server))
        ipOnly = try pair(authority.issue(commonName: "server", ipAddresses: ["127.0.0.1"], usage: .server))
        wildcard = try pair(authority.issue(commonName: "server", dnsNames: ["*.provider.example"], usage: .server))
        srvOnly = try pair(authority.issue(commonName: "server", srvNames: ["_cpnp.provider.example"], usage: .server))
        sourceDomainDNS = try pair(authority.issue(commonName: "server", dnsNames: ["provider.example"], usage: .server))
        srvTargetOnly = try pair(authority.issue(commonName: "provider.example", dnsNames: ["cpnp1.provider.example"], usage: .server))
    }
}
