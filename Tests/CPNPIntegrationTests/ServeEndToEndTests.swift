// `cpnp serve` (docs/api.md): a customer's systems negotiate with several real cpnpd through one
// REST call; the strategy decides (RFC 8921 §7).
import CPNPCore
import CPNPTesting
import Foundation
import NIOHTTP1
import Testing

@Suite(.serialized)
struct ServeEndToEndTests {
    /// Best of 3 through `cpnp serve`: one POST, the cheapest provider's offer is accepted, the others
    /// declined; each provider's order ends accordingly, and the quote shows every answer.
    @Test(.timeLimit(.minutes(3)))
    func bestOfThreeThroughOneRESTCall() async throws {
        let daemons = try await CLI.threeProviders()
        defer { for d in daemons { d.stop() } }
        let (first, second, third) = (daemons[0], daemons[1], daemons[2])

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let serve = Process()
        serve.executableURL = CLI.binary
        serve.arguments =
            ["serve", "--http", "127.0.0.1:0", "--database", directory.appendingPathComponent("cpnp.sqlite").path, "--pki", first.pkiDirectory.path]
            + daemons.flatMap { ["--server", "127.0.0.1:\($0.port)"] }
        serve.currentDirectoryURL = directory
        let out = Pipe()
        serve.standardOutput = out
        serve.standardError = FileHandle.nullDevice
        try serve.run()
        defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL); serve.waitUntilExit() } }
        let output = out.fileHandleForReading
        let line = try await onOwnThread { String(decoding: output.availableData, as: UTF8.self) }
        let base = try #require(line.range(of: "http://").map { String(line[$0.lowerBound...].prefix { $0 != "," && !$0.isWhitespace }) }, "\(line)")
        #expect(line.contains("negotiating with 127.0.0.1:\(first.port), 127.0.0.1:\(second.port), 127.0.0.1:\(third.port)"))

        let client = CertificateHTTPClient(plainBase: base)
        defer { Task { await client.shutdown() } }
        let cpd = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/l3vpn-3-sites.json"), encoding: .utf8)
        let created = try await client.send(.POST, "/quotes", json: "{\"cpd\": \(cpd)}", headers: ["Idempotency-Key": "bss-1"])
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(RESTEndToEndTests.text(try RESTEndToEndTests.object(created), "id"))
        #expect(id.hasPrefix("ng-"))
        var quote = try RESTEndToEndTests.object(created)
        let deadline = ContinuousClock.now + .seconds(60)
        while RESTEndToEndTests.text(quote, "state") == "inProgress", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            quote = try RESTEndToEndTests.object(try await client.send(.GET, "/quotes/\(id)"))
        }
        #expect(RESTEndToEndTests.text(quote, "state") == "accepted", "\(quote)")
        guard case .array(let candidates)? = quote["candidates"] else { Issue.record("no candidates: \(quote)"); return }
        #expect(candidates.count == 3)
        let winner = try #require(ProviderOrderID(RESTEndToEndTests.text(quote, "providerOrderId") ?? ""))
        _ = try await second.waitForOrder(winner) { $0.state == "Completed" }
        for case .object(let c) in candidates {
            let provider = RESTEndToEndTests.text(c, "provider")
            let poid = try #require(ProviderOrderID(RESTEndToEndTests.text(c, "providerOrderId") ?? ""))
            if provider == "127.0.0.1:\(second.port)" {
                #expect(poid == winner && RESTEndToEndTests.text(c, "cpnpState") == "Completed")
            } else {
                let daemon = try #require(daemons.first { provider == "127.0.0.1:\($0.port)" })
                let view = try await daemon.waitForOrder(poid) { $0.state == "Cancelled" }
                #expect(view.state == "Cancelled", "declined with reason 2")
            }
        }
        // A retried POST with the same key is the same negotiation.
        let again = try await client.send(.POST, "/quotes", json: "{\"cpd\": \(cpd)}", headers: ["Idempotency-Key": "bss-1"])
        #expect(RESTEndToEndTests.text(try RESTEndToEndTests.object(again), "id") == id)
        // Not a provider.
        #expect(try await client.send(.GET, "/orders").status == 404)
        kill(serve.processIdentifier, SIGTERM)
        // Its status exists only once it ended (the deferred kill ends it otherwise).
        let ended = await serve.ends(within: .seconds(30))
        #expect(ended)
        if ended { #expect(serve.terminationStatus == 0) }
    }
}
