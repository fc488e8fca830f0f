import CPNPDTLS
import CPNPTransport
import CPNPTesting
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Resident set size of this process, in bytes.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * 4096 : 0
}

/// Echoes every inbound message back to its sender until the transport closes.
func startEcho(_ server: DTLSTransport) -> Task<Void, Never> {
    Task {
        for await message in server.inbound {
            try? await server.send(message.bytes, to: message.peer)
        }
    }
}

// The limit guards against a hang, not a speed: the work is fixed, and under the whole suite on
// a loaded 2-CPU machine a test took over two minutes.
@Suite("DTLS server robustness (RFC 8921 §13 DoS defence)", .serialized, .timeLimit(.minutes(4)))
struct RobustnessTests {
    let certs = TestCertificates.shared

    @Test func thousandConcurrentPeers() async throws {
        var configuration = DTLSTransportConfiguration(security: certs.security(certs.server))
        configuration.maximumAssociations = 1_500
        configuration.handshakeTimeout = .seconds(30)
        let server = try await DTLSTransport.server(host: "127.0.0.1", port: 0, configuration: configuration)
        let echo = startEcho(server)
        defer { echo.cancel() }
        let address = try #require(server.localAddress)
        let peers = 1_000
        var clientConfiguration = DTLSTransportConfiguration(security: certs.security(certs.client))
        clientConfiguration.handshakeTimeout = .seconds(8)
        clientConfiguration.receiveBufferSize = 64 << 10
        var clients: [DTLSTransport] = []
        for _ in 0..<peers {
            clients.append(try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: clientConfiguration))
        }
        let stalls = NIOLockedValueBox(0)
        let started = ContinuousClock.now
        // Phase 1: all 1,000 peers handshake (at most 100 handshakes in flight, as clients
        // arriving over a short period) and stay associated.
        let handshaken = try await withDeadline(100) { [clients] in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                var launched = 0
                var count = 0
                func launch() {
                    let index = launched
                    let client = clients[index]
                    launched += 1
                    group.addTask {
                        // Like the CPNP client engine: a handshake that times out is retried
                        // (a fresh association from the same socket).
                        for attempt in 1...3 {
                            do {
                                try await client.send(Array("hello \(index)".utf8), to: CPNPPeer(address: address, serverName: "localhost"))
                                return true
                            } catch {
                                stalls.withLockedValue { $0 += 1 }
                                print("peer \(index) attempt \(attempt): \(error)")
                            }
                        }
                        return false
                    }
                }
                while launched < min(100, clients.count) { launch() }
                for try await ok in group {
                    if ok { count += 1 }
                    if launched < clients.count { launch() }
                }
                return count
            }
        }
        let handshakeTime = ContinuousClock.now - started
        #expect(handshaken == peers)
        #expect(server.statistics.associations == peers)
        // Under this load (debug build, 2 cores) handshakes are slow but must not stall.
        #expect(stalls.withLockedValue { $0 } == 0)
        // Phase 2: all 1,000 associated peers send at once; every one gets its echo.
        let exchangeStarted = ContinuousClock.now
        let succeeded = try await withDeadline(60) { [clients] in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        let payload = Array("peer \(index)".utf8)
                        var iterator = client.inbound.makeAsyncIterator()
                        guard await iterator.next()?.bytes == Array("hello \(index)".utf8) else { return false }
                        do {
                            try await client.send(payload, to: CPNPPeer(address: address, serverName: "localhost"))
                        } catch {
                            return false
                        }
                        return await iterator.next()?.bytes == payload
                    }
                }
                var count = 0
                for try await ok in group where ok { count += 1 }
                return count
            }
        }
        print(
            "1,000 DTLS peers: handshakes in \(handshakeTime) (\(stalls.withLockedValue { $0 }) stalled attempts retried), 1,000 concurrent request/echo in \(ContinuousClock.now - exchangeStarted)"
        )
        let elapsed = ContinuousClock.now - started
        let statistics = server.statistics
        print("1,000 concurrent DTLS peers: \(succeeded) echoed, total \(elapsed); server stats \(statistics)")
        #expect(succeeded == peers)
        #expect(statistics.handshakesCompleted >= peers)
        #expect(statistics.maximumAssociationsSeen <= configuration.maximumAssociations)
        for client in clients { await client.close() }
        await server.close()
    }

    @Test func floodOfGarbageAndCookielessHellosLeavesRoomForLegitimatePeers() async throws {
        var configuration = DTLSTransportConfiguration(security: certs.security(certs.server))
        configuration.maximumAssociations = 64
        configuration.handshakeTimeout = .seconds(6)
        let server = try await DTLSTransport.server(host: "127.0.0.1", port: 0, configuration: configuration)
        let echo = startEcho(server)
        defer { echo.cancel() }
        let address = try #require(server.localAddress)
        let rssBefore = residentBytes()

        // A real ClientHello without cookie, made in memory.
        let clientContext = try DTLSContext(configuration: DTLSConfiguration(role: .client, credentials: nil, trustRootsPEM: certs.caPEM))
        let hello = try #require(try DTLSAssociation.client(context: clientContext, serverName: "localhost").start().datagrams.first)

        // Attackers: garbage and cookieless ClientHellos from a few sockets.
        let attackers = try await withThrowingTaskGroup(of: PlainUDPTransport.self) { group in
            for _ in 0..<8 { group.addTask { try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let flood = Task {
            for round in 0..<1_000 {
                for (index, attacker) in attackers.enumerated() {
                    let datagram = index % 2 == 0 ? hello : (0..<(round % 200 + 1)).map { _ in UInt8.random(in: 0...255) }
                    try? await attacker.send(datagram, to: CPNPPeer(address: address))
                }
            }
        }

        // Half-open handshakes from 150 addresses: a valid cookie, then silence.
        let halfOpen = try await withDeadline(30) {
            try await withThrowingTaskGroup(of: PlainUDPTransport?.self) { group in
                for _ in 0..<150 {
                    group.addTask {
                        let socket = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, receiveBufferSize: 64 << 10)
                        let association = try DTLSAssociation.client(context: clientContext, serverName: "localhost")
                        for datagram in association.start().datagrams { try await socket.send(datagram, to: CPNPPeer(address: address)) }
                        var iterator = socket.inbound.makeAsyncIterator()
                        guard let verifyRequest = await iterator.next() else { return socket }
                        for datagram in association.receive(datagram: verifyRequest.bytes).datagrams {
                            try await socket.send(datagram, to: CPNPPeer(address: address))
                        }
                        return socket  // and never answer the server's flight
                    }
                }
                return try await group.reduce(into: [PlainUDPTransport?]()) { $0.append($1) }.compactMap { $0 }
            }
        }

        // Legitimate peers still get through, while the flood goes on.
        var legitimateConfiguration = DTLSTransportConfiguration(security: certs.security(certs.client))
        legitimateConfiguration.handshakeTimeout = .seconds(10)
        let clientConfiguration = legitimateConfiguration
        let legitimate = 20
        let served = try await withDeadline(40) {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<legitimate {
                    group.addTask {
                        let client = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: clientConfiguration)
                        let payload = Array("legit \(index)".utf8)
                        var ok = false
                        for _ in 0..<3 where !ok {  // the CPNP engine retransmits the same way
                            do {
                                try await client.send(payload, to: CPNPPeer(address: address, serverName: "localhost"))
                                ok = try await next(client.inbound, within: 5).bytes == payload
                            } catch {}
                        }
                        await client.close()
                        return ok
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
        }
        flood.cancel()
        _ = await flood.result
        let statistics = server.statistics
        let rssGrowth = residentBytes() - rssBefore
        print(
            "flood: \(statistics); legitimate served \(served)/\(legitimate); half-open sockets \(halfOpen.count); RSS growth \(rssGrowth / 1024) KiB"
        )
        #expect(served == legitimate)
        // 150 half-open handshakes filled the table: the cap held and eviction made room.
        #expect(statistics.maximumAssociationsSeen == configuration.maximumAssociations)
        #expect(statistics.helloVerifyRequests >= 1_000)
        #expect(statistics.droppedDatagrams >= 1_000)
        #expect(rssGrowth < 256 << 20)
        // Unfinished handshakes expire.
        try await withDeadline(20) {
            while server.statistics.associations > 0 { try await Task.sleep(for: .milliseconds(100)) }
        }
        for socket in halfOpen { await socket.close() }
        for attacker in attackers { await attacker.close() }
        await server.close()
    }
}
