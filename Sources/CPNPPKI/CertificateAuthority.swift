public import Crypto
public import Foundation
public import X509
import SwiftASN1

/// A certificate with its P-256 private key, as PEM.
public struct IssuedCertificate: Sendable {
    /// The certificate.
    public let certificate: Certificate
    /// Its private key.
    public let privateKey: P256.Signing.PrivateKey

    /// The certificate, PEM.
    public var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }
    /// The private key, PKCS#8 PEM.
    public var privateKeyPEM: String { privateKey.pemRepresentation }
}

/// A P-256 ECDSA certificate authority for development and tests (RFC 8921 §13 mutual
/// authentication needs a CA both sides trust). Not for production keys.
public struct CertificateAuthority: Sendable {
    /// What an issued end-entity certificate may be used for (extended key usage).
    public enum Usage: Sendable {
        /// TLS/DTLS server authentication.
        case server
        /// TLS/DTLS client authentication.
        case client
    }

    /// The CA's self-signed certificate and key.
    public let issued: IssuedCertificate
    /// The CA certificate.
    public var certificate: Certificate { issued.certificate }

    /// Generates a new self-signed CA.
    /// - Parameters:
    ///   - commonName: the CA's subject CN.
    ///   - notBefore: start of validity.
    ///   - notAfter: end of validity.
    public static func generate(
        commonName: String = "CPNP Development CA",
        notBefore: Date = Date().addingTimeInterval(-3600),
        notAfter: Date = Date().addingTimeInterval(10 * 365 * 86400)
    ) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("CPNP")
            CommonName(commonName)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return CertificateAuthority(issued: IssuedCertificate(certificate: certificate, privateKey: key))
    }

    /// Loads a CA from PEM.
    /// - Parameters:
    ///   - certificatePEM: the CA certificate.
    ///   - privateKeyPEM: its P-256 key (PKCS#8 or SEC1).
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        let certificate = try Certificate(pemEncoded: certificatePEM)
        let key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        self.issued = IssuedCertificate(certificate: certificate, privateKey: key)
    }

    init(issued: IssuedCertificate) {
        self.issued = issued
    }

    /// Issues an end-entity certificate.
    /// - Parameters:
    ///   - commonName: subject CN.
    ///   - dnsNames: DNS-ID subjectAltNames (RFC 6125).
    ///   - ipAddresses: IP-ID subjectAltNames, as dotted IPv4 or IPv6 literals.
    ///   - srvNames: SRV-ID subjectAltNames (otherName id-on-dnsSRV, RFC 4985), e.g.
    ///     `_cpnp.example.net` for the servers of `_cpnp._udp.example.net`.
    ///   - usage: server or client authentication.
    ///   - notBefore: start of validity.
    ///   - notAfter: end of validity (use a past date for an expired certificate).
    public func issue(
        commonName: String,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        srvNames: [String] = [],
        usage: Usage,
        notBefore: Date = Date().addingTimeInterval(-3600),
        notAfter: Date = Date().addingTimeInterval(2 * 365 * 86400)
    ) throws -> IssuedCertificate {
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            guard let bytes = IPAddressBytes.parse(address) else { throw PKIError.invalidIPAddress(address) }
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        for srv in srvNames {
            let value = try ASN1Any(erasing: ASN1IA5String(srv))
            names.append(.otherName(GeneralName.OtherName(typeID: Self.idOnDNSSRV, value: value)))
        }
        let subject = try DistinguishedName {
            OrganizationName("CPNP")
            CommonName(commonName)
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let issuerKey = Certificate.PublicKey(issued.privateKey.publicKey)
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: issued.certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([usage == .server ? .serverAuth : .clientAuth])
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: issuerKey).keyIdentifier)
                if !names.isEmpty { SubjectAlternativeNames(names) }
            },
            issuerPrivateKey: Certificate.PrivateKey(issued.privateKey)
        )
        return IssuedCertificate(certificate: certificate, privateKey: key)
    }
}

extension CertificateAuthority {
    /// id-on-dnsSRV, the otherName type of an SRV-ID (RFC 4985 §2: 1.3.6.1.5.5.7.8.7).
    static let idOnDNSSRV: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 8, 7]
}

/// Errors of the dev PKI.
public enum PKIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An IP SAN that is not an IPv4/IPv6 literal.
    case invalidIPAddress(String)
    /// A client name that is not usable as a DNS SAN.
    case invalidClientName(String)
    /// A file already exists and overwriting was not requested.
    case fileExists(String)

    public var description: String {
        switch self {
        case .invalidIPAddress(let text): "not an IPv4/IPv6 address: \(text)"
        case .invalidClientName(let name): "invalid client name '\(name)': use letters, digits, '-' and '.'"
        case .fileExists(let path): "\(path) already exists (use --force to replace the PKI)"
        }
    }
}

enum IPAddressBytes {
    static func parse(_ text: String) -> [UInt8]? {
        var ipv4Address = in_addr()
        if inet_pton(AF_INET, text, &ipv4Address) == 1 {
            return withUnsafeBytes(of: &ipv4Address) { Array($0) }
        }
        var ipv6Address = in6_addr()
        if inet_pton(AF_INET6, text, &ipv6Address) == 1 {
            return withUnsafeBytes(of: &ipv6Address) { Array($0) }
        }
        return nil
    }
}
