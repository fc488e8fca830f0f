import COpenSSL
import Synchronization

/// A configured OpenSSL `SSL_CTX` for DTLS 1.2, shared by all associations of one endpoint.
///
/// Immutable after creation, hence shareable between threads (OpenSSL allows sharing a
/// configured `SSL_CTX`; each `SSL` stays with one thread).
public final class DTLSContext: @unchecked Sendable {
    let sslContext: OpaquePointer
    /// The configuration it was built from.
    public let configuration: DTLSConfiguration
    /// The rotating secret for stateless cookies (server only).
    let cookieSecrets: DTLSCookieSecrets

    /// Builds a context, loading certificates and keys and fixing the cipher policy.
    /// - Parameters:
    ///   - configuration: role, credentials, trust roots and MTU.
    ///   - cookieSecretLifetime: how long a cookie secret is used before it is rotated; cookies
    ///     made with the previous secret are still accepted for one more period.
    /// - Throws: ``DTLSError`` with code `.invalidConfiguration`.
    public init(configuration: DTLSConfiguration, cookieSecretLifetime: Duration = .seconds(300)) throws(DTLSError) {
        self.configuration = configuration
        self.cookieSecrets = DTLSCookieSecrets(lifetime: cookieSecretLifetime)
        let method = configuration.role == .server ? DTLS_server_method() : DTLS_client_method()
        guard let sslContext = SSL_CTX_new(method) else {
            throw DTLSError(.invalidConfiguration, detail: "SSL_CTX_new failed: \(OpenSSLErrors.drain())")
        }
        self.sslContext = sslContext
        do {
            try self.configure()
        } catch {
            SSL_CTX_free(sslContext)
            throw error
        }
    }

    deinit {
        SSL_CTX_free(sslContext)
    }

    private func configure() throws(DTLSError) {
        func check(_ succeeded: Bool, _ what: String) throws(DTLSError) {
            if !succeeded { throw DTLSError(.invalidConfiguration, detail: "\(what): \(OpenSSLErrors.drain())") }
        }
        // DTLS 1.2 only (RFC 8921 §8.1 cites RFC 6347).
        try check(cpnp_SSL_CTX_set_min_proto_version(sslContext, DTLS1_2_VERSION) == 1, "min version")
        try check(cpnp_SSL_CTX_set_max_proto_version(sslContext, DTLS1_2_VERSION) == 1, "max version")
        // ECDHE + AEAD only (RFC 7525 §4.2).
        try check(SSL_CTX_set_cipher_list(sslContext, configuration.cipherList) == 1, "cipher list")
        try check(cpnp_SSL_CTX_set1_groups_list(sslContext, "X25519:P-256:P-384") == 1, "groups")
        let options =
            cpnp_SSL_OP_NO_QUERY_MTU() | cpnp_SSL_OP_NO_TICKET() | cpnp_SSL_OP_NO_COMPRESSION()
            | cpnp_SSL_OP_NO_RENEGOTIATION() | cpnp_SSL_OP_CIPHER_SERVER_PREFERENCE()
        _ = SSL_CTX_set_options(sslContext, options)
        cpnp_SSL_CTX_set_read_ahead(sslContext, 1)
        // No resumption (CPNP keeps no permanent session, §8.1): no cache to grow or scan.
        _ = cpnp_SSL_CTX_disable_session_cache(sslContext)

        // Own identity.
        if let credentials = configuration.credentials {
            let chain = try PEM.certificates(credentials.certificateChainPEM)
            defer { chain.forEach { X509_free($0) } }
            guard let leaf = chain.first else {
                throw DTLSError(.invalidConfiguration, detail: "no certificate in the credentials PEM")
            }
            try check(SSL_CTX_use_certificate(sslContext, leaf) == 1, "use certificate")
            for intermediate in chain.dropFirst() {
                try check(cpnp_SSL_CTX_add1_chain_cert(sslContext, intermediate) == 1, "add chain certificate")
            }
            let key = try PEM.privateKey(credentials.privateKeyPEM)
            defer { EVP_PKEY_free(key) }
            try check(SSL_CTX_use_PrivateKey(sslContext, key) == 1, "use private key")
            try check(SSL_CTX_check_private_key(sslContext) == 1, "private key does not match the certificate")
        } else if configuration.role == .server {
            throw DTLSError(.invalidConfiguration, detail: "a DTLS server needs a certificate and key")
        }

        // Trust roots: only the configured CA(s), never the system store.
        let roots = try PEM.certificates(configuration.trustRootsPEM)
        defer { roots.forEach { X509_free($0) } }
        guard !roots.isEmpty else {
            throw DTLSError(.invalidConfiguration, detail: "no CA certificate in the trust roots PEM")
        }
        guard let store = SSL_CTX_get_cert_store(sslContext) else {
            throw DTLSError(.invalidConfiguration, detail: "no certificate store")
        }
        for root in roots {
            try check(X509_STORE_add_cert(store, root) == 1, "add trust root")
        }

        // Mutual authentication (§13): the server demands a client certificate.
        var mode = SSL_VERIFY_PEER
        if configuration.role == .server {
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT
            SSL_CTX_set_cookie_generate_cb(sslContext, dtlsCookieGenerate)
            SSL_CTX_set_cookie_verify_cb(sslContext, dtlsCookieVerify)
        }
        SSL_CTX_set_verify(sslContext, mode, nil)
        SSL_CTX_set_verify_depth(sslContext, 4)
    }
}

/// The process-independent secret behind stateless DTLS cookies (RFC 6347 §4.2.1): the cookie
/// is HMAC-SHA256(secret, peer address || port). The secret rotates every `lifetime`; the
/// previous one is still accepted so that a HelloVerifyRequest in flight stays valid.
final class DTLSCookieSecrets: Sendable {
    private struct State {
        var current: [UInt8]
        var previous: [UInt8]
        var rotatedAt: ContinuousClock.Instant
    }
    private let state: Mutex<State>
    private let lifetime: Duration

    init(lifetime: Duration) {
        self.lifetime = lifetime
        self.state = Mutex(State(current: Self.random(), previous: Self.random(), rotatedAt: .now))
    }

    static func random() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        let status = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, 32) }
        precondition(status == 1, "RAND_bytes failed")
        return bytes
    }

    /// The secrets to try, newest first; rotates when the current one is too old.
    func secrets() -> (current: [UInt8], previous: [UInt8]) {
        state.withLock { state in
            let now = ContinuousClock.now
            if now - state.rotatedAt >= lifetime {
                state.previous = state.current
                state.current = Self.random()
                state.rotatedAt = now
            }
            return (state.current, state.previous)
        }
    }

    /// Forces a rotation (tests).
    func rotate() {
        state.withLock { state in
            state.previous = state.current
            state.current = Self.random()
            state.rotatedAt = .now
        }
    }

    static func cookie(secret: [UInt8], peer: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        secret.withUnsafeBufferPointer { key in
            peer.withUnsafeBufferPointer { data in
                out.withUnsafeMutableBufferPointer { buffer in
                    _ = HMAC(
                        EVP_sha256(), key.baseAddress, Int32(key.count), data.baseAddress, data.count,
                        buffer.baseAddress, &length)
                }
            }
        }
        return Array(out.prefix(Int(length)))
    }
}

/// Per-SSL data the cookie callbacks need: the peer address (a memory BIO has none, so the
/// callbacks cannot ask it) and the secrets. Stored in `SSL_set_app_data`.
final class DTLSCookieBinding {
    let secrets: DTLSCookieSecrets
    var peer: [UInt8]
    init(secrets: DTLSCookieSecrets, peer: [UInt8]) {
        self.secrets = secrets
        self.peer = peer
    }
}

private func cookieBinding(_ ssl: OpaquePointer?) -> DTLSCookieBinding? {
    guard let ssl, let raw = cpnp_SSL_get_app_data(ssl) else { return nil }
    return Unmanaged<DTLSCookieBinding>.fromOpaque(raw).takeUnretainedValue()
}

private let dtlsCookieGenerate: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt32>?) -> Int32 = {
    ssl, cookie, length in
    guard let binding = cookieBinding(ssl), let cookie, let length else { return 0 }
    let value = DTLSCookieSecrets.cookie(secret: binding.secrets.secrets().current, peer: binding.peer)
    guard value.count <= 255 else { return 0 }
    value.withUnsafeBufferPointer { cookie.update(from: $0.baseAddress!, count: value.count) }
    length.pointee = UInt32(value.count)
    return 1
}

private let dtlsCookieVerify: @convention(c) (OpaquePointer?, UnsafePointer<UInt8>?, UInt32) -> Int32 = {
    ssl, cookie, length in
    guard let binding = cookieBinding(ssl), let cookie else { return 0 }
    let secrets = binding.secrets.secrets()
    for secret in [secrets.current, secrets.previous] {
        let expected = DTLSCookieSecrets.cookie(secret: secret, peer: binding.peer)
        if expected.count == Int(length),
            expected.withUnsafeBufferPointer({ CRYPTO_memcmp($0.baseAddress, cookie, expected.count) }) == 0
        {
            return 1
        }
    }
    return 0
}

/// Custom retransmission timer (RFC 6347 §4.2.4.1): 250 ms initially, doubling up to 4 s.
let dtlsTimerCallback: @convention(c) (OpaquePointer?, UInt32) -> UInt32 = { _, previous in
    previous == 0 ? 250_000 : min(previous * 2, 4_000_000)
}

enum PEM {
    static func certificates(_ pem: String) throws(DTLSError) -> [OpaquePointer] {
        var utf8 = Array(pem.utf8)
        return utf8.withUnsafeMutableBytes { raw -> [OpaquePointer] in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return [] }
            defer { BIO_free(bio) }
            var result: [OpaquePointer] = []
            while let cert = PEM_read_bio_X509(bio, nil, nil, nil) {
                result.append(cert)
            }
            ERR_clear_error()  // the loop ends on a "no start line" error
            return result
        }
    }

    static func privateKey(_ pem: String) throws(DTLSError) -> OpaquePointer {
        var utf8 = Array(pem.utf8)
        let key = utf8.withUnsafeMutableBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else {
            throw DTLSError(.invalidConfiguration, detail: "cannot read private key: \(OpenSSLErrors.drain())")
        }
        return key
    }
}

enum OpenSSLErrors {
    /// Pops the thread's OpenSSL error queue: (reason codes, text).
    static func drainCodes() -> (reasons: [Int32], text: String) {
        var reasons: [Int32] = []
        var texts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            reasons.append(ERR_GET_REASON(code))
            var buffer = [CChar](repeating: 0, count: 256)
            buffer.withUnsafeMutableBufferPointer { ERR_error_string_n(code, $0.baseAddress, 256) }
            texts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return (reasons, texts.joined(separator: "; "))
    }

    static func drain() -> String { drainCodes().text }
}
