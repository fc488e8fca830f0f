import CPNPTransport
import CPNPTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

@Suite("TLS/TCP transport over loopback (docs/protocol.md §2.1)", .timeLimit(.minutes(1)))
struct TLSTransportTests {
    let certs = TestCertificates.shared

    @Test func handshakeMessagesBothWaysAndClose() async throws {
        // Not a test of timeouts: a loaded CI machine (every suite starting at once) once took more
        // than the default 10 s to finish this handshake.
        var serverConfiguration = TLSTransportConfiguration(security: certs.security(certs.server))
        serverConfiguration.handshakeTimeout = .seconds(40)
        var clientConfiguration = TLSTransportConfiguration(security: certs.security(certs.client))
        clientConfiguration.handshakeTimeout = .seconds(40)
        let server = try await TLSTransport.server(host: "127.0.0.1", port: 0, configuration: serverConfiguration)
        let client = try TLSTransport.client(configuration: clientConfiguration)
        let peer = CPNPPeer(address: try #require(server.localAddress), serverName: "localhost")
        // Larger than any datagram: the reason this transport exists.
        let document = [UInt8](repeating: 0x61, count: 200_000)
        try await withDeadline(40) { try await client.send(document, to: peer) }
        let received = try await next(server.inbound)
        #expect(received.bytes == document)
        #expect(received.identity?.commonName == "customer-a")
        try await withDeadline { try await server.send(Array("ok".utf8), to: received.peer) }
        let answer = try await next(client.inbound)
        #expect(answer.bytes == Array("ok".utf8))
        #expect(answer.identity?.dnsNames == ["localhost"])
        // Several frames in a row keep their boundaries.
        for index in 0..<5 { try await withDeadline { try await client.send(Array("m\(index)".utf8), to: peer) } }
        for index in 0..<5 { #expect(try await next(server.inbound).bytes == Array("m\(index)".utf8)) }
        do {
            try await client.send([UInt8](repeating: 0, count: (1 << 20) + 1), to: peer)
            Issue.record("oversized frame sent")
        } catch {
            #expect(error.code == .messageTooLarge(size: (1 << 20) + 1, limit: 1 << 20))
        }
        await client.close()
        await server.close()
        try await withDeadline { for await _ in server.inbound {} }
    }

    func expectRejection(
        serverPair: (String, String)? = nil, clientPair: (String, String)?, clientTrust: String? = nil, serverName: String = "localhost",
        client clientCode: CPNPTransportError.Code, server serverCode: CPNPTransportError.Code?
    ) async throws {
        let server = try await TLSTransport.server(
            host: "127.0.0.1", port: 0, configuration: TLSTransportConfiguration(security: certs.security(serverPair ?? certs.server)))
        let client = try TLSTransport.client(configuration: TLSTransportConfiguration(security: certs.security(clientPair, trust: clientTrust)))
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        let peer = CPNPPeer(address: try #require(server.localAddress), serverName: serverName)
        // With TLS 1.3 the client may finish its handshake before the server rejects its
        // certificate: the rejection then arrives as an alert, on the failures stream.
        do { try await withDeadline { try await client.send(Array("hello".utf8), to: peer) } } catch {}
        let failure = try await next(client.failures)
        #expect(failure.code == clientCode, "\(failure)")
        if let serverCode {
            let serverFailure = try await next(server.failures)
            #expect(serverFailure.code == serverCode, "\(serverFailure)")
        }
    }

    @Test func clientWithoutCertificateIsRejected() async throws {
        try await expectRejection(clientPair: nil, client: .noClientCertificate, server: .noClientCertificate)
    }

    @Test func clientFromAnotherCAIsRejected() async throws {
        // BoringSSL's custom verification answers with a generic certificate_unknown alert, so
        // only the rejecting side (the server) knows the precise reason.
        try await expectRejection(clientPair: certs.clientOtherCA, client: .handshakeFailed, server: .unknownCA)
    }

    @Test func expiredClientCertificateIsRejected() async throws {
        try await expectRejection(clientPair: certs.clientExpired, client: .handshakeFailed, server: .certificateExpired)
    }

    @Test func wrongServerNameIsRejected() async throws {
        try await expectRejection(clientPair: certs.client, serverName: "cpnp.example.net", client: .nameMismatch, server: nil)
        try await expectRejection(clientPair: certs.client, serverName: "127.0.0.2", client: .nameMismatch, server: nil)
    }

    @Test func expiredServerCertificateIsRejected() async throws {
        try await expectRejection(serverPair: certs.serverExpired, clientPair: certs.client, client: .certificateExpired, server: nil)
    }

    @Test func serverFromAnotherCAIsRejected() async throws {
        try await expectRejection(clientPair: certs.client, clientTrust: certs.otherCAPEM, client: .unknownCA, server: nil)
    }
}

@Suite("Plain UDP transport (labs only)", .timeLimit(.minutes(1)))
struct PlainUDPTransportTests {
    @Test func messagesBothWaysWarningAndClose() async throws {
        let (logger, lines) = capturingLogger()
        let server = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: logger)
        let client = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0)
        #expect(lines.withLockedValue { $0.contains { $0.0 == .warning && $0.1.contains("plain UDP") } })
        try await withDeadline { try await client.send(Array("q".utf8), to: CPNPPeer(address: try #require(server.localAddress))) }
        let received = try await next(server.inbound)
        #expect(received.bytes == Array("q".utf8))
        #expect(received.identity == nil)
        try await withDeadline { try await server.send(Array("a".utf8), to: received.peer) }
        #expect(try await next(client.inbound).bytes == Array("a".utf8))
        do {
            try await client.send([UInt8](repeating: 0, count: 16_385), to: received.peer)
            Issue.record("oversized datagram sent")
        } catch {
            #expect(error.code == .messageTooLarge(size: 16_385, limit: 16_384))
        }
        await client.close()
        await server.close()
        try await withDeadline { for await _ in server.inbound {} }
    }
}
