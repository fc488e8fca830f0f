public import CPNPCore

/// A webhook subscription (docs/api.md): where events of `owner`'s orders go (every order's when
/// `owner` is empty: an operator's).
public struct WebhookSubscription: Sendable, Hashable {
    public var id: String
    public var owner: String
    public var url: String
    public var secret: String?
    /// The event types wanted; empty: all.
    public var events: [String]
    public var createdAt: CPNPTimestamp

    public init(id: String, owner: String, url: String, secret: String?, events: [String], createdAt: CPNPTimestamp) {
        self.id = id
        self.owner = owner
        self.url = url
        self.secret = secret
        self.events = events
        self.createdAt = createdAt
    }
}

/// One state change of the audit trail, as webhooks describe it.
public struct WebhookSource: Sendable, Hashable {
    public var auditID: Int64
    public var providerOrderID: String
    public var customerOrderID: String
    public var clientIdentity: String
    public var at: CPNPTimestamp
    public var from: String
    public var to: String
    public var event: String
}

/// A delivery to make: the event of one audit entry for one subscription.
public struct WebhookDelivery: Sendable, Hashable {
    public var webhookID: String
    public var auditID: Int64
    public var eventType: String
    public var payload: String
    public var attempts: Int
    public var url: String
    public var secret: String?
}

extension ServerOrderStore {
    static let webhookColumns = "webhook_id, owner, url, secret, events, created_at"

    static func webhook(_ row: SQLRow) throws -> WebhookSubscription {
        let events = try row.text("events")
        return WebhookSubscription(
            id: try row.text("webhook_id"), owner: try row.text("owner"), url: try row.text("url"), secret: try row.optionalText("secret"),
            events: events.isEmpty ? [] : events.split(separator: ",").map(String.init), createdAt: StoreDatabase.time(try row.integer("created_at")))
    }

    /// Stores a subscription. Only events after it are delivered: the cursor is where it is, or, for
    /// the first live subscription, moves past the audit trail's end (without subscriptions,
    /// ``queueWebhookEvents(limit:rounds:at:classify:)`` leaves it where it was).
    public func createWebhook(_ subscription: WebhookSubscription) throws {
        try database.write { connection in
            if try connection.scalarInteger(Self.liveWebhookExists) != 1 {
                _ = try connection.execute(
                    """
                    INSERT INTO webhook_cursor (name, audit_id) VALUES ('webhooks', (SELECT COALESCE(MAX(id), 0) FROM audit))
                    ON CONFLICT (name) DO UPDATE SET audit_id = excluded.audit_id
                    """, [])
            }
            _ = try connection.execute(
                "INSERT INTO webhooks (webhook_id, owner, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    subscription.id, subscription.owner, subscription.url, subscription.secret, subscription.events.joined(separator: ","),
                    StoreDatabase.ms(subscription.createdAt),
                ])
        }
    }

    /// The live subscriptions of `owner` (nil: everyone's), oldest first.
    public func webhooks(owner: String?) throws -> [WebhookSubscription] {
        try database.read { connection in
            if let owner {
                return try connection.query(
                    "SELECT \(Self.webhookColumns) FROM webhooks WHERE deleted_at IS NULL AND owner = ? ORDER BY created_at, webhook_id", [owner]
                ).map(Self.webhook)
            }
            return try connection.query("SELECT \(Self.webhookColumns) FROM webhooks WHERE deleted_at IS NULL ORDER BY created_at, webhook_id", [])
                .map(Self.webhook)
        }
    }

    /// Ends `owner`'s subscription `id` (its pending deliveries are dropped); false when there is none.
    public func deleteWebhook(id: String, owner: String, at: CPNPTimestamp) throws -> Bool {
        try database.write { connection in
            let changed = try connection.execute(
                "UPDATE webhooks SET deleted_at = ? WHERE webhook_id = ? AND owner = ? AND deleted_at IS NULL", [StoreDatabase.ms(at), id, owner])
            if changed > 0 {
                _ = try connection.execute(
                    "UPDATE webhook_deliveries SET abandoned_at = ?, last_error = 'subscription deleted' WHERE webhook_id = ? AND delivered_at IS NULL AND abandoned_at IS NULL",
                    [StoreDatabase.ms(at), id])
            }
            return changed > 0
        }
    }

    /// Turns the audit entries past the cursor into deliveries, in one transaction with the cursor's
    /// move: each entry `classify` names an event for is queued once per matching subscription. The
    /// cursor moves by compare-and-set, so that with several instances each entry is queued once.
    /// Returns the number of deliveries queued.
    ///
    /// Entries are taken `limit` at a time, one transaction each, until the cursor reaches the trail's
    /// end or `rounds` transactions ran: with one batch per call, the dispatcher (four calls a second)
    /// followed at most 2,000 entries a second, and 64 customers write more.
    ///
    /// Without a live subscription it reads whether there is one and writes nothing: each write
    /// transaction held the writer the engine commits on. The first subscription moves the cursor
    /// (``createWebhook(_:)``). Both: docs/performance.md, round 17.
    @discardableResult
    public func queueWebhookEvents(
        limit: Int = 500, rounds: Int = 20, at now: CPNPTimestamp, classify: (WebhookSource) -> (type: String, payload: String)?
    ) throws -> Int {
        guard try database.read({ connection in try connection.scalarInteger(Self.liveWebhookExists) == 1 }) else { return 0 }
        var queued = 0
        for round in 0..<max(1, rounds) {
            let batch: (queued: Int, read: Int)
            do {
                batch = try queueWebhookBatch(limit: limit, at: now, classify: classify)
            } catch StoreError.revisionConflict where round > 0 {
                // Another instance moved the cursor meanwhile: it queues the rest.
                break
            }
            queued += batch.queued
            if batch.read < limit { break }
        }
        return queued
    }

    /// One batch of ``queueWebhookEvents(limit:rounds:at:classify:)``: the deliveries queued and the
    /// audit entries read.
    private func queueWebhookBatch(
        limit: Int, at now: CPNPTimestamp, classify: (WebhookSource) -> (type: String, payload: String)?
    ) throws -> (queued: Int, read: Int) {
        try database.write { connection in
            var cursor = try connection.scalarInteger("SELECT audit_id FROM webhook_cursor WHERE name = 'webhooks'")
            if cursor == nil {
                // First run: start after what is already there (no deliveries for the past).
                let last = try connection.scalarInteger("SELECT MAX(id) FROM audit") ?? 0
                _ = try connection.execute("INSERT INTO webhook_cursor (name, audit_id) VALUES ('webhooks', ?)", [last])
                cursor = last
            }
            let from = cursor ?? 0
            let rows = try connection.query(
                """
                SELECT a.id, a.provider_order_id, a.at, a.from_state, a.to_state, a.event, a.client_identity, o.customer_order_id
                FROM audit a JOIN orders o ON o.provider_order_id = a.provider_order_id
                WHERE a.id > ? ORDER BY a.id LIMIT ?
                """, [from, limit])
            guard let lastID = try rows.last?.integer("id") else { return (0, 0) }
            let subscriptions = try connection.query("SELECT \(Self.webhookColumns) FROM webhooks WHERE deleted_at IS NULL", []).map(Self.webhook)
            var queued = 0
            if !subscriptions.isEmpty {
                for row in rows {
                    let source = WebhookSource(
                        auditID: try row.integer("id"), providerOrderID: try row.text("provider_order_id"),
                        customerOrderID: try row.text("customer_order_id"),
                        clientIdentity: try row.text("client_identity"), at: StoreDatabase.time(try row.integer("at")),
                        from: try row.text("from_state"), to: try row.text("to_state"), event: try row.text("event"))
                    guard let (type, payload) = classify(source) else { continue }
                    for subscription in subscriptions
                    where (subscription.owner.isEmpty || subscription.owner == source.clientIdentity)
                        && (subscription.events.isEmpty || subscription.events.contains(type))
                    {
                        queued += try connection.execute(
                            "INSERT INTO webhook_deliveries (webhook_id, audit_id, event_type, payload, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
                            [subscription.id, source.auditID, type, payload, StoreDatabase.ms(now)])
                    }
                }
            }
            guard try connection.execute("UPDATE webhook_cursor SET audit_id = ? WHERE name = 'webhooks' AND audit_id = ?", [lastID, from]) == 1
            else {
                throw StoreError.revisionConflict(orderID: "webhook cursor", expected: from, actual: nil)
            }
            return (queued, rows.count)
        }
    }

    static let liveWebhookExists = "SELECT EXISTS (SELECT 1 FROM webhooks WHERE deleted_at IS NULL)"
    /// A delivery `d` due at the first argument and claimed by no one at the second (both: now).
    static let dueWebhookDelivery = """
        d.delivered_at IS NULL AND d.abandoned_at IS NULL AND d.next_attempt_at <= ? AND (d.claimed_until IS NULL OR d.claimed_until < ?)
        """
    static let dueWebhookDeliveryExists = "SELECT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE \(dueWebhookDelivery))"

    /// Claims up to `limit` deliveries due at `now` for `claimant` for `lease` milliseconds. When none
    /// is due, a read says so and nothing is written.
    public func claimWebhookDeliveries(now: CPNPTimestamp, limit: Int, claimant: String, leaseMilliseconds: Int64) throws -> [WebhookDelivery] {
        let due = try database.read { connection in
            try connection.scalarInteger(Self.dueWebhookDeliveryExists, [StoreDatabase.ms(now), StoreDatabase.ms(now)]) == 1
        }
        guard due else { return [] }
        return try database.write { connection in
            let rows = try connection.query(
                """
                SELECT d.webhook_id, d.audit_id, d.event_type, d.payload, d.attempts, w.url, w.secret
                FROM webhook_deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
                WHERE \(Self.dueWebhookDelivery)
                ORDER BY d.next_attempt_at, d.audit_id LIMIT ?
                """, [StoreDatabase.ms(now), StoreDatabase.ms(now), limit])
            var claimed: [WebhookDelivery] = []
            for row in rows {
                let webhookID = try row.text("webhook_id")
                let auditID = try row.integer("audit_id")
                let changed = try connection.execute(
                    "UPDATE webhook_deliveries SET claimed_by = ?, claimed_until = ? WHERE webhook_id = ? AND audit_id = ? AND (claimed_until IS NULL OR claimed_until < ?)",
                    [claimant, StoreDatabase.ms(now) + leaseMilliseconds, webhookID, auditID, StoreDatabase.ms(now)])
                guard changed == 1 else { continue }
                claimed.append(
                    WebhookDelivery(
                        webhookID: webhookID, auditID: auditID, eventType: try row.text("event_type"), payload: try row.text("payload"),
                        attempts: Int(try row.integer("attempts")), url: try row.text("url"), secret: try row.optionalText("secret")))
            }
            return claimed
        }
    }

    /// Records a delivery's outcome: delivered, or failed with the next attempt (nil: given up).
    public func recordWebhookAttempt(webhookID: String, auditID: Int64, at now: CPNPTimestamp, error: String?, nextAttempt: CPNPTimestamp?) throws {
        try database.write { connection in
            if error == nil {
                _ = try connection.execute(
                    "UPDATE webhook_deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL, claimed_by = NULL, claimed_until = NULL WHERE webhook_id = ? AND audit_id = ?",
                    [StoreDatabase.ms(now), webhookID, auditID])
            } else if let nextAttempt {
                _ = try connection.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL WHERE webhook_id = ? AND audit_id = ?",
                    [error, StoreDatabase.ms(nextAttempt), webhookID, auditID])
            } else {
                _ = try connection.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?, abandoned_at = ?, claimed_by = NULL, claimed_until = NULL WHERE webhook_id = ? AND audit_id = ?",
                    [error, StoreDatabase.ms(now), webhookID, auditID])
            }
        }
    }

    /// Counts of a subscription's deliveries: delivered, pending, abandoned.
    public func webhookDeliveryCounts(webhookID: String) throws -> (delivered: Int, pending: Int, abandoned: Int) {
        try database.read { connection in
            let delivered =
                try connection.scalarInteger("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND delivered_at IS NOT NULL", [webhookID])
                ?? 0
            let abandoned =
                try connection.scalarInteger("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND abandoned_at IS NOT NULL", [webhookID])
                ?? 0
            let pending =
                try connection.scalarInteger(
                    "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND delivered_at IS NULL AND abandoned_at IS NULL", [webhookID])
                ?? 0
            return (Int(delivered), Int(pending), Int(abandoned))
        }
    }
}
