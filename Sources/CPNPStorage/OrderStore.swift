public import CPNPCore

/// What the provider's engine and its provisioning worker need of a durable order store
/// (docs/design/storage.md). ``ServerOrderStore`` implements it on SQLite. An implementation keeps
/// the rules of that document: a change is all or nothing; capacity limits and revisions are checked
/// inside the write transaction, so that several writer processes can never overbook; each distinct
/// CPD is stored once; nothing a peer saw is ever lost once a commit returned.
public protocol OrderStore: Sendable {
    // MARK: Writing (RFC 8921 §8.11: durable before the message that reveals it)

    /// Writes one change atomically; returns the order's new revision.
    @discardableResult
    func commit(_ change: OrderChange) throws -> Int64
    /// Group commit: every change in one transaction, each rolled back alone when it fails.
    func commit(batch changes: [OrderChange]) throws -> [Result<Int64, any Error>]

    // MARK: Orders

    func order(providerOrderID: ProviderOrderID) throws -> StoredOrder?
    /// The client's open order with this customer order id, else its most recent closed one (§9.1.1).
    func order(clientIdentity: String, customerOrderID: CustomerOrderID) throws -> StoredOrder?
    /// The open orders with something in flight (``ServerOrderStore/isResident(_:now:)``): what a restart loads.
    func residentOrders() throws -> [StoredOrder]
    /// Open orders per client identity (the cap on open orders, §13).
    func openOrderCountsByClient() throws -> [String: Int]
    /// Open orders per state name (monitoring).
    func openOrderCountsByState() throws -> [String: Int]
    /// Whether the client has any order with this customer order id (provider order ids never equal one, §13).
    func customerOrderIDExists(clientIdentity: String, _ id: String) throws -> Bool
    /// Creation times of the orders created since `time`, per client (the QUOTATION rate limit across restarts).
    func orderCreationTimesByClient(createdSince time: CPNPTimestamp) throws -> [String: [CPNPTimestamp]]

    // MARK: Capacity

    func reservations(providerOrderID: ProviderOrderID) throws -> HeldCapacity
    func reservationsByOrder() throws -> [ProviderOrderID: HeldCapacity]
    /// Offered plus committed capacity per link and direction, as the store keeps it.
    func keptReservedTotals() throws -> [Reservation.Key: CPNPDecimal]

    // MARK: Provisioning hand-off and operators (§8.2)

    /// Due events held by `claimant` until `now + lease`: never handed off by two instances at once.
    func claimDueOutbox(claimant: String, now: CPNPTimestamp, lease: Duration, limit: Int) throws -> [OutboxEntry]
    @discardableResult
    func markDelivered(id: Int64, at: CPNPTimestamp) throws -> Bool
    @discardableResult
    func markAttemptFailed(id: Int64, error: String, nextAttemptAt: CPNPTimestamp) throws -> Bool
    func pendingAdminRequests(limit: Int) throws -> [AdminRequest]
    @discardableResult
    func markAdminRequestProcessed(id: Int64, at: CPNPTimestamp, outcome: String) throws -> Bool

    // MARK: Several instances on one database (docs/deployment.md)

    /// Whether several `cpnpd` may share the store.
    var sharesOrders: Bool { get }
    /// Records that `instance` is alive.
    func heartbeat(instance: String, address: String, now: CPNPTimestamp) throws
    /// An instance stopping cleanly hands its orders back at once.
    func retire(instance: String) throws
    /// Takes over the resident open orders no live instance drives (``OrderSummary/owner``).
    func claimOrphanedOrders(instance: String, now: CPNPTimestamp, lease: Duration, limit: Int) throws -> [StoredOrder]
    /// Orders the client created since `time`, all instances together.
    func orderCount(clientIdentity: String, createdSince time: CPNPTimestamp) throws -> Int
    /// The stored revision of each of these orders (absent when not stored): a copy in memory with
    /// another revision was changed or taken over by another instance.
    func revisions(of orders: [ProviderOrderID]) throws -> [ProviderOrderID: Int64]

    /// The checkpoints of the store's log so far (docs/design/storage.md); nil when it keeps none.
    var walCheckpoints: WALCheckpointCounts? { get }
}

extension OrderStore {
    public var walCheckpoints: WALCheckpointCounts? { nil }
}

extension ServerOrderStore: OrderStore {}
