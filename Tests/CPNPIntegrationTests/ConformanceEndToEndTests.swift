// The conformance kit (conformance/, docs/conformance.md) against a real cpnpd on its embedded
// defaults: every case through the library with the restart and approve hooks wired to the
// daemon, then the `cpnp conformance` command's output and exit status.
import CPNPConformance
import CPNPCore
import CPNPTransport
import CPNPTesting
import Foundation
import Testing

@Suite("Conformance kit", .serialized)
struct ConformanceEndToEndTests {
    static var casesDirectory: String { repositoryRoot.appendingPathComponent("conformance/cases").path }
    static var defaultsTarget: String { repositoryRoot.appendingPathComponent("conformance/targets/cpnpd-defaults.json").path }

    /// The cases that need a request for more time within seconds, which the embedded defaults
    /// never make (their profile sets `more-time` to null).
    static let skippedOnDefaults = ["fig11-more-time-granted", "fig12-more-time-rejected"]

    @Test
    func theVectorsLoadAndCoverTheRFCFlowsAndTables() throws {
        let cases = try ConformanceLoader.loadCases(directory: Self.casesDirectory)
        #expect(cases.count >= 60)
        #expect(Set(cases.map(\.id)).count == cases.count)
        let references = cases.flatMap(\.references)
        for figure in [4, 6, 11, 12, 13, 14, 15, 16] {
            #expect(references.contains("RFC 8921 Figure \(figure)"), "no case for Figure \(figure)")
        }
        for row in ["QUOTATION", "PROCESSING", "CANCEL", "ACCEPT", "FAIL", "DECLINE", "UPDATE", "WITHDRAW", "ACTIVATE"] {
            #expect(references.contains("RFC 8921 Table 6 \(row)"), "no case for Table 6 \(row)")
        }
        for row in ["PROCESSING", "OFFER", "ACK (QUOTATION Transaction)", "ACK (UPDATE Transaction)", "ACK (WITHDRAW Transaction)"] {
            #expect(references.contains("RFC 8921 Table 5 \(row)"), "no case for Table 5 \(row)")
        }
        #expect(cases.contains { $0.requires.contains("restart") })
        _ = try ConformanceLoader.loadTarget(file: Self.defaultsTarget)
    }

    @Test
    func placeholdersExpandToNumbersObjectsTextAndCapturedValues() throws {
        let target = try TargetProfile(json: JSONObject([("cpds", .object(JSONObject([("x", .object(JSONObject([("components", .array([]))])))])))]))
        var v = ConformanceVariables(target: target, caseID: "demo")
        let template = try JSONParser.parse(
            Array(#"{"a":"{{seq}}","b":"{{seq+2}}","c":"{{target.cpds.x}}","d":"id {{customer-order-id}}","e":"{{offer.nonce}}"}"#.utf8))
        v.values["offer"] = .object(JSONObject([("nonce", .string("00ff"))]))
        let out = try v.expand(template)
        guard case .number(let seq)? = out.objectValue?["a"], case .number(let seq2)? = out.objectValue?["b"] else {
            Issue.record("sequence numbers are not numbers: \(out)")
            return
        }
        #expect(seq2 == seq + CPNPDecimal(2))
        #expect(out.objectValue?["c"] == .object(JSONObject([("components", .array([]))])))
        #expect(out.objectValue?["d"]?.stringValue?.hasPrefix("id conf-demo-") == true)
        #expect(out.objectValue?["e"] == .string("00ff"))
        #expect(try v.expand(.string("{{seq}}")) == .number(seq))
        #expect(throws: ConformanceError.self) { try v.expand(.string("{{no-such-thing}}")) }
    }

    /// The retransmission, replay and restart cases against cpnpd on its embedded defaults,
    /// restarted by kill -9 and approved with `cpnpd admin approve`. The whole kit takes about 2.5
    /// minutes, paced under the server's rate limits: `scripts/conformance.sh` runs it in CI.
    @Test(.enabled(if: Daemon.binary != nil, "cpnpd not built"), .timeLimit(.minutes(20)))
    func theRetransmissionReplayAndRestartCasesPassAgainstCpnpdOnItsEmbeddedDefaults() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let cases = try ConformanceLoader.loadCases(directory: Self.casesDirectory)
            .filter { $0.id.hasPrefix("retrans-") || $0.id.hasPrefix("replay-") || $0.id.hasPrefix("restart-") }
        #expect(cases.count == 25)
        let pki = daemon.pkiDirectory.path
        let runner = ConformanceRunner(
            host: "127.0.0.1", port: daemon.port,
            security: try CPNPSecurityConfiguration(
                certificateFile: "\(pki)/client-acme.pem", keyFile: "\(pki)/client-acme-key.pem", trustRootsFile: "\(pki)/ca.pem"),
            target: try ConformanceLoader.loadTarget(file: Self.defaultsTarget),
            hooks: ConformanceHooks(
                restart: {
                    daemon.kill9()
                    try await daemon.restart()
                },
                approve: { id in
                    let out = try await daemon.admin(["approve", id])
                    guard out.contains("approved: offer sent") else { throw DaemonError(description: "approve \(id): \(out)") }
                }))
        let results = await runner.run(cases)
        for r in results where r.failed { Issue.record("\(r.line)") }
        #expect(ConformanceSummary(results).line == "\(cases.count) passed, 0 failed")
        if results.contains(where: \.failed) { print(daemon.logText.suffix(20_000)) }
    }

    /// Figures 11 and 12's request for more time, skipped on the embedded defaults (which ask only
    /// after 55 minutes): a configuration that asks one second after the PROCESSING, and a target
    /// profile that says so.
    @Test(.enabled(if: Daemon.binary != nil, "cpnpd not built"), .timeLimit(.minutes(5)))
    func theMoreTimeFiguresPassWhenTheServerAsksWithinSeconds() async throws {
        let daemon = try await Daemon.start(
            configuration: try Daemon.demoConfiguration(
                timers: """
                    retransmission: {initial: 1s, max-retries: 3}
                    offer-validity: 10m
                    expected-offer-time: 60s
                    approval-expected-offer-time: 6s
                    more-time: {request-before: 5s, extension: 10s, max-requests: 1}
                    """))
        defer { daemon.stop() }
        var profile = try ConformanceLoader.loadTarget(file: Self.defaultsTarget).json
        profile["more-time"] = .object(JSONObject([("requested-within-ms", .number(CPNPDecimal(5_000)))]))
        let pki = daemon.pkiDirectory.path
        let runner = ConformanceRunner(
            host: "127.0.0.1", port: daemon.port,
            security: try CPNPSecurityConfiguration(
                certificateFile: "\(pki)/client-acme.pem", keyFile: "\(pki)/client-acme-key.pem", trustRootsFile: "\(pki)/ca.pem"),
            target: try TargetProfile(json: profile),
            hooks: ConformanceHooks(approve: { id in _ = try await daemon.admin(["approve", id]) }))
        let cases = try ConformanceLoader.loadCases(directory: Self.casesDirectory).filter { Self.skippedOnDefaults.contains($0.id) }
        #expect(cases.count == 2)
        let results = await runner.run(cases)
        for r in results where !r.passed { Issue.record("\(r.line)") }
        #expect(ConformanceSummary(results).line == "2 passed, 0 failed")
    }

    /// `cpnp conformance`: one line per case, the summary line, exit status 0; then a target
    /// profile that makes a case fail: a FAIL line and exit status 1.
    @Test(.enabled(if: Daemon.binary != nil && CLI.binary != nil, "cpnpd/cpnp not built"), .timeLimit(.minutes(10)))
    func theCommandPrintsOneLinePerCaseAndTheSummary() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let approve = "\(Daemon.binary!.path) admin approve {{provider-order-id}} --database \(daemon.database.path)"
        let common = [
            "conformance", "--server", "127.0.0.1:\(daemon.port)", "--pki", daemon.pkiDirectory.path,
            "--cases", Self.casesDirectory, "--target", Self.defaultsTarget,
        ]
        let figures = try await CLI.runRaw(common + ["--filter", "fig", "--approve-command", approve], in: daemon.directory)
        let lines = figures.stdout.split(separator: "\n").map(String.init)
        let figureCases = try ConformanceLoader.loadCases(directory: Self.casesDirectory).filter { $0.id.contains("fig") }
        #expect(lines.count == figureCases.count + 1, "\(figures.stdout)\n\(figures.stderr)")
        for (c, line) in zip(figureCases, lines) {
            let expected = Self.skippedOnDefaults.contains(c.id) ? "SKIP \(c.id): the target profile has no more-time" : "PASS \(c.id) \(c.title)"
            #expect(line == expected)
        }
        #expect(lines.last == "\(figureCases.count - 2) passed, 0 failed, 2 skipped")
        #expect(figures.status == 0)

        // A profile that claims the provider serves a site it has no presence for.
        var profile = try ConformanceLoader.loadTarget(file: Self.defaultsTarget).json
        guard case .object(var cpds)? = profile["cpds"] else { Issue.record("no cpds"); return }
        cpds["served"] = cpds["no-network-presence"]
        profile["cpds"] = .object(cpds)
        let wrong = daemon.directory.appendingPathComponent("wrong-target.json")
        try Data(JSONSerializer.serialize(.object(profile))).write(to: wrong)
        var failing = common
        failing[failing.count - 1] = wrong.path
        let r = try await CLI.runRaw(failing + ["--filter", "t5-offer"], in: daemon.directory)
        let out = r.stdout.split(separator: "\n").map(String.init)
        #expect(out.count == 2, "\(r.stdout)\n\(r.stderr)")
        #expect(out.first?.hasPrefix("FAIL t5-offer ") == true)
        #expect(out.first?.contains("got FAIL 6") == true, "\(out)")
        #expect(out.last == "0 passed, 1 failed")
        #expect(r.status == 1)
    }
}
