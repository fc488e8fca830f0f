import COpenSSL

/// What one step of a ``DTLSAssociation`` produced. The caller sends `datagrams` to the
/// peer (in order), delivers `messages` to the application and reacts to `event`.
public struct DTLSOutput: Sendable {
    /// Datagrams to send, each at most the MTU for handshake flights; one record each for
    /// application data (docs/protocol.md §2.1: one message = one datagram).
    public var datagrams: [[UInt8]] = []
    /// Decrypted application messages, one per DTLS record received.
    public var messages: [[UInt8]] = []
    /// A state change that happened during this step, if any.
    public var event: DTLSAssociation.Event?

    /// Creates an empty output.
    public init() {}
}

/// One DTLS 1.2 association driven without I/O through memory BIOs (RFC 8921 §8.1, §13).
///
/// Feed it one datagram at a time (``receive(datagram:)``), send what it returns, arm a timer
/// for ``timeout`` and call ``handleTimeout()`` when it fires. Not thread-safe: confine an
/// instance to one event loop or actor (an OpenSSL `SSL` is used by one thread at a time).
public final class DTLSAssociation {
    /// Lifecycle of the association.
    public enum State: Sendable, Equatable {
        /// Handshake in progress.
        case handshaking
        /// Handshake done, peer authenticated; application data flows.
        case established
        /// Closed cleanly (close_notify sent or received).
        case closed
        /// Failed; the association must be discarded.
        case failed(DTLSError)
    }

    /// A state change reported in ``DTLSOutput/event``.
    public enum Event: Sendable, Equatable {
        /// The handshake completed and the peer is authenticated.
        case established
        /// The peer closed the association (close_notify).
        case closed
        /// The association failed (handshake rejected, fatal alert, timeout).
        case failed(DTLSError)
    }

    let ssl: OpaquePointer
    private let rbio: OpaquePointer
    private let wbio: OpaquePointer
    private let cookieBinding: DTLSCookieBinding?
    private let context: DTLSContext
    /// What the server certificate must name (clients only); referenced by `SSL_set_app_data`.
    private var serverIdentity: ServerIdentityCheck?
    /// The current state.
    public private(set) var state: State = .handshaking

    init(context: DTLSContext, ssl: OpaquePointer, rbio: OpaquePointer, wbio: OpaquePointer, cookieBinding: DTLSCookieBinding?) {
        self.context = context
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        self.cookieBinding = cookieBinding
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs
    }

    /// Creates a client association that will verify the server against `serverName`.
    /// - Parameters:
    ///   - context: a client ``DTLSContext``.
    ///   - serverName: the reference identity in text form (``ServerReferenceIdentity/init(_:)``):
    ///     the DNS name or IP address literal dialled, or `_cpnp.DOMAIN` for a server found by SRV.
    /// - Throws: ``DTLSError`` `.invalidConfiguration`.
    public static func client(context: DTLSContext, serverName: String) throws(DTLSError) -> DTLSAssociation {
        try client(context: context, serverIdentity: ServerReferenceIdentity(serverName))
    }

    /// Creates a client association that will verify the server against `serverIdentity`
    /// (RFC 6125; RFC 8921 §8.1): the certificate must present a matching DNS-ID, IP-ID or (for a
    /// service found by SRV) SRV-ID; the subject CN is never considered. A mismatch fails the
    /// handshake with `.nameMismatch` before the client sends its certificate.
    /// - Parameters:
    ///   - context: a client ``DTLSContext``.
    ///   - serverIdentity: what the server certificate must name. DNS names (and the source
    ///     domain of a service) are also sent as SNI.
    /// - Throws: ``DTLSError`` `.invalidConfiguration`.
    public static func client(context: DTLSContext, serverIdentity: ServerReferenceIdentity) throws(DTLSError) -> DTLSAssociation {
        guard context.configuration.role == .client else {
            throw DTLSError(.invalidConfiguration, detail: "client association needs a client context")
        }
        let (ssl, rbio, wbio) = try makeSSL(context: context)
        let association = DTLSAssociation(context: context, ssl: ssl, rbio: rbio, wbio: wbio, cookieBinding: nil)
        association.serverIdentity = ServerIdentityCheck(serverIdentity)
        SSL_set_connect_state(ssl)
        guard let param = SSL_get0_param(ssl) else {
            throw DTLSError(.invalidConfiguration, detail: "no verify param")
        }
        // OpenSSL's own name check as well, for DNS-ID and IP-ID references. Without
        // NEVER_CHECK_SUBJECT it would accept a certificate with no DNS SAN whose CN is the name.
        X509_VERIFY_PARAM_set_hostflags(
            param, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT))
        switch serverIdentity.kind {
        case .ipAddress:
            guard X509_VERIFY_PARAM_set1_ip_asc(param, serverIdentity.description) == 1 else {
                throw DTLSError(.invalidConfiguration, detail: "invalid IP address \(serverIdentity)")
            }
        case .dnsName(let name):
            guard X509_VERIFY_PARAM_set1_host(param, name, 0) == 1 else {
                throw DTLSError(.invalidConfiguration, detail: "invalid server name \(serverIdentity)")
            }
        case .service:
            break  // SRV-ID is unknown to OpenSSL: the callback below decides.
        }
        if let sni = serverIdentity.serverNameIndication, cpnp_SSL_set_tlsext_host_name(ssl, sni) != 1 {
            throw DTLSError(.invalidConfiguration, detail: "invalid server name \(serverIdentity)")
        }
        // The association outlives every handshake step, hence every callback. Client SSLs only:
        // server SSLs keep their cookie binding in the app data (DTLSCookieListener).
        _ = cpnp_SSL_set_app_data(ssl, Unmanaged.passUnretained(association.serverIdentity!).toOpaque())
        SSL_set_verify(ssl, SSL_get_verify_mode(ssl), dtlsServerIdentityCallback)
        return association
    }

    static func makeSSL(context: DTLSContext) throws(DTLSError) -> (OpaquePointer, OpaquePointer, OpaquePointer) {
        guard let ssl = SSL_new(context.sslContext) else {
            throw DTLSError(.invalidConfiguration, detail: "SSL_new: \(OpenSSLErrors.drain())")
        }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw DTLSError(.invalidConfiguration, detail: "BIO_new failed")
        }
        // An empty memory BIO must read as "retry", not EOF.
        cpnp_BIO_set_mem_eof_return(rbio, -1)
        cpnp_BIO_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        // Memory BIOs cannot report a path MTU: set it, and stop OpenSSL from querying.
        _ = SSL_set_options(ssl, cpnp_SSL_OP_NO_QUERY_MTU())
        guard cpnp_SSL_set_mtu(ssl, context.configuration.mtu) > 0 else {  // returns the MTU, not 1
            SSL_free(ssl)
            throw DTLSError(.invalidConfiguration, detail: "MTU \(context.configuration.mtu) below OpenSSL's minimum")
        }
        DTLS_set_timer_cb(ssl, dtlsTimerCallback)
        return (ssl, rbio, wbio)
    }

    // MARK: - Driving the association

    /// Starts the handshake (client: sends the ClientHello). Servers start from the listener.
    /// - Returns: datagrams to send.
    public func start() -> DTLSOutput {
        var output = DTLSOutput()
        advance(&output)
        return output
    }

    /// Processes one received datagram (one at a time, so that a bad record only costs its own
    /// datagram: a memory BIO keeps no datagram boundaries). Replayed and forged records are
    /// dropped silently by OpenSSL's replay window (RFC 6347 §4.1.2.6).
    /// - Parameter datagram: the UDP payload.
    /// - Returns: datagrams to send, decrypted messages and any state change.
    public func receive(datagram: [UInt8]) -> DTLSOutput {
        var output = DTLSOutput()
        switch state {
        case .closed, .failed: return output
        case .handshaking, .established: break
        }
        let written = datagram.withUnsafeBytes { BIO_write(rbio, $0.baseAddress, Int32($0.count)) }
        guard written == datagram.count else { return output }
        advance(&output)
        // Anything OpenSSL left unread belonged to this datagram only: discard it.
        if cpnp_BIO_pending(rbio) > 0 { _ = cpnp_BIO_reset(rbio) }
        return output
    }

    /// Continues after promotion from the cookie listener (the verified ClientHello is buffered).
    func continueAfterListen() -> DTLSOutput {
        var output = DTLSOutput()
        advance(&output)
        return output
    }

    /// Encrypts one application message into exactly one record in one datagram.
    /// - Parameter message: at most ``DTLSConfiguration/maximumMessageSize`` bytes.
    /// - Returns: the datagram(s) to send.
    /// - Throws: `.messageTooLarge` or `.notEstablished`.
    public func write(_ message: [UInt8]) throws(DTLSError) -> [[UInt8]] {
        guard message.count <= DTLSConfiguration.maximumMessageSize else {
            throw DTLSError(.messageTooLarge, detail: "\(message.count) bytes > \(DTLSConfiguration.maximumMessageSize)")
        }
        guard state == .established else { throw DTLSError(.notEstablished) }
        ERR_clear_error()
        let result = message.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        if result <= 0 {
            let error = classify(SSL_get_error(ssl, result))
            state = .failed(error)
            throw error
        }
        return drainDatagrams()
    }

    /// Time until the retransmission timer fires, or `nil` when no timer is running.
    public var timeout: Duration? {
        var sec = 0
        var usec = 0
        guard cpnp_DTLSv1_get_timeout(ssl, &sec, &usec) == 1 else { return nil }
        return .seconds(sec) + .microseconds(usec)
    }

    /// Handles the retransmission timer: resends the last flight (RFC 6347 §4.2.4).
    /// - Returns: datagrams to resend, or `.failed(.handshakeTimeout)` when OpenSSL gives up.
    public func handleTimeout() -> DTLSOutput {
        var output = DTLSOutput()
        guard state == .handshaking || state == .established else { return output }
        ERR_clear_error()
        let result = cpnp_DTLSv1_handle_timeout(ssl)
        if result < 0 {
            let error = DTLSError(.handshakeTimeout, detail: OpenSSLErrors.drain())
            state = .failed(error)
            output.event = .failed(error)
        }
        output.datagrams = drainDatagrams()
        return output
    }

    /// Marks the handshake as timed out (the transport's overall deadline passed).
    public func abandon(_ error: DTLSError) {
        if state == .handshaking || state == .established { state = .failed(error) }
    }

    /// Sends close_notify and closes the association.
    /// - Returns: the alert datagram(s).
    public func close() -> [[UInt8]] {
        guard state == .established || state == .handshaking else { return [] }
        ERR_clear_error()
        if state == .established { _ = SSL_shutdown(ssl) }
        state = .closed
        ERR_clear_error()
        return drainDatagrams()
    }

    // MARK: - Peer information

    /// The peer's leaf certificate, DER, once established.
    public var peerCertificateDER: [UInt8]? {
        guard let cert = SSL_get0_peer_certificate(ssl) else { return nil }
        var pointer: UnsafeMutablePointer<UInt8>? = nil
        let length = i2d_X509(cert, &pointer)
        guard length > 0, let pointer else { return nil }
        defer { cpnp_OPENSSL_free(pointer) }
        return Array(UnsafeBufferPointer(start: pointer, count: Int(length)))
    }

    /// The negotiated cipher suite, e.g. `ECDHE-ECDSA-AES128-GCM-SHA256`.
    public var cipherSuite: String? {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return nil }
        return String(cString: name)
    }

    /// OpenSSL's handshake state, e.g. `SSLv3/TLS write server done`, for diagnostics.
    public var handshakeState: String { String(cString: SSL_state_string_long(ssl)) }

    /// The negotiated protocol version, e.g. `DTLSv1.2`.
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    // MARK: - Internals

    private func advance(_ output: inout DTLSOutput) {
        if state == .handshaking {
            ERR_clear_error()
            let result = SSL_do_handshake(ssl)
            if result == 1 {
                state = .established
                output.event = .established
            } else {
                let code = SSL_get_error(ssl, result)
                if code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE {
                    let error = classify(code)
                    state = .failed(error)
                    output.event = .failed(error)
                    output.datagrams = drainDatagrams()  // the fatal alert
                    return
                }
            }
        }
        if state == .established {
            readApplicationData(&output)
        }
        output.datagrams.append(contentsOf: drainDatagrams())
    }

    private func readApplicationData(_ output: inout DTLSOutput) {
        var buffer = [UInt8](repeating: 0, count: DTLSConfiguration.maximumMessageSize + 1)
        while true {
            ERR_clear_error()
            let count = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if count > 0 {
                output.messages.append(Array(buffer.prefix(Int(count))))
                continue
            }
            let code = SSL_get_error(ssl, count)
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return
            case SSL_ERROR_ZERO_RETURN:
                state = .closed
                output.event = .closed
                return
            default:
                let error = classify(code)
                state = .failed(error)
                output.event = .failed(error)
                return
            }
        }
    }

    /// Takes everything OpenSSL wrote and re-splits it into datagrams at record boundaries
    /// (a memory BIO is a byte stream with no datagram boundaries). Handshake records are packed up
    /// to the MTU; each application-data record travels alone.
    func drainDatagrams() -> [[UInt8]] {
        let pending = cpnp_BIO_pending(wbio)
        guard pending > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = bytes.withUnsafeMutableBytes { BIO_read(wbio, $0.baseAddress, Int32($0.count)) }
        guard read > 0 else { return [] }
        return DTLSRecords.pack(bytes.prefix(Int(read)), mtu: context.configuration.mtu)
    }

    func classify(_ sslError: Int32) -> DTLSError {
        let verify = SSL_get_verify_result(ssl)
        let (reasons, text) = OpenSSLErrors.drainCodes()
        let detail =
            verify != X509_V_OK
            ? "certificate verification: \(String(cString: X509_verify_cert_error_string(verify)))" : text
        if verify != X509_V_OK {
            switch Int32(verify) {
            case X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_CERT_NOT_YET_VALID:
                return DTLSError(.certificateExpired, detail: detail)
            case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
                let wanted = serverIdentity.map { "; it must present \($0.reference.requirement) (the subject CN is not used)" } ?? ""
                return DTLSError(.nameMismatch, detail: detail + wanted)
            default:
                return DTLSError(.unknownCA, detail: detail)
            }
        }
        for reason in reasons {
            switch reason {
            case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
                return DTLSError(.noClientCertificate, detail: "the client sent no certificate")
            case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
                return DTLSError(.certificateExpired, reportedByPeer: true, detail: text)
            case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
                return DTLSError(.unknownCA, reportedByPeer: true, detail: text)
            case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
                if context.configuration.role == .client && context.configuration.credentials == nil {
                    return DTLSError(.noClientCertificate, reportedByPeer: true, detail: text)
                }
                return DTLSError(.handshakeFailed, reportedByPeer: true, detail: text)
            case SSL_R_READ_TIMEOUT_EXPIRED:
                return DTLSError(.handshakeTimeout, detail: text)
            default:
                continue
            }
        }
        let peer = reasons.contains { $0 > 1000 && $0 < 1256 }  // SSL_AD_REASON_OFFSET + alert
        return DTLSError(.handshakeFailed, reportedByPeer: peer, detail: text.isEmpty ? "SSL error \(sslError)" : text)
    }
}

/// DTLS record framing helpers (RFC 6347 §4.1: 13-byte header, length in bytes 11-12).
public enum DTLSRecords {
    /// The DTLS record header length.
    public static let headerLength = 13

    /// Splits `bytes` at record boundaries and packs records into datagrams of at most `mtu`
    /// bytes; application-data records (content type 23) are never packed with others.
    /// - Parameters:
    ///   - bytes: consecutive DTLS records.
    ///   - mtu: the datagram payload limit.
    /// - Returns: the datagrams.
    public static func pack(_ bytes: ArraySlice<UInt8>, mtu: Int) -> [[UInt8]] {
        var datagrams: [[UInt8]] = []
        var current: [UInt8] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            guard bytes.endIndex - index >= headerLength else {
                // Truncated record: should not happen; send what is left as-is.
                current.append(contentsOf: bytes[index...])
                break
            }
            let length = Int(bytes[index + 11]) << 8 | Int(bytes[index + 12])
            let end = min(index + headerLength + length, bytes.endIndex)
            let record = bytes[index..<end]
            let isApplicationData = bytes[index] == 23
            if !current.isEmpty && (isApplicationData || current.count + record.count > mtu) {
                datagrams.append(current)
                current = []
            }
            current.append(contentsOf: record)
            if isApplicationData {
                datagrams.append(current)
                current = []
            }
            index = end
        }
        if !current.isEmpty { datagrams.append(current) }
        return datagrams
    }
}

/// The reference identity of a client association, reachable from OpenSSL's verify callback.
final class ServerIdentityCheck {
    let reference: ServerReferenceIdentity

    init(_ reference: ServerReferenceIdentity) {
        self.reference = reference
    }
}

/// Verify callback of client associations: after OpenSSL accepted the chain, the leaf (depth 0)
/// must match the reference identity (RFC 6125 §6; RFC 8921 §8.1). A mismatch is reported as
/// `X509_V_ERR_HOSTNAME_MISMATCH` / `X509_V_ERR_IP_ADDRESS_MISMATCH` (→ `.nameMismatch`).
private func dtlsServerIdentityCallback(_ preverified: Int32, _ store: OpaquePointer?) -> Int32 {
    guard preverified == 1, let store else { return preverified }
    guard X509_STORE_CTX_get_error_depth(store) == 0 else { return 1 }
    guard let ssl = cpnp_X509_STORE_CTX_get_ssl(store), let raw = cpnp_SSL_get_app_data(ssl),
        let leaf = X509_STORE_CTX_get_current_cert(store)
    else {
        X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH)
        return 0
    }
    let check = Unmanaged<ServerIdentityCheck>.fromOpaque(raw).takeUnretainedValue()
    if check.reference.isMatched(by: PresentedIdentifiers(certificate: leaf)) { return 1 }
    if case .ipAddress = check.reference.kind {
        X509_STORE_CTX_set_error(store, X509_V_ERR_IP_ADDRESS_MISMATCH)
    } else {
        X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH)
    }
    return 0
}
