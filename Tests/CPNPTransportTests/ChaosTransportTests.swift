import CPNPTransport
import CPNPTesting
import Foundation
import Logging
import NIOCore
import Testing

/// Numbered test messages: `m<index>`.
private func message(_ index: Int) -> [UInt8] { Array("m\(index)".utf8) }
private func index(_ bytes: [UInt8]) -> Int? {
    guard bytes.first == UInt8(ascii: "m") else { return nil }
    return Int(String(decoding: bytes.dropFirst(), as: UTF8.self))
}
private let sentinel = Array("end".utf8)

// The bounds below guard against a hang: the suite's other tests share the two pool threads every
// hop of these thousands of sends resumes on, and once took a send loop to 95 s.

/// Reads `stream` until `sentinel` (excluded).
private func readUntilSentinel(_ stream: AsyncStream<CPNPInboundMessage>, seconds: Double = 60) async throws -> [CPNPInboundMessage] {
    try await withDeadline(seconds) {
        var out: [CPNPInboundMessage] = []
        for await m in stream {
            if m.bytes == sentinel { return out }
            out.append(m)
        }
        throw TimeoutError()
    }
}

/// Reads exactly `count` messages from `stream`.
private func read(_ count: Int, from stream: AsyncStream<CPNPInboundMessage>, seconds: Double = 60) async throws -> [CPNPInboundMessage] {
    try await withDeadline(seconds) {
        var out: [CPNPInboundMessage] = []
        var iterator = stream.makeAsyncIterator()
        while out.count < count {
            guard let m = await iterator.next() else { throw TimeoutError() }
            out.append(m)
        }
        return out
    }
}

private func eventually(_ seconds: Double = 60, _ condition: @escaping @Sendable () -> Bool) async throws {
    try await withDeadline(seconds) {
        while !condition() { try await Task.sleep(for: .milliseconds(5)) }
    }
}

private func udp() async throws -> PlainUDPTransport {
    var logger = Logger(label: "test.chaos.udp")
    logger.logLevel = .error  // not the start warning of every socket
    return try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: logger)
}

/// `count` numbered messages through `sender` (awaited one by one), then the sentinel through
/// the unwrapped transport: on loopback it arrives after every undelayed message.
private func sendNumbered(_ count: Int, through sender: ChaosTransport, to peer: CPNPPeer) async throws {
    for i in 0..<count { try await sender.send(message(i), to: peer) }
    try await sender.inner.send(sentinel, to: peer)
}

/// How many times each index was received.
private func tally(_ received: [CPNPInboundMessage], count: Int) -> [Int] {
    var seen = [Int](repeating: 0, count: count)
    for m in received { if let i = index(m.bytes) { seen[i] += 1 } }
    return seen
}

/// Tolerance for an observed proportion over `n` Bernoulli(`p`) trials: 4.5 standard deviations,
/// so a correct injector fails for a random seed with probability below 1e-5 (normal
/// approximation, np and n(1-p) ≥ 300 here). The seeds are fixed, so the tests are deterministic.
private func tolerance(_ p: Double, _ n: Int) -> Double { 4.5 * (p * (1 - p) / Double(n)).squareRoot() }

// The limit guards against a hang, not a speed: the work is fixed, and under the whole suite on
// a loaded 2-CPU machine a test took over two minutes.
@Suite("Chaos transport: fault injection over loopback", .timeLimit(.minutes(4)))
struct ChaosTransportTests {
    @Test func zeroFaultsAreTransparent() async throws {
        let a = ChaosTransport(wrapping: try await udp(), seed: 1)
        let b = ChaosTransport(wrapping: try await udp(), seed: 2)
        #expect(a.kind == .plainUDP && a.maximumMessageSize == 16_384 && a.localAddress == a.inner.localAddress)
        let peerB = CPNPPeer(address: try #require(b.localAddress))
        try await sendNumbered(300, through: a, to: peerB)
        let received = try await readUntilSentinel(b.inbound)
        #expect(received.map(\.bytes) == (0..<300).map(message))
        #expect(received.allSatisfy { $0.remoteAddress.port == a.localAddress?.port })
        // And back, through both wrappers.
        try await b.send(Array("reply".utf8), to: received[0].peer)
        #expect(try await next(a.inbound).bytes == Array("reply".utf8))

        func counters(_ n: Int) -> ChaosTransport.Counters {
            var c = ChaosTransport.Counters()
            c.messages = n
            c.delivered = n
            return c
        }
        #expect(a.counters(.outgoing) == counters(300) && a.counters(.incoming) == counters(1))
        #expect(b.counters(.incoming) == counters(301) && b.counters(.outgoing) == counters(1))  // with the sentinel
        do {
            try await a.send([UInt8](repeating: 0x20, count: 16_385), to: peerB)
            Issue.record("oversized message sent")
        } catch {
            #expect(error.code == .messageTooLarge(size: 16_385, limit: 16_384))
        }
        await a.close()
        await b.close()
    }

    @Test func scheduleRatesMatchTheProbabilities() {
        let faults = ChaosTransport.Faults(drop: 0.2, duplicate: 0.1, reorder: 0.05, delay: .milliseconds(0)...(.milliseconds(50)))
        var schedule = ChaosTransport.Schedule(faults: faults, seed: 0xC0FFEE)
        let n = 200_000
        var dropped = 0, duplicated = 0, reordered = 0, kept = 0
        var delays: [Duration] = []
        for _ in 0..<n {
            let d = schedule.next()
            if d.drop { dropped += 1; continue }
            kept += 1
            if d.copies.count == 2 { duplicated += 1 }
            if d.reorder { reordered += 1 }
            delays += d.copies
        }
        #expect(abs(Double(dropped) / Double(n) - 0.2) < tolerance(0.2, n))
        #expect(abs(Double(duplicated) / Double(kept) - 0.1) < tolerance(0.1, kept))
        #expect(abs(Double(reordered) / Double(kept) - 0.05) < tolerance(0.05, kept))
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= .milliseconds(50) })
        // Uniform on [0, 50] ms: mean 25 ms, standard deviation 50/√12 ms.
        let mean = delays.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1e3 }.reduce(0, +) / Double(delays.count)
        #expect(abs(mean - 25) < 4.5 * (50 / 12.0.squareRoot()) / Double(delays.count).squareRoot())
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func outgoingDropAndDuplicateRatesMatchOverUDP(seed: UInt64) async throws {
        let n = 3_000
        let sender = ChaosTransport(wrapping: try await udp(), outgoing: .init(drop: 0.2, duplicate: 0.1), seed: seed)
        let receiver = try await udp()
        try await sendNumbered(n, through: sender, to: CPNPPeer(address: try #require(receiver.localAddress)))
        let seen = tally(try await readUntilSentinel(receiver.inbound), count: n)
        let lost = seen.filter { $0 == 0 }.count
        let twice = seen.filter { $0 == 2 }.count
        #expect(seen.allSatisfy { $0 <= 2 })
        // Loopback loses nothing here: what arrived is exactly what the injector says it did.
        let c = sender.counters(.outgoing)
        #expect(c.messages == n && c.dropped == lost && c.duplicated == twice && c.delivered == n - lost + twice)
        #expect(abs(Double(lost) / Double(n) - 0.2) < tolerance(0.2, n), "drop rate \(Double(lost) / Double(n))")
        #expect(abs(Double(twice) / Double(n - lost) - 0.1) < tolerance(0.1, n - lost), "duplicate rate \(Double(twice) / Double(n - lost))")
        #expect(c.delayed == 0 && c.reordered == 0 && c.cancelled == 0)
        await sender.close()
        await receiver.close()
    }

    @Test func incomingDropAndDuplicateRatesMatchOverUDP() async throws {
        let n = 3_000
        let sender = try await udp()
        let receiver = ChaosTransport(wrapping: try await udp(), incoming: .init(drop: 0.3, duplicate: 0.2), seed: 99)
        let peer = CPNPPeer(address: try #require(receiver.localAddress))
        for i in 0..<n { try await sender.send(message(i), to: peer) }
        try await eventually { receiver.counters(.incoming).messages == n }
        let c = receiver.counters(.incoming)
        let seen = tally(try await read(c.delivered, from: receiver.inbound), count: n)
        let lost = seen.filter { $0 == 0 }.count
        let twice = seen.filter { $0 == 2 }.count
        #expect(c.dropped == lost && c.duplicated == twice && c.delivered == n - lost + twice)
        #expect(abs(Double(lost) / Double(n) - 0.3) < tolerance(0.3, n))
        #expect(abs(Double(twice) / Double(n - lost) - 0.2) < tolerance(0.2, n - lost))
        // The outgoing direction is untouched.
        #expect(receiver.counters(.outgoing) == ChaosTransport.Counters())
        await sender.close()
        await receiver.close()
    }

    @Test func sameSeedSameDecisions() async throws {
        let faults = ChaosTransport.Faults(drop: 0.3, duplicate: 0.3, reorder: 0.2, delay: .zero ... .milliseconds(5))
        var s1 = ChaosTransport.Schedule(faults: faults, seed: 42)
        var s2 = ChaosTransport.Schedule(faults: faults, seed: 42)
        var s3 = ChaosTransport.Schedule(faults: faults, seed: 43)
        let d1 = (0..<1_000).map { _ in s1.next() }
        #expect(d1 == (0..<1_000).map { _ in s2.next() })
        #expect(d1 != (0..<1_000).map { _ in s3.next() })

        // Over the network: the same seed loses and repeats the same messages.
        func run(_ seed: UInt64) async throws -> (seen: [Int], counters: ChaosTransport.Counters) {
            let sender = ChaosTransport(wrapping: try await udp(), outgoing: .init(drop: 0.3, duplicate: 0.3), seed: seed)
            let receiver = try await udp()
            try await sendNumbered(500, through: sender, to: CPNPPeer(address: try #require(receiver.localAddress)))
            let received = try await readUntilSentinel(receiver.inbound)
            let c = sender.counters(.outgoing)
            await sender.close()
            await receiver.close()
            return (received.compactMap { index($0.bytes) }, c)
        }
        let first = try await run(42)
        let again = try await run(42)
        let other = try await run(43)
        #expect(first.seen == again.seen && first.counters == again.counters)
        #expect(first.seen != other.seen)
        #expect(first.counters.dropped > 0 && first.counters.duplicated > 0)
    }

    @Test func reorderingSwapsAdjacentMessages() async throws {
        let n = 500
        let sender = ChaosTransport(wrapping: try await udp(), outgoing: .init(reorder: 0.3, reorderWindow: .milliseconds(50)), seed: 5)
        let receiver = try await udp()
        let peer = CPNPPeer(address: try #require(receiver.localAddress))
        for i in 0..<n { try await sender.send(message(i), to: peer) }
        let received = try await read(n, from: receiver.inbound).compactMap { index($0.bytes) }
        #expect(Set(received) == Set(0..<n) && received.count == n)
        #expect(received != Array(0..<n))
        // Each held message is overtaken by exactly its successor: one adjacent inversion each.
        let inversions = zip(received, received.dropFirst()).filter { $0 > $1 }.count
        let c = sender.counters(.outgoing)
        #expect(c.reordered > 0 && inversions == c.reordered, "\(inversions) inversions, \(c.reordered) reordered")
        #expect(zip(received.indices, received).allSatisfy { abs($0 - $1) <= 1 })
        await sender.close()
        await receiver.close()
    }

    @Test func delaysDoNotBlockTheCaller() async throws {
        let sender = ChaosTransport(wrapping: try await udp(), outgoing: .init(delay: .milliseconds(300)...(.milliseconds(400))), seed: 8)
        let receiver = try await udp()
        let peer = CPNPPeer(address: try #require(receiver.localAddress))
        let clock = ContinuousClock()
        let start = clock.now
        for i in 0..<20 { try await sender.send(message(i), to: peer) }
        #expect(clock.now - start < .milliseconds(250))
        let received = try await read(20, from: receiver.inbound)
        #expect(clock.now - start >= .milliseconds(300))
        #expect(Set(received.compactMap { index($0.bytes) }) == Set(0..<20))
        #expect(sender.counters(.outgoing).delayed == 20)
        await sender.close()
        await receiver.close()
    }

    @Test func closeFinishesInboundAndCancelsDelayedDeliveries() async throws {
        // Delays far longer than the test: nothing may arrive by itself, however loaded the machine.
        let sender = ChaosTransport(wrapping: try await udp(), outgoing: .init(delay: .seconds(60)...(.seconds(60))), seed: 3)
        let receiver = ChaosTransport(wrapping: try await udp(), incoming: .init(delay: .seconds(60)...(.seconds(60))), seed: 4)
        let peer = CPNPPeer(address: try #require(receiver.localAddress))
        // Incoming: ten messages wait in the receiver's injector; closing abandons them.
        for i in 0..<10 { try await sender.inner.send(message(i), to: peer) }
        try await eventually { receiver.counters(.incoming).messages == 10 }
        #expect(receiver.runningTasks == 10)
        await receiver.close()
        let afterClose = try await withDeadline(0.5) { await receiver.inbound.reduce(into: 0) { n, _ in n += 1 } }
        #expect(afterClose == 0)
        #expect(receiver.counters(.incoming).cancelled == 10 && receiver.counters(.incoming).delivered == 0)
        // The scheduled tasks end at once, not when their delay would have run out.
        try await eventually(0.5) { receiver.runningTasks == 0 }

        // Outgoing: five delayed sends are cancelled; nothing reaches the peer.
        let listener = try await udp()
        let listenerPeer = CPNPPeer(address: try #require(listener.localAddress))
        for i in 0..<5 { try await sender.send(message(i), to: listenerPeer) }
        await sender.close()
        #expect(sender.counters(.outgoing).cancelled == 5)
        try await eventually(0.5) { sender.runningTasks == 0 }
        try await Task.sleep(for: .milliseconds(1_300))
        try await listener.send(sentinel, to: listenerPeer)
        #expect(try await readUntilSentinel(listener.inbound).isEmpty)
        do {
            try await sender.send(message(0), to: listenerPeer)
            Issue.record("sent after close")
        } catch {
            #expect(error.code == .closed)
        }
        await listener.close()
    }

    @Test func everyCopyIsDeliveredOrCancelled() async throws {
        let sender = ChaosTransport(wrapping: try await udp(), outgoing: .init(duplicate: 1, delay: .milliseconds(10)...(.seconds(60))), seed: 21)
        let listener = try await udp()
        let peer = CPNPPeer(address: try #require(listener.localAddress))
        for i in 0..<20 { try await sender.send(message(i), to: peer) }
        // Close once some copies were delivered: the others (delays up to a minute) are still pending.
        try await eventually(30) { sender.counters(.outgoing).delivered > 0 }
        await sender.close()
        let c = sender.counters(.outgoing)
        #expect(c.delivered > 0 && c.cancelled > 0, "\(c)")
        #expect(c.delivered + c.cancelled == c.messages + c.duplicated && c.duplicated == 20, "\(c)")
        try await listener.send(sentinel, to: peer)
        #expect(try await readUntilSentinel(listener.inbound).count == c.delivered)
        await listener.close()
    }

    @Test func dropAndDuplicateOverDTLS() async throws {
        let certs = TestCertificates.shared
        let server = try await DTLSTransport.server(
            host: "127.0.0.1", port: 0, configuration: DTLSTransportConfiguration(security: certs.security(certs.server)))
        let client = ChaosTransport(
            wrapping: try await DTLSTransport.client(
                bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: certs.security(certs.client))),
            outgoing: .init(drop: 0.25, duplicate: 0.25), incoming: .init(duplicate: 1), seed: 11)
        let peer = CPNPPeer(address: try #require(server.localAddress), serverName: "localhost")
        // The handshake is below the injector: only CPNP messages are dropped.
        // Generous deadlines: 400 DTLS records on a loaded CI machine.
        try await withDeadline(60) { try await client.inner.send(Array("hello".utf8), to: peer) }
        #expect(try await next(server.inbound).bytes == Array("hello".utf8))
        try await withDeadline(120) { try await sendNumbered(400, through: client, to: peer) }
        let received = try await readUntilSentinel(server.inbound, seconds: 120)
        #expect(received.allSatisfy { $0.identity?.commonName == "customer-a" })
        let seen = tally(received, count: 400)
        let c = client.counters(.outgoing)
        #expect(c.dropped == seen.filter { $0 == 0 }.count && c.duplicated == seen.filter { $0 == 2 }.count)
        #expect(c.dropped > 50 && c.duplicated > 50)
        // Incoming duplication: every answer arrives twice, with the server's identity.
        try await withDeadline { try await server.send(Array("answer".utf8), to: received[0].peer) }
        let answers = try await read(2, from: client.inbound)
        #expect(answers.allSatisfy { $0.bytes == Array("answer".utf8) && $0.identity?.dnsNames == ["localhost"] })
        await client.close()
        await server.close()
    }
}
