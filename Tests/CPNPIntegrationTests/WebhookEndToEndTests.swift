// Webhooks of the REST API (docs/api.md) against a real cpnpd and a real HTTP receiver (a small
// Python server that records each POST): every event arrives, signed, at least once, including
// across a kill -9 of cpnpd, and exactly once after deduplication by its id.
import CPNPTesting
import CPNPCore
import Crypto
import Foundation
import NIOHTTP1
import Testing

/// An HTTP server recording every POST (headers and body) as one JSON line; the first `failFirst`
/// requests get 500 (the sender must retry).
final class WebhookReceiver: @unchecked Sendable {
    let process = Process()
    let directory: URL
    let port: Int
    var log: URL { directory.appendingPathComponent("received.jsonl") }

    static let script = #"""
        import http.server, json, os, sys
        log, fail = sys.argv[1], int(sys.argv[2])
        count = {"n": 0}
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                count["n"] += 1
                if count["n"] <= fail:
                    self.send_response(500); self.end_headers(); return
                with open(log, "a") as f:
                    f.write(json.dumps({"headers": dict({k.lower(): v for k, v in self.headers.items()}, path=self.path), "body": body}) + "\n")
                self.send_response(204); self.end_headers()
            def log_message(self, *args): pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """#

    init(failFirst: Int) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("webhooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, directory.appendingPathComponent("received.jsonl").path, String(failFirst)]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let port = Int(line) else { throw DaemonError(description: "the webhook receiver did not start: \(line)") }
        self.port = port
    }

    /// Every request received: headers (and `path`, the request's path) and body.
    func received() throws -> [(headers: [String: String], body: String)] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { line in
            guard case .object(let o) = try JSONParser.parse(Array(line.utf8), limits: .stream), case .object(let h)? = o["headers"],
                case .string(let body)? = o["body"]
            else {
                throw DaemonError(description: "bad line \(line)")
            }
            var headers: [String: String] = [:]
            for (k, v) in h { if case .string(let s) = v { headers[k] = s } }
            return (headers, body)
        }
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite(.serialized)
struct WebhookEndToEndTests {
    @Test(.timeLimit(.minutes(3)))
    func everyEventArrivesSignedOnceAfterDeduplicationAcrossAKill() async throws {
        let receiver = try WebhookReceiver(failFirst: 2)
        defer { receiver.stop() }
        let (daemon, acme, theOperator, token) = try await RESTEndToEndTests.start()
        defer { daemon.stop() }
        let secret = "a shared secret of the receiver"
        let url = "http://127.0.0.1:\(receiver.port)/hooks"

        // A customer may not point cpnpd at a loopback address; an operator may.
        let refused = try await acme.send(.POST, "/api/webhooks", json: "{\"url\": \"\(url)\"}")
        #expect(refused.status == 400 && refused.body.contains("\"field\" : \"url\""), "\(refused.body)")
        let created = try await theOperator.send(.POST, "/api/webhooks", json: "{\"url\": \"\(url)\", \"secret\": \"\(secret)\"}", headers: token)
        #expect(created.status == 201, "\(created.body)")
        let webhookID = try #require(RESTEndToEndTests.text(try RESTEndToEndTests.object(created), "id"))
        let filtered = try await theOperator.send(
            .POST, "/api/webhooks", json: "{\"url\": \"\(url)/agreements\", \"events\": [\"agreement.reached\"]}", headers: token)
        #expect(filtered.status == 201)

        // A quote accepted, then (after a kill -9 of cpnpd and a restart) withdrawn.
        let quote = try RESTEndToEndTests.object(try await acme.send(.POST, "/api/quotes", json: RESTEndToEndTests.template))
        let id = try #require(RESTEndToEndTests.text(quote, "id"))
        _ = try await RESTEndToEndTests.quote(acme, id) { RESTEndToEndTests.text($0, "state") == "approved" }
        _ = try await acme.send(.POST, "/api/quotes/\(id)/accept")
        _ = try await RESTEndToEndTests.quote(acme, id) { RESTEndToEndTests.text($0, "state") == "accepted" }
        try await Task.sleep(for: .milliseconds(300))
        daemon.kill9()
        try await daemon.restart()
        let acmeAfter = try CertificateHTTPClient(daemon: daemon, certificate: "acme")
        let operatorAfter = try CertificateHTTPClient(daemon: daemon, certificate: nil)
        defer {
            Task {
                await acme.shutdown(); await theOperator.shutdown(); await acmeAfter.shutdown(); await operatorAfter.shutdown()
            }
        }
        #expect(try await acmeAfter.send(.POST, "/api/agreements/\(id)/withdraw").status == 200)

        // Until the receiver has the three events (the first two attempts failed: retried).
        let wanted: Set<String> = ["quote.offered", "agreement.reached", "agreement.withdrawn"]
        let deadline = ContinuousClock.now + .seconds(60)
        var byID: [String: (headers: [String: String], body: String)] = [:]
        while ContinuousClock.now < deadline {
            byID = [:]
            for r in try receiver.received() where r.headers["webhook-id"] != nil { byID[r.headers["path"]! + " " + r.headers["webhook-id"]!] = r }
            let main = Set(byID.values.filter { !($0.headers["webhook-signature"] ?? "").isEmpty }.compactMap { $0.headers["webhook-event"] })
            if wanted.isSubset(of: main) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let signedEvents = byID.values.filter { $0.headers["webhook-signature"] != nil }
        #expect(Set(signedEvents.compactMap { $0.headers["webhook-event"] }) == wanted, "\(byID.keys.sorted())")
        #expect(signedEvents.count == 3, "after deduplication by webhook-id, each event once")
        for r in signedEvents {
            let eventID = try #require(r.headers["webhook-id"]), timestamp = try #require(r.headers["webhook-timestamp"])
            let mac = HMAC<SHA256>.authenticationCode(
                for: Data("\(eventID).\(timestamp).\(r.body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
            #expect(r.headers["webhook-signature"] == "v1," + Data(mac).base64EncodedString(), "the signature verifies")
            guard case .object(let o) = try JSONParser.parse(Array(r.body.utf8), limits: .stream) else {
                Issue.record("not an object: \(r.body)"); continue
            }
            #expect(RESTEndToEndTests.text(o, "customerOrderId") == id && RESTEndToEndTests.text(o, "customer") == "acme")
            #expect(RESTEndToEndTests.text(o, "id") == eventID)
        }
        // The filtered subscription got the agreement only, unsigned.
        let unsigned = byID.values.filter { $0.headers["webhook-signature"] == nil }
        #expect(unsigned.compactMap { $0.headers["webhook-event"] } == ["agreement.reached"])
        // The subscription's counts, through the API. The dispatcher records a delivery once the
        // receiver's answer reached it, which may be just after the receiver saw the event. When the
        // kill fell between the two, the delivery stays claimed by the killed instance for its lease
        // (30 s, Webhooks.swift) and is sent again after it: the receiver has the event, the count
        // follows about 30 s later.
        var list = try await operatorAfter.send(.GET, "/api/webhooks", headers: token)
        let countsDeadline = ContinuousClock.now + .seconds(50)
        while !list.body.contains("\"delivered\" : 3"), ContinuousClock.now < countsDeadline {
            try await Task.sleep(for: .milliseconds(100))
            list = try await operatorAfter.send(.GET, "/api/webhooks", headers: token)
        }
        #expect(list.status == 200 && list.body.contains(webhookID) && list.body.contains("\"delivered\" : 3"), "\(list.body)")
        #expect(try await operatorAfter.send(.DELETE, "/api/webhooks/\(webhookID)", headers: token).status == 204)
        #expect(try await acmeAfter.send(.DELETE, "/api/webhooks/\(webhookID)").status == 404, "not acme's")
        #expect(await daemon.terminate() == 0)
    }
}
