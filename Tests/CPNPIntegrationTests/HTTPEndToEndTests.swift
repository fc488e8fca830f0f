// The HTTP server of a real cpnpd (docs/console.md): open probes, the operator's token for the rest,
// no listening beyond loopback without authentication, and metrics that count what customers did.
import AsyncHTTPClient
import CPNPCore
import CPNPTesting
import CPNPTransport
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

@Suite(.serialized)
struct HTTPEndToEndTests {
    @Test(.timeLimit(.minutes(2)))
    func probesAreOpenAndEverythingElseNeedsTheOperatorToken() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        #expect(daemon.httpPort > 0)
        let health = try await daemon.http("/healthz")
        #expect(health.status == 200 && health.body == "ok\n")
        let ready = try await daemon.http("/readyz")
        #expect(ready.status == 200 && ready.body == "ready\n")

        for (path, token) in [("/metrics", nil), ("/metrics", "not-the-operator-token-at-all"), ("/orders", nil), ("/", nil)] as [(String, String?)] {
            let refused = try await daemon.http(path, token: token)
            #expect(refused.status == 401, "\(path) with \(token ?? "no token"): \(refused.status)")
            #expect(refused.headers["www-authenticate"] == "Bearer realm=\"cpnpd\"")
            #expect(!refused.body.contains("cpnp_"), "nothing of the metrics leaks")
        }
        let token = try daemon.operatorToken
        #expect(token.count == 64)
        let metrics = try await daemon.http("/metrics", token: token)
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(metrics.sample("cpnp_ready") == 1)
        #expect(metrics.sample("cpnp_negotiations_total{outcome=\"agreed\"}") == 0)
        #expect(try await daemon.http("/no-such-page", token: token).status == 404)
        #expect(await daemon.terminate() == 0)
    }

    @Test(.timeLimit(.minutes(2)))
    func noHTTPServerWithNoHTTP() async throws {
        let daemon = try await Daemon.start { $0.arguments = ["--no-http"] }
        defer { daemon.stop() }
        #expect(daemon.httpPort == 0)
        #expect(!daemon.logText.contains("HTTP server listening"))
        #expect(await daemon.terminate() == 0)
    }

    /// A SIGTERM at once after the ready line stops cpnpd gracefully (exit 0), even before its
    /// services run: the signal is caught from before the line is written. Without that, a fast
    /// supervisor killed it with the signal's default action (exit by signal 15), about 1 start in 24 here.
    @Test(.timeLimit(.minutes(3)))
    func aSignalRightAfterTheReadyLineStopsGracefully() async throws {
        for _ in 0..<8 {
            let daemon = try await Daemon.start { $0.arguments = ["--no-http"] }
            defer { daemon.stop() }
            #expect(await daemon.terminate() == 0)
            #expect(daemon.logText.contains("cpnpd stopped"))
        }
    }

    /// A CPNP port another socket holds stops `cpnpd` with an error naming the setting.
    @Test(.timeLimit(.minutes(1)))
    func aCPNPPortInUseIsNamed() async throws {
        let holder = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0)
        let port = try #require(holder.localAddress?.port)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-listen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let refused = try await Daemon.command(["run", "--listen", "127.0.0.1:\(port)", "--no-http"], in: directory)
        await holder.close()
        #expect(refused.status != 0)
        #expect(refused.output.contains("listen 127.0.0.1:\(port): cannot listen:"), "\(refused.output)")
        #expect(refused.output.contains("Address already in use"), "\(refused.output)")
    }

    /// So does an HTTP port another socket holds.
    @Test(.timeLimit(.minutes(1)))
    func anHTTPPortInUseIsNamed() async throws {
        let certificates = TestCertificates.shared
        let holder = try await TLSTransport.server(
            host: "127.0.0.1", port: 0, configuration: TLSTransportConfiguration(security: certificates.security(certificates.server)))
        let port = try #require(holder.localAddress?.port)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-listen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let refused = try await Daemon.command(["run", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:\(port)"], in: directory)
        await holder.close()
        #expect(refused.status != 0)
        #expect(refused.output.contains("http.listen 127.0.0.1:\(port): cannot listen:"), "\(refused.output)")
    }

    /// Beyond loopback `cpnpd` needs a token that exists: it never makes one itself there, and says
    /// which key to set. With the token written, it starts, and still answers 401 to anonymous requests.
    @Test(.timeLimit(.minutes(2)))
    func noListeningBeyondLoopbackWithoutAuthentication() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-http-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let refused = try await Daemon.command(["run", "--listen", "127.0.0.1:0", "--http", "0.0.0.0:0"], in: directory)
        #expect(refused.status != 0)
        #expect(refused.output.contains("http.listen: 0.0.0.0:0 is beyond loopback and no authentication is configured"), "\(refused.output)")
        #expect(refused.output.contains("operator.token"), "it says where the token goes")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(".cpnp/pki/operator.token").path))

        let daemon = try await Daemon.start { d in
            try FileManager.default.createDirectory(at: d.pkiDirectory, withIntermediateDirectories: true)
            try "an-operator-token-of-enough-length\n".write(
                to: d.pkiDirectory.appendingPathComponent("operator.token"), atomically: true, encoding: .utf8)
            d.arguments = ["--http", "0.0.0.0:0"]
        }
        defer { daemon.stop() }
        let port = try #require(
            daemon.logText.range(of: "http=http://0.0.0.0:").map { daemon.logText[$0.upperBound...].prefix { $0.isNumber } }.flatMap { Int($0) })
        #expect(try await Daemon.http("http://127.0.0.1:\(port)/metrics").status == 401)
        #expect(try await Daemon.http("http://127.0.0.1:\(port)/metrics", token: "an-operator-token-of-enough-length").status == 200)
        #expect(await daemon.terminate() == 0)
    }

    /// `/metrics` scraped around a `cpnp-bench` run against the daemon: the agreements, messages and
    /// handshakes it counts match the bench's own counts.
    @Test(.timeLimit(.minutes(3)))
    func metricsCountWhatABenchRunDid() async throws {
        let bench = try #require(BenchSmokeTests.binary, "cpnp-bench not built next to the tests (swift build --build-tests)")
        let daemon = try await Daemon.start(configuration: try LoadAndKillTests.configuration(unlimitedCapacity: true))
        defer { daemon.stop() }
        let token = try daemon.operatorToken
        let before = try await daemon.http("/metrics", token: token)
        #expect(before.sample("cpnp_negotiations_total{outcome=\"agreed\"}") == 0)

        let run = try await Self.run(
            bench,
            [
                "--server", "127.0.0.1:\(daemon.port)", "--pki", daemon.pkiDirectory.path, "--negotiations", "40", "--customers", "4",
                "--json", "--warmup", "200ms", "--ping-pong", "0",
            ])
        let parsed = try JSONSerialization.jsonObject(with: Data(run.utf8)) as? [String: Any]
        let report = try #require(parsed, "\(run)")
        let measured = try #require(report["completed"] as? Int)
        let warmupReport = report["warmup"] as? [String: Any]
        let warmup = try #require(warmupReport?["completed"] as? Int)
        #expect(report["failed"] as? Int == 0, "\(run)")
        let agreements = measured + warmup

        let after = try await daemon.http("/metrics", token: token)
        func value(_ series: String) -> Double { after.sample(series) ?? -1 }
        #expect(value("cpnp_negotiations_total{outcome=\"agreed\"}") == Double(agreements), "\(after.body)")
        #expect(value("cpnp_negotiation_duration_seconds_count{outcome=\"agreed\"}") == Double(agreements))
        #expect(value("cpnp_negotiations_total{outcome=\"refused\"}") == 0)
        #expect(value("cpnp_messages_total{method=\"QUOTATION\",direction=\"received\"}") >= Double(agreements))
        #expect(value("cpnp_messages_total{method=\"ACCEPT\",direction=\"received\"}") >= Double(agreements))
        #expect(value("cpnp_messages_total{method=\"OFFER\",direction=\"sent\"}") >= Double(agreements))
        #expect(value("cpnp_messages_total{method=\"ACK\",direction=\"sent\"}") >= Double(agreements))
        #expect(value("cpnp_open_orders{state=\"Completed\"}") == Double(agreements))
        #expect(value("cpnp_dtls_handshakes_total{result=\"completed\"}") >= 4, "one per customer at least")
        #expect(value("cpnp_commit_duration_seconds_count") > 0)
        #expect(value("cpnp_commit_changes_sum") >= Double(2 * agreements), "an order's QUOTATION and ACCEPT are made durable")
        #expect(after.body.contains("cpnp_link_reserved_mbps{"), "capacity per link")
        // The SQLite store's checkpoints are counted (there may be none yet: -1 is absent).
        #expect(value("cpnp_store_wal_checkpoints_total{by=\"checkpointer\"}") >= 0)
        #expect(value("cpnp_store_wal_checkpoints_total{by=\"writer\"}") >= 0)
        #expect(value("cpnp_ready") == 1)
        #expect(await daemon.terminate() == 0)
    }

    static func run(_ tool: URL, _ arguments: [String]) async throws -> String {
        try await BuiltExecutable.run(tool, arguments, standardError: .discarded).output
    }
}

/// `--log-format json`: every line is one JSON object, and a state change names the order, the
/// customer, the method that caused it and the transition.
@Suite struct JSONLogEndToEndTests {
    @Test(.timeLimit(.minutes(2)))
    func eachLineIsAnObjectAndTransitionsNameOrderCustomerMethodAndStates() async throws {
        let daemon = try await Daemon.start { $0.arguments = ["--log-format", "json"] }
        defer { daemon.stop() }
        let order = try await TestClient.agree("json-log-1", CPD.paris(100), with: daemon)
        #expect(await daemon.terminate() == 0)
        let poid = try #require(order.providerOrderID).rawValue

        var records: [[String: Any]] = []
        for line in daemon.logText.split(separator: "\n") {
            let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(record != nil, "not a JSON object: \(line)")
            if let record { records.append(record) }
        }
        #expect(records.allSatisfy { $0["time"] is String && $0["level"] is String && $0["message"] is String })
        #expect(records.contains { $0["message"] as? String == "cpnpd ready" })
        let accepted = records.first { $0["order"] as? String == poid && $0["to"] as? String == "AcceptReceived" }
        #expect(accepted?["from"] as? String == "OfferProposed")
        #expect(accepted?["method"] as? String == "ACCEPT")
        #expect(accepted?["client"] as? String == "acme")
        #expect(accepted?["customer-order"] as? String == "json-log-1")
        #expect(records.contains { $0["order"] as? String == poid && $0["to"] as? String == "Completed" && $0["client"] as? String == "acme" })
    }
}

/// The console's order list, read with the operators' bearer token (no browser): filters and pages.
@Suite struct ConsoleListEndToEndTests {
    @Test(.timeLimit(.minutes(2)))
    func ordersAreFilteredByStateCustomerAndTimeAndPaged() async throws {
        let bench = try #require(BenchSmokeTests.binary, "cpnp-bench not built next to the tests (swift build --build-tests)")
        let daemon = try await Daemon.start(configuration: try LoadAndKillTests.configuration(unlimitedCapacity: true))
        defer { daemon.stop() }
        let token = try daemon.operatorToken
        _ = try await HTTPEndToEndTests.run(
            bench,
            [
                "--server", "127.0.0.1:\(daemon.port)", "--pki", daemon.pkiDirectory.path, "--negotiations", "55", "--customers", "2",
                "--json", "--warmup", "0s", "--warmup-negotiations", "0", "--ping-pong", "0",
            ])
        func rows(_ page: HTTPAnswer) -> Int { page.body.components(separatedBy: "<a href=\"/console/orders/po-").count - 1 }
        let first = try await daemon.http("/console/orders", token: token)
        #expect(first.status == 200 && first.body.contains("55 orders · page 1 of 2"), "\(first.body.prefix(3_000))")
        #expect(rows(first) == 50)
        #expect(first.body.contains("href=\"/console/orders?page=2\""))
        let second = try await daemon.http("/console/orders?page=2", token: token)
        #expect(rows(second) == 5 && second.body.contains("← newer"))
        let completed = try await daemon.http("/console/orders?state=Completed&customer=acme", token: token)
        #expect(completed.body.contains("55 orders"), "\(completed.body.prefix(3_000))")
        #expect(try await daemon.http("/console/orders?state=Cancelled", token: token).body.contains("0 orders"))
        #expect(try await daemon.http("/console/orders?customer=globex", token: token).body.contains("0 orders"))
        #expect(try await daemon.http("/console/orders?since=2999-01-01", token: token).body.contains("0 orders"))
        #expect(try await daemon.http("/console/orders?since=2000-01-01", token: token).body.contains("55 orders"))
        #expect(try await daemon.http("/console/orders?since=yesterday", token: token).body.contains("since: not a date"))
        // A customer identity with markup is escaped, never interpreted.
        let escaped = try await daemon.http("/console/orders?customer=%3Cscript%3Ex%3C/script%3E", token: token)
        #expect(!escaped.body.contains("<script>x</script>") && escaped.body.contains("&lt;script&gt;"))
        #expect(try await daemon.http("/console/orders/po-doesnotexist", token: token).status == 404)
        #expect(await daemon.terminate() == 0)
    }
}

/// `http.tls`: HTTPS with the PKI's server certificate; a client certificate of an operator
/// identity authenticates as the token does, a customer's does not.
@Suite struct HTTPSEndToEndTests {
    static func get(_ url: String, pki: URL, certificate: String?, token: String? = nil) async throws -> Int {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(pki.appendingPathComponent("ca.pem").path)
        if let certificate {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(pki.appendingPathComponent("client-\(certificate).pem").path).map {
                .certificate($0)
            }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: pki.appendingPathComponent("client-\(certificate)-key.pem").path, format: .pem))
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        defer { _ = client.shutdown() }
        var request = HTTPClientRequest(url: url)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await client.execute(request, timeout: .seconds(10))
        return Int(response.status.code)
    }

    @Test(.timeLimit(.minutes(2)))
    func operatorsAuthenticateWithTheirCertificateCustomersDoNot() async throws {
        let base = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        let daemon = try await Daemon.start(configuration: base.replacingOccurrences(of: "  tls: false ", with: "  tls: true "))
        defer { daemon.stop() }
        #expect(daemon.logText.contains("http=https://127.0.0.1:"))
        let pki = daemon.pkiDirectory
        let url = "https://127.0.0.1:\(daemon.httpPort)"
        #expect(try await Self.get(url + "/healthz", pki: pki, certificate: nil) == 200)
        #expect(try await Self.get(url + "/metrics", pki: pki, certificate: "operator") == 200)
        #expect(try await Self.get(url + "/console/orders", pki: pki, certificate: "operator") == 200)
        #expect(try await Self.get(url + "/metrics", pki: pki, certificate: "acme") == 401, "a customer is no operator")
        #expect(try await Self.get(url + "/metrics", pki: pki, certificate: nil) == 401)
        #expect(try await Self.get(url + "/metrics", pki: pki, certificate: nil, token: try daemon.operatorToken) == 200)
        #expect(await daemon.terminate() == 0)
    }
}
