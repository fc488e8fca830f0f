import CPNPDTLS
import CPNPPKI
@testable import CPNPTransport
import CPNPTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

@Suite("DTLS/UDP transport over loopback (RFC 8921 §8.1, §13)", .timeLimit(.minutes(1)))
struct DTLSTransportTests {
    let certs = TestCertificates.shared

    func server(
        _ pair: (String, String)? = nil, logger: Logger = Logger(label: "test.server"), tweak: (inout DTLSTransportConfiguration) -> Void = { _ in }
    ) async throws -> DTLSTransport {
        var configuration = DTLSTransportConfiguration(security: certs.security(pair ?? certs.server))
        tweak(&configuration)
        return try await DTLSTransport.server(host: "127.0.0.1", port: 0, configuration: configuration, logger: logger)
    }

    func client(
        _ pair: (String, String)?, trust: String? = nil, logger: Logger = Logger(label: "test.client"),
        tweak: (inout DTLSTransportConfiguration) -> Void = { _ in }
    ) async throws -> DTLSTransport {
        var configuration = DTLSTransportConfiguration(security: certs.security(pair, trust: trust))
        tweak(&configuration)
        return try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: configuration, logger: logger)
    }

    @Test func handshakeMessagesBothWaysAndClose() async throws {
        let server = try await server()
        let client = try await client(certs.client)
        let address = try #require(server.localAddress)
        let request = Array(#"{"method":1,"sequence-number":1}"#.utf8)
        try await withDeadline { try await client.send(request, to: CPNPPeer(address: address, serverName: "localhost")) }

        let received = try await next(server.inbound)
        #expect(received.bytes == request)
        #expect(received.identity?.commonName == "customer-a")
        #expect(received.identity?.dnsNames == ["customer-a"])
        #expect(received.localAddress?.port == address.port)
        #expect(received.remoteAddress.port == client.localAddress?.port)

        let reply = Array(#"{"method":2}"#.utf8)
        try await withDeadline { try await server.send(reply, to: received.peer) }
        let answer = try await next(client.inbound)
        #expect(answer.bytes == reply)
        #expect(answer.identity?.commonName == "localhost")
        #expect(answer.identity?.ipAddresses.contains("127.0.0.1") == true)
        #expect(answer.peer.serverName == "localhost")

        // A second message reuses the association.
        try await withDeadline { try await client.send(Array("again".utf8), to: CPNPPeer(address: address, serverName: "localhost")) }
        #expect(try await next(server.inbound).bytes == Array("again".utf8))
        #expect(server.statistics.handshakesCompleted == 1)

        await client.close()
        // close_notify removes the server's association.
        try await withDeadline {
            while server.statistics.associations > 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        await server.close()
        try await withDeadline {
            for await _ in server.inbound {}
        }
    }

    @Test func dialledIPAddressIsVerifiedAsIPID() async throws {
        let server = try await server()
        let client = try await client(certs.client)
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        let address = try #require(server.localAddress)
        try await withDeadline { try await client.send(Array("hi".utf8), to: CPNPPeer(address: address)) }
        #expect(try await next(server.inbound).bytes == Array("hi".utf8))
    }

    @Test func largestMessageGoesThroughAndLargerFailsLocally() async throws {
        let server = try await server()
        let client = try await client(certs.client)
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        let peer = CPNPPeer(address: try #require(server.localAddress), serverName: "localhost")
        let big = [UInt8](repeating: 0x20, count: 16_384)
        try await withDeadline { try await client.send(big, to: peer) }
        #expect(try await next(server.inbound).bytes == big)
        do {
            try await client.send(big + [0x20], to: peer)
            Issue.record("oversized message was sent")
        } catch {
            #expect(error.code == .messageTooLarge(size: 16_385, limit: 16_384))
            #expect(error.description.contains("TLS transport"))
        }
    }

    @Test func serverCannotSendToUnknownPeer() async throws {
        let server = try await server()
        defer { Task { await server.close() } }
        let stranger = CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: 9))
        do {
            try await server.send(Array("x".utf8), to: stranger)
            Issue.record("sent without a session")
        } catch {
            #expect(error.code == .noSession)
        }
    }

    func expectRejection(
        serverPair: (String, String)? = nil, clientPair: (String, String)?, clientTrust: String? = nil, serverName: String = "localhost",
        client clientCode: CPNPTransportError.Code, server serverCode: CPNPTransportError.Code?
    ) async throws {
        let (serverLogger, serverLines) = capturingLogger()
        let (clientLogger, clientLines) = capturingLogger()
        let server = try await server(serverPair, logger: serverLogger)
        let client = try await client(clientPair, trust: clientTrust, logger: clientLogger)
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        let peer = CPNPPeer(address: try #require(server.localAddress), serverName: serverName)
        // Hang guards, not timings: alone the whole exchange takes about 0.1 s, but in the suite's first
        // seconds, with every test starting at once, these tests took 12–30 s in CI, and one ran out of a
        // 10 s guard. The suite's time limit bounds the test as a whole.
        let guardSeconds = 30.0
        do {
            try await withDeadline(guardSeconds, waitingFor: "the client's refusal") { try await client.send(Array("hello".utf8), to: peer) }
            Issue.record("handshake unexpectedly succeeded")
        } catch let error as CPNPTransportError {
            #expect(error.code == clientCode)
        }
        let failure = try await next(client.failures, within: guardSeconds, waitingFor: "the client's failure report")
        #expect(failure.code == clientCode, "\(failure)")
        #expect(clientLines.withLockedValue { $0.filter { $0.0 == .error }.count } == 1)
        if let serverCode {
            let serverFailure = try await next(server.failures, within: guardSeconds, waitingFor: "the server's failure report")
            #expect(serverFailure.code == serverCode, "\(serverFailure)")
            #expect(serverLines.withLockedValue { $0.filter { $0.0 == .error }.count } == 1)
        }
        // The client's fatal alert (or the server's own verdict) ends the server's association.
        try await withDeadline(guardSeconds, waitingFor: "the end of the server's association") {
            while server.statistics.associations > 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    @Test func clientWithoutCertificateIsRejected() async throws {
        try await expectRejection(clientPair: nil, client: .noClientCertificate, server: .noClientCertificate)
    }

    @Test func clientFromAnotherCAIsRejected() async throws {
        try await expectRejection(clientPair: certs.clientOtherCA, client: .unknownCA, server: .unknownCA)
    }

    @Test func expiredClientCertificateIsRejected() async throws {
        try await expectRejection(clientPair: certs.clientExpired, client: .certificateExpired, server: .certificateExpired)
    }

    @Test func wrongServerNameIsRejected() async throws {
        try await expectRejection(clientPair: certs.client, serverName: "cpnp.example.net", client: .nameMismatch, server: nil)
        try await expectRejection(serverPair: certs.serverWrongName, clientPair: certs.client, client: .nameMismatch, server: nil)
        try await expectRejection(clientPair: certs.client, serverName: "127.0.0.2", client: .nameMismatch, server: nil)
    }

    @Test func expiredServerCertificateIsRejected() async throws {
        try await expectRejection(serverPair: certs.serverExpired, clientPair: certs.client, client: .certificateExpired, server: nil)
    }

    @Test func serverFromAnotherCAIsRejected() async throws {
        try await expectRejection(clientPair: certs.client, clientTrust: certs.otherCAPEM, client: .unknownCA, server: nil)
    }

    @Test func handshakeTimesOutWhenNobodyAnswers() async throws {
        // A silent UDP socket: datagrams are swallowed, nothing answers.
        let silent = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0)
        let client = try await client(certs.client) { $0.handshakeTimeout = .milliseconds(800) }
        defer {
            Task {
                await client.close(); await silent.close()
            }
        }
        let started = ContinuousClock.now
        do {
            try await withDeadline {
                try await client.send(Array("hello".utf8), to: CPNPPeer(address: try #require(silent.localAddress), serverName: "localhost"))
            }
            Issue.record("no timeout")
        } catch let error as CPNPTransportError {
            #expect(error.code == .handshakeTimeout)
        }
        // It gave up on its own (not on the test's deadline), however loaded the machine.
        #expect(ContinuousClock.now - started < .seconds(60))
        // The ClientHello and its retransmissions reached the silent socket.
        _ = try await next(silent.inbound)
    }

    @Test func clientHandshakesAgainAfterServerRestart() async throws {
        let server1 = try await server()
        let port = try #require(server1.localAddress?.port)
        let client = try await client(certs.client) { $0.handshakeTimeout = .seconds(3) }
        defer { Task { await client.close() } }
        let peer = CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: port), serverName: "localhost")
        try await withDeadline { try await client.send(Array("one".utf8), to: peer) }
        #expect(try await next(server1.inbound).bytes == Array("one".utf8))
        await server1.close()  // sends close_notify: the client drops its association
        try await Task.sleep(for: .milliseconds(100))
        // A new server process on the same port knows nothing of the old association.
        var configuration = DTLSTransportConfiguration(security: certs.security(certs.server))
        configuration.handshakeTimeout = .seconds(3)
        let server3 = try await DTLSTransport.server(host: "127.0.0.1", port: port, configuration: configuration)
        defer { Task { await server3.close() } }
        try await withDeadline { try await client.send(Array("two".utf8), to: peer) }
        #expect(try await next(server3.inbound).bytes == Array("two".utf8))
    }

    /// RFC 6347 §4.2.8 for a client that died mid-handshake: a new client on the same port (another
    /// random) gets a new association at once, instead of feeding the half-open one until it times out.
    @Test func aClientRestartedMidHandshakeOnTheSamePortIsServed() async throws {
        let server = try await server { $0.handshakeTimeout = .seconds(30) }
        defer { Task { await server.close() } }
        let address = try #require(server.localAddress)
        // The first client: a verified ClientHello, then silence (it crashed).
        let socket = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0)
        let port = try #require(socket.localAddress?.port)
        let clientContext = try DTLSContext(configuration: DTLSConfiguration(role: .client, credentials: nil, trustRootsPEM: certs.caPEM))
        let association = try DTLSAssociation.client(context: clientContext, serverName: "localhost")
        for datagram in association.start().datagrams { try await socket.send(datagram, to: CPNPPeer(address: address)) }
        let verifyRequest = try await next(socket.inbound)
        for datagram in association.receive(datagram: verifyRequest.bytes).datagrams {
            try await socket.send(datagram, to: CPNPPeer(address: address))
        }
        _ = try await next(socket.inbound)  // the server's flight: the association exists, half-open
        await socket.close()
        // The restarted client, on the same port, within the first one's handshake timeout.
        let configuration = DTLSTransportConfiguration(security: certs.security(certs.client))
        let client = try await DTLSTransport.client(bindingTo: "127.0.0.1", port: port, configuration: configuration)
        defer { Task { await client.close() } }
        try await withDeadline { try await client.send(Array("after restart".utf8), to: CPNPPeer(address: address, serverName: "localhost")) }
        #expect(try await next(server.inbound).bytes == Array("after restart".utf8))
    }
}

@Suite("DTLS session renewal (RFC 8921 §11.4)", .timeLimit(.minutes(1)))
struct DTLSRenewalTests {
    let certs = TestCertificates.shared

    /// A renewal while the handshake is still running keeps that handshake: no second ClientHello
    /// (another random) whose answer could be mixed with the first one's flight, and the messages
    /// waiting for it still wait.
    @Test func aRenewalDuringTheHandshakeKeepsIt() async throws {
        // A silent UDP socket: the handshake never ends before its timeout.
        let silent = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0)
        var configuration = DTLSTransportConfiguration(security: certs.security(certs.client))
        configuration.handshakeTimeout = .seconds(3)
        let client = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: configuration)
        defer {
            Task {
                await client.close(); await silent.close()
            }
        }
        let peer = CPNPPeer(address: try #require(silent.localAddress), serverName: "localhost")
        let first = Task { () -> CPNPTransportError.Code? in
            do { try await client.send(Array("one".utf8), to: peer) } catch { return (error as? CPNPTransportError)?.code }
            return nil
        }
        let hello = try await next(silent.inbound)
        let random = try #require(DTLSDemuxHandler.clientRandom(hello.bytes))
        await client.renewSession(with: peer)
        let second = Task { () -> CPNPTransportError.Code? in
            do { try await client.send(Array("two".utf8), to: peer) } catch { return (error as? CPNPTransportError)?.code }
            return nil
        }
        // Both messages wait for the one handshake, and fail with it.
        #expect(await first.value == .handshakeTimeout)
        #expect(await second.value == .handshakeTimeout)
        // Every ClientHello the socket received (the first and OpenSSL's retransmissions) has its random.
        var randoms: [ArraySlice<UInt8>] = []
        while let datagram = try? await next(silent.inbound, within: 0.2) {
            if let other = DTLSDemuxHandler.clientRandom(datagram.bytes) { randoms.append(other) }
        }
        #expect(!randoms.isEmpty, "OpenSSL retransmits the ClientHello within the handshake timeout")
        #expect(randoms.allSatisfy { $0 == random })
    }
}
