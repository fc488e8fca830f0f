// End to end: a real `cpnpd` process on loopback with its embedded defaults (demo policy, dev PKI
// made on first run, SQLite), and a client running the core's ClientOrderStateMachine over the real
// DTLS transport with the dev client certificate. Bounded by deadlines; the daemon is always stopped.
import Testing
import CPNPCore
import CPNPTransport
import Foundation
import NIOCore
import Synchronization

@Suite(.enabled(if: Daemon.binary != nil, "cpnpd not found next to the test bundle: run `swift build` before `swift test`"), .serialized)
struct DaemonEndToEndTests {
    @Test(.timeLimit(.minutes(2)))
    func quoteOfferAcceptReachesCompletedOverDTLS() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let client = try await TestClient(pki: daemon.pkiDirectory, name: "acme", serverPort: daemon.port)
        defer { Task { await client.transport.close() } }

        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("e2e-\(UUID().uuidString.prefix(8))")!)
        var rng = SystemRandomNumberGenerator()
        let cpd = try loadExample("l3vpn-3-sites.json")
        let now = TestClient.now()
        try await client.perform(try order.quote(
            requestedCPD: cpd, informationElements: InformationElements(negotiationOptions: NegotiationOptions(costRequested: true)),
            expectedResponseTime: now.adding(.seconds(60)), session: client.session, now: now, using: &rng))
        try await client.run(&order, until: { $0.state == .offerReceived })
        let offer = try #require(order.offer)
        #expect(offer.offeredCPD.comparison(against: cpd).satisfies)
        #expect(offer.informationElements?.cost?.currency == "EUR")

        try await client.perform(try order.accept(now: TestClient.now()))
        try await client.run(&order, until: { $0.state == .completed })
        #expect(order.agreement?.acceptedCPD == offer.offeredCPD)

        // The operator sees the order Completed with its audit trail.
        let show = try daemon.admin(["show", order.providerOrderID!.rawValue])
        #expect(show.contains("state: Completed"))
        #expect(show.contains("OfferProposed") && show.contains("AcceptReceived"))

        // SIGTERM: graceful shutdown, exit status 0.
        #expect(daemon.terminate() == 0)
    }

    /// kill -9 between OFFER and ACCEPT: after a restart on the same database the order, its timers
    /// and its reservation come back, and the client's ACCEPT completes the negotiation.
    @Test(.timeLimit(.minutes(2)))
    func killedBetweenOfferAndAcceptTheNegotiationCompletesAfterRestart() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let client = try await TestClient(pki: daemon.pkiDirectory, name: "acme", serverPort: daemon.port)
        defer { Task { await client.transport.close() } }
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("crash-\(UUID().uuidString.prefix(8))")!)
        var rng = SystemRandomNumberGenerator()
        try await client.perform(try order.quote(
            requestedCPD: try loadExample("l3vpn-3-sites.json"), session: client.session, now: TestClient.now(), using: &rng))
        try await client.run(&order, until: { $0.state == .offerReceived })
        let poid = try #require(order.providerOrderID)
        let reservedBefore = try daemon.admin(["show", poid.rawValue]).split(separator: "\n").filter { $0.hasPrefix("reservation:") }
        #expect(!reservedBefore.isEmpty)

        daemon.kill9()
        try await daemon.restart()

        try await client.perform(try order.accept(now: TestClient.now()))
        try await client.run(&order, until: { $0.state == .completed })
        let show = try daemon.admin(["show", poid.rawValue])
        #expect(show.contains("state: Completed"))
        // Exactly the offered amounts, now committed: nothing lost, nothing doubled.
        let reservedAfter = show.split(separator: "\n").filter { $0.hasPrefix("reservation:") }
        #expect(reservedAfter.map { $0.replacingOccurrences(of: "(committed)", with: "") }
            == reservedBefore.map { $0.replacingOccurrences(of: "(offered)", with: "") })
        #expect(try daemon.admin(["orders"]).split(separator: "\n").filter { $0.contains(poid.rawValue) }.count == 1)
    }

    @Test(.timeLimit(.minutes(2)))
    func anUnknownClientIsRefusedWithFail3() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        // A certificate from the same CA but not a customer profile: authenticated, not authorized.
        let pki = daemon.pkiDirectory
        let issue = Process()
        issue.executableURL = Daemon.binary
        issue.arguments = ["pki", "client", "initech", "--dir", pki.path]
        issue.standardOutput = FileHandle.nullDevice
        try issue.run()
        issue.waitUntilExit()
        let client = try await TestClient(pki: pki, name: "initech", serverPort: daemon.port)
        defer { Task { await client.transport.close() } }
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("initech-1")!)
        var rng = SystemRandomNumberGenerator()
        try await client.perform(try order.quote(requestedCPD: try loadExample("l3vpn-3-sites.json"), session: client.session, now: TestClient.now(), using: &rng))
        try await client.run(&order, until: { $0.state == .cancelled })
        #expect(order.lastEnd == .failed(.authorizationFailed, diagnostic: "the client identity is not a known customer"))
    }
}

/// A `cpnpd` child process in its own temporary directory.
final class Daemon: @unchecked Sendable {
    static let binary: URL? = {
        let fm = FileManager.default
        if let path = ProcessInfo.processInfo.environment["CPNPD_BINARY"] { return fm.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil }
        var dirs: [URL] = []
        if let e = Bundle.main.executableURL { dirs.append(e.resolvingSymlinksInPath().deletingLastPathComponent()) }
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") { dirs.append(b.bundleURL.deletingLastPathComponent()) }
        dirs.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
        return dirs.map { $0.appendingPathComponent("cpnpd") }.first { fm.isExecutableFile(atPath: $0.path) }
    }()

    var process = Process()
    let directory: URL
    let log: URL
    private(set) var port = 0
    var pkiDirectory: URL { directory.appendingPathComponent(".cpnp/pki") }
    var database: URL { directory.appendingPathComponent(".cpnp/cpnpd.sqlite") }

    private init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnpd-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        log = directory.appendingPathComponent("cpnpd.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    }

    /// Starts cpnpd with its embedded defaults on an ephemeral port and waits for its ready line.
    static func start() async throws -> Daemon {
        let d = try Daemon()
        try await d.launch(port: 0)
        return d
    }

    /// Starts the daemon again in the same directory (same database and PKI) and port.
    func restart() async throws {
        process = Process()
        try await launch(port: port)
    }

    /// kill -9.
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    private func launch(port: Int) async throws {
        let d = self
        try? FileManager.default.removeItem(at: d.log)
        _ = FileManager.default.createFile(atPath: d.log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: d.log)
        guard let binary = Daemon.binary else { throw DaemonError(description: "cpnpd binary not found") }
        d.process.executableURL = binary
        d.process.arguments = ["--listen", "127.0.0.1:\(port)"]
        d.process.currentDirectoryURL = d.directory
        d.process.standardOutput = handle
        d.process.standardError = handle
        try d.process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: d.log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("cpnpd ready") }),
                let range = line.range(of: "listen=127.0.0.1:"),
                let port = Int(line[range.upperBound...].prefix { $0.isNumber })
            {
                d.port = port
                return
            }
            if !d.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        d.stop()
        throw DaemonError(description: "cpnpd did not become ready:\n" + ((try? String(contentsOf: d.log, encoding: .utf8)) ?? ""))
    }

    /// `cpnpd admin …` against this daemon's database.
    func admin(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = Daemon.binary
        p.arguments = ["admin"] + args + ["--database", database.path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// SIGTERM, then the exit status (kills after 10 s).
    func terminate() -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}

struct DaemonError: Error, CustomStringConvertible { var description: String }

/// A client: the core's client machine over the real DTLS client transport.
struct TestClient {
    let transport: DTLSTransport
    let server: CPNPPeer
    let session: CPNPSession
    let received: Inbox

    /// Buffers what the transport receives (one consumer of its stream).
    final class Inbox: Sendable {
        let messages = Mutex<[CPNPInboundMessage]>([])
        func take() -> [CPNPInboundMessage] { messages.withLock { m in defer { m.removeAll() }; return m } }
    }

    init(pki: URL, name: String, serverPort: Int) async throws {
        let security = try CPNPSecurityConfiguration(
            certificateFile: pki.appendingPathComponent("client-\(name).pem").path,
            keyFile: pki.appendingPathComponent("client-\(name)-key.pem").path,
            trustRootsFile: pki.appendingPathComponent("ca.pem").path)
        let transport = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: security))
        self.transport = transport
        server = try CPNPPeer.server(host: "127.0.0.1", port: serverPort)
        let local = CPNPEndpoint(host: "127.0.0.1", port: UInt16(transport.localAddress?.port ?? 0))
        session = CPNPSession(local: local, remote: CPNPEndpoint(host: "127.0.0.1", port: UInt16(serverPort)))
        let inbox = Inbox()
        received = inbox
        Task {
            for await m in transport.inbound { inbox.messages.withLock { $0.append(m) } }
        }
    }

    static func now() -> CPNPTimestamp {
        CPNPTimestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)))
    }

    /// Sends the messages among `actions`.
    func perform(_ actions: [ClientOrderStateMachine.Action]) async throws {
        for case .send(let m) in actions { try await transport.send(CPNPCodec.encode(m), to: server) }
    }

    /// Feeds received messages (and, every second without any, the retransmission timer) to
    /// `order` until `done` holds; fails after 30 s.
    func run(_ order: inout ClientOrderStateMachine, until done: (ClientOrderStateMachine) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var quietSince = ContinuousClock.now
        while !done(order) {
            guard ContinuousClock.now < deadline else { throw DaemonError(description: "timed out in state \(order.state.rawValue)") }
            let batch = received.take()
            for m in batch {
                let message = try CPNPCodec.decode(m.bytes)
                try await perform(order.messageReceived(message, session: session, now: TestClient.now()))
            }
            if batch.isEmpty {
                if ContinuousClock.now - quietSince > .seconds(1) {
                    // Unanswered: the server may have restarted and lost the DTLS association.
                    await transport.renewSession(with: server)
                    try await perform(order.timerFired(.retransmission, now: TestClient.now()))
                    quietSince = ContinuousClock.now
                }
                try await Task.sleep(for: .milliseconds(20))
            } else {
                quietSince = ContinuousClock.now
            }
        }
    }
}

func loadExample(_ name: String) throws -> CPD {
    var root = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { root.deleteLastPathComponent() }
    let bytes = try Data(contentsOf: root.appendingPathComponent("Examples/\(name)"))
    return try CPD(json: JSONParser.parse(Array(bytes)), at: .root)
}
