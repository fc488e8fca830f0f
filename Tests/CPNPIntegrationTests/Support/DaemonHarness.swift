// Support for the end-to-end tests: a real `cpnpd` process in its own temporary directory (Daemon),
// read through `cpnpd admin`, and a client running the core's ClientOrderStateMachine over the real
// DTLS client transport with a dev client certificate (TestClient). Every wait is bounded.
import Testing
import CPNPClient
import CPNPCore
import CPNPStorage
import Logging
import CPNPTransport
import CPNPTesting
import Foundation
import NIOCore
import Synchronization

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

    /// The exit status of `CPNPD_FAULT` crashes (cpnpd's TestFault).
    static let faultExitStatus: Int32 = 86

    var process = Process()
    let directory: URL
    let log: URL
    /// `--config FILE`, when the test wrote one; else the embedded demo.
    let configurationFile: URL?
    private(set) var port = 0
    /// The HTTP server's port (0 with `--no-http`).
    private(set) var httpPort = 0
    var pkiDirectory: URL { directory.appendingPathComponent(".cpnp/pki") }
    var database: URL { directory.appendingPathComponent(".cpnp/cpnpd.sqlite") }
    /// Arguments added to every launch (e.g. `--reuse-port`).
    var arguments: [String] = []
    /// A PostgreSQL database (`--database URL`) instead of the SQLite file in `directory`.
    var databaseURL: String?

    private init(configuration: String?) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnpd-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        log = directory.appendingPathComponent("cpnpd.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        if let configuration {
            let file = directory.appendingPathComponent("cpnpd.yaml")
            try Data(configuration.utf8).write(to: file)
            configurationFile = file
        } else {
            configurationFile = nil
        }
    }

    /// Starts cpnpd (embedded defaults, or `configuration` as YAML) on an ephemeral port and waits
    /// for its ready line. `environment` is added to the test's (e.g. `CPNPD_FAULT`); `prepare`
    /// runs in the new directory before the first launch (e.g. to write its own PKI).
    static func start(
        configuration: String? = nil, environment: [String: String] = [:], prepare: ((Daemon) throws -> Void)? = nil
    ) async throws -> Daemon {
        let d = try Daemon(configuration: configuration)
        try prepare?(d)
        try await d.launch(port: 0, environment: environment)
        return d
    }

    /// Starts one of several cpnpd sharing the PostgreSQL database at `databaseURL`: with the PKI of
    /// `sibling` when given (customers trust every instance), on `port` (0: an ephemeral one), with
    /// `arguments` added (e.g. `--reuse-port` to share a sibling's port).
    static func start(
        sharing databaseURL: String, configuration: String? = nil, sibling: Daemon? = nil, port: Int = 0, arguments: [String] = [],
        environment: [String: String] = [:]
    ) async throws -> Daemon {
        let d = try Daemon(configuration: configuration)
        d.databaseURL = databaseURL
        d.arguments = ["--database", databaseURL] + arguments
        if let sibling {
            try FileManager.default.createDirectory(at: d.pkiDirectory.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: sibling.pkiDirectory, to: d.pkiDirectory)
        }
        try await d.launch(port: port, environment: environment)
        return d
    }

    /// The demo configuration (`Examples/cpnpd.yaml`) with its `timers` section replaced.
    static func demoConfiguration(timers: String) throws -> String {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(of: "timers:"), let end = lines[start...].firstIndex(of: "") else {
            throw DaemonError(description: "no timers section in Examples/cpnpd.yaml")
        }
        lines.replaceSubrange(start..<end, with: ["timers:"] + timers.components(separatedBy: "\n").filter { !$0.isEmpty }.map { "  " + $0 })
        return lines.joined(separator: "\n")
    }

    /// Starts the daemon again in the same directory (same database, PKI and configuration) and port.
    func restart(environment: [String: String] = [:]) async throws {
        process = Process()
        try await launch(port: port, environment: environment)
    }

    /// kill -9.
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits (bounded) for the process to exit by itself; its status, or nil if it still runs.
    func waitForExit(timeout: Duration = .seconds(20)) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    private func launch(port: Int, environment: [String: String]) async throws {
        try? FileManager.default.removeItem(at: log)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        guard let binary = Daemon.binary else { throw DaemonError(description: "cpnpd binary not found") }
        process.executableURL = binary
        // The HTTP server on an ephemeral port (tests run daemons side by side), unless the test chose.
        let http = arguments.contains("--http") || arguments.contains("--no-http") ? [] : ["--http", "127.0.0.1:0"]
        process.arguments = ["--listen", "127.0.0.1:\(port)"] + http + (configurationFile.map { ["--config", $0.path] } ?? []) + arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            // Text or JSON logs (`--log-format json`).
            if let line = text.split(separator: "\n").first(where: { $0.contains("cpnpd ready") }),
                let range = line.range(of: "listen=127.0.0.1:") ?? line.range(of: "\"listen\":\"127.0.0.1:"),
                let port = Int(line[range.upperBound...].prefix { $0.isNumber })
            {
                self.port = port
                // The HTTP server starts with the service group, right after.
                if arguments.contains("--no-http") { return }
                if let line = text.split(separator: "\n").first(where: { $0.contains("HTTP server listening") }),
                    let range = line.range(of: "http=http") ?? line.range(of: "\"http\":\"http"),
                    let address = line[range.upperBound...].split(whereSeparator: { $0 == " " || $0 == "\"" }).first,
                    let colon = address.lastIndex(of: ":"),
                    let port = Int(address[address.index(after: colon)...])
                {
                    httpPort = port
                    return
                }
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        stop()
        throw DaemonError(description: "cpnpd did not become ready:\n" + logText)
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// `cpnpd admin …` against this daemon's database: its standard output and error.
    func admin(_ args: [String]) throws -> String {
        try Daemon.command(["admin"] + args + ["--database", databaseURL ?? database.path]).output
    }

    /// Runs `cpnpd ARGS` (in `directory`, when given) to its end: exit status, standard output and error.
    static func command(_ args: [String], in directory: URL? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = Daemon.binary
        p.arguments = args
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The lines of `cpnpd admin orders` naming `poid`.
    func orderLines(_ poid: ProviderOrderID) throws -> [Substring] {
        try admin(["orders"]).split(separator: "\n").filter { $0.contains(poid.rawValue) }
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

    /// Issues one more client certificate from the daemon's dev CA.
    func issueClientCertificate(_ name: String) throws {
        let issue = Process()
        issue.executableURL = Daemon.binary
        issue.arguments = ["pki", "client", name, "--dir", pkiDirectory.path]
        issue.standardOutput = FileHandle.nullDevice
        try issue.run()
        issue.waitUntilExit()
    }
}

/// `cpnpd admin show` output: the server's view of one order.
struct OrderView: CustomStringConvertible {
    let text: String

    init(_ text: String) { self.text = text }

    var lines: [Substring] { text.split(separator: "\n") }
    /// `Completed`, `Cancelled`, … (without the "(closed)" mark).
    var state: String? {
        lines.first { $0.hasPrefix("state: ") }.map { String($0.dropFirst(7).split(separator: " ")[0]) }
    }
    var isClosed: Bool { lines.contains { $0.hasPrefix("state: ") && $0.hasSuffix("(closed)") } }
    /// e.g. `activation explicit, active, purpose permanent`.
    var agreement: String? { lines.first { $0.hasPrefix("agreement: ") }.map { String($0.dropFirst(11)) } }
    /// `resource/direction` → Mbps, per reservation kind (`offered`, `committed`).
    func reservations(_ kind: String) -> [String: String] {
        var out: [String: String] = [:]
        for l in lines where l.hasPrefix("reservation: ") && l.hasSuffix("(\(kind))") {
            let f = l.split(separator: " ")
            out[String(f[1])] = String(f[2])
        }
        return out
    }
    var hasReservations: Bool { lines.contains { $0.hasPrefix("reservation: ") } }
    /// Audit lines: `time  FROM → TO event [client]`.
    var audit: [Substring] { lines.drop { $0 != "audit trail:" }.dropFirst().map { $0 } }
    /// How many audit entries entered `state`.
    func entries(into state: String) -> Int { audit.filter { $0.contains("→ \(state) ") }.count }
    func auditContains(_ event: String) -> Bool { audit.contains { $0.contains(event) } }
    var description: String { text }

    /// The order as the customer's agreement stands: state, agreement and reservations, and the
    /// audit trail without the refusals it records (a refused UPDATE, WITHDRAW or ACTIVATE is kept
    /// with its FAIL, RFC 8921 §11.3, and changes nothing else).
    var standing: [Substring] {
        lines.filter { l in
            !l.hasPrefix("revision") && !l.hasPrefix("updated") && !(l.contains(" refused: FAIL ") && !l.hasPrefix("state"))
        }
    }
}

struct DaemonError: Error, CustomStringConvertible { var description: String }

/// Buffers what a transport receives (one consumer of its stream).
final class Inbox: Sendable {
    let messages = Mutex<[CPNPInboundMessage]>([])
    func take() -> [CPNPInboundMessage] { messages.withLock { m in defer { m.removeAll() }; return m } }
}

/// A client: the core's client machine over the real DTLS client transport, with a log of what it
/// received and what its application learned.
final class TestClient: Sendable {
    let transport: DTLSTransport
    let server: CPNPPeer
    let session: CPNPSession
    private let inbox = Inbox()
    private let log = Mutex<(received: [CPNPMessage], events: [ClientOrderStateMachine.Event])>(([], []))
    /// How the application answers a request for more time; nil leaves it unanswered.
    let grantsMoreTime = Mutex<Bool?>(true)

    /// A client with the dev certificate `name`, bound to `host` (another loopback address such as
    /// 127.0.0.2 tests source-address filters), talking to the daemon at 127.0.0.1:`serverPort`.
    init(pki: URL, name: String, serverPort: Int, host: String = "127.0.0.1") async throws {
        let security = try CPNPSecurityConfiguration(
            certificateFile: pki.appendingPathComponent("client-\(name).pem").path,
            keyFile: pki.appendingPathComponent("client-\(name)-key.pem").path,
            trustRootsFile: pki.appendingPathComponent("ca.pem").path)
        let transport = try await DTLSTransport.client(bindingTo: host, configuration: DTLSTransportConfiguration(security: security))
        self.transport = transport
        server = try CPNPPeer.server(host: "127.0.0.1", port: serverPort)
        let local = CPNPEndpoint(host: host, port: UInt16(transport.localAddress?.port ?? 0))
        session = CPNPSession(local: local, remote: CPNPEndpoint(host: "127.0.0.1", port: UInt16(serverPort)))
        Task { [inbox] in
            for await m in transport.inbound { inbox.messages.withLock { $0.append(m) } }
        }
    }

    func close() async { await transport.close() }

    /// As customer `name` of `daemon`: QUOTATION, then ACCEPT of the OFFER, until Completed; the order.
    static func agree(_ customerOrderID: String, _ cpd: CPD, with daemon: Daemon, name: String = "acme") async throws -> ClientOrderStateMachine {
        let client = try await TestClient(pki: daemon.pkiDirectory, name: name, serverPort: daemon.port)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID(customerOrderID)!)
        var rng = SystemRandomNumberGenerator()
        try await client.act(&order) { try $0.quote(requestedCPD: cpd, session: client.session, now: TestClient.now(), using: &rng) }
        try await client.run(&order, until: { $0.state == .offerReceived })
        try await client.act(&order) { try $0.accept(now: TestClient.now()) }
        try await client.run(&order, until: { $0.state == .completed })
        await client.close()
        return order
    }

    static func now() -> CPNPTimestamp {
        CPNPTimestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)))
    }

    /// Every message received so far by ``run(_:timeout:until:)``, and what the application learned.
    var received: [CPNPMessage] { log.withLock { $0.received } }
    var events: [ClientOrderStateMachine.Event] { log.withLock { $0.events } }

    /// Performs a machine's actions: sends its messages, records its reports, and answers a request
    /// for more time as ``grantsMoreTime`` says.
    func perform(_ actions: [ClientOrderStateMachine.Action], _ order: inout ClientOrderStateMachine) async throws {
        for a in actions {
            switch a {
            case .send(let m):
                try await transport.send(CPNPCodec.encode(m), to: server)
            case .report(let e):
                log.withLock { $0.events.append(e) }
                if case .moreTimeRequested = e, let grant = grantsMoreTime.withLock({ $0 }) {
                    try await perform(order.moreTimeDecided(granted: grant, now: Self.now()), &order)
                }
            default:
                break
            }
        }
    }

    /// Runs a local command of `order` (quote, accept, withdraw …) and performs its actions.
    func act(_ order: inout ClientOrderStateMachine, _ command: (inout ClientOrderStateMachine) throws -> [ClientOrderStateMachine.Action]) async throws {
        let actions = try command(&order)
        try await perform(actions, &order)
    }

    /// Feeds received messages to `order` until `done` holds; fails after `timeout`. While a request
    /// is pending and nothing arrives for a second, renews the DTLS session (the server may have
    /// restarted) and fires the retransmission timer; while the server processes the request and
    /// nothing arrives for `silenceProbeAfter` (the engine's default interval), it fires the silence
    /// probe the same way (RFC 8921 §11.4).
    func run(
        _ order: inout ClientOrderStateMachine, timeout: Duration = .seconds(30), silenceProbeAfter: Duration = .seconds(15),
        until done: (ClientOrderStateMachine) -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var quietSince = ContinuousClock.now
        while !done(order) {
            guard ContinuousClock.now < deadline else { throw DaemonError(description: "timed out in state \(order.state.rawValue)") }
            let batch = inbox.take()
            for m in batch {
                let message = try CPNPCodec.decode(m.bytes)
                log.withLock { $0.received.append(message) }
                try await perform(order.messageReceived(message, session: session, now: Self.now()), &order)
            }
            if batch.isEmpty {
                if ContinuousClock.now - quietSince > .seconds(1), order.transaction?.pending != nil {
                    await transport.renewSession(with: server)
                    try await perform(order.timerFired(.retransmission, now: Self.now()), &order)
                    quietSince = ContinuousClock.now
                } else if ContinuousClock.now - quietSince > silenceProbeAfter, order.state == .serverProcessing {
                    await transport.renewSession(with: server)
                    try await perform(order.timerFired(.silenceProbe, now: Self.now()), &order)
                    quietSince = ContinuousClock.now
                }
                try await Task.sleep(for: .milliseconds(20))
            } else {
                quietSince = ContinuousClock.now
            }
        }
    }

    // MARK: Raw messages (bad input)

    func send(_ m: CPNPMessage) async throws { try await sendRaw(CPNPCodec.encode(m)) }

    func sendRaw(_ bytes: [UInt8]) async throws { try await transport.send(bytes, to: server) }

    /// Takes and decodes everything received and not yet consumed (floods and their answers).
    func takeReceived() throws -> [CPNPMessage] { try inbox.take().map { try CPNPCodec.decode($0.bytes) } }

    /// Sends `probe` (which must get an answer) and returns everything received before and with that
    /// answer. The server handles messages in order, so an answer to anything sent before the probe
    /// would arrive first: an empty `before` shows that an earlier message was answered with silence.
    /// Exact repeats of messages ``run(_:timeout:until:)`` already received are left out.
    func roundTrip(_ probe: CPNPMessage, timeout: Duration = .seconds(10)) async throws -> (before: [CPNPMessage], answer: CPNPMessage) {
        try await send(probe)
        let deadline = ContinuousClock.now + timeout
        var before: [CPNPMessage] = []
        while ContinuousClock.now < deadline {
            let batch = inbox.take()
            for (i, m) in batch.enumerated() {
                let message = try CPNPCodec.decode(m.bytes)
                if message.transactionID == probe.transactionID {
                    inbox.messages.withLock { $0.insert(contentsOf: batch[(i + 1)...], at: 0) }
                    return (before, message)
                }
                // A late copy of an answer already received (the server resending its cached answer to
                // an earlier retransmission, e.g. on a loaded machine) answers nothing new.
                if received.contains(message) { continue }
                before.append(message)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw DaemonError(description: "no answer to \(probe.method) (received before: \(before.map(\.method)))")
    }
}

extension CPD {
    /// One site in Marseille on the 200 Mbps link PE-MRS-1:xe-1/0/0; `bandwidth` is its JSON value
    /// both ways (`50`, `{"min":60,"max":200}`).
    static func marseille(_ bandwidth: String) throws -> CPD {
        try site("CE-MRS-1", site: "MARSEILLE-BR", link: "PE-MRS-1:xe-1/0/0", bandwidth: bandwidth)
    }

    /// One site in Paris on the 10 Gbps link PE-PAR-1:xe-0/0/0.
    static func paris(_ mbps: Int) throws -> CPD {
        try site("CE-PAR-9", site: "PARIS-DC1", link: "PE-PAR-1:xe-0/0/0", bandwidth: "\(mbps)")
    }

    static func site(_ node: String, site: String, link: String, bandwidth: String) throws -> CPD {
        let text = """
        {"components":[{"profiles":[{"customer-nodes":[{"identifier":"\(node)","link-identifiers":["\(link)"],"localization":{"site-id":"\(site)","country":"FR"}}],
        "scope":[{"customer-node":"\(node)","direction":"outgoing","reachability":"global"}],
        "capacity":[{"customer-node":"\(node)","incoming-bandwidth-mbps":\(bandwidth),"outgoing-bandwidth-mbps":\(bandwidth)}],
        "conformance-traffic":{"enforcement":"policing","out-of-profile-action":"discard"}}]}]}
        """
        return try CPD(json: JSONParser.parse(Array(text.utf8)), at: .root)
    }
}

/// A fresh customer order id with a readable prefix.
func customerOrderID(_ prefix: String) -> CustomerOrderID {
    CustomerOrderID("\(prefix)-\(UUID().uuidString.prefix(8))")!
}

/// Starts a daemon and a client, runs `body`, and always stops both.
func withDaemon<T>(
    configuration: String? = nil, environment: [String: String] = [:], client name: String = "acme",
    _ body: (Daemon, TestClient) async throws -> T
) async throws -> T {
    let daemon = try await Daemon.start(configuration: configuration, environment: environment)
    defer { daemon.stop() }
    let client = try await TestClient(pki: daemon.pkiDirectory, name: name, serverPort: daemon.port)
    do {
        let result = try await body(daemon, client)
        await client.close()
        daemon.stop()
        try? FileManager.default.removeItem(at: daemon.directory)
        return result
    } catch {
        await client.close()
        throw DaemonError(description: "\(error)\n--- cpnpd log ---\n\(daemon.logText)")
    }
}

/// acme's client engine over DTLS (its certificate from `pki`), retrying as a patient customer does:
/// 300 ms doubling 7 times, a WITHDRAW's lost final ACK asked again after a minute.
func customerEngine(pki: URL, store: ClientOrderStore? = nil) async throws -> CPNPClientEngine {
    let security = try CPNPSecurityConfiguration(
        certificateFile: pki.appendingPathComponent("client-acme.pem").path, keyFile: pki.appendingPathComponent("client-acme-key.pem").path,
        trustRootsFile: pki.appendingPathComponent("ca.pem").path)
    let logger = quietLogger("e2e-customer")
    let transport = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: security), logger: logger)
    let engine = CPNPClientEngine(
        transport: transport, store: try store ?? ClientOrderStore.inMemory(),
        configuration: CPNPClientEngine.Configuration(
            machine: .init(retransmission: RetransmissionPolicy(initialInterval: .milliseconds(300), maximumRetries: 7), withdrawalRetryInterval: .seconds(60)),
            expectedResponseTime: .seconds(60), renewSessionWhenUnanswered: true),
        logger: logger)
    await engine.start()
    return engine
}
