import COpenSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The identifiers a certificate presents for RFC 6125 matching (§1.8): DNS-IDs (subjectAltName
/// dNSName), IP-IDs (iPAddress) and SRV-IDs (otherName id-on-dnsSRV, RFC 4985). The subject
/// common name is deliberately absent: CPNP never falls back to a CN-ID (RFC 8921 §8.1 names
/// the DNS-ID; RFC 6125 §6.4.4 allows the CN only when there is no SAN, and we do not).
public struct PresentedIdentifiers: Sendable, Hashable {
    /// subjectAltName dNSName values, as written in the certificate.
    public var dnsNames: [String]
    /// subjectAltName iPAddress values: 4 or 16 bytes each.
    public var ipAddresses: [[UInt8]]
    /// subjectAltName otherName id-on-dnsSRV values, e.g. `_cpnp.example.net`.
    public var srvNames: [String]

    /// Creates a set of presented identifiers.
    public init(dnsNames: [String] = [], ipAddresses: [[UInt8]] = [], srvNames: [String] = []) {
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.srvNames = srvNames
    }

    /// Reads the subjectAltNames of a DER certificate.
    /// - Parameter der: the certificate.
    /// - Throws: `.invalidConfiguration` when `der` is not a certificate.
    public init(certificateDER der: [UInt8]) throws(DTLSError) {
        let certificate: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var pointer = buffer.baseAddress
            return d2i_X509(nil, &pointer, buffer.count)
        }
        guard let certificate else { throw DTLSError(.invalidConfiguration, detail: "not a DER certificate") }
        defer { X509_free(certificate) }
        self.init(certificate: certificate)
    }

    /// Reads the subjectAltNames of an OpenSSL `X509`. A certificate without a (decodable)
    /// subjectAltName extension presents nothing, so it matches no reference identity.
    init(certificate: OpaquePointer) {
        self.init()
        guard let names = cpnp_X509_subject_alt_names(certificate) else { return }
        defer { cpnp_GENERAL_NAMES_free(names) }
        for index in 0..<cpnp_GENERAL_NAMES_count(names) {
            var bytes: UnsafePointer<UInt8>?
            var length: Int32 = 0
            let kind = cpnp_GENERAL_NAMES_get(names, index, &bytes, &length)
            guard let bytes, length >= 0 else { continue }
            let value = Array(UnsafeBufferPointer(start: bytes, count: Int(length)))
            switch kind {
            case 1: dnsNames.append(String(decoding: value, as: UTF8.self))
            case 2: ipAddresses.append(value)
            case 3: srvNames.append(String(decoding: value, as: UTF8.self))
            default: continue
            }
        }
    }
}

/// What a CPNP client expects the server's certificate to name (RFC 6125 §6.2 reference
/// identities; RFC 8921 §8.1).
///
/// - A server dialled by DNS name: DNS-ID equal to that name (a wildcard only as the whole
///   left-most label, `*.example.net` matching `cpnp.example.net` but not `a.b.example.net`).
/// - A server dialled by IP address: IP-ID with the same bytes.
/// - A server found through `_cpnp._udp.DOMAIN` SRV records: the source domain the user gave,
///   never the SRV target host (the DNS answer is not secured, RFC 6125 §6.2.1): the certificate
///   must carry SRV-ID `_cpnp.DOMAIN` or DNS-ID `DOMAIN` (RFC 6125 §6.2.2, RFC 4985).
///
/// The text form (``description``, ``init(_:)``) is the name itself for the first two and the
/// SRV-ID `_cpnp.DOMAIN` for the third, so that one string can be stored with an order.
public struct ServerReferenceIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The kinds of reference identity.
    public enum Kind: Sendable, Hashable {
        /// A DNS-ID reference: the host name dialled, lower case, without a trailing dot.
        case dnsName(String)
        /// An IP-ID reference: 4 or 16 bytes.
        case ipAddress([UInt8])
        /// A service reached through SRV: `service` without the underscore (`cpnp`) and the
        /// source `domain`, lower case.
        case service(service: String, domain: String)
    }

    /// The kind and value.
    public var kind: Kind

    /// Parses a reference identity: an IPv4/IPv6 literal, an SRV-ID (`_service.domain`), or a
    /// DNS name. Case and one trailing dot are ignored.
    public init(_ text: String) {
        if let bytes = Self.ipBytes(text) {
            kind = .ipAddress(bytes)
            return
        }
        let name = Self.normalised(text)
        if name.hasPrefix("_"), let dot = name.firstIndex(of: "."), name.index(after: dot) < name.endIndex {
            kind = .service(service: String(name[name.index(after: name.startIndex)..<dot]), domain: String(name[name.index(after: dot)...]))
        } else {
            kind = .dnsName(name)
        }
    }

    /// The reference identities of a server found through `_SERVICE._udp.DOMAIN` SRV records.
    /// - Parameters:
    ///   - service: the service label without underscore; `cpnp` for CPNP.
    ///   - domain: the domain the user asked for (the SRV source domain).
    public static func service(_ service: String = "cpnp", domain: String) -> ServerReferenceIdentity {
        ServerReferenceIdentity(kind: .service(service: service.lowercased(), domain: normalised(domain)))
    }

    /// Creates a reference identity of a given kind.
    public init(kind: Kind) {
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .dnsName(let name): name
        case .ipAddress(let bytes): Self.ipText(bytes)
        case .service(let service, let domain): "_\(service).\(domain)"
        }
    }

    /// What the certificate must present, for error messages: `DNS-ID cpnp.example.net`,
    /// `IP-ID 192.0.2.1`, `SRV-ID _cpnp.example.net or DNS-ID example.net`.
    public var requirement: String {
        switch kind {
        case .dnsName(let name): "DNS-ID \(name)"
        case .ipAddress: "IP-ID \(description)"
        case .service(_, let domain): "SRV-ID \(description) or DNS-ID \(domain)"
        }
    }

    /// The name to send in the TLS server_name extension (RFC 6066 §3): the DNS name, the
    /// source domain for a service, nothing for an IP address.
    public var serverNameIndication: String? {
        switch kind {
        case .dnsName(let name): name
        case .ipAddress: nil
        case .service(_, let domain): domain
        }
    }

    /// Whether a certificate presenting `presented` is valid for this reference identity
    /// (RFC 6125 §6.3-§6.5; no CN-ID fallback).
    public func isMatched(by presented: PresentedIdentifiers) -> Bool {
        switch kind {
        case .ipAddress(let bytes):
            return presented.ipAddresses.contains(bytes)
        case .dnsName(let name):
            return presented.dnsNames.contains { Self.dnsID($0, matches: name) }
        case .service(let service, let domain):
            let wanted = "_\(service).\(domain)"
            return presented.srvNames.contains { Self.normalised($0) == wanted }
                || presented.dnsNames.contains { Self.dnsID($0, matches: domain) }
        }
    }

    /// RFC 6125 §6.4: case-insensitive comparison of a presented DNS-ID with a reference host
    /// name; `*` only as the complete left-most label, covering exactly one non-empty label, and
    /// never directly under a top-level domain (`*.net` matches nothing).
    static func dnsID(_ presentedText: String, matches reference: String) -> Bool {
        let presented = normalised(presentedText)
        guard !reference.isEmpty, !presented.isEmpty, presented.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        if !presented.contains("*") { return presented == reference }
        guard presented.hasPrefix("*."), presented.dropFirst(2).contains("."), !presented.dropFirst(1).contains("*"),
            let dot = reference.firstIndex(of: "."), dot != reference.startIndex
        else { return false }
        return reference[reference.index(after: dot)...] == presented.dropFirst(2)
    }

    static func normalised(_ name: String) -> String {
        var text = name.lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    static func ipBytes(_ text: String) -> [UInt8]? {
        var ipv4Address = in_addr()
        if inet_pton(AF_INET, text, &ipv4Address) == 1 { return withUnsafeBytes(of: &ipv4Address) { Array($0) } }
        var ipv6Address = in6_addr()
        if inet_pton(AF_INET6, text, &ipv6Address) == 1 { return withUnsafeBytes(of: &ipv6Address) { Array($0) } }
        return nil
    }

    static func ipText(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16,
            bytes.withUnsafeBytes({ inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }) != nil
        else { return bytes.map { String($0, radix: 16) }.joined(separator: ".") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
