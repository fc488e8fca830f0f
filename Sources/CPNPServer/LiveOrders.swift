import CPNPCore
import CPNPPolicy
import CPNPStorage

extension CPNPServerEngine {
    /// The open orders in memory, with the capacity every open order holds summed per link and
    /// direction, kept up to date on every write so that a decision needs no scan of all orders
    /// (RFC 8921 §8.2 "check whether network capacity is available"). The store re-checks limits in
    /// its write transaction.
    ///
    /// Only orders with something in flight stay in memory (``ServerOrderStore/isResident(_:now:)``):
    /// an agreement at rest is ``evict(_:)``ed and ``admit(_:_:)``ted again from the store when its
    /// next message comes. The totals and counts include the orders at rest: they start from the
    /// store's (``seed(reserved:openByClient:)``) and only writes move them.
    struct OrderTable {
        private(set) var all: [ProviderOrderID: LiveOrder] = [:]
        /// Offered + committed reservations of every order, per link and direction (zero sums removed).
        private(set) var reserved: [Reservation.Key: CPNPDecimal] = [:]

        /// Open orders per client identity (RFC 8921 §13 cap), without a store read: while a batch is
        /// being committed the store does not have its new orders yet.
        private(set) var openByClient: [String: Int] = [:]

        var count: Int { all.count }

        func openCount(of clientIdentity: String) -> Int { openByClient[clientIdentity] ?? 0 }

        subscript(_ providerOrderID: ProviderOrderID) -> LiveOrder? {
            get { all[providerOrderID] }
            set {
                // The old value is moved out, not copied.
                let old: LiveOrder?
                if let newValue { old = all.updateValue(newValue, forKey: providerOrderID) } else { old = all.removeValue(forKey: providerOrderID) }
                account(from: old.map(Held.init), to: newValue.map(Held.init))
            }
        }

        /// Changes an order in place, with the same bookkeeping as the setter: its box stays uniquely
        /// referenced, so a change copies nothing (a copy taken out and written back copies the box).
        /// Nil when the order is not in memory.
        mutating func modify<Result, Failure: Error>(
            _ providerOrderID: ProviderOrderID, _ body: (inout LiveOrder) throws(Failure) -> Result
        ) throws(Failure) -> Result? {
            guard let index = all.index(forKey: providerOrderID) else { return nil }
            let before = Held(all.values[index])
            let result = try body(&all.values[index])
            account(from: before, to: Held(all.values[index]))
            return result
        }

        /// What the open-order counts and the capacity totals take from an order.
        private struct Held {
            var isOpen: Bool
            var clientIdentity: String
            var offered: [Reservation]
            var committed: [Reservation]

            init(_ live: LiveOrder) {
                isOpen = ServerOrderStore.isOpen(live.machine)
                clientIdentity = live.clientIdentity
                offered = live.offered
                committed = live.committed
            }
        }

        /// Moves the counts and totals from what an order held to what it holds.
        private mutating func account(from old: Held?, to new: Held?) {
            if let old, old.isOpen { openByClient[old.clientIdentity, default: 0] -= 1 }
            if let new, new.isOpen { openByClient[new.clientIdentity, default: 0] += 1 }
            if old?.offered != new?.offered || old?.committed != new?.committed {
                if let old { add(old.offered + old.committed, sign: -1) }
                if let new { add(new.offered + new.committed, sign: 1) }
            }
        }

        /// Starts from the store's totals and counts (restart), before any order is admitted.
        mutating func seed(reserved: [Reservation.Key: CPNPDecimal], openByClient: [String: Int]) {
            self.reserved = reserved.filter { !$0.value.isZero }
            self.openByClient = openByClient
        }

        /// Brings an order the totals and counts include already (stored, at rest or restarted) into memory.
        mutating func admit(_ providerOrderID: ProviderOrderID, _ live: LiveOrder) {
            all[providerOrderID] = live
        }

        /// Forgets an order at rest; the totals and counts keep what it holds.
        mutating func evict(_ providerOrderID: ProviderOrderID) {
            all[providerOrderID] = nil
        }

        private mutating func add(_ reservations: [Reservation], sign: Int) {
            for reservation in reservations {
                let key = reservation.key
                let total = (reserved[key] ?? 0) + (sign < 0 ? -reservation.mbps : reservation.mbps)
                reserved[key] = total.isZero ? nil : total
            }
        }

        /// The totals with `minus` taken off and `plus` added, as a reservation list.
        func reservations(minus: [Reservation], plus: [Reservation]) -> [Reservation] {
            var sums = reserved
            for reservation in minus { sums[reservation.key, default: 0] -= reservation.mbps }
            for reservation in plus { sums[reservation.key, default: 0] += reservation.mbps }
            return sums.filter { !$0.value.isZero }.map { Reservation($0.key, mbps: $0.value) }
        }

        /// The same totals summed from scratch over the orders in memory and `atRest` (tests).
        func reservedByScan(atRest: [[Reservation]]) -> [Reservation.Key: CPNPDecimal] {
            var sums: [Reservation.Key: CPNPDecimal] = [:]
            for list in all.values.map({ $0.offered + $0.committed }) + atRest {
                for reservation in list { sums[reservation.key, default: 0] += reservation.mbps }
            }
            return sums.filter { !$0.value.isZero }
        }
    }

    /// The running totals and the same sums recomputed over every open order: those in memory, and the
    /// stored reservations of those at rest (tests).
    func reservedTotals() -> (running: [Reservation.Key: CPNPDecimal], scanned: [Reservation.Key: CPNPDecimal]) {
        let stored = (try? store.reservationsByOrder()) ?? [:]
        let atRest = stored.filter { orders[$0.key] == nil }.map { $0.value.offered + $0.value.committed }
        return (orders.reserved, orders.reservedByScan(atRest: atRest))
    }
}
