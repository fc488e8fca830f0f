// The webhooks' tables (docs/api.md) on SQLite and on a real PostgreSQL: events queued once from the
// audit trail, per matching subscription, past a cursor that moves by compare-and-set; deliveries
// claimed with a lease; outcomes recorded.
@testable import CPNPCore
@testable import CPNPStorage
import CPNPTesting
import Dispatch
import Foundation
import Synchronization
import Testing

@Suite(.serialized)
struct WebhookStoreTests {
    static func classify(_ s: WebhookSource) -> (type: String, payload: String)? {
        ("order.changed", "\(s.auditID) \(s.providerOrderID) \(s.customerOrderID) \(s.from)→\(s.to)")
    }

    static func check(_ stores: [ServerOrderStore]) throws {
        let store = stores[0]
        try store.createWebhook(
            WebhookSubscription(
                id: "wh-ops", owner: "", url: "http://127.0.0.1:9/ops", secret: "0123456789abcdef", events: [], createdAt: StoreFixture.start))
        try store.createWebhook(
            WebhookSubscription(
                id: "wh-acme", owner: StoreFixture.identity, url: "http://127.0.0.1:9/acme", secret: nil, events: ["order.changed"],
                createdAt: StoreFixture.start))
        try store.createWebhook(
            WebhookSubscription(
                id: "wh-other", owner: "globex", url: "http://127.0.0.1:9/globex", secret: nil, events: [], createdAt: StoreFixture.start))
        try store.createWebhook(
            WebhookSubscription(
                id: "wh-filtered", owner: "", url: "http://127.0.0.1:9/f", secret: nil, events: ["agreement.reached"], createdAt: StoreFixture.start))
        #expect(try store.webhooks(owner: StoreFixture.identity).map(\.id) == ["wh-acme"])
        #expect(try store.webhooks(owner: nil).count == 4)
        // The first run starts the cursor after what is there.
        #expect(try store.queueWebhookEvents(at: StoreFixture.start, classify: Self.classify) == 0)

        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-w1", providerOrderID: "p-w1")
        #expect(try store.commit(OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(1), actions: actions)) == 1)
        let entries = try store.audit(providerOrderID: m.providerOrderID).count
        #expect(entries > 0)
        #expect(
            try store.queueWebhookEvents(at: StoreFixture.at(2), classify: Self.classify) == 2 * entries,
            "the operator's and acme's, not globex's nor the filtered one")
        #expect(try store.queueWebhookEvents(at: StoreFixture.at(2), classify: Self.classify) == 0, "each entry once")

        // Two instances queueing at once: each entry is still queued once.
        let (n, nActions) = StoreFixture.quotedServerOrder(customerOrderID: "c-w2", providerOrderID: "p-w2")
        #expect(try store.commit(OrderChange(machine: n, clientIdentity: StoreFixture.identity, at: StoreFixture.at(3), actions: nActions)) == 1)
        let more = try store.audit(providerOrderID: n.providerOrderID).count
        let queued = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: stores.count) { i in
            let count = (try? stores[i].queueWebhookEvents(at: StoreFixture.at(4), classify: Self.classify)) ?? 0
            queued.withLock { $0 += count }
        }
        #expect(queued.withLock { $0 } == 2 * more)

        // Claims are leased: a second claimant gets nothing while the lease runs.
        let claimed = try store.claimWebhookDeliveries(now: StoreFixture.at(5), limit: 100, claimant: "a", leaseMilliseconds: 30_000)
        #expect(claimed.count == 2 * (entries + more))
        #expect(try stores.last!.claimWebhookDeliveries(now: StoreFixture.at(6), limit: 100, claimant: "b", leaseMilliseconds: 30_000).isEmpty)
        let acme = try #require(claimed.first { $0.webhookID == "wh-acme" })
        #expect(acme.url == "http://127.0.0.1:9/acme" && acme.secret == nil && (acme.payload.contains("c-w1") || acme.payload.contains("c-w2")))
        #expect(claimed.first { $0.webhookID == "wh-ops" }?.secret == "0123456789abcdef")

        // Delivered, retried later, given up.
        let (first, second, third) = (claimed[0], claimed[1], claimed[2])
        try store.recordWebhookAttempt(webhookID: first.webhookID, auditID: first.auditID, at: StoreFixture.at(7), error: nil, nextAttempt: nil)
        try store.recordWebhookAttempt(
            webhookID: second.webhookID, auditID: second.auditID, at: StoreFixture.at(7), error: "HTTP 500", nextAttempt: StoreFixture.at(60_000))
        try store.recordWebhookAttempt(
            webhookID: third.webhookID, auditID: third.auditID, at: StoreFixture.at(7), error: "HTTP 500", nextAttempt: nil)
        let due = try store.claimWebhookDeliveries(now: StoreFixture.at(40_000), limit: 100, claimant: "c", leaseMilliseconds: 1)
        #expect(!due.contains { $0.auditID == first.auditID && $0.webhookID == first.webhookID }, "delivered")
        #expect(!due.contains { $0.auditID == second.auditID && $0.webhookID == second.webhookID }, "not due yet")
        #expect(!due.contains { $0.auditID == third.auditID && $0.webhookID == third.webhookID }, "given up")
        let retried = try store.claimWebhookDeliveries(now: StoreFixture.at(61_000), limit: 100, claimant: "d", leaseMilliseconds: 1)
        #expect(retried.contains { $0.auditID == second.auditID && $0.webhookID == second.webhookID && $0.attempts == 1 })

        // Deleting a subscription drops its pending deliveries; another owner cannot delete it.
        #expect(try !store.deleteWebhook(id: "wh-acme", owner: "globex", at: StoreFixture.at(8)))
        #expect(try store.deleteWebhook(id: "wh-acme", owner: StoreFixture.identity, at: StoreFixture.at(8)))
        #expect(try store.webhookDeliveryCounts(webhookID: "wh-acme").pending == 0)
        #expect(try store.webhooks(owner: StoreFixture.identity).isEmpty)
    }

    /// Commits a new order; returns its audit entries' count.
    static func commitOrder(_ store: ServerOrderStore, _ name: String, at milliseconds: Int64) throws -> Int {
        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(name)", providerOrderID: "p-\(name)")
        _ = try store.commit(OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(milliseconds), actions: actions))
        return try store.audit(providerOrderID: m.providerOrderID).count
    }

    /// Without a live subscription nothing is queued and the cursor stays; the first subscription
    /// then starts past the audit trail's end, so it gets no event from before it.
    static func checkFirstSubscription(_ store: ServerOrderStore) throws {
        _ = try commitOrder(store, "before", at: 1)
        #expect(try store.queueWebhookEvents(at: StoreFixture.at(2), classify: Self.classify) == 0)
        #expect(try store.claimWebhookDeliveries(now: StoreFixture.at(2), limit: 10, claimant: "a", leaseMilliseconds: 1_000).isEmpty)
        let subscription = WebhookSubscription(
            id: "wh-first", owner: "", url: "http://127.0.0.1:9/first", secret: nil, events: [], createdAt: StoreFixture.at(3))
        try store.createWebhook(subscription)
        #expect(try store.queueWebhookEvents(at: StoreFixture.at(4), classify: Self.classify) == 0, "nothing from before the subscription")
        let entries = try commitOrder(store, "after", at: 5)
        #expect(try store.queueWebhookEvents(at: StoreFixture.at(6), classify: Self.classify) == entries)
        // Deleted: events meanwhile are not queued; a new first subscription does not get them either.
        #expect(try store.deleteWebhook(id: "wh-first", owner: "", at: StoreFixture.at(7)))
        _ = try commitOrder(store, "between", at: 8)
        #expect(try store.queueWebhookEvents(at: StoreFixture.at(9), classify: Self.classify) == 0)
        var second = subscription
        second.id = "wh-second"
        try store.createWebhook(second)
        #expect(try store.queueWebhookEvents(at: StoreFixture.at(10), classify: Self.classify) == 0, "nothing from before the subscription")
        let later = try commitOrder(store, "later", at: 11)
        #expect(try store.queueWebhookEvents(at: StoreFixture.at(12), classify: Self.classify) == later)
        let claimed = try store.claimWebhookDeliveries(now: StoreFixture.at(13), limit: 100, claimant: "a", leaseMilliseconds: 1_000)
        #expect(Set(claimed.map(\.webhookID)) == ["wh-second"] && claimed.allSatisfy { $0.payload.contains("c-later") })

        // A backlog larger than a batch is queued in one call, a batch per transaction, up to `rounds`.
        let backlog = try (0..<8).reduce(0) { sum, i in sum + (try commitOrder(store, "backlog-\(i)", at: 14 + Int64(i))) }
        #expect(backlog > 6)
        #expect(try store.queueWebhookEvents(limit: 3, at: StoreFixture.at(20), classify: Self.classify) == backlog)
        let more = try (0..<8).reduce(0) { sum, i in sum + (try commitOrder(store, "more-\(i)", at: 30 + Int64(i))) }
        #expect(more > 6)
        #expect(try store.queueWebhookEvents(limit: 3, rounds: 2, at: StoreFixture.at(40), classify: Self.classify) == 6)
        #expect(try store.queueWebhookEvents(limit: 3, at: StoreFixture.at(41), classify: Self.classify) == more - 6)
    }

    @Test func onSQLite() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("webhooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("cpnpd.sqlite").path
        try Self.check([try ServerOrderStore(path: path), try ServerOrderStore(path: path)])
    }

    /// The dispatcher asks four times a second: without a subscription or a due delivery, its asking
    /// takes no write transaction on the writer the engine commits on.
    @Test func withoutSubscriptionsNothingIsWritten() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("webhooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ServerOrderStore(path: directory.appendingPathComponent("cpnpd.sqlite").path)
        let trace = WriterStatementTrace(store)
        _ = try Self.commitOrder(store, "quiet", at: 1)
        trace.reset()
        for i in 0..<3 {
            #expect(try store.queueWebhookEvents(at: StoreFixture.at(Int64(2 + i)), classify: Self.classify) == 0)
            #expect(try store.claimWebhookDeliveries(now: StoreFixture.at(Int64(2 + i)), limit: 10, claimant: "a", leaseMilliseconds: 1).isEmpty)
        }
        #expect(trace.statements.isEmpty, "\(trace.statements)")
        try Self.checkFirstSubscription(try ServerOrderStore(path: directory.appendingPathComponent("other.sqlite").path))
    }

    @Test(.timeLimit(.minutes(2)))
    func onPostgreSQL() async throws {
        let server = try await TemporaryPostgres.start()
        defer { server.stop() }
        try await server.createDatabase("orders")
        let url = server.url(database: "orders")
        try Self.check([try ServerOrderStore(location: url), try ServerOrderStore(location: url)])
        try await server.createDatabase("first")
        try Self.checkFirstSubscription(try ServerOrderStore(location: server.url(database: "first")))
    }
}
