import CPNPCore
public import CPNPPolicy
public import CPNPStorage
public import Logging
public import CPNPRuntime
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Hands agreed, activated, deactivated, withdrawn and expired orders to the provider's Network
/// Provisioning Manager (RFC 8921 §8.2): a command run with the event as JSON on stdin and/or an
/// HTTP POST of it. Events come from the store's outbox, so none is lost across restarts; a failed
/// delivery is retried with back-off until it succeeds (delivery is at least once). Each event is
/// claimed before it is handed off, so several `cpnpd` on one database never hand one off twice at
/// once; a worker that dies leaves its claims to the others after ``claimLease``.
public struct ProvisioningWorker: Sendable {
    let configuration: ProvisioningConfiguration
    let store: any OrderStore
    let clock: any WallClock
    let logger: Logger
    /// Who claims the events (the engine's ``CPNPServerEngine/instanceID``).
    let claimant: String
    /// How long a claim holds: longer than a hand-off takes (the hook's timeout).
    static let claimLease: Duration = .seconds(120)

    public init(
        configuration: ProvisioningConfiguration, store: any OrderStore, clock: any WallClock = SystemWallClock(), logger: Logger,
        claimant: String = "cpnpd"
    ) {
        self.configuration = configuration
        self.store = store
        self.clock = clock
        self.logger = logger
        self.claimant = claimant
    }

    /// The provisioning event named in the configuration for an outbox kind.
    static func event(for kind: OutboxEventKind) -> ProvisioningEvent? {
        switch kind {
        case .agreement: .agreed
        case .activation: .activated
        case .deactivation: .deactivated
        case .withdrawal: .withdrawn
        case .expiry: .expired
        default: ProvisioningEvent(rawValue: kind.rawValue)
        }
    }

    /// Whether an event of this kind is handed to a hook; the engine records the others as delivered
    /// when it commits them, so no delivery round runs for them.
    public static func handsOff(_ kind: OutboxEventKind, _ configuration: ProvisioningConfiguration) -> Bool {
        configuration.isEnabled && (event(for: kind).map { configuration.events.contains($0) } ?? true)
    }

    /// Delivers every due event (events of one order in order: the store releases the next one once
    /// the previous is delivered); returns how many were delivered.
    @discardableResult
    public func deliverDue() async -> Int {
        var total = 0
        while true {
            let delivered = await deliverRound()
            total += delivered
            if delivered == 0 { return total }
        }
    }

    private func deliverRound() async -> Int {
        let now = clock.now()
        guard let due = try? store.claimDueOutbox(claimant: claimant, now: now, lease: Self.claimLease, limit: 100) else { return 0 }
        var delivered = 0
        for entry in due {
            if !Self.handsOff(entry.kind, configuration) {
                _ = try? store.markDelivered(id: entry.id, at: now)
                delivered += 1
                continue
            }
            let body = JSONSerializer.serialize(
                .object(
                    JSONObject([
                        ("event", .string(Self.event(for: entry.kind)?.rawValue ?? entry.kind.rawValue)),
                        // Delivery is at least once: a hand-off cut short by a crash is made again, with this id.
                        ("event-id", .number(CPNPDecimal(parsing: String(entry.id))!)),
                        ("provider-order-id", .string(entry.providerOrderID.rawValue)),
                        ("at", .string(entry.createdAt.rfc3339)),
                        ("order", entry.payload),
                    ])))
            do {
                if let command = configuration.command { try await runCommand(command, input: body) }
                if let url = configuration.httpURL { try await post(url, body: body) }
                _ = try? store.markDelivered(id: entry.id, at: clock.now())
                delivered += 1
                logger.info("provisioning hand-off delivered", metadata: ["order": "\(entry.providerOrderID)", "event": "\(entry.kind)"])
            } catch {
                let next = clock.now().adding(configuration.backoff(afterFailedAttempts: entry.attempts))
                _ = try? store.markAttemptFailed(id: entry.id, error: "\(error)", nextAttemptAt: next)
                logger.warning(
                    "provisioning hand-off failed; will retry",
                    metadata: [
                        "order": "\(entry.providerOrderID)", "event": "\(entry.kind)", "error": "\(error)", "next-attempt": "\(next.rfc3339)",
                    ])
            }
        }
        return delivered
    }

    /// Runs until cancelled, delivering events as they fall due.
    public func run(pollInterval: Duration = .milliseconds(500)) async {
        while !Task.isCancelled {
            await deliverDue()
            try? await Task.sleep(for: pollInterval)
        }
    }

    struct HookError: Error, CustomStringConvertible {
        var description: String
    }

    private func runCommand(_ argv: [String], input: [UInt8]) async throws {
        guard let executable = argv.first else { throw HookError(description: "empty provisioning command") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? Array(argv.dropFirst()) : argv
        let stdin = Pipe()
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        let stderr = Pipe()
        process.standardError = stderr
        let timeout = configuration.timeout
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { finished in
                if finished.terminationStatus == 0 {
                    continuation.resume()
                } else {
                    let errorOutput = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile().prefix(300), as: UTF8.self)
                    continuation.resume(throwing: HookError(description: "command exited with status \(finished.terminationStatus): \(errorOutput)"))
                }
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: HookError(description: "cannot run \(executable): \(error.localizedDescription)"))
                return
            }
            stdin.fileHandleForWriting.write(Data(input))
            try? stdin.fileHandleForWriting.close()
            let pid = process
            Task {
                try? await Task.sleep(for: timeout)
                if pid.isRunning { pid.terminate() }
            }
        }
    }

    private func post(_ urlString: String, body: [UInt8]) async throws {
        guard let url = URL(string: urlString) else { throw HookError(description: "invalid provisioning URL \(urlString)") }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.timeoutInterval = Double(configuration.timeout.components.seconds)
        request.httpBody = Data(body)
        let (_, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse, (200..<300).contains(http.statusCode) else {
            throw HookError(description: "HTTP \((response as? HTTPURLResponse)?.statusCode ?? 0) from \(urlString)")
        }
    }
}
