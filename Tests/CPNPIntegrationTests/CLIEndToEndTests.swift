// End to end with both real programs: the `cpnp` CLI against real `cpnpd` processes over DTLS on
// loopback (docs/client.md). Each command is a separate process, as an engineer would run it; the CLI's
// state comes from `cpnp show --json`, the provider's from `cpnpd admin show`.
import CPNPCore
import CPNPTesting
import Foundation
import Testing
#if canImport(Glibc)
    import Glibc
#endif

@Suite(.enabled(if: Daemon.binary != nil && CLI.binary != nil, "cpnpd/cpnp not found next to the test bundle: run `swift build` first"), .serialized)
struct CLIEndToEndTests {
    @Test(.timeLimit(.minutes(2)))
    func quoteYesReachesCompletedOnBothSides() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let cli = try CLI(daemon: daemon)
        let r = try await cli.run(["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--yes", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try r.object()
        #expect(out["outcome"] == .string("completed"))
        let coid = try #require(out["customer-order-id"]?.stringValue)
        let poid = try #require(out["agreement"]?.objectValue?["provider-order-id"]?.stringValue)
        #expect(try await cli.state(coid) == "Completed")
        #expect(try await daemon.show(ProviderOrderID(poid)!).state == "Completed")
        // Human output shows the offer clause by clause and the price.
        let human = try await cli.run(["show", coid])
        #expect(human.stdout.contains("price:") && human.stdout.contains("state: Completed"))
    }

    @Test(.timeLimit(.minutes(2)))
    func quoteThenDeclineEndsCancelledOnBothSides() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let cli = try CLI(daemon: daemon)
        let r = try await cli.run(["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--order-id", "decline-1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("capacity:") && r.stdout.contains("as requested") && r.stdout.contains("cpnp accept decline-1"))
        #expect(try await cli.state("decline-1") == "OfferProcessing")
        let poid = try #require(try await cli.show("decline-1")["provider-order-id"]?.stringValue)
        #expect(try await daemon.show(ProviderOrderID(poid)!).state == "ProcessingReceived")
        let d = try await cli.run(["decline", "decline-1", "--reason", "1"])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(try await cli.state("decline-1") == "Cancelled")
        let server = try await daemon.show(ProviderOrderID(poid)!)
        #expect(server.state == "Cancelled" && !server.hasReservations)
    }

    /// An order above 1 Gbps waits for the operator; `--no-wait` returns on PROCESSING and a later
    /// `cpnp cancel` (another process, same 4-tuple) cancels it on both sides.
    @Test(.timeLimit(.minutes(2)))
    func cancelWhileTheProviderWaitsForItsOperator() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let cli = try CLI(daemon: daemon)
        let big = try cli.writeCPD("big.json", from: "l3vpn-3-sites.json") {
            $0.replacingOccurrences(of: "[\"PE-PAR-2:ge-0/0/1\"]", with: "[\"PE-PAR-1:xe-0/0/0\"]")
                .replacingOccurrences(of: "\"incoming-bandwidth-mbps\": { \"min\": 80, \"max\": 100 }", with: "\"incoming-bandwidth-mbps\": 2000")
        }
        let q = try await cli.run(["quote", "--cpd", big, "--order-id", "big-1", "--no-wait"])
        #expect(q.status == 0, "\(q.stderr)")
        #expect(try await cli.state("big-1") == "ServerProcessing")
        let poid = try #require(try await cli.show("big-1")["provider-order-id"]?.stringValue)
        #expect(try await daemon.show(ProviderOrderID(poid)!).state == "AwaitingProcessing")
        let c = try await cli.run(["cancel", "big-1"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(try await cli.state("big-1") == "Cancelled")
        #expect(try await daemon.show(ProviderOrderID(poid)!).state == "Cancelled")
    }

    @Test(.timeLimit(.minutes(2)))
    func activateNowScheduledOffThenUpdateThenWithdraw() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let cli = try CLI(daemon: daemon)
        let q = try await cli.run(["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--activation", "explicit", "--yes", "--order-id", "life-1"])
        #expect(q.status == 0, "\(q.stderr)")
        let poid = try #require(ProviderOrderID(try await cli.show("life-1")["provider-order-id"]?.stringValue ?? ""))
        #expect(try await cli.activation("life-1") == "inactive")

        #expect(try await cli.run(["activate", "life-1", "--now"]).status == 0)
        #expect(try await cli.activation("life-1") == "active")
        #expect(try await daemon.show(poid).agreement?.contains("active") == true)
        #expect(try await cli.run(["activate", "life-1", "--at", "+1h"]).status == 0)
        #expect(try await cli.activation("life-1")?.hasPrefix("scheduled at") == true)
        #expect(try await cli.run(["activate", "life-1", "--off"]).status == 0)
        #expect(try await cli.activation("life-1") == "inactive")
        #expect(try await daemon.show(poid).auditContains("ACTIVATE received (deactivate)"))

        let smaller = try cli.writeCPD("smaller.json", from: "l3vpn-3-sites.json") {
            $0.replacingOccurrences(of: "\"incoming-bandwidth-mbps\": 100,", with: "\"incoming-bandwidth-mbps\": 50,")
        }
        let u = try await cli.run(["update", "life-1", "--cpd", smaller, "--yes"])
        #expect(u.status == 0, "\(u.stderr)")
        #expect(try await cli.state("life-1") == "Completed")
        let server = try await daemon.show(poid)
        #expect(server.state == "Completed" && server.auditContains("UPDATE received"))
        #expect(server.reservations("committed").values.contains("50"))

        let w = try await cli.run(["withdraw", "life-1"])
        #expect(w.status == 0, "\(w.stderr)")
        #expect(try await cli.state("life-1") == "Cancelled")
        #expect(try await cli.show("life-1")["agreement"] == nil)
        let gone = try await daemon.show(poid)
        #expect(gone.state == "Cancelled" && !gone.hasReservations)
        // Not allowed any more: a clear error and exit status 1.
        let again = try await cli.run(["activate", "life-1", "--now"])
        #expect(again.status == 1 && again.stderr.contains("error:"))
    }

    /// Best-of-3: three providers with different prices (one CA). The cheapest is accepted; the two
    /// others are declined with reason 2 and end Cancelled.
    @Test(.timeLimit(.minutes(3)))
    func bestOfThreeAcceptsTheCheapestAndDeclinesTheOthers() async throws {
        let daemons = try await CLI.threeProviders()
        defer { for d in daemons { d.stop() } }
        let (first, second) = (daemons[0], daemons[1])
        let cli = try CLI(daemon: first)
        var args = ["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--yes", "--json", "--order-id", "bo3"]
        for d in daemons { args += ["--server", "127.0.0.1:\(d.port)"] }
        let r = try await cli.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try r.object()
        #expect(out["server"] == .string("127.0.0.1:\(second.port)"))
        #expect(out["strategy"] == .string("best-of-n"))
        guard case .array(let declined)? = out["declined"] else { Issue.record("no declined list"); return }
        #expect(declined.count == 2)
        #expect(declined.allSatisfy { $0.objectValue?["reason"] == .number(2) })
        guard case .array(let rounds)? = out["rounds"], case .array(let candidates)? = rounds.first else { Issue.record("no rounds"); return }
        for (i, c) in candidates.enumerated() {
            let poid = try #require(ProviderOrderID(c.objectValue?["offer"]?.objectValue?["provider-order-id"]?.stringValue ?? ""))
            let view = try await daemons[i].waitForOrder(poid) { $0.state == (i == 1 ? "Completed" : "Cancelled") }
            #expect(view.state == (i == 1 ? "Completed" : "Cancelled"))
            if i != 1 { #expect(!view.hasReservations) }
        }
    }

    /// `--interactive` asks on standard input; `--server DOMAIN` finds the provider through
    /// `_cpnp._udp.DOMAIN` SRV records (here from a DNS responder on loopback, via CPNP_DNS_SERVER).
    /// The server certificate names the domain by SRV-ID (RFC 6125 §6.2: not the SRV target).
    @Test(.timeLimit(.minutes(2)), .enabled(if: opensslTool != nil, "no openssl tool"))
    func interactiveQuoteToAServerFoundBySRV() async throws {
        let daemon = try await Daemon.start(prepare: IdentityEndToEndTests.serverCertificateWithSRVID(domain: "provider.example"))
        defer { daemon.stop() }
        let dns = try LoopbackDNSResponder(srv: ["_cpnp._udp.provider.example": (UInt16(daemon.port), "127.0.0.1")])
        defer { dns.stop() }
        let cli = try CLI(daemon: daemon)
        let r = try await cli.run(
            ["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--server", "provider.example", "--interactive", "--order-id", "ask-1"],
            input: "y\n", environment: ["CPNP_DNS_SERVER": "127.0.0.1:\(dns.port)"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("Accept this offer? [y/N]") && r.stdout.contains("is Completed"))
        #expect(try await cli.state("ask-1") == "Completed")
        #expect(try await cli.show("ask-1")["server"] == .string("127.0.0.1:\(daemon.port)"))
        // Answering no declines with reason 1 and exits 3.
        let no = try await cli.run(["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--interactive", "--order-id", "ask-2"], input: "n\n")
        #expect(no.status == 3)
        #expect(try await cli.state("ask-2") == "Cancelled")
    }

    /// Plain UDP (labs, benchmarks): no certificates; `listen.plain-udp-customer` names the customer.
    @Test(.timeLimit(.minutes(2)))
    func plainUDPWithALabCustomer() async throws {
        var yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "  transport: dtls ", with: "  transport: plain-udp\n  plain-udp-customer: acme #")
        let daemon = try await Daemon.start(configuration: yaml)
        defer { daemon.stop() }
        #expect(daemon.logText.contains("plain UDP transport enabled"))
        let cli = try CLI(daemon: daemon)
        let r = try await cli.run(["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--transport", "plain-udp", "--yes", "--order-id", "lab-1"])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(try await cli.state("lab-1") == "Completed")
        #expect(try await daemon.admin(["orders"]).contains("acme"))
    }

    /// A server that never answers: the client gives up at the expected response time with a clear
    /// message and exit status 4.
    @Test(.timeLimit(.minutes(2)))
    func aSilentServerEndsWithExitStatus4() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let silent = try SilentUDPSocket()
        defer { silent.close() }
        let cli = try CLI(daemon: daemon)
        let started = Date()
        let r = try await cli.run([
            "quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--server", "127.0.0.1:\(silent.port)",
            "--expected-response-time", "3s", "--yes",
        ])
        #expect(r.status == 4, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("no answer") || r.stderr.contains("expected response time"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 30)
    }

    /// The README's two commands: `swift run cpnpd` with no arguments, then `cpnp quote --cpd … --yes`
    /// with no server or PKI options, from the same directory. Needs the default port 8921 free.
    @Test(.timeLimit(.minutes(2)), .enabled(if: CLI.defaultPortIsFree(), "127.0.0.1:8921 (UDP) or 8922 (TCP) is in use"))
    func theReadmeCommandsWorkWithTheEmbeddedDefaults() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let log = directory.appendingPathComponent("cpnpd.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let cpnpd = Process()
        cpnpd.executableURL = Daemon.binary
        cpnpd.arguments = []
        cpnpd.currentDirectoryURL = directory
        cpnpd.standardOutput = try FileHandle(forWritingTo: log)
        cpnpd.standardError = cpnpd.standardOutput
        try cpnpd.run()
        defer { if cpnpd.isRunning { kill(cpnpd.processIdentifier, SIGKILL); cpnpd.waitUntilExit() } }
        let deadline = ContinuousClock.now + .seconds(30)
        while !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("cpnpd ready"), ContinuousClock.now < deadline, cpnpd.isRunning {
            try await Task.sleep(for: .milliseconds(100))
        }
        let ready = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(ready.contains("listen=127.0.0.1:8921"), "\(ready)")
        // The HTTP server on its default address: the probes answer without credentials.
        let health = try await Daemon.http("http://127.0.0.1:8922/healthz")
        #expect(health.status == 200)
        let r = try await CLI.runRaw(["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--yes"], in: directory)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("is Completed"))
        cpnpd.terminate()
        // Its status exists only once it ended (the deferred kill ends it otherwise).
        let ended = await cpnpd.ends(within: .seconds(30))
        #expect(ended)
        if ended { #expect(cpnpd.terminationStatus == 0) }
    }
}

/// Runs the `cpnp` binary against one daemon's PKI, with its own client store.
struct CLI {
    static let binary: URL? = Daemon.binary.map { $0.deletingLastPathComponent().appendingPathComponent("cpnp") }
        .flatMap { FileManager.default.isExecutableFile(atPath: $0.path) ? $0 : nil }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        func object() throws -> JSONObject {
            guard case .object(let o) = try JSONParser.parse(Array(stdout.utf8)) else {
                throw DaemonError(description: "not a JSON object: \(stdout)")
            }
            return o
        }
    }

    let directory: URL
    let daemon: Daemon

    init(daemon: Daemon) throws {
        self.daemon = daemon
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    static func example(_ name: String) -> String { repositoryRoot.appendingPathComponent("Examples/\(name)").path }

    /// `cpnp ARGS` with this test's store and the daemon's PKI and address (unless --server is given).
    func run(_ args: [String], input: String? = nil, environment: [String: String] = [:]) async throws -> Result {
        var full = args + ["--database", directory.appendingPathComponent("cpnp.sqlite").path, "--pki", daemon.pkiDirectory.path]
        if args.first == "quote" && !args.contains("--server") { full += ["--server", "127.0.0.1:\(daemon.port)"] }
        return try await CLI.runRaw(full, in: directory, input: input, environment: environment)
    }

    /// `cpnp ARGS` on a thread of its own (``onOwnThread(_:)``): a command can take seconds (waiting
    /// for retransmissions to run out, a daemon to restart).
    static func runRaw(_ args: [String], in directory: URL, input: String? = nil, environment: [String: String] = [:]) async throws -> Result {
        try await onOwnThread { try runBlocking(args, in: directory, input: input, environment: environment) }
    }

    private static func runBlocking(_ args: [String], in directory: URL, input: String?, environment: [String: String]) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.currentDirectoryURL = directory
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let input {
            let stdin = Pipe()
            p.standardInput = stdin
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        } else {
            p.standardInput = FileHandle.nullDevice
        }
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func show(_ order: String) async throws -> JSONObject {
        let r = try await run(["show", order, "--json"])
        guard r.status == 0 else { throw DaemonError(description: "cpnp show \(order): \(r.stderr)") }
        return try r.object()
    }

    func state(_ order: String) async throws -> String? { try await show(order)["state"]?.stringValue }
    func activation(_ order: String) async throws -> String? { try await show(order)["agreement"]?.objectValue?["activation"]?.stringValue }

    /// A CPD derived from an example by a text edit.
    func writeCPD(_ name: String, from example: String, _ edit: (String) -> String) throws -> String {
        let text = try String(contentsOfFile: CLI.example(example), encoding: .utf8)
        let edited = edit(text)
        guard edited != text else { throw DaemonError(description: "the edit of \(example) changed nothing") }
        let file = directory.appendingPathComponent(name)
        try Data(edited.utf8).write(to: file)
        return file.path
    }

    /// Examples/cpnpd.yaml with another price list, and optionally another provider's PKI (one CA for all).
    /// Three providers with one PKI (the first's) and base fees 1500, 400 and 900 EUR: the second is
    /// the cheapest.
    static func threeProviders() async throws -> [Daemon] {
        var daemons: [Daemon] = []
        do {
            for fee in ["1500.00", "400.00", "900.00"] {
                daemons.append(try await Daemon.start(configuration: try providerConfiguration(baseFee: fee, pki: daemons.first?.pkiDirectory)))
            }
        } catch {
            for d in daemons { d.stop() }
            throw error
        }
        return daemons
    }

    static func providerConfiguration(baseFee: String, pki: URL?) throws -> String {
        var text = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        for i in lines.indices where lines[i].trimmingCharacters(in: .whitespaces).hasPrefix("base-fee:") {
            let indent = lines[i].prefix { $0 == " " }
            lines[i] = "\(indent)base-fee: \(baseFee)"
        }
        text = lines.joined(separator: "\n")
        if let pki { text = text.replacingOccurrences(of: "directory: ./.cpnp/pki", with: "directory: \(pki.path)") }
        return text
    }

    /// Whether UDP 8921 (CPNP) and TCP 8922 (the HTTP server) are free on loopback.
    static func defaultPortIsFree() -> Bool {
        isFree(8921, Int32(SOCK_DGRAM.rawValue)) && isFree(8922, Int32(SOCK_STREAM.rawValue))
    }

    static func isFree(_ port: UInt16, _ type: Int32) -> Bool {
        let fd = socket(AF_INET, type, 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// A UDP socket on loopback that receives and never answers.
final class SilentUDPSocket: @unchecked Sendable {
    let fd: Int32
    let port: Int
    init() throws {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: addr.sin_port))
    }
    func close() { _ = Glibc.close(fd) }
}

extension JSONValue {
    var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
}
