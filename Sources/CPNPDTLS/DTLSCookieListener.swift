import COpenSSL

/// The server's stateless front door (RFC 6347 §4.2.1, RFC 8921 §13 DoS defence).
///
/// Every datagram from an address without an association goes here. Until a ClientHello
/// carries a valid cookie (HMAC-SHA256 of the peer address under a rotating secret), the
/// server keeps **no** per-peer state: it answers with a HelloVerifyRequest or drops.
/// A verified ClientHello turns the listener's `SSL` into a new ``DTLSAssociation`` and a
/// fresh listener takes its place (`DTLSv1_listen` leaves the verified ClientHello buffered in
/// that `SSL`).
public final class DTLSCookieListener {
    /// The outcome of one datagram.
    public enum Result {
        /// Answer with these datagrams (a HelloVerifyRequest); nothing was stored.
        case reply([[UInt8]])
        /// Not a usable ClientHello: drop silently.
        case drop
        /// The cookie was valid: a new association, and its first output (server flight).
        case accepted(DTLSAssociation, DTLSOutput)
    }

    private let context: DTLSContext
    private var ssl: OpaquePointer?
    private var rbio: OpaquePointer?
    private var wbio: OpaquePointer?
    private var binding: DTLSCookieBinding?

    /// Creates a listener.
    /// - Parameter context: a server ``DTLSContext``.
    /// - Throws: `.invalidConfiguration` for a client context.
    public init(context: DTLSContext) throws(DTLSError) {
        guard context.configuration.role == .server else {
            throw DTLSError(.invalidConfiguration, detail: "the cookie listener needs a server context")
        }
        self.context = context
    }

    deinit {
        if let ssl { SSL_free(ssl) }
    }

    /// Rotates the cookie secret now (the previous one stays valid for one more period).
    public func rotateCookieSecret() {
        context.cookieSecrets.rotate()
    }

    /// Processes one datagram from a peer without an association.
    /// - Parameters:
    ///   - datagram: the UDP payload.
    ///   - peerAddress: a stable byte encoding of the peer's IP address and port; the cookie
    ///     is bound to it.
    /// - Returns: what to do.
    public func receive(datagram: [UInt8], peerAddress: [UInt8]) -> Result {
        // Cheap pre-filter: a handshake record (22) of DTLS (major 0xFE) with epoch 0.
        guard datagram.count >= DTLSRecords.headerLength + 12, datagram[0] == 22, datagram[1] == 0xFE,
            datagram[3] == 0, datagram[4] == 0
        else { return .drop }
        guard let ssl = prepare(), let rbio, let binding else { return .drop }
        binding.peer = peerAddress
        let written = datagram.withUnsafeBytes { BIO_write(rbio, $0.baseAddress, Int32($0.count)) }
        guard written == datagram.count else { return .drop }
        ERR_clear_error()
        let address = BIO_ADDR_new()
        defer { BIO_ADDR_free(address) }
        let result = DTLSv1_listen(ssl, address)
        if result == 1 {
            // Promote: the verified ClientHello stays buffered in this SSL.
            let association = DTLSAssociation(context: context, ssl: ssl, rbio: rbio, wbio: wbio!, cookieBinding: binding)
            self.ssl = nil
            self.rbio = nil
            self.wbio = nil
            self.binding = nil
            let output = association.continueAfterListen()
            return .accepted(association, output)
        }
        ERR_clear_error()
        var replies: [[UInt8]] = []
        if let wbio, cpnp_BIO_pending(wbio) > 0 {
            let pending = cpnp_BIO_pending(wbio)
            var bytes = [UInt8](repeating: 0, count: pending)
            let read = bytes.withUnsafeMutableBytes { BIO_read(wbio, $0.baseAddress, Int32($0.count)) }
            if read > 0 { replies = DTLSRecords.pack(bytes.prefix(Int(read)), mtu: context.configuration.mtu) }
        }
        if result < 0 {
            // A hard error may leave state behind: start over with a fresh SSL.
            SSL_free(ssl)
            self.ssl = nil
        } else if cpnp_BIO_pending(rbio) > 0 {
            _ = cpnp_BIO_reset(rbio)
        }
        return replies.isEmpty ? .drop : .reply(replies)
    }

    private func prepare() -> OpaquePointer? {
        if let ssl { return ssl }
        guard let (ssl, rbio, wbio) = try? DTLSAssociation.makeSSL(context: context) else { return nil }
        let binding = DTLSCookieBinding(secrets: context.cookieSecrets, peer: [])
        _ = cpnp_SSL_set_app_data(ssl, Unmanaged.passUnretained(binding).toOpaque())
        _ = SSL_set_options(ssl, cpnp_SSL_OP_COOKIE_EXCHANGE())
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        self.binding = binding
        return ssl
    }
}
