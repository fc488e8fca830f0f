// Plays conformance cases against a CPNP server over DTLS (conformance/README.md, "Running").
import CPNPCore
public import CPNPTransport
public import Logging
import Foundation
import NIOCore
import Synchronization

/// What the runner may do to the server besides sending messages. A case that needs a missing
/// hook is skipped.
public struct ConformanceHooks: Sendable {
    /// Restarts the server and returns once it accepts messages again (`restart` steps).
    public var restart: (@Sendable () async throws -> Void)?
    /// Approves the held order with this provider order id (`approve` steps).
    public var approve: (@Sendable (String) async throws -> Void)?

    public init(restart: (@Sendable () async throws -> Void)? = nil, approve: (@Sendable (String) async throws -> Void)? = nil) {
        self.restart = restart
        self.approve = approve
    }
}

/// The outcome of one case.
public struct ConformanceResult: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        case passed
        case failed(String)
        case skipped(String)
    }

    public var id: String
    public var title: String
    public var references: [String]
    public var outcome: Outcome
    /// Wall time of the case, cleanup included.
    public var seconds: Double

    /// `PASS id title`, `FAIL id title: reason` or `SKIP id: why`.
    public var line: String {
        switch outcome {
        case .passed: "PASS \(id) \(title)"
        case .failed(let why): "FAIL \(id) \(title): \(why)"
        case .skipped(let why): "SKIP \(id): \(why)"
        }
    }

    public var passed: Bool { outcome == .passed }
    public var failed: Bool { if case .failed = outcome { true } else { false } }
    public var skipped: Bool { if case .skipped = outcome { true } else { false } }
}

/// Counts of a run.
public struct ConformanceSummary: Sendable, Hashable {
    public var passed: Int
    public var failed: Int
    public var skipped: Int

    public init(_ results: [ConformanceResult]) {
        passed = results.filter(\.passed).count
        failed = results.filter(\.failed).count
        skipped = results.filter(\.skipped).count
    }

    /// `N passed, M failed`, with `, K skipped` only when K > 0.
    public var line: String { "\(passed) passed, \(failed) failed" + (skipped > 0 ? ", \(skipped) skipped" : "") }
}

/// Plays cases one after the other, each on its own DTLS association.
public struct ConformanceRunner: Sendable {
    public var host: String
    public var port: Int
    public var security: CPNPSecurityConfiguration
    public var target: TargetProfile
    public var hooks: ConformanceHooks
    public var logger: Logger

    public init(
        host: String, port: Int, security: CPNPSecurityConfiguration, target: TargetProfile, hooks: ConformanceHooks = .init(), logger: Logger? = nil
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.target = target
        self.hooks = hooks
        self.logger =
            logger
            ?? {
                var fallback = Logger(label: "cpnp.conformance")
                fallback.logLevel = .error
                return fallback
            }()
    }

    /// Runs `cases` in order; `report` sees each result as soon as it is known.
    public func run(_ cases: [ConformanceCase], report: @Sendable (ConformanceResult) -> Void = { _ in }) async -> [ConformanceResult] {
        var pacing = Pacing(target: target)
        var results: [ConformanceResult] = []
        var unreachable: String?
        for testCase in cases {
            let start = ContinuousClock.now
            var outcome: ConformanceResult.Outcome
            if let unreachable, skipReason(testCase) == nil {
                outcome = .failed("not run: \(unreachable)")
            } else {
                (outcome, unreachable) = await play(testCase, pacing: &pacing)
            }
            let elapsed = ContinuousClock.now - start
            let result = ConformanceResult(
                id: testCase.id, title: testCase.title, references: testCase.references, outcome: outcome,
                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            report(result)
            results.append(result)
        }
        return results
    }

    /// Why `testCase` cannot run here, if it cannot.
    public func skipReason(_ testCase: ConformanceCase) -> String? {
        for requirement in testCase.requires {
            switch requirement {
            case "restart" where hooks.restart == nil: return "needs a way to restart the server (--restart-command)"
            case "approve" where hooks.approve == nil: return "needs a way to approve a held order (--approve-command)"
            case let targetRequirement where targetRequirement.hasPrefix("target."):
                if target.value(at: String(targetRequirement.dropFirst(7))) == nil {
                    return "the target profile has no \(targetRequirement.dropFirst(7))"
                }
            case "restart", "approve":
                break
            default:
                return "unknown requirement \(requirement)"
            }
        }
        return nil
    }

    /// Plays one case; the second value says the server could not be reached at all (the
    /// remaining cases are then not run).
    func play(_ testCase: ConformanceCase, pacing: inout Pacing) async -> (ConformanceResult.Outcome, unreachable: String?) {
        if let why = skipReason(testCase) { return (.skipped(why), nil) }
        let peer: CPNPPeer
        do { peer = try CPNPPeer.server(host: host, port: port) } catch {
            return (.failed("cannot resolve \(host): \(error)"), "cannot resolve \(host)")
        }
        var run = CaseRun(runner: self, peer: peer, variables: ConformanceVariables(target: target, caseID: testCase.id))
        var outcome = ConformanceResult.Outcome.passed
        var unreachable: String?
        do {
            for (name, value) in testCase.setup { run.variables.values[name] = try run.variables.expand(value) }
            for (i, step) in testCase.steps.enumerated() {
                do {
                    try await run.perform(step, next: testCase.steps.dropFirst(i + 1).first, pacing: &pacing)
                } catch {
                    // Not one message went through: the server is down or refuses our certificate.
                    if let conformanceError = error as? ConformanceError, conformanceError.isTransportFailure, run.received.isEmpty {
                        unreachable = "the server could not be reached (\(conformanceError.description))"
                    }
                    throw ConformanceError("step \(i + 1) (\(step.name)): \(error)")
                }
            }
        } catch {
            outcome = .failed("\(error)")
        }
        // After a failure, best effort: release what the case may have left open. A step that
        // cannot run (e.g. a placeholder never captured) is passed over.
        if case .failed = outcome, unreachable == nil {
            for (i, step) in testCase.cleanup.enumerated() {
                try? await run.perform(step, next: testCase.cleanup.dropFirst(i + 1).first, pacing: &pacing)
            }
        }
        await run.connection?.close()
        run.connection = nil
        return (outcome, unreachable)
    }
}

extension ConformanceStep {
    var name: String {
        switch self {
        case .send(let template, _):
            if case .number(let number)? = template.value(atDottedPath: "method"), let rawMethod = number.int64Value,
                let method = MethodCode(rawValue: Int(rawMethod))
            {
                return "send \(method.name)"
            }
            return "send"
        case .sendRaw: return "send-raw"
        case .retransmit: return "retransmit"
        case .expect(let expectation): return "expect " + (expectation.method?.name ?? "a message")
        case .expectSilence: return "expect-silence"
        case .newSession: return "new-session"
        case .restart: return "restart"
        case .approve: return "approve"
        case .wait: return "wait"
        }
    }
}

/// Keeps the runner under the server's rate limits (target profile `quotations-per-minute`,
/// `fails-per-minute`), with a margin.
struct Pacing {
    var quotations: Bucket?
    var fails: Bucket?

    init(target: TargetProfile) {
        quotations = target.quotationsPerMinute.map(Bucket.init)
        fails = target.failsPerMinute.map(Bucket.init)
    }

    struct Bucket {
        let perSecond: Double
        let burst: Double
        var tokens: Double
        var refilledAt = ContinuousClock.now

        init(perMinute: Int) {
            perSecond = Double(max(1, perMinute)) * 0.9 / 60
            burst = Double(max(1, perMinute - 2))
            tokens = burst
        }

        /// Takes one token, first waiting as long as needed.
        mutating func take() async {
            refill()
            if tokens < 1 {
                let wait = (1 - tokens) / perSecond
                try? await Task.sleep(for: .milliseconds(Int64(wait * 1_000) + 1))
                refill()
            }
            tokens -= 1
        }

        mutating func refill() {
            let now = ContinuousClock.now
            let elapsed = now - refilledAt
            tokens = min(burst, tokens + (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * perSecond)
            refilledAt = now
        }
    }
}

/// One DTLS association and what it received.
final class Connection: Sendable {
    let transport: DTLSTransport
    private let inbox = Mutex<[[UInt8]]>([])

    private init(transport: DTLSTransport) {
        self.transport = transport
    }

    static func open(to peer: CPNPPeer, security: CPNPSecurityConfiguration, logger: Logger) async throws -> Connection {
        var bind = "0.0.0.0"
        if case .v6 = peer.address { bind = "::" }
        let transport = try await DTLSTransport.client(bindingTo: bind, configuration: DTLSTransportConfiguration(security: security), logger: logger)
        let connection = Connection(transport: transport)
        Task {
            for await datagram in transport.inbound { connection.inbox.withLock { $0.append(datagram.bytes) } }
        }
        return connection
    }

    /// The next datagram received before `deadline`, if any.
    func next(before deadline: ContinuousClock.Instant) async -> [UInt8]? {
        while true {
            if let bytes = inbox.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return bytes }
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    func close() async { await transport.close() }
}

/// The state of one case being played.
struct CaseRun {
    let runner: ConformanceRunner
    let peer: CPNPPeer
    var variables: ConformanceVariables
    var connection: Connection?
    /// Every message received and matched so far, to recognise spontaneous retransmissions.
    var received: [JSONValue] = []
    /// Messages received but not consumed (an optional expectation that did not match).
    var pending: [JSONValue] = []
    var lastSent: [UInt8]?
    var sentByName: [String: [UInt8]] = [:]

    init(runner: ConformanceRunner, peer: CPNPPeer, variables: ConformanceVariables) {
        self.runner = runner
        self.peer = peer
        self.variables = variables
    }

    mutating func currentConnection() async throws -> Connection {
        if let connection { return connection }
        do {
            let opened = try await Connection.open(to: peer, security: runner.security, logger: runner.logger)
            connection = opened
            return opened
        } catch {
            throw ConformanceError("cannot open a DTLS transport: \(error)")
        }
    }

    mutating func transmit(_ bytes: [UInt8]) async throws {
        let current = try await currentConnection()
        do { try await current.transport.send(bytes, to: peer) } catch { throw ConformanceError("cannot send: \(error)", isTransportFailure: true) }
    }

    /// The next message received before `deadline`, decoded; a datagram that is not a valid CPNP
    /// message fails the case (the server must only send valid messages).
    mutating func nextMessage(before deadline: ContinuousClock.Instant) async throws -> JSONValue? {
        if !pending.isEmpty { return pending.removeFirst() }
        guard let connection = connection, let bytes = await connection.next(before: deadline) else { return nil }
        let json: JSONValue
        do { json = try JSONParser.parse(bytes, limits: .datagram) } catch { throw ConformanceError("the server sent invalid JSON: \(error)") }
        do { _ = try CPNPCodec.decode(json: json) } catch {
            throw ConformanceError("the server sent an invalid CPNP message (\(error)): \(Expectation.text(json))")
        }
        return json
    }

    mutating func perform(_ step: ConformanceStep, next: ConformanceStep?, pacing: inout Pacing) async throws {
        switch step {
        case .send(let template, let name):
            let message = try variables.expand(template)
            guard case .object = message else { throw ConformanceError("a message template must be an object") }
            let bytes = JSONSerializer.serialize(message)
            if message.value(atDottedPath: "method") == .number(CPNPDecimal(Int64(MethodCode.quotation.rawValue))) { await pacing.quotations?.take() }
            if next.expectsFail { await pacing.fails?.take() }
            if let name {
                variables.values[name] = message
                sentByName[name] = bytes
            }
            lastSent = bytes
            try await transmit(bytes)

        case .sendRaw(let text):
            lastSent = Array(try variables.expandText(text).utf8)
            if next.expectsFail { await pacing.fails?.take() }
            try await transmit(lastSent!)

        case .retransmit(let name):
            guard let bytes = name.map({ sentByName[$0] }) ?? lastSent else {
                throw ConformanceError("nothing to retransmit\(name.map { " called \($0)" } ?? "")")
            }
            if next.expectsFail { await pacing.fails?.take() }
            try await transmit(bytes)

        case .expect(let expectation):
            try await expect(expectation)

        case .expectSilence(let milliseconds, let ignoreRepeats):
            let wait = milliseconds ?? runner.target.silenceMilliseconds
            let deadline = ContinuousClock.now + .milliseconds(wait)
            while let message = try await nextMessage(before: deadline) {
                if ignoreRepeats && received.contains(message) { continue }
                throw ConformanceError("expected no answer for \(wait) ms, got \(Expectation.describe(message)): \(Expectation.text(message))")
            }

        case .newSession:
            await connection?.close()
            connection = nil
            pending.removeAll()
            _ = try await currentConnection()

        case .restart:
            guard let restart = runner.hooks.restart else { throw ConformanceError("no restart hook") }
            do { try await restart() } catch { throw ConformanceError("the restart hook failed: \(error)") }
            // The server lost the DTLS association: handshake again from the same local port, so
            // that the transport 4-tuple stays the same (RFC 8921 §8.3).
            if let connection = connection { await connection.transport.renewSession(with: peer) }

        case .approve(let template):
            guard let approve = runner.hooks.approve else { throw ConformanceError("no approve hook") }
            let providerOrderID = try variables.expandText(template)
            do { try await approve(providerOrderID) } catch { throw ConformanceError("the approve hook failed for \(providerOrderID): \(error)") }

        case .wait(let milliseconds):
            try? await Task.sleep(for: .milliseconds(milliseconds))
        }
    }

    mutating func expect(_ expectation: Expectation) async throws {
        var fields: [(String, JSONValue)] = []
        for field in expectation.fields { fields.append((field.path, try variables.expand(field.constraint))) }
        let wait = expectation.withinMilliseconds ?? runner.target.answerMilliseconds
        let deadline = ContinuousClock.now + .milliseconds(wait)
        let wanted = try expectation.repeatOf.map { name -> JSONValue in
            guard let saved = variables.values[name] else { throw ConformanceError("repeat-of: no message saved as \(name)") }
            return saved
        }
        while true {
            guard let message = try await nextMessage(before: deadline) else {
                if expectation.optional { return }
                throw ConformanceError("no \(expectation.method?.name ?? "message") within \(wait) ms")
            }
            if let wanted {
                if message != wanted {
                    if expectation.optional {
                        pending.insert(message, at: 0)
                        return
                    }
                    throw ConformanceError(
                        "expected the same \(Expectation.describe(wanted)) again (a cached answer), got \(Expectation.describe(message)): \(Expectation.text(message))"
                    )
                }
            } else if received.contains(message) {
                continue  // a spontaneous retransmission of a message already matched
            }
            if let why = Expectation.mismatch(message, method: expectation.method, fields: fields) {
                if expectation.optional {
                    pending.insert(message, at: 0)
                    return
                }
                throw ConformanceError(why)
            }
            if !received.contains(message) { received.append(message) }
            if let name = expectation.saveAs { variables.values[name] = message }
            // {{provider-order-id}}: that of the latest message carrying one.
            if case .string(let providerOrderID)? = message.value(atDottedPath: "provider-order-id") {
                variables.values["provider-order-id"] = .string(providerOrderID)
            }
            return
        }
    }
}

extension Optional where Wrapped == ConformanceStep {
    /// Whether this (next) step expects a FAIL: the step before it is paced under the FAIL limit.
    var expectsFail: Bool {
        if case .expect(let expectation)? = self { return expectation.method == .fail }
        return false
    }
}
