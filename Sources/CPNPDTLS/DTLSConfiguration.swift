/// PEM-encoded identity of one endpoint: leaf certificate (optionally followed by
/// intermediates) and its private key.
public struct DTLSCredentials: Sendable, Hashable {
    /// The leaf certificate first, then any intermediates, PEM.
    public var certificateChainPEM: String
    /// The private key (PKCS#8 or traditional), PEM.
    public var privateKeyPEM: String

    /// Creates credentials from PEM text.
    /// - Parameters:
    ///   - certificateChainPEM: leaf first, then intermediates.
    ///   - privateKeyPEM: the leaf's private key.
    public init(certificateChainPEM: String, privateKeyPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
    }
}

/// Configuration of a DTLS 1.2 endpoint (RFC 8921 §8.1 default transport, §13 security).
///
/// The policy is fixed to what §13 and RFC 7525 require: DTLS 1.2 only, ECDHE key exchange
/// with AEAD ciphers only, mutual certificate authentication, record replay detection on.
public struct DTLSConfiguration: Sendable {
    /// Which side of the handshake this endpoint plays.
    public enum Role: Sendable, Hashable {
        /// Dials servers and verifies their chain and name.
        case client
        /// Accepts clients after a stateless cookie exchange and requires a client certificate.
        case server
    }

    /// ECDHE + AEAD suites only (RFC 7525 §4.2), strongest first.
    public static let rfc7525CipherList =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
        + "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"

    /// Largest plaintext one DTLS record can carry (RFC 6347 §4.1, 2^14): the CPNP limit for
    /// one message in one datagram (docs/protocol.md §2.1).
    public static let maximumMessageSize = 16_384

    /// The role.
    public var role: Role
    /// This endpoint's certificate and key. A server must have one; a client without one
    /// cannot pass the server's mutual authentication (useful for tests only).
    public var credentials: DTLSCredentials?
    /// CA certificates (PEM, one or more) that peer chains must lead to.
    public var trustRootsPEM: String
    /// The largest datagram payload for handshake flights (`SSL_set_mtu`). 1400 leaves room
    /// for IPv6 + UDP headers on a 1500-byte path.
    public var mtu: Int
    /// OpenSSL cipher list for DTLS 1.2 (defaults to ``rfc7525CipherList``).
    public var cipherList: String

    /// Creates a configuration.
    /// - Parameters:
    ///   - role: client or server.
    ///   - credentials: this endpoint's certificate chain and key.
    ///   - trustRootsPEM: CA certificates accepted for the peer.
    ///   - mtu: datagram payload limit for handshake flights.
    public init(role: Role, credentials: DTLSCredentials?, trustRootsPEM: String, mtu: Int = 1400) {
        self.role = role
        self.credentials = credentials
        self.trustRootsPEM = trustRootsPEM
        self.mtu = mtu
        self.cipherList = Self.rfc7525CipherList
    }
}
