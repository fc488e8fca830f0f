import CPNPDTLS
import Foundation
import SwiftASN1
import X509
import NIOCore

/// Certificates and trust for the secure transports (RFC 8921 §13 mutual authentication).
public struct CPNPSecurityConfiguration: Sendable {
    /// Our certificate chain, PEM (leaf first). `nil` only for negative tests of clients.
    public var certificateChainPEM: String?
    /// Our private key, PEM.
    public var privateKeyPEM: String?
    /// CA certificate(s) peers must chain to, PEM.
    public var trustRootsPEM: String

    /// Creates a configuration from PEM text.
    /// - Parameters:
    ///   - certificateChainPEM: our certificate chain.
    ///   - privateKeyPEM: our key.
    ///   - trustRootsPEM: the CA(s) we trust for peers.
    public init(certificateChainPEM: String?, privateKeyPEM: String?, trustRootsPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.trustRootsPEM = trustRootsPEM
    }

    /// Loads PEM files.
    /// - Parameters:
    ///   - certificate: path of our certificate chain.
    ///   - key: path of our key.
    ///   - trustRoots: path of the CA bundle.
    public init(certificateFile certificate: String, keyFile key: String, trustRootsFile trustRoots: String) throws {
        self.init(
            certificateChainPEM: try String(contentsOfFile: certificate, encoding: .utf8),
            privateKeyPEM: try String(contentsOfFile: key, encoding: .utf8),
            trustRootsPEM: try String(contentsOfFile: trustRoots, encoding: .utf8))
    }

    var dtlsCredentials: DTLSCredentials? {
        guard let certificateChainPEM, let privateKeyPEM else { return nil }
        return DTLSCredentials(certificateChainPEM: certificateChainPEM, privateKeyPEM: privateKeyPEM)
    }
}

extension CPNPPeerIdentity {
    /// Extracts subject and subjectAltNames from a DER certificate.
    /// - Parameter der: the certificate.
    public init(certificateDER der: [UInt8]) throws {
        let certificate = try Certificate(derEncoded: der)
        var commonName: String?
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                commonName = String(describing: attribute.value)
            }
        }
        var dns: [String] = []
        var ips: [String] = []
        if let sans = try certificate.extensions.subjectAlternativeNames {
            for name in sans {
                switch name {
                case .dnsName(let value): dns.append(value)
                case .ipAddress(let octets): ips.append(Self.ipText(Array(octets.bytes)))
                default: break
                }
            }
        }
        self.init(
            subject: String(describing: certificate.subject), commonName: commonName, dnsNames: dns,
            ipAddresses: ips, certificateDER: der)
    }

    /// RFC 6125 §6 matching of a reference identity against the certificate's DNS-IDs, IP-IDs
    /// and SRV-IDs (``ServerReferenceIdentity``, shared with the DTLS client). Wildcards only as
    /// the whole left-most label; never the subject CN (RFC 8921 §8.1 names the DNS-ID).
    /// - Parameter name: a DNS name, an IP address literal, or `_cpnp.DOMAIN` for a server found
    ///   through SRV (then SRV-ID `_cpnp.DOMAIN` or DNS-ID `DOMAIN` match).
    /// - Returns: whether the certificate is valid for `name`.
    public func matches(referenceIdentity name: String) -> Bool {
        guard let presented = try? PresentedIdentifiers(certificateDER: certificateDER) else { return false }
        return ServerReferenceIdentity(name).isMatched(by: presented)
    }

    static func ipText(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        if bytes.count == 16 {
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
        return bytes.map { String($0, radix: 16) }.joined()
    }
}
