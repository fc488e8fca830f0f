// The customer's order store in memory (ClientOrderStoring is in ClientOrderStore.swift).
public import CPNPCore
import Synchronization

/// The customer's orders in this process's memory only, with the semantics of ``ClientOrderStore``
/// (revisions, history, listings, orders never deleted) and none of its durability: nothing survives
/// the process. For load generators (`cpnp-bench`) and embedders that keep no state across restarts;
/// RFC 8921 §8.11 recommends persistent storage, which ``ClientOrderStore`` gives.
///
/// A save keeps the machine as a value: no snapshot is encoded and no SQL runs.
public final class VolatileClientOrderStore: ClientOrderStoring {
    struct Record {
        var order: StoredClientOrder
        /// Insertion order, as SQLite's `rowid` breaks ties between equal creation times.
        var sequence: Int
    }

    struct State {
        var orders: [CustomerOrderID: Record] = [:]
        var events: [CustomerOrderID: [ClientOrderEvent]] = [:]
        var lastEventID: Int64 = 0
    }

    let state = Mutex(State())

    public init() {}

    @discardableResult
    public func save(_ change: ClientOrderChange) throws -> Int64 {
        let machine = change.machine
        let customerOrderID = machine.customerOrderID
        let changedAt = change.at
        return try state.withLock { state throws(StoreError) -> Int64 in
            let stored = state.orders[customerOrderID]
            if let expected = change.expectedRevision, expected != (stored?.order.revision ?? 0) {
                throw StoreError.revisionConflict(orderID: customerOrderID.rawValue, expected: expected, actual: stored?.order.revision)
            }
            guard let address = change.givenServerAddress ?? stored?.order.serverAddress else {
                throw StoreError.invalidArgument(
                    "order \(customerOrderID.rawValue): no server address (give one, or a machine with a session)")
            }
            let revision = (stored?.order.revision ?? 0) + 1
            state.orders[customerOrderID] = Record(
                order: StoredClientOrder(
                    customerOrderID: customerOrderID, serverAddress: address, serverName: change.serverName ?? stored?.order.serverName,
                    providerOrderID: machine.providerOrderID, state: machine.state, isOpen: ClientOrderStore.isOpen(machine),
                    group: change.group ?? stored?.order.group, createdAt: stored?.order.createdAt ?? changedAt, updatedAt: changedAt,
                    revision: revision, machine: machine),
                sequence: stored?.sequence ?? state.orders.count)
            for transition in change.transitions {
                state.lastEventID += 1
                state.events[customerOrderID, default: []].append(
                    ClientOrderEvent(
                        id: state.lastEventID, customerOrderID: customerOrderID,
                        at: transition.at ?? changedAt, from: transition.from,
                        to: transition.to, event: transition.event, serverAddress: address))
            }
            return revision
        }
    }

    public func order(customerOrderID: CustomerOrderID) throws -> StoredClientOrder? {
        state.withLock { $0.orders[customerOrderID]?.order }
    }

    public func customerOrderIDExists(_ id: String) throws -> Bool {
        guard let customerOrderID = CustomerOrderID(id) else { return false }
        return state.withLock { $0.orders[customerOrderID] != nil }
    }

    public func orders(identifiedBy id: String) throws -> [StoredClientOrder] {
        if let customerOrderID = CustomerOrderID(id), let order = try order(customerOrderID: customerOrderID) { return [order] }
        return oldestFirst { $0.providerOrderID?.rawValue == id }
    }

    public func orders(limit: Int, offset: Int, state wanted: ClientOrderStateMachine.State?) throws -> [StoredClientOrder] {
        guard limit >= 0, offset >= 0 else { throw StoreError.invalidArgument("limit and offset must not be negative") }
        let newestFirst = oldestFirst { wanted == nil || $0.state == wanted }.reversed()
        return Array(newestFirst.dropFirst(offset).prefix(limit))
    }

    public func openOrders() throws -> [StoredClientOrder] { oldestFirst(\.isOpen) }

    public func orders(group: String) throws -> [StoredClientOrder] { oldestFirst { $0.group == group } }

    public func events(customerOrderID: CustomerOrderID) throws -> [ClientOrderEvent] {
        state.withLock { $0.events[customerOrderID] ?? [] }
    }

    /// The orders `included` keeps, by creation time then insertion, as ClientOrderStore lists them.
    private func oldestFirst(_ included: (StoredClientOrder) -> Bool) -> [StoredClientOrder] {
        state.withLock { state in
            state.orders.values.filter { included($0.order) }
                .sorted { ($0.order.createdAt, $0.sequence) < ($1.order.createdAt, $1.sequence) }.map(\.order)
        }
    }
}
