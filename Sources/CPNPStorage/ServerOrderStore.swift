/// The provider's durable order store (issue 4; RFC 8921 §8.11 persistent orders and time-stamped state
/// changes, §12.1 audit, §8.2 provisioning hand-off, §13 identifier and open-order rules).
public import CPNPCore
import Dispatch
import GRDB
import Synchronization

/// The server's orders, audit trail, capacity reservations, provisioning outbox and operator requests,
/// in one SQLite file.
///
/// **Writing.** ``commit(_:)`` writes one ``OrderChange`` in a single transaction: the order row and
/// snapshot, its audit entries, outbox events, settled admin requests and (when given) its
/// reservations — all or nothing. The engine commits before it performs the sends that follow a
/// `.persist` action, so a state a peer can observe is always durable first (RFC 8921 §8.11; issue 4).
///
/// **Concurrency.** The store is `Sendable`: any thread or task may call it. Calls are synchronous and
/// block for one SQLite transaction (usually well under a millisecond; up to the busy timeout if another
/// process holds the write lock). Reads run concurrently with writes (WAL); writes are serialized. An
/// engine that calls ``commit(_:)`` from an actor keeps its ordering, since nothing suspends.
///
/// **Several processes.** The daemon and `cpnpd admin …` open the same file with ``init(path:options:)``;
/// each sees the other's committed writes on its next read. The daemon learns of operator actions by
/// polling ``pendingAdminRequests(limit:)`` (an indexed query on unprocessed rows only).
///
/// **Times** are stored as integer milliseconds since the Unix epoch (UTC), the resolution of
/// ``CPNPTimestamp``; decimal amounts as canonical decimal text.
public final class ServerOrderStore: Sendable {
    let writer: any DatabaseWriter
    /// Each distinct CPD of the snapshots, stored once (``CPDReferences``).
    let documents = DocumentTable()

    /// Opens (creating and migrating it if needed) the store file at `path`, in WAL mode.
    public init(path: String, options: StoreOptions = StoreOptions()) throws {
        writer = try StoreDatabase.openPool(path: path, options: options, label: "CPNPStorage.server", migrator: Self.migrator)
    }

    private init(writer: any DatabaseWriter) { self.writer = writer }

    /// A private in-memory store, for tests and dry runs; gone when released.
    public static func inMemory() throws -> ServerOrderStore {
        ServerOrderStore(writer: try StoreDatabase.openInMemory(label: "CPNPStorage.server", migrator: migrator))
    }

    /// SQLite's journal mode of the store (`wal` for a file store).
    public func journalMode() throws -> String {
        try writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    // MARK: - Schema

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("server-v1") { db in
            try db.execute(sql: """
                -- One row per order (RFC 8921 §8.11.2). is_open: see ServerOrderStore.isOpen.
                CREATE TABLE orders (
                    provider_order_id TEXT NOT NULL PRIMARY KEY,
                    customer_order_id TEXT NOT NULL,
                    client_identity TEXT NOT NULL,
                    client_address TEXT NOT NULL,
                    state TEXT NOT NULL,
                    is_open INTEGER NOT NULL CHECK (is_open IN (0, 1)),
                    snapshot TEXT NOT NULL,
                    revision INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE UNIQUE INDEX orders_client_coi_poi ON orders(client_identity, customer_order_id, provider_order_id);
                CREATE INDEX orders_client_coi ON orders(client_identity, customer_order_id, is_open, created_at);
                CREATE UNIQUE INDEX orders_one_open_per_coi ON orders(client_identity, customer_order_id) WHERE is_open = 1;
                CREATE INDEX orders_open ON orders(is_open, client_identity);
                CREATE INDEX orders_state ON orders(state, created_at);
                CREATE INDEX orders_created ON orders(created_at);

                -- Every state change (RFC 8921 §8.11, §12.1).
                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    provider_order_id TEXT NOT NULL REFERENCES orders(provider_order_id),
                    at INTEGER NOT NULL,
                    from_state TEXT NOT NULL,
                    to_state TEXT NOT NULL,
                    event TEXT NOT NULL,
                    client_address TEXT NOT NULL,
                    client_identity TEXT NOT NULL
                );
                CREATE INDEX audit_order ON audit(provider_order_id, id);

                -- Capacity held by offers and agreements; amounts are exact decimal text.
                CREATE TABLE reservations (
                    id INTEGER PRIMARY KEY,
                    provider_order_id TEXT NOT NULL REFERENCES orders(provider_order_id),
                    resource_id TEXT NOT NULL,
                    direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing')),
                    amount TEXT NOT NULL CHECK (amount <> '' AND amount NOT LIKE '-%'),
                    kind TEXT NOT NULL CHECK (kind IN ('offered', 'committed'))
                );
                CREATE INDEX reservations_order ON reservations(provider_order_id);
                CREATE INDEX reservations_resource ON reservations(resource_id, direction, kind, amount);

                -- Provisioning hand-off events, delivered at least once, in order per order.
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    provider_order_id TEXT NOT NULL REFERENCES orders(provider_order_id),
                    kind TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER NOT NULL,
                    delivered_at INTEGER,
                    last_error TEXT
                );
                CREATE INDEX outbox_due ON outbox(next_attempt_at, id) WHERE delivered_at IS NULL;
                CREATE INDEX outbox_order ON outbox(provider_order_id, id);

                -- Operator decisions written by `cpnpd admin approve|reject` (possibly another process).
                CREATE TABLE admin_requests (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    provider_order_id TEXT NOT NULL REFERENCES orders(provider_order_id),
                    action TEXT NOT NULL CHECK (action IN ('approve', 'reject')),
                    status_code INTEGER CHECK (status_code BETWEEN 1 AND 8),
                    diagnostic TEXT,
                    requested_by TEXT,
                    created_at INTEGER NOT NULL,
                    processed_at INTEGER,
                    outcome TEXT,
                    CHECK ((action = 'reject') = (status_code IS NOT NULL))
                );
                CREATE INDEX admin_requests_pending ON admin_requests(id) WHERE processed_at IS NULL;
                CREATE INDEX admin_requests_order ON admin_requests(provider_order_id, id);
                """)
        }
        m.registerMigration("server-v2-reservation-totals") { db in
            // The capacity check of every reserving commit read every reservation row of the link
            // (O(open orders)); the totals are now kept per resource, direction and kind in the same
            // transaction as the rows, so the check is one keyed read.
            try db.execute(sql: """
                CREATE TABLE reservation_totals (
                    resource_id TEXT NOT NULL,
                    direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing')),
                    kind TEXT NOT NULL CHECK (kind IN ('offered', 'committed')),
                    total TEXT NOT NULL CHECK (total <> '' AND total NOT LIKE '-%'),
                    PRIMARY KEY (resource_id, direction, kind)
                ) WITHOUT ROWID;
                DROP INDEX reservations_resource;
                """)
            for (key, total) in try recountedTotals(in: db) {
                try db.execute(
                    sql: "INSERT INTO reservation_totals (resource_id, direction, kind, total) VALUES (?, ?, ?, ?)",
                    arguments: [key.resource.resourceID, key.resource.direction.rawValue, key.kind.rawValue, total.description])
            }
        }
        m.registerMigration("server-v3-documents") { db in
            // Snapshots name their CPDs (CPDReferences) instead of holding a copy of each: a negotiation
            // wrote about 13 copies of the same document. Older snapshots, with documents inline, are
            // read as they are and rewritten with references at the order's next change.
            try db.execute(sql: DocumentTable.createSQL)
        }
        m.registerMigration("server-v4-resident") { db in
            // Which open orders a restarted engine loads: those with something in flight. Rows written
            // before are marked resident; an engine forgets those at rest once loaded, and they are
            // marked at their next change.
            try db.execute(sql: """
                ALTER TABLE orders ADD COLUMN resident INTEGER NOT NULL DEFAULT 1 CHECK (resident IN (0, 1));
                CREATE INDEX orders_resident ON orders(provider_order_id) WHERE is_open = 1 AND resident = 1;
                """)
        }
        return m
    }

    // MARK: - SQL of the hot paths (checked against EXPLAIN QUERY PLAN by the tests)

    enum SQL {
        static let summaryColumns =
            "provider_order_id, customer_order_id, client_identity, client_address, state, is_open, revision, created_at, updated_at"
        static let orderColumns = summaryColumns + ", snapshot"
        static let orderByProviderID = "SELECT \(orderColumns) FROM orders WHERE provider_order_id = ?"
        /// The open order first, then the most recent.
        static let orderByClientAndCustomerID = """
            SELECT \(orderColumns) FROM orders WHERE client_identity = ? AND customer_order_id = ?
            ORDER BY is_open DESC, created_at DESC, rowid DESC LIMIT 1
            """
        static let openOrders = "SELECT \(orderColumns) FROM orders WHERE is_open = 1"
        static let residentOrders = "SELECT \(orderColumns) FROM orders WHERE is_open = 1 AND resident = 1"
        static let openOrderCountsByClient = "SELECT client_identity, COUNT(*) FROM orders WHERE is_open = 1 GROUP BY client_identity"
        static let openOrderCount = "SELECT COUNT(*) FROM orders WHERE is_open = 1 AND client_identity = ?"
        static let customerOrderIDExists = "SELECT EXISTS (SELECT 1 FROM orders WHERE client_identity = ? AND customer_order_id = ?)"
        static let providerOrderIDExists = "SELECT EXISTS (SELECT 1 FROM orders WHERE provider_order_id = ?)"
        static let orderHead = "SELECT client_identity, customer_order_id, revision FROM orders WHERE provider_order_id = ?"
        static let otherOpenOrder = """
            SELECT provider_order_id FROM orders
            WHERE client_identity = ? AND customer_order_id = ? AND is_open = 1 AND provider_order_id <> ? LIMIT 1
            """
        static let auditOfOrder = """
            SELECT id, provider_order_id, at, from_state, to_state, event, client_address, client_identity
            FROM audit WHERE provider_order_id = ? ORDER BY id
            """
        static let reservationColumns = "resource_id, direction, amount, kind"
        static let reservationsOfOrder = "SELECT \(reservationColumns) FROM reservations WHERE provider_order_id = ? ORDER BY id"
        static let reservedOnResource = "SELECT total FROM reservation_totals WHERE resource_id = ? AND direction = ?"
        static let reservedOnResourceOfKind = "SELECT total FROM reservation_totals WHERE resource_id = ? AND direction = ? AND kind = ?"
        static let reservationTotal = "SELECT total FROM reservation_totals WHERE resource_id = ? AND direction = ? AND kind = ?"
        static let upsertReservationTotal = """
            INSERT INTO reservation_totals (resource_id, direction, kind, total) VALUES (?, ?, ?, ?)
            ON CONFLICT (resource_id, direction, kind) DO UPDATE SET total = excluded.total
            """
        static let outboxColumns = "id, provider_order_id, kind, payload, created_at, attempts, next_attempt_at, delivered_at, last_error"
        /// Undelivered events that are due and first in line for their order.
        static let dueOutbox = """
            SELECT \(outboxColumns) FROM outbox AS o
            WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ?
              AND NOT EXISTS (
                SELECT 1 FROM outbox AS p
                WHERE p.provider_order_id = o.provider_order_id AND p.id < o.id AND p.delivered_at IS NULL)
            ORDER BY o.next_attempt_at, o.id LIMIT ?
            """
        static let nextOutboxAttempt = """
            SELECT MIN(o.next_attempt_at) FROM outbox AS o
            WHERE o.delivered_at IS NULL
              AND NOT EXISTS (
                SELECT 1 FROM outbox AS p
                WHERE p.provider_order_id = o.provider_order_id AND p.id < o.id AND p.delivered_at IS NULL)
            """
        static let adminColumns = "id, provider_order_id, action, status_code, diagnostic, requested_by, created_at, processed_at, outcome"
        static let pendingAdminRequests = "SELECT \(adminColumns) FROM admin_requests WHERE processed_at IS NULL ORDER BY id LIMIT ?"
    }

    /// `EXPLAIN QUERY PLAN` of one of ``SQL``'s statements.
    func queryPlan(_ sql: String, _ arguments: [String]) throws -> [String] {
        try StoreDatabase.queryPlan(writer, sql: sql, arguments: StatementArguments(arguments))
    }

    // MARK: - Commit

    /// Writes `change` atomically (ONE write transaction): the order row and snapshot (inserted or
    /// updated), its audit entries (RFC 8921 §8.11, §12.1), its outbox events, the admin requests it
    /// settles, and its reservations (replaced when given; released when the order is closed). Checks,
    /// inside the transaction, that the provider order id is not another order's, the expected
    /// revision, that no other open order of the client uses its customer order id, and the capacity
    /// limits given.
    ///
    /// When it throws, nothing was written. Returns the order's new revision.
    @discardableResult
    public func commit(_ change: OrderChange) throws -> Int64 {
        let prepared = try prepare(change)
        let revision = try writer.write { db in try Self.commit(change, prepared: prepared, in: db) }
        documents.learn(prepared.written)
        return revision
    }

    /// Commits several changes in ONE transaction (all or nothing), e.g. bulk expiries after a restart.
    /// Returns the new revisions, in order.
    @discardableResult
    public func commit(_ changes: [OrderChange]) throws -> [Int64] {
        let prepared = try changes.map { try prepare($0) }
        let revisions = try writer.write { db in
            try zip(changes, prepared).map { try Self.commit($0, prepared: $1, in: db) }
        }
        for p in prepared { documents.learn(p.written) }
        return revisions
    }

    /// Group commit: writes `changes` in ONE write transaction (one WAL commit and fsync), each in its own
    /// savepoint, so that one failing change (e.g. ``StoreError/capacityExceeded(_:total:limit:)``) is
    /// rolled back alone and the others are kept. A change of an order whose earlier change in the batch
    /// failed is not attempted (it was computed from the state that failed): its result is
    /// ``BatchCommitError/earlierChangeFailed(providerOrderID:)``. Results are in the order of `changes`.
    ///
    /// Nothing is durable before this returns; if it throws (the transaction itself failed, e.g. I/O or
    /// `SQLITE_BUSY`), nothing was stored. Send the messages that reveal a change only after it returned
    /// `.success` for that change (RFC 8921 §8.11).
    public func commit(batch changes: [OrderChange]) throws -> [Result<Int64, any Error>] {
        var results: [Result<Int64, any Error>?] = Array(repeating: nil, count: changes.count)
        var prepared: [Prepared?] = Array(repeating: nil, count: changes.count)
        for (i, c) in changes.enumerated() {
            do { prepared[i] = try prepare(c) } catch { results[i] = .failure(error) }
        }
        let initial = results
        results = try writer.write { db in
            var out = initial
            var failed = Set<String>()
            for (i, change) in changes.enumerated() {
                let poi = change.machine.providerOrderID.rawValue
                guard let p = prepared[i], !failed.contains(poi) else {
                    if out[i] == nil { out[i] = .failure(BatchCommitError.earlierChangeFailed(providerOrderID: poi)) }
                    failed.insert(poi)
                    continue
                }
                do {
                    var revision: Int64 = 0
                    try db.inSavepoint {
                        revision = try Self.commit(change, prepared: p, in: db)
                        return .commit
                    }
                    out[i] = .success(revision)
                } catch {
                    out[i] = .failure(error)
                    failed.insert(poi)
                }
            }
            return out
        }
        for (p, r) in zip(prepared, results) { if let p, case .success? = r { documents.learn(p.written) } }
        return results.map { $0! }
    }

    private struct Prepared {
        /// The snapshot, naming its documents, and those of them not known committed.
        var written: DocumentTable.Written
        var isOpen: Bool
        var resident: Bool
        var outboxPayloads: [String]
        var snapshot: String { written.snapshot }
    }

    /// The serialisation and checks that need no database, done before taking the write lock. The
    /// snapshot names its documents (``CPDReferences``); only those not known committed are encoded.
    private func prepare(_ change: OrderChange) throws -> Prepared {
        let open = Self.isOpen(change.machine)
        if !open, let r = change.reservations, !r.isEmpty {
            throw StoreError.reservationsOnClosedOrder(providerOrderID: change.machine.providerOrderID.rawValue)
        }
        guard !change.clientIdentity.isEmpty else { throw StoreError.invalidArgument("the client identity is empty") }
        return Prepared(
            written: documents.write { change.machine.snapshot }, isOpen: open, resident: change.resident,
            outboxPayloads: change.outbox.map { StoreDatabase.text($0.payload) })
    }

    private static func commit(_ change: OrderChange, prepared: Prepared, in db: Database) throws -> Int64 {
        let m = change.machine
        let poi = m.providerOrderID.rawValue
        let coi = m.customerOrderID.rawValue
        let at = StoreDatabase.ms(change.at)

        let head = try Row.fetchOne(db, cachedSQL: SQL.orderHead, arguments: [poi])
        if let head {
            let identity: String = head["client_identity"]
            let storedCOI: String = head["customer_order_id"]
            if identity != change.clientIdentity || storedCOI != coi {
                throw StoreError.providerOrderIDInUse(providerOrderID: poi, clientIdentity: identity, customerOrderID: storedCOI)
            }
        }
        let stored: Int64? = head?["revision"]
        if let expected = change.expectedRevision, expected != (stored ?? 0) {
            throw StoreError.revisionConflict(orderID: poi, expected: expected, actual: stored)
        }
        if prepared.isOpen,
            let other = try String.fetchOne(db, cachedSQL: SQL.otherOpenOrder, arguments: [change.clientIdentity, coi, poi])
        {
            throw StoreError.openOrderExists(customerOrderID: coi, providerOrderID: other)
        }

        try DocumentTable.insert(prepared.written, in: db)

        let revision = (stored ?? 0) + 1
        if stored == nil {
            try db.cachedStatement(sql: """
                INSERT INTO orders (provider_order_id, customer_order_id, client_identity, client_address, state, is_open,
                                    snapshot, revision, created_at, updated_at, resident)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    poi, coi, change.clientIdentity, change.clientAddress, m.state.rawValue, prepared.isOpen,
                    prepared.snapshot, revision, at, at, prepared.resident,
                ])
        } else {
            try db.cachedStatement(sql: """
                UPDATE orders SET client_address = ?, state = ?, is_open = ?, snapshot = ?, revision = ?, updated_at = ?, resident = ?
                WHERE provider_order_id = ?
                """).execute(arguments: [
                    change.clientAddress, m.state.rawValue, prepared.isOpen, prepared.snapshot, revision, at, prepared.resident, poi,
                ])
        }

        let audit = try db.cachedStatement(sql: """
            INSERT INTO audit (provider_order_id, at, from_state, to_state, event, client_address, client_identity)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        for t in change.transitions {
            try audit.execute(arguments: [poi, at, t.from.rawValue, t.to.rawValue, t.event, change.clientAddress, change.clientIdentity])
        }

        let outbox = try db.cachedStatement(sql: """
            INSERT INTO outbox (provider_order_id, kind, payload, created_at, attempts, next_attempt_at, delivered_at) VALUES (?, ?, ?, ?, 0, ?, ?)
            """)
        for (event, payload) in zip(change.outbox, prepared.outboxPayloads) {
            try outbox.execute(arguments: [poi, event.kind.rawValue, payload, at, event.notBefore.map(StoreDatabase.ms) ?? at, event.delivered ? at : nil])
        }

        let settle = try db.cachedStatement(sql: """
            UPDATE admin_requests SET processed_at = ?, outcome = ? WHERE id = ? AND processed_at IS NULL
            """)
        for r in change.processedAdminRequests {
            try settle.execute(arguments: [at, r.outcome, r.id])
        }

        // Reservations last, so that a failing check or constraint there rolls everything back. The
        // totals move by the difference between the order's old rows and its new ones.
        if !prepared.isOpen || change.reservations != nil {
            var delta: [TotalKey: CPNPDecimal] = [:]
            for row in try Row.fetchAll(db, cachedSQL: SQL.reservationsOfOrder, arguments: [poi]) {
                let key = try resourceKey(row)
                delta[TotalKey(resource: key, kind: try kind(row, key)), default: 0] -= try amount(row, key)
            }
            if !delta.isEmpty {
                try db.execute(sql: "DELETE FROM reservations WHERE provider_order_id = ?", arguments: [poi])
            }
            if prepared.isOpen, let reservations = change.reservations {
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO reservations (provider_order_id, resource_id, direction, amount, kind) VALUES (?, ?, ?, ?, ?)
                    """)
                for r in reservations {
                    try insert.execute(arguments: [poi, r.resource.resourceID, r.resource.direction.rawValue, r.amount.description, r.kind.rawValue])
                    delta[TotalKey(resource: r.resource, kind: r.kind), default: 0] += r.amount
                }
            }
            for (key, d) in delta.sorted(by: { ($0.key.resource, $0.key.kind.rawValue) < ($1.key.resource, $1.key.kind.rawValue) }) where d != 0 {
                try adjustTotal(key, by: d, in: db)
            }
        }
        for (key, limit) in change.capacityLimits.sorted(by: { $0.key < $1.key }) {
            let total = try reservedTotal(for: key, kind: nil, in: db)
            if total > limit { throw StoreError.capacityExceeded(key, total: total, limit: limit) }
        }
        return revision
    }

    /// A row of `reservation_totals`.
    struct TotalKey: Hashable {
        var resource: ResourceKey
        var kind: ReservationKind
    }

    /// Adds `delta` to a kept total (inside the commit's transaction).
    private static func adjustTotal(_ key: TotalKey, by delta: CPNPDecimal, in db: Database) throws {
        let args: StatementArguments = [key.resource.resourceID, key.resource.direction.rawValue, key.kind.rawValue]
        var total: CPNPDecimal = 0
        if let text = try String.fetchOne(db, cachedSQL: SQL.reservationTotal, arguments: args) {
            total = try Self.total(text, key.resource)
        }
        total += delta
        guard !total.isNegative else {
            throw StoreError.corruptRow(table: "reservation_totals", key: key.resource.description, reason: "total would fall below zero (\(total))")
        }
        try db.cachedStatement(sql: SQL.upsertReservationTotal).execute(arguments: args + [total.description])
    }

    /// The totals recounted from the reservation rows (the migration; consistency checks).
    static func recountedTotals(in db: Database) throws -> [TotalKey: CPNPDecimal] {
        var totals: [TotalKey: CPNPDecimal] = [:]
        let rows = try Row.fetchCursor(db, sql: "SELECT \(SQL.reservationColumns) FROM reservations")
        while let row = try rows.next() {
            let key = try resourceKey(row)
            totals[TotalKey(resource: key, kind: try kind(row, key)), default: 0] += try amount(row, key)
        }
        return totals
    }

    /// The kept totals that differ from a recount of the reservation rows: empty when the store is
    /// consistent (tests, `cpnpd admin` checks). Keys absent on one side count as zero.
    public func reservationTotalMismatches() throws -> [String] {
        try writer.read { db in
            let recount = try Self.recountedTotals(in: db)
            var kept: [TotalKey: CPNPDecimal] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT resource_id, direction, kind, total FROM reservation_totals") {
                let key = try Self.resourceKey(row)
                let text: String = row["total"]
                guard let v = CPNPDecimal(parsing: text) else { return ["\(key): invalid total \"\(text)\""] }
                kept[TotalKey(resource: key, kind: try Self.kind(row, key))] = v
            }
            var out: [String] = []
            for key in Set(recount.keys).union(kept.keys) {
                let a = kept[key] ?? 0, b = recount[key] ?? 0
                if a != b { out.append("\(key.resource) \(key.kind.rawValue): kept \(a), rows sum to \(b)") }
            }
            return out.sorted()
        }
    }

    // MARK: - Orders

    /// The order with this provider order id (RFC 8921 §9.1.2).
    public func order(providerOrderID: ProviderOrderID) throws -> StoredOrder? {
        try writer.read { db in
            try Row.fetchOne(db, cachedSQL: SQL.orderByProviderID, arguments: [providerOrderID.rawValue]).map { try Self.storedOrder($0, db) }
        }
    }

    /// The order a client's message refers to: the client's open order with this customer order id,
    /// else its most recent closed one (RFC 8921 §9.1.1: customer order ids are the client's own).
    public func order(clientIdentity: String, customerOrderID: CustomerOrderID) throws -> StoredOrder? {
        try writer.read { db in
            try Row.fetchOne(db, cachedSQL: SQL.orderByClientAndCustomerID, arguments: [clientIdentity, customerOrderID.rawValue])
                .map { try Self.storedOrder($0, db) }
        }
    }

    /// Every open order (``isOpen(_:)``), for restart recovery: re-arm each machine's
    /// ``ServerOrderStateMachine/armedTimers(now:)`` and carry on its transaction (RFC 8921 §11.2).
    ///
    /// The snapshots are decoded on every CPU (start-up time is mostly that decoding: ~1 ms per open order).
    public func openOrders() throws -> [StoredOrder] {
        try decodedOrders(SQL.openOrders)
    }

    /// The open orders an engine keeps in memory (``isResident(_:now:)``): what a restart loads; the
    /// others are read when their next message comes.
    public func residentOrders() throws -> [StoredOrder] {
        try decodedOrders(SQL.residentOrders)
    }

    /// Open orders per client identity (the cap on open orders, RFC 8921 §13), from the index alone.
    public func openOrderCountsByClient() throws -> [String: Int] {
        try writer.read { db in
            var out: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: SQL.openOrderCountsByClient) { out[row[0]] = row[1] }
            return out
        }
    }

    /// Offered plus committed capacity per resource, from the kept totals (one row per resource,
    /// direction and kind; ``reservedTotals(kind:)`` recounts the reservation rows instead).
    public func keptReservedTotals() throws -> [ResourceKey: CPNPDecimal] {
        try writer.read { db in
            var out: [ResourceKey: CPNPDecimal] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT resource_id, direction, total FROM reservation_totals") {
                let key = try Self.resourceKey(row)
                out[key, default: 0] += try Self.total(row["total"], key)
            }
            return out.filter { !$0.value.isZero }
        }
    }

    private func decodedOrders(_ sql: String) throws -> [StoredOrder] {
        let rows: [(summary: OrderSummary, snapshot: String)] = try writer.read { db in
            try Row.fetchAll(db, sql: sql).map { (try Self.summary($0), $0["snapshot"]) }
        }
        let chunk = 128
        let results = Mutex<[Result<StoredOrder, any Error>?]>(Array(repeating: nil, count: rows.count))
        DispatchQueue.concurrentPerform(iterations: (rows.count + chunk - 1) / chunk) { c in
            let range = c * chunk..<min(rows.count, (c + 1) * chunk)
            let decoded: [Result<StoredOrder, any Error>]
            do {
                decoded = try writer.read { db in
                    range.map { i in Result { try Self.storedOrder(rows[i].summary, snapshot: rows[i].snapshot, db) } }
                }
            } catch {
                decoded = range.map { _ in .failure(error) }
            }
            results.withLock { r in for (i, d) in zip(range, decoded) { r[i] = d } }
        }
        return try results.withLock { $0 }.map { try $0!.get() }
    }

    /// Orders newest first, optionally in one state (`cpnpd admin orders`).
    public func orders(limit: Int = 100, offset: Int = 0, state: ServerOrderStateMachine.State? = nil) throws -> [OrderSummary] {
        guard limit >= 0, offset >= 0 else { throw StoreError.invalidArgument("limit and offset must not be negative") }
        return try writer.read { db in
            if let state {
                return try Row.fetchAll(
                    db, sql: "SELECT \(SQL.summaryColumns) FROM orders WHERE state = ? ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                    arguments: [state.rawValue, limit, offset]
                ).map(Self.summary)
            }
            return try Row.fetchAll(
                db, sql: "SELECT \(SQL.summaryColumns) FROM orders ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                arguments: [limit, offset]
            ).map(Self.summary)
        }
    }

    /// How many orders there are, optionally in one state.
    public func orderCount(state: ServerOrderStateMachine.State? = nil) throws -> Int {
        try writer.read { db in
            if let state {
                return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM orders WHERE state = ?", arguments: [state.rawValue]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM orders") ?? 0
        }
    }

    /// The client's open orders, for the cap on open orders per customer (RFC 8921 §13).
    public func openOrderCount(clientIdentity: String) throws -> Int {
        try writer.read { db in try Int.fetchOne(db, cachedSQL: SQL.openOrderCount, arguments: [clientIdentity]) ?? 0 }
    }

    /// When each client's orders created at or after `time` were created, oldest first: what a
    /// restart replays into the QUOTATION rate limiter, so that it is not refilled by a restart
    /// (RFC 8921 §9.2.5, §13).
    public func orderCreationTimesByClient(createdSince time: CPNPTimestamp) throws -> [String: [CPNPTimestamp]] {
        try writer.read { db in
            var times: [String: [CPNPTimestamp]] = [:]
            let rows = try Row.fetchAll(
                db, sql: "SELECT client_identity, created_at FROM orders WHERE created_at >= ? ORDER BY created_at",
                arguments: [time.millisecondsSinceEpoch])
            for row in rows { times[row["client_identity"], default: []].append(StoreDatabase.time(row["created_at"] as Int64)) }
            return times
        }
    }

    /// Whether the client ever used `id` as a customer order id. A provider order id must never equal
    /// one (RFC 8921 §13: detect swapped identifiers).
    public func customerOrderIDExists(clientIdentity: String, _ id: String) throws -> Bool {
        try writer.read { db in try Bool.fetchOne(db, cachedSQL: SQL.customerOrderIDExists, arguments: [clientIdentity, id]) ?? false }
    }

    /// Whether a provider order id is already assigned (to any client).
    public func providerOrderIDExists(_ id: String) throws -> Bool {
        try writer.read { db in try Bool.fetchOne(db, cachedSQL: SQL.providerOrderIDExists, arguments: [id]) ?? false }
    }

    // MARK: - Audit

    /// The order's audit trail, oldest first (RFC 8921 §8.11, §12.1).
    public func audit(providerOrderID: ProviderOrderID) throws -> [AuditEntry] {
        try writer.read { db in
            try Row.fetchAll(db, cachedSQL: SQL.auditOfOrder, arguments: [providerOrderID.rawValue]).map { row in
                let id: Int64 = row["id"]
                func state(_ column: String) throws -> ServerOrderStateMachine.State {
                    let name: String = row[column]
                    guard let s = ServerOrderStateMachine.State(rawValue: name) else {
                        throw StoreError.corruptRow(table: "audit", key: String(id), reason: "unknown state \(name)")
                    }
                    return s
                }
                return AuditEntry(
                    id: id, providerOrderID: try Self.providerOrderID(row["provider_order_id"], table: "audit"),
                    at: StoreDatabase.time(row["at"] as Int64), from: try state("from_state"), to: try state("to_state"),
                    event: row["event"], clientAddress: row["client_address"], clientIdentity: row["client_identity"])
            }
        }
    }

    // MARK: - Reservations

    /// The order's reservations, in the order they were given.
    public func reservations(providerOrderID: ProviderOrderID) throws -> [Reservation] {
        try writer.read { db in
            try Row.fetchAll(db, cachedSQL: SQL.reservationsOfOrder, arguments: [providerOrderID.rawValue]).map(Self.reservation)
        }
    }

    /// Every order's reservations in one read, in the order they were given (restart recovery). Only
    /// open orders hold reservations: a closing commit releases them.
    public func reservationsByOrder() throws -> [ProviderOrderID: [Reservation]] {
        try writer.read { db in
            var out: [ProviderOrderID: [Reservation]] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT provider_order_id, \(SQL.reservationColumns) FROM reservations ORDER BY id")
            while let row = try rows.next() {
                out[try Self.providerOrderID(row["provider_order_id"], table: "reservations"), default: []].append(try Self.reservation(row))
            }
            return out
        }
    }

    private static func reservation(_ row: Row) throws -> Reservation {
        let key = try resourceKey(row)
        return Reservation(resource: key, amount: try amount(row, key), kind: try kind(row, key))
    }

    /// The capacity reserved on each resource by all orders, summed exactly: offered and committed,
    /// or only `kind`. Resources with nothing reserved are absent.
    public func reservedTotals(kind: ReservationKind? = nil) throws -> [ResourceKey: CPNPDecimal] {
        try writer.read { db in
            var totals: [ResourceKey: CPNPDecimal] = [:]
            for (key, total) in try Self.recountedTotals(in: db) where kind == nil || key.kind == kind {
                totals[key.resource, default: 0] += total
            }
            return totals
        }
    }

    /// The capacity reserved on one resource by all orders (an indexed lookup), summed exactly.
    public func reservedTotal(for resource: ResourceKey, kind: ReservationKind? = nil) throws -> CPNPDecimal {
        try writer.read { db in try Self.reservedTotal(for: resource, kind: kind, in: db) }
    }

    /// From the kept totals: one keyed read per kind, whatever the number of reservations.
    private static func reservedTotal(for key: ResourceKey, kind: ReservationKind?, in db: Database) throws -> CPNPDecimal {
        let amounts: [String]
        if let kind {
            amounts = try String.fetchAll(db, cachedSQL: SQL.reservedOnResourceOfKind, arguments: [key.resourceID, key.direction.rawValue, kind.rawValue])
        } else {
            amounts = try String.fetchAll(db, cachedSQL: SQL.reservedOnResource, arguments: [key.resourceID, key.direction.rawValue])
        }
        var total: CPNPDecimal = 0
        for text in amounts {
            total += try Self.total(text, key)
        }
        return total
    }

    // MARK: - Outbox

    /// Undelivered events due at `now`, oldest due first. Events of one order come out one at a time, in
    /// commit order: an event is not due while an earlier one of the same order is undelivered. After
    /// handing one to the provisioning hook, call ``markDelivered(id:at:)`` or
    /// ``markAttemptFailed(id:error:nextAttemptAt:)``; an event neither marked is returned again (after a
    /// crash, at-least-once delivery).
    public func dueOutbox(now: CPNPTimestamp, limit: Int = 100) throws -> [OutboxEntry] {
        try writer.read { db in
            try Row.fetchAll(db, cachedSQL: SQL.dueOutbox, arguments: [StoreDatabase.ms(now), limit]).map(Self.outboxEntry)
        }
    }

    /// When the next event first in line for its order becomes due (possibly in the past), or nil when
    /// nothing is undelivered: how long the delivery worker may sleep.
    public func nextOutboxAttempt() throws -> CPNPTimestamp? {
        try writer.read { db in StoreDatabase.time(try Int64.fetchOne(db, cachedSQL: SQL.nextOutboxAttempt)) }
    }

    /// Records a successful delivery. Returns false when the event is unknown or was already delivered.
    @discardableResult
    public func markDelivered(id: Int64, at: CPNPTimestamp) throws -> Bool {
        try writer.write { db in
            try db.execute(
                sql: "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ? AND delivered_at IS NULL",
                arguments: [StoreDatabase.ms(at), id])
            return db.changesCount == 1
        }
    }

    /// Records a failed delivery and when to try again (the worker's back-off). Returns false when the
    /// event is unknown or was already delivered.
    @discardableResult
    public func markAttemptFailed(id: Int64, error: String, nextAttemptAt: CPNPTimestamp) throws -> Bool {
        try writer.write { db in
            try db.execute(
                sql: "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ? AND delivered_at IS NULL",
                arguments: [error, StoreDatabase.ms(nextAttemptAt), id])
            return db.changesCount == 1
        }
    }

    /// The order's outbox events, delivered or not, oldest first (`cpnpd admin show`).
    public func outbox(providerOrderID: ProviderOrderID) throws -> [OutboxEntry] {
        try writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(SQL.outboxColumns) FROM outbox WHERE provider_order_id = ? ORDER BY id", arguments: [providerOrderID.rawValue]
            ).map(Self.outboxEntry)
        }
    }

    /// How many events await delivery.
    public func undeliveredOutboxCount() throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL") ?? 0 }
    }

    // MARK: - Administrative requests

    /// Records an operator's decision for the daemon to carry out (`cpnpd admin approve|reject`, which
    /// may run in another process on the same file). Throws ``StoreError/unknownOrder(_:)`` when no
    /// such order exists. Returns the request id.
    @discardableResult
    public func enqueueAdminRequest(
        providerOrderID: ProviderOrderID, action: AdminAction, requestedBy: String? = nil, at: CPNPTimestamp
    ) throws -> Int64 {
        let (name, code, diagnostic): (String, Int?, String?) =
            switch action {
            case .approve: ("approve", nil, nil)
            case .reject(let c, let d): ("reject", c.rawValue, d)
            }
        return try writer.write { db in
            guard try Bool.fetchOne(db, cachedSQL: SQL.providerOrderIDExists, arguments: [providerOrderID.rawValue]) == true else {
                throw StoreError.unknownOrder(providerOrderID.rawValue)
            }
            try db.execute(
                sql: """
                    INSERT INTO admin_requests (provider_order_id, action, status_code, diagnostic, requested_by, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [providerOrderID.rawValue, name, code, diagnostic, requestedBy, StoreDatabase.ms(at)])
            return db.lastInsertedRowID
        }
    }

    /// Unprocessed requests, oldest first.
    public func pendingAdminRequests(limit: Int = 100) throws -> [AdminRequest] {
        try writer.read { db in try Row.fetchAll(db, cachedSQL: SQL.pendingAdminRequests, arguments: [limit]).map(Self.adminRequest) }
    }

    /// One request, e.g. for the CLI to wait for its outcome.
    public func adminRequest(id: Int64) throws -> AdminRequest? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT \(SQL.adminColumns) FROM admin_requests WHERE id = ?", arguments: [id]).map(Self.adminRequest)
        }
    }

    /// The order's requests, oldest first.
    public func adminRequests(providerOrderID: ProviderOrderID) throws -> [AdminRequest] {
        try writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(SQL.adminColumns) FROM admin_requests WHERE provider_order_id = ? ORDER BY id",
                arguments: [providerOrderID.rawValue]
            ).map(Self.adminRequest)
        }
    }

    /// Marks a request processed, when it changed no order (otherwise settle it within the order's
    /// ``OrderChange/processedAdminRequests``). Returns false when unknown or already processed.
    @discardableResult
    public func markAdminRequestProcessed(id: Int64, at: CPNPTimestamp, outcome: String) throws -> Bool {
        try writer.write { db in
            try db.execute(
                sql: "UPDATE admin_requests SET processed_at = ?, outcome = ? WHERE id = ? AND processed_at IS NULL",
                arguments: [StoreDatabase.ms(at), outcome, id])
            return db.changesCount == 1
        }
    }

    // MARK: - Row decoding

    private static func providerOrderID(_ text: String, table: String) throws -> ProviderOrderID {
        guard let id = ProviderOrderID(text) else { throw StoreError.corruptRow(table: table, key: text, reason: "invalid provider order id") }
        return id
    }

    private static func summary(_ row: Row) throws -> OrderSummary {
        let poi: String = row["provider_order_id"]
        let coi: String = row["customer_order_id"]
        let stateName: String = row["state"]
        guard let customerOrderID = CustomerOrderID(coi) else {
            throw StoreError.corruptRow(table: "orders", key: poi, reason: "invalid customer order id")
        }
        guard let state = ServerOrderStateMachine.State(rawValue: stateName) else {
            throw StoreError.corruptRow(table: "orders", key: poi, reason: "unknown state \(stateName)")
        }
        return OrderSummary(
            providerOrderID: try providerOrderID(poi, table: "orders"), customerOrderID: customerOrderID,
            clientIdentity: row["client_identity"], clientAddress: row["client_address"], state: state,
            isOpen: row["is_open"], createdAt: StoreDatabase.time(row["created_at"] as Int64),
            updatedAt: StoreDatabase.time(row["updated_at"] as Int64), revision: row["revision"])
    }

    private static func storedOrder(_ row: Row, _ db: Database) throws -> StoredOrder {
        try storedOrder(try summary(row), snapshot: row["snapshot"], db)
    }

    private static func storedOrder(_ summary: OrderSummary, snapshot: String, _ db: Database) throws -> StoredOrder {
        let key = summary.providerOrderID.rawValue
        let json = try StoreDatabase.json(snapshot, table: "orders", key: key)
        let machine: ServerOrderStateMachine
        do {
            // Each document decoded once and shared (request, offer, agreement, cached ACCEPT and ACK).
            machine = try DocumentTable.decoding(in: db) { () throws(SnapshotError) -> ServerOrderStateMachine in try ServerOrderStateMachine(snapshot: json) }
        } catch {
            throw StoreError.corruptRow(table: "orders", key: key, reason: "snapshot: \(error)")
        }
        guard machine.providerOrderID == summary.providerOrderID, machine.customerOrderID == summary.customerOrderID else {
            throw StoreError.corruptRow(table: "orders", key: key, reason: "the snapshot belongs to another order")
        }
        return StoredOrder(summary: summary, machine: machine)
    }

    private static func resourceKey(_ row: Row) throws -> ResourceKey {
        let id: String = row["resource_id"]
        let d: String = row["direction"]
        guard let direction = ReservationDirection(rawValue: d) else {
            throw StoreError.corruptRow(table: "reservations", key: id, reason: "unknown direction \(d)")
        }
        return ResourceKey(id, direction)
    }

    /// A kept total of `reservation_totals`, read back exactly.
    private static func total(_ text: String, _ key: ResourceKey) throws -> CPNPDecimal {
        guard let v = CPNPDecimal(parsing: text) else {
            throw StoreError.corruptRow(table: "reservation_totals", key: key.description, reason: "invalid total \"\(text)\"")
        }
        return v
    }

    private static func amount(_ row: Row, _ key: ResourceKey) throws -> CPNPDecimal {
        let text: String = row["amount"]
        guard let v = CPNPDecimal(parsing: text) else {
            throw StoreError.corruptRow(table: "reservations", key: key.description, reason: "invalid amount \"\(text)\"")
        }
        return v
    }

    private static func kind(_ row: Row, _ key: ResourceKey) throws -> ReservationKind {
        let k: String = row["kind"]
        guard let kind = ReservationKind(rawValue: k) else {
            throw StoreError.corruptRow(table: "reservations", key: key.description, reason: "unknown kind \(k)")
        }
        return kind
    }

    private static func outboxEntry(_ row: Row) throws -> OutboxEntry {
        let id: Int64 = row["id"]
        return OutboxEntry(
            id: id, providerOrderID: try providerOrderID(row["provider_order_id"], table: "outbox"),
            kind: OutboxEventKind(rawValue: row["kind"]),
            payload: try StoreDatabase.json(row["payload"], table: "outbox", key: String(id)),
            createdAt: StoreDatabase.time(row["created_at"] as Int64), attempts: row["attempts"],
            nextAttemptAt: StoreDatabase.time(row["next_attempt_at"] as Int64),
            deliveredAt: StoreDatabase.time(row["delivered_at"] as Int64?), lastError: row["last_error"])
    }

    private static func adminRequest(_ row: Row) throws -> AdminRequest {
        let id: Int64 = row["id"]
        let name: String = row["action"]
        let action: AdminAction
        switch name {
        case "approve":
            action = .approve
        case "reject":
            let raw: Int? = row["status_code"]
            guard let raw, let code = FailStatusCode(rawValue: raw) else {
                throw StoreError.corruptRow(table: "admin_requests", key: String(id), reason: "invalid status code")
            }
            action = .reject(code, diagnostic: row["diagnostic"])
        default:
            throw StoreError.corruptRow(table: "admin_requests", key: String(id), reason: "unknown action \(name)")
        }
        return AdminRequest(
            id: id, providerOrderID: try providerOrderID(row["provider_order_id"], table: "admin_requests"), action: action,
            requestedBy: row["requested_by"], createdAt: StoreDatabase.time(row["created_at"] as Int64),
            processedAt: StoreDatabase.time(row["processed_at"] as Int64?), outcome: row["outcome"])
    }
}

extension Row {
    /// Fetches with a cached (prepared once per connection) statement.
    static func fetchOne(_ db: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> Row? {
        try Row.fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchAll(_ db: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> [Row] {
        try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
    }
}

extension DatabaseValueConvertible where Self: StatementColumnConvertible {
    static func fetchOne(_ db: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> Self? {
        try Self.fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchAll(_ db: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> [Self] {
        try Self.fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
    }
}
