import AsyncHTTPClient
import CPNPCore
import CPNPRuntime
public import CPNPStorage
import Crypto
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle

/// The webhooks of the REST API (docs/api.md): state changes of orders, read from the audit trail
/// (committed with the change itself), become deliveries in the store, and a worker POSTs them as
/// JSON, at least once, retried with backoff. Each carries its event id (`webhook-id`) for receivers
/// to deduplicate, and an HMAC-SHA256 signature when the subscription has a secret (the Standard
/// Webhooks headers `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,BASE64`).
public struct WebhookDispatcher: Service {
    /// The event types a subscription may ask for.
    public static let eventTypes = [
        "quote.offered", "agreement.reached", "agreement.withdrawn", "agreement.testPeriodEnded",
        "quote.expired", "quote.declined", "quote.cancelled", "quote.rejected",
    ]
    /// Attempts before a delivery is given up (about an hour after the first, with the backoff below).
    static let maximumAttempts = 15

    let store: ServerOrderStore
    let claimant: String
    let logger: Logger
    let interval: Duration

    public init(store: ServerOrderStore, claimant: String, logger: Logger, interval: Duration = .milliseconds(250)) {
        self.store = store
        self.claimant = claimant
        self.logger = logger
        self.interval = interval
    }

    /// The event an audit entry is, if it is one of ``eventTypes``.
    static func classify(_ source: WebhookSource) -> String? {
        switch source.to {
        case "OfferProposed": return "quote.offered"
        case "Completed": return source.from == "Completed" ? nil : "agreement.reached"
        case "Cancelled":
            let event = source.event
            if event.hasPrefix("withdrawn") || event.contains("WITHDRAW") { return "agreement.withdrawn" }
            if event.hasPrefix("test period ended") { return "agreement.testPeriodEnded" }
            if event.contains("offer expired") || event.contains("expected offer time elapsed") { return "quote.expired" }
            if event.hasPrefix("DECLINE") { return "quote.declined" }
            if event.hasPrefix("CANCEL") { return "quote.cancelled" }
            return "quote.rejected"
        default: return nil
        }
    }

    static func payload(_ source: WebhookSource, type: String) -> String {
        JSONSerializer.serializeString(
            .object(
                JSONObject([
                    ("id", .string("evt-\(source.auditID)")), ("type", .string(type)), ("occurredAt", .string(source.at.rfc3339)),
                    ("providerOrderId", .string(source.providerOrderID)), ("customerOrderId", .string(source.customerOrderID)),
                    ("customer", .string(source.clientIdentity)),
                    ("from", .string(source.from)), ("to", .string(source.to)), ("event", .string(source.event)),
                ])))
    }

    /// The backoff after `attempts` failed attempts: 1 s, 2 s, 4 s, … up to 10 minutes.
    static func backoff(afterAttempts attempts: Int) -> Duration {
        .milliseconds(min(600_000, 1_000 << min(attempts, 20)))
    }

    /// `v1,BASE64(HMAC-SHA256(secret, "ID.TIMESTAMP.BODY"))`.
    static func signature(secret: String, id: String, timestamp: Int64, body: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "v1," + Data(mac).base64EncodedString()
    }

    public func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await step(client)
                try? await Task.sleep(for: interval)
            }
        } onGracefulShutdown: {
        }
        try? await client.shutdown()
    }

    /// Queues what the audit trail gained, then makes the deliveries due.
    func step(_ client: HTTPClient) async {
        let clock = SystemWallClock()
        do {
            try store.queueWebhookEvents(at: clock.now()) { source in
                Self.classify(source).map { type in (type, Self.payload(source, type: type)) }
            }
        } catch StoreError.revisionConflict {
            // Another instance queued them.
        } catch {
            logger.warning("webhooks: cannot queue events", metadata: ["error": "\(error)"])
        }
        let due: [WebhookDelivery]
        do { due = try store.claimWebhookDeliveries(now: clock.now(), limit: 50, claimant: claimant, leaseMilliseconds: 30_000) } catch {
            logger.warning("webhooks: cannot read deliveries", metadata: ["error": "\(error)"])
            return
        }
        await withTaskGroup(of: Void.self) { group in
            for delivery in due { group.addTask { await deliver(delivery, client: client) } }
        }
    }

    func deliver(_ delivery: WebhookDelivery, client: HTTPClient) async {
        let eventID = "evt-\(delivery.auditID)"
        let timestamp = Int64(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "cpnpd-webhooks")
        request.headers.add(name: "webhook-id", value: eventID)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(name: "webhook-event", value: delivery.eventType)
        if let secret = delivery.secret, !secret.isEmpty {
            request.headers.add(
                name: "webhook-signature", value: Self.signature(secret: secret, id: eventID, timestamp: timestamp, body: delivery.payload))
        }
        request.body = .bytes(ByteBuffer(string: delivery.payload))
        var failure: String?
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            if !(200..<300).contains(Int(response.status.code)) { failure = "HTTP \(response.status.code)" }
        } catch {
            failure = "\(error)"
        }
        let now = SystemWallClock().now()
        let attempts = delivery.attempts + 1
        let next: CPNPTimestamp? = failure == nil || attempts >= Self.maximumAttempts ? nil : now.adding(Self.backoff(afterAttempts: attempts - 1))
        if let failure {
            logger.info(
                "webhook delivery failed",
                metadata: [
                    "webhook": "\(delivery.webhookID)", "event": "\(eventID)", "type": "\(delivery.eventType)", "attempt": "\(attempts)",
                    "error": "\(failure)",
                    "next-attempt": "\(next?.rfc3339 ?? "given up")",
                ])
        }
        do {
            try store.recordWebhookAttempt(webhookID: delivery.webhookID, auditID: delivery.auditID, at: now, error: failure, nextAttempt: next)
        } catch {
            logger.warning("webhooks: cannot record a delivery", metadata: ["error": "\(error)"])
        }
    }
}
