// What every run with crashes must leave behind: each order once, reservations matching each
// order's state, kept capacity totals equal to a recount, and both sides agreeing on each order the
// customers finished (RFC 8921 §8.11: nothing a peer saw is lost).
import CPNPTesting
import CPNPCore
import CPNPStorage
import Testing

/// Checks the provider's orders against the customers' stores.
func expectConsistent(provider store: ServerOrderStore, customers: [ClientOrderStore]) throws {
    let all = try store.orders(limit: 100_000)
    #expect(Set(all.map { "\($0.clientIdentity)/\($0.customerOrderID)" }).count == all.count, "an order was duplicated")
    var byCustomerOrder: [CustomerOrderID: OrderSummary] = [:]
    for o in all { byCustomerOrder[o.customerOrderID] = o }
    var expectedTotals: [Reservation.Key: CPNPDecimal] = [:]
    for o in all {
        let reservations = try store.reservations(providerOrderID: o.providerOrderID)
        switch o.state {
        case .completed:
            #expect(!reservations.committed.isEmpty && reservations.offered.isEmpty, "\(o.providerOrderID) Completed")
        case .offerProposed, .processingReceived:
            #expect(reservations.committed.isEmpty, "\(o.providerOrderID) \(o.state.rawValue)")
        case .cancelled:
            #expect(reservations.isEmpty, "\(o.providerOrderID) Cancelled holds \(reservations)")
        default:
            #expect(reservations.committed.isEmpty, "\(o.providerOrderID) \(o.state.rawValue)")
        }
        for (_, r) in reservations.byKind { expectedTotals[r.key, default: 0] = expectedTotals[r.key, default: 0] + r.mbps }
    }
    #expect(try store.reservedTotals() == expectedTotals.filter { !$0.value.isZero })
    // The totals the capacity check reads moved with every commit, crashes included.
    #expect(try store.reservationTotalMismatches() == [])
    for (key, total) in expectedTotals { #expect(try store.reservedTotal(for: key) == total, "\(key)") }

    // Both sides agree on every order the customers finished.
    for customer in customers {
        for order in try customer.orders(limit: 100_000) {
            let m = order.machine
            let server = byCustomerOrder[m.customerOrderID]
            switch m.state {
            case .completed:
                #expect(server?.state == .completed, "\(m.customerOrderID): client Completed, server \(server?.state.rawValue ?? "nothing")")
                #expect(server?.providerOrderID == m.agreement?.providerOrderID)
            case .cancelled where m.transaction?.pending == nil:
                // Withdrawn, declined, cancelled or failed: the provider holds no agreement — except
                // when the client was told its ACCEPT went unanswered (RFC 8921 §11.4 limitation).
                if server?.state == .completed {
                    #expect(m.lastEnd == .noResponse, "\(m.customerOrderID): client Cancelled (\(String(describing: m.lastEnd))), server Completed")
                }
            default:
                Issue.record(
                    "\(m.customerOrderID) left in \(m.state.rawValue) (pending \(String(describing: m.transaction?.pending?.message.method)))")
            }
        }
    }
}
