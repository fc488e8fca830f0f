public import CPNPCore
import CPNPPolicy
import CPNPRuntime
import CPNPStorage
import Foundation
import Logging
import Synchronization

/// Several `cpnpd` on one database (``OrderStore/sharesOrders``, docs/deployment.md).
///
/// Each instance drives the orders it keeps in memory and writes itself as their owner. Every change
/// is checked against the revision it was computed from, so two instances never both continue one
/// order from the same state; capacity and the open-order cap are checked inside the write
/// transaction, against what every instance reserved. An instance sends a heartbeat every
/// ``sharedHeartbeatInterval``; when one stops for ``sharedLease``, another claims the orders it had
/// in flight and resumes them as a restart would: their timers fire (an offer it made still expires),
/// their interrupted work is redone. A message for an order another instance drives (after a
/// failover, or a new transaction through another address) is handled where it arrives: the order is
/// read from the store, and the revision check settles any race.
extension CPNPServerEngine {
    /// How often an instance says it is alive and looks for orphaned orders.
    public static let sharedHeartbeatInterval: Duration = .seconds(1)
    /// How long without a heartbeat before an instance's orders are taken over.
    public static let sharedLease: Duration = ServerOrderStore.instanceLease

    /// A name for this process that no other (past or present) has: host, process id and a random part.
    static func newInstanceID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "cpnpd"
        return "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    /// Start-up with a shared store: the totals and counts of all instances, then the orders no live
    /// instance drives (this process's predecessor's among them, once its lease ran out).
    func recoverShared() async throws -> Int {
        let now = clock.now()
        try store.heartbeat(instance: instanceID, address: "", now: now)
        try seedSharedCounts()
        let minuteAgo = CPNPTimestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 60_000)
        for (client, times) in try store.orderCreationTimesByClient(createdSince: minuteAgo) {
            quotationLimiter.restore(client, events: times, since: minuteAgo, now: now)
        }
        let claimed = try store.claimOrphanedOrders(instance: instanceID, now: now, lease: Self.sharedLease, limit: 1_000)
        try await resume(claimed, now: now)
        logger.info("joined the instances sharing the store", metadata: ["instance": "\(instanceID)", "claimed-orders": "\(claimed.count)"])
        return claimed.count
    }

    /// One round of upkeep (every ``sharedHeartbeatInterval``): heartbeat, take over orphaned orders,
    /// and refresh the capacity totals and open-order counts, which other instances move too.
    /// Returns how many orders were taken over.
    @discardableResult
    public func maintainSharedStore() async -> Int {
        guard sharesStore else { return 0 }
        await flushBatch()
        let now = clock.now()
        do {
            try store.heartbeat(instance: instanceID, address: "", now: now)
            // Right after the store came back, every instance's heartbeat looks old: wait a lease first.
            let paused = takeoversPausedUntil.map { now < $0 } ?? false
            if !paused { takeoversPausedUntil = nil }
            let claimed = paused ? [] : try store.claimOrphanedOrders(instance: instanceID, now: now, lease: Self.sharedLease, limit: 100)
            if !claimed.isEmpty {
                logger.notice(
                    "took over orders of an instance that stopped",
                    metadata: [
                        "orders": "\(claimed.count)", "from": "\(Set(claimed.compactMap { $0.summary.owner }).sorted())",
                    ])
                // Any copy of these orders here is stale: the store's is the one to go on from.
                for order in claimed where orders[order.providerOrderID] != nil { orders.evict(order.providerOrderID) }
                try await resume(claimed, now: now)
                await flushBatch()
            }
            try await resumeFailedOrders(now: now)
            try forgetStaleCopies()
            try seedSharedCounts()
            if !isReady {
                readiness.store(true, ordering: .relaxed)
                logger.notice("ready again: the database answers")
            }
            return claimed.count
        } catch {
            logger.error("shared store upkeep failed; retrying", metadata: ["error": "\(error)"])
            takeoversPausedUntil = clock.now().adding(Self.sharedLease + Self.sharedHeartbeatInterval)
            markNotReady(error)
            return 0
        }
    }

    /// The store cannot be reached: not ready until an upkeep reaches it again.
    func markNotReady(_ error: any Error) {
        guard isReady else { return }
        readiness.store(false, ordering: .relaxed)
        logger.error("not ready: the database does not answer; nothing is acknowledged until it does", metadata: ["error": "\(error)"])
    }

    /// After an outage: the orders whose change failed are read again and resumed as after a restart
    /// (a decision, an ACCEPT or a WITHDRAW whose answer was withheld is carried out now), when this
    /// instance still drives them or nobody does.
    private func resumeFailedOrders(now: CPNPTimestamp) async throws {
        guard !ordersToResume.isEmpty else { return }
        var back: [StoredOrder] = []
        for providerOrderID in ordersToResume.sorted(by: { $0.rawValue < $1.rawValue }) {
            if let stored = try store.order(providerOrderID: providerOrderID), stored.isOpen, stored.owner == nil || stored.owner == instanceID {
                if orders[providerOrderID] != nil { orders.evict(providerOrderID) }
                back.append(stored)
            } else {
                // Another instance drives it now, or it ended there: what this one holds is stale.
                forgetCopy(of: providerOrderID)
            }
            ordersToResume.remove(providerOrderID)
        }
        guard !back.isEmpty else { return }
        logger.notice("orders resumed after failed commits", metadata: ["orders": "\(back.count)"])
        try await resume(back, now: now)
        await flushBatch()
    }

    /// Drops the copies in memory that another instance changed since (it took the order over while
    /// this one stalled, or served a new transaction of it): each next message for them is read from
    /// the store, so a retransmission is answered from what is durable there (RFC 8921 §11.4) instead
    /// of being taken for one of a transaction this instance no longer drives.
    private func forgetStaleCopies() throws {
        let written = orders.all.filter { $0.value.revision > 0 }
        guard !written.isEmpty else { return }
        let stored = try store.revisions(of: Array(written.keys))
        var stale = 0
        for (providerOrderID, live) in written where stored[providerOrderID] != live.revision {
            forgetCopy(of: providerOrderID)
            stale += 1
        }
        if stale > 0 { logger.notice("dropped copies of orders another instance changed", metadata: ["orders": "\(stale)"]) }
    }

    /// Forgets this instance's copy of an order, its timers and its customer's mapping; the totals keep
    /// what the order holds (the upkeep refreshes them from the store).
    func forgetCopy(of providerOrderID: ProviderOrderID) {
        guard let live = orders[providerOrderID] else { return }
        orders.evict(providerOrderID)
        let key = OrderKey(identity: live.clientIdentity, customerOrderID: live.machine.customerOrderID)
        if byCustomer[key] == providerOrderID { byCustomer[key] = nil }
        cancelTimers(of: providerOrderID)
    }

    /// Hands this instance's orders back at once (graceful stop), so others need not wait for the lease.
    public func leaveSharedStore() async {
        guard sharesStore else { return }
        await flushBatch()
        do { try store.retire(instance: instanceID) } catch {
            logger.warning("could not hand the orders back; others take them over after the lease", metadata: ["error": "\(error)"])
        }
    }

    /// Whether this instance carries out an operator's request for the order: with a shared store,
    /// only the instance that drives it, or any when none does (an order whose driver stopped is
    /// taken over first). The order's customer talks to its driver, which alone can send it the
    /// OFFER; the store settles each request once anyway.
    func isDrivenHere(_ providerOrderID: ProviderOrderID) -> Bool {
        guard sharesStore, orders[providerOrderID] == nil else { return true }
        guard let stored = try? store.order(providerOrderID: providerOrderID) else { return false }
        return stored.owner == nil || stored.owner == instanceID
    }

    /// Whether an operator's decision on the order is carried out by this instance (``isDrivenHere(_:)``):
    /// else it is queued in the store for the instance that drives the order.
    public func drives(_ providerOrderID: ProviderOrderID) -> Bool { isDrivenHere(providerOrderID) }

    /// What a change needs with a shared store: the revision it was computed from, this instance as the
    /// owner, and for a new order the client's open-order cap, checked by the store (RFC 8921 §13).
    func shareChange(_ change: inout OrderChange, of live: inout LiveOrder) {
        change.expectedRevision = live.revision
        change.owner = instanceID
        if live.revision == 0, !live.machine.isUpdate {
            let profile =
                live.identity.flatMap { configuration.customerProfile(matching: $0.names) }
                ?? configuration.customers.first { $0.identity == live.clientIdentity }
            change.openOrderLimit = profile?.maxOpenOrders ?? configuration.limits.defaultMaxOpenOrders
        }
    }

    /// The QUOTATION rate limit counted over every instance: the orders the client created in the
    /// last minute, wherever (RFC 8921 §13). Without a shared store, the local limiter is the count.
    func sharedQuotationRateAllows(_ identity: String, now: CPNPTimestamp) -> Bool {
        guard sharesStore else { return true }
        let minuteAgo = CPNPTimestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - 60_000)
        guard let count = try? store.orderCount(clientIdentity: identity, createdSince: minuteAgo) else { return true }
        return count < configuration.rateLimits.quotationsPerMinute
    }

    /// A commit refused because another instance took the capacity or the client's last open-order slot.
    static func isSharedLimitConflict(_ result: Result<Int64, any Error>) -> Bool {
        guard case .failure(let error) = result, let storeError = error as? StoreError else { return false }
        switch storeError {
        case .capacityExceeded, .openOrderLimitReached: return true
        default: return false
        }
    }

    /// After such a refusal: the totals and counts as the store has them, so the next decision sees them.
    func refreshSharedCounts() {
        do { try seedSharedCounts() } catch {
            logger.error("could not refresh the capacity totals from the store", metadata: ["error": "\(error)"])
        }
    }

    /// The running totals and open-order counts from the store, plus the orders here not stored yet.
    private func seedSharedCounts() throws {
        var reserved = try store.keptReservedTotals()
        var open = try store.openOrderCountsByClient()
        for live in orders.all.values where live.revision == 0 && ServerOrderStore.isOpen(live.machine) {
            open[live.clientIdentity, default: 0] += 1
            for reservation in live.offered + live.committed {
                reserved[reservation.key, default: 0] += reservation.mbps
            }
        }
        orders.seed(reserved: reserved, openByClient: open)
    }
}
