import CPNPPKI
@testable import CPNPTransport
import CPNPTesting
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The DTLS transport's paths without a task between the socket and its user:
/// ``CPNPTransport/deliverInbound(to:)`` and ``CPNPTransport/sendWithoutWaiting(_:to:onFailure:)``.
@Suite("DTLS transport: delivery on the event loop, sends without waiting", .timeLimit(.minutes(2)))
struct DirectDeliveryTests {
    let certs = TestCertificates.shared

    @Test func receivedMessagesGoToTheReceiverOnTheEventLoopAndAnswersGoOutInOrder() async throws {
        let server = try await DTLSTransport.server(
            host: "127.0.0.1", port: 0, configuration: DTLSTransportConfiguration(security: certs.security(certs.server)))
        let client = try await DTLSTransport.client(
            bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: certs.security(certs.client)))
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        let record = EchoRecord()
        let (received, failures, refusedSends) = (record.received, record.failures, record.refusedSends)
        let serverLoop = server.eventLoop
        #expect(record.answer(on: server) { serverLoop.inEventLoop })
        let peer = CPNPPeer(address: try #require(server.localAddress), serverName: "localhost")
        // Queued without waiting, the first one starting the handshake: the others wait for it, in order.
        let count = 200
        for index in 0..<count {
            #expect(client.sendWithoutWaiting(Array("m\(index)".utf8), to: peer) { error in failures.withLockedValue { $0.append(error) } })
        }

        let inbound = client.inbound
        let answers = try await withDeadline(30) {
            var collected: [String] = []
            var iterator = inbound.makeAsyncIterator()
            while collected.count < count, let answer = await iterator.next() { collected.append(String(decoding: answer.bytes, as: UTF8.self)) }
            return collected
        }
        #expect(answers == (0..<count).map { "re:m\($0)" })
        #expect(refusedSends.withLockedValue { $0 } == 0)
        let seen = received.withLockedValue { $0 }
        #expect(seen.map { String(decoding: $0.bytes, as: UTF8.self) } == (0..<count).map { "m\($0)" })
        #expect(seen.allSatisfy { $0.onLoop })
        #expect(failures.withLockedValue { $0 }.isEmpty)
    }

    @Test func aMessageTooLargeOrForAPeerWithoutSessionFailsThroughTheCallback() async throws {
        let server = try await DTLSTransport.server(
            host: "127.0.0.1", port: 0, configuration: DTLSTransportConfiguration(security: certs.security(certs.server)))
        defer { Task { await server.close() } }
        let stranger = CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: 9))
        let failures = NIOLockedValueBox<[CPNPTransportError.Code]>([])
        #expect(
            server.sendWithoutWaiting([UInt8](repeating: 0x20, count: 16_385), to: stranger) { error in
                failures.withLockedValue { $0.append(error.code) }
            })
        #expect(server.sendWithoutWaiting(Array("x".utf8), to: stranger) { error in failures.withLockedValue { $0.append(error.code) } })
        try await withDeadline {
            while failures.withLockedValue({ $0.count }) < 2 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(failures.withLockedValue { $0 } == [.messageTooLarge(size: 16_385, limit: 16_384), .noSession])
    }

    /// A closure held as a generic box's value would come back from every `inout` access wrapped in
    /// one more re-abstraction thunk: after many reads, one call would run through a chain of them
    /// deep enough to overflow the stack.
    @Test func theReceiverStaysOneClosureHoweverOftenItIsRead() async throws {
        let box = InboundReceiverBox()
        let calls = NIOLockedValueBox(0)
        box.set { _ in calls.withLockedValue { $0 += 1 } }
        for _ in 0..<300_000 { _ = box.receiver }
        let message = CPNPInboundMessage(
            bytes: [1], peer: CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: 1)), identity: nil, localAddress: nil)
        box.receiver?(message)
        #expect(calls.withLockedValue { $0 } == 1)
    }
}

/// A server that answers each message with "re:" and the message, from its receiver and without
/// waiting, as an engine on the transport's event loop does; and what it saw.
struct EchoRecord: Sendable {
    /// The messages, and whether each came on the event loop (`onLoop` at the time).
    let received = NIOLockedValueBox<[(bytes: [UInt8], onLoop: Bool)]>([])
    /// Answers that failed (and, where a test adds them, the client's failed sends).
    let failures = NIOLockedValueBox<[CPNPTransportError]>([])
    /// Answers the transport would not take without waiting.
    let refusedSends = NIOLockedValueBox(0)

    /// Makes `server` answer so; false when it cannot deliver on its event loop.
    func answer(on server: any CPNPTransport, onLoop: @escaping @Sendable () -> Bool) -> Bool {
        server.deliverInbound { [self] message in
            received.withLockedValue { $0.append((message.bytes, onLoop())) }
            let sent = server.sendWithoutWaiting(Array("re:".utf8) + message.bytes, to: message.peer) { error in
                failures.withLockedValue { $0.append(error) }
            }
            if !sent { refusedSends.withLockedValue { $0 += 1 } }
        }
    }
}

/// Plain UDP and TLS take the same paths as DTLS, so that `cpnpd` handles their messages on the
/// event loop that read them, without a task in between (Sources/CPNPDaemon/DaemonServices.swift).
@Suite("Plain UDP and TLS transports: delivery on the event loop, sends without waiting", .timeLimit(.minutes(2)))
struct OtherTransportsDirectDeliveryTests {
    let certs = TestCertificates.shared

    /// The server answers each message from its receiver without waiting; the client sends with
    /// ``CPNPTransport/send(_:to:)`` and reads the answers from its stream, in order.
    static func echo(server: any CPNPTransport, client: any CPNPTransport, peer: CPNPPeer, count: Int = 50) async throws {
        let record = EchoRecord()
        let (received, failures, refusedSends) = (record.received, record.failures, record.refusedSends)
        #expect(record.answer(on: server) { MultiThreadedEventLoopGroup.currentEventLoop != nil })
        let inbound = client.inbound
        let answers = try await withDeadline(90) {
            // All sent first (the sockets' buffers hold them), then the answers read: one task
            // switch per message, not per round trip, on a CI host running other tests.
            for index in 0..<count { try await client.send(Array("m\(index)".utf8), to: peer) }
            var collected: [String] = []
            var iterator = inbound.makeAsyncIterator()
            while collected.count < count, let answer = await iterator.next() { collected.append(String(decoding: answer.bytes, as: UTF8.self)) }
            return collected
        }
        #expect(answers == (0..<count).map { "re:m\($0)" })
        #expect(refusedSends.withLockedValue { $0 } == 0)
        let seen = received.withLockedValue { $0 }
        #expect(seen.map { String(decoding: $0.bytes, as: UTF8.self) } == (0..<count).map { "m\($0)" })
        #expect(seen.allSatisfy { $0.onLoop }, "delivered on the event loop that read it")
        #expect(failures.withLockedValue { $0 }.isEmpty)
    }

    @Test func plainUDP() async throws {
        let server = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0)
        let client = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0)
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        try await Self.echo(server: server, client: client, peer: CPNPPeer(address: try #require(server.localAddress)))
        let failures = NIOLockedValueBox<[CPNPTransportError.Code]>([])
        let stranger = CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: 9))
        #expect(
            server.sendWithoutWaiting([UInt8](repeating: 0x20, count: 16_385), to: stranger) { error in
                failures.withLockedValue { $0.append(error.code) }
            })
        #expect(failures.withLockedValue { $0 } == [.messageTooLarge(size: 16_385, limit: 16_384)])
    }

    @Test func tls() async throws {
        let server = try await TLSTransport.server(
            host: "127.0.0.1", port: 0, configuration: TLSTransportConfiguration(security: certs.security(certs.server)))
        let client = try TLSTransport.client(configuration: TLSTransportConfiguration(security: certs.security(certs.client)))
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        try await Self.echo(
            server: server, client: client, peer: CPNPPeer(address: try #require(server.localAddress), serverName: "localhost"))
        // A server cannot open a connection: with none from the peer, the caller uses send(_:to:), which says so.
        let stranger = CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: 9))
        #expect(!server.sendWithoutWaiting(Array("x".utf8), to: stranger) { _ in })
        // A client dials on its first send, so it always takes that path.
        #expect(!client.sendWithoutWaiting(Array("x".utf8), to: stranger) { _ in })
    }

    /// The handshake timeout bounds the handshake only: a client's connection outlives it, so its
    /// messages keep one session 4-tuple (RFC 8921 §8.3). It used to close the connection once the
    /// timeout passed, and the next send dialled again from another port.
    @Test func aTLSConnectionOutlivesTheHandshakeTimeout() async throws {
        let server = try await TLSTransport.server(
            host: "127.0.0.1", port: 0, configuration: TLSTransportConfiguration(security: certs.security(certs.server)))
        var configuration = TLSTransportConfiguration(security: certs.security(certs.client))
        // Long enough for a handshake on a loaded CI host; the second message goes after it.
        configuration.handshakeTimeout = .seconds(4)
        let client = try TLSTransport.client(configuration: configuration)
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        let peer = CPNPPeer(address: try #require(server.localAddress), serverName: "localhost")
        let inbound = server.inbound
        let senders = try await withDeadline(90) {
            var iterator = inbound.makeAsyncIterator()
            var ports: [Int?] = []
            for index in 0..<2 {
                if index == 1 { try await Task.sleep(for: .milliseconds(4_500)) }
                try await client.send(Array("m\(index)".utf8), to: peer)
                ports.append(await iterator.next()?.peer.address.port)
            }
            return ports
        }
        #expect(senders.count == 2 && senders[0] != nil)
        #expect(senders[0] == senders[1], "the second message came over the first connection")
    }
}
