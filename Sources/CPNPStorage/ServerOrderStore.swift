/// The provider's durable order store (docs/design/storage.md; RFC 8921 §8.11 persistent orders and time-stamped state
/// changes, §12.1 audit, §8.2 provisioning hand-off, §13 identifier and open-order rules).
public import CPNPCore
import Dispatch
import GRDB
import Synchronization

/// The server's orders, audit trail, capacity reservations, provisioning outbox and operator requests,
/// in one SQLite file (the embedded default) or in a PostgreSQL database shared by several `cpnpd`
/// (``init(postgres:)``). The logic is the same on both (``SQLDatabase``).
///
/// **Writing.** ``commit(_:)`` writes one ``OrderChange`` in a single transaction: the order row and
/// snapshot, its audit entries, outbox events, settled admin requests and (when given) its
/// reservations — all or nothing. The engine commits before it performs the sends that follow a
/// `.persist` action, so a state a peer can observe is always durable first (RFC 8921 §8.11; docs/design/storage.md).
///
/// **Concurrency.** The store is `Sendable`: any thread or task may call it. Calls are synchronous and
/// block for one SQLite transaction (usually well under a millisecond; up to the busy timeout if another
/// process holds the write lock). Reads run concurrently with writes (WAL); writes are serialized. An
/// engine that calls ``commit(_:)`` from an actor keeps its ordering, since nothing suspends.
///
/// **Several processes.** The daemon and `cpnpd admin …` open the same file with ``init(path:options:)``;
/// each sees the other's committed writes on its next read. The daemon learns of operator actions by
/// polling ``pendingAdminRequests(limit:)`` (an indexed query on unprocessed rows only). On PostgreSQL
/// several daemons write too: every write locks the rows its checks read (the order, the client, the
/// kept totals) before it writes, so the checks below hold across them (docs/design/storage.md).
///
/// **Times** are stored as integer milliseconds since the Unix epoch (UTC), the resolution of
/// ``CPNPTimestamp``; decimal amounts as canonical decimal text.
public final class ServerOrderStore: Sendable {
    let database: any SQLDatabase
    /// Each distinct CPD of the snapshots, stored once (``CPDReferences``).
    let documents = DocumentTable()
    /// The kept capacity totals a SQLite store's writer has read or written (``RememberedTotals``).
    let rememberedTotals = RememberedTotals()

    /// Checkpoints a file store's log off the writer's thread (nil in memory, read-only or on PostgreSQL).
    private let checkpointer: WALCheckpointer?

    /// Opens (creating and migrating it if needed) the store file at `path`, in WAL mode.
    public convenience init(path: String, options: StoreOptions = StoreOptions()) throws {
        try self.init(path: path, options: options, checkpoints: WALCheckpointer.Limits())
    }

    /// Opens the store file at `path`, its log checkpointed at `checkpoints` (tests choose smaller ones).
    init(path: String, options: StoreOptions, checkpoints: WALCheckpointer.Limits) throws {
        let pool = try StoreDatabase.openPool(path: path, options: options, label: "CPNPStorage.server", migrator: Self.migrator)
        database = GRDBDatabase(writer: pool)
        checkpointer = options.readOnly ? nil : try WALCheckpointer.start(on: pool, limits: checkpoints)
    }

    deinit {
        if let checkpointer, let pool = writer as? DatabasePool { checkpointer.stop(pool) }
    }

    /// The checkpoints of the log so far, by the checkpointer's connection and by the writer itself;
    /// nil without a log of its own (in memory, read-only, PostgreSQL).
    public var walCheckpoints: WALCheckpointCounts? { checkpointer?.checkpoints }

    /// Opens (creating the tables if needed) the store in a PostgreSQL database. Throws
    /// ``StoreError/databaseUnavailable(_:)`` when the server cannot be reached or refuses the
    /// credentials, naming the cause.
    public init(postgres location: PostgresLocation) throws {
        let database = try PostgresSQLDatabase(location: location)
        try PostgresSchema.migrate(database)
        self.database = database
        self.checkpointer = nil
    }

    /// Opens `location`: a PostgreSQL URL (``PostgresLocation/isURL(_:)``) or a SQLite file's path.
    public convenience init(location: String, options: StoreOptions = StoreOptions()) throws {
        if PostgresLocation.isURL(location) {
            try self.init(postgres: try PostgresLocation(url: location))
        } else {
            try self.init(path: location, options: options)
        }
    }

    private init(database: any SQLDatabase) {
        self.database = database
        self.checkpointer = nil
    }

    /// A private in-memory store, for tests and dry runs; gone when released.
    public static func inMemory() throws -> ServerOrderStore {
        ServerOrderStore(database: GRDBDatabase(writer: try StoreDatabase.openInMemory(label: "CPNPStorage.server", migrator: migrator)))
    }

    /// The engine the store runs on.
    public var dialect: SQLDialect { database.dialect }

    /// The SQLite database (tests that reach under the store); a PostgreSQL store has none.
    var writer: any DatabaseWriter { (database as! GRDBDatabase).writer }

    /// SQLite's journal mode of the store (`wal` for a file store).
    public func journalMode() throws -> String {
        try database.read { connection in try connection.scalarText("PRAGMA journal_mode") ?? "" }
    }

    // MARK: - Schema

    static var migrator: DatabaseMigrator {
        var migrations = DatabaseMigrator()
        migrations.registerMigration("server-v1") { connection in
            try connection.execute(
                sql: """
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
        migrations.registerMigration("server-v2-reservation-totals") { connection in
            // The capacity check of every reserving commit read every reservation row of the link
            // (O(open orders)); the totals are now kept per resource, direction and kind in the same
            // transaction as the rows, so the check is one keyed read.
            try connection.execute(
                sql: """
                    CREATE TABLE reservation_totals (
                        resource_id TEXT NOT NULL,
                        direction TEXT NOT NULL CHECK (direction IN ('incoming', 'outgoing')),
                        kind TEXT NOT NULL CHECK (kind IN ('offered', 'committed')),
                        total TEXT NOT NULL CHECK (total <> '' AND total NOT LIKE '-%'),
                        PRIMARY KEY (resource_id, direction, kind)
                    ) WITHOUT ROWID;
                    DROP INDEX reservations_resource;
                    """)
            for (key, total) in try recountedTotals(in: GRDBConnection(database: connection)) {
                try connection.execute(
                    sql: "INSERT INTO reservation_totals (resource_id, direction, kind, total) VALUES (?, ?, ?, ?)",
                    arguments: [key.resource.linkID, key.resource.direction.rawValue, key.kind.rawValue, total.description])
            }
        }
        migrations.registerMigration("server-v3-documents") { connection in
            // Snapshots name their CPDs (CPDReferences) instead of holding a copy of each: a negotiation
            // wrote about 13 copies of the same document. Older snapshots, with documents inline, are
            // read as they are and rewritten with references at the order's next change.
            try connection.execute(sql: DocumentTable.createSQL)
        }
        migrations.registerMigration("server-v4-resident") { connection in
            // Which open orders a restarted engine loads: those with something in flight. Rows written
            // before are marked resident; an engine forgets those at rest once loaded, and they are
            // marked at their next change.
            try connection.execute(
                sql: """
                    ALTER TABLE orders ADD COLUMN resident INTEGER NOT NULL DEFAULT 1 CHECK (resident IN (0, 1));
                    CREATE INDEX orders_resident ON orders(provider_order_id) WHERE is_open = 1 AND resident = 1;
                    """)
        }
        migrations.registerMigration("server-v5-instances") { connection in
            // Several cpnpd on one database (PostgreSQL): who drives each order, which instances are
            // alive, claims on provisioning events. The same columns here keep one SQL for both engines.
            for statement in PostgresSchema.instancesSQL { try connection.execute(sql: statement) }
        }
        migrations.registerMigration("server-v6-clients") { connection in
            for statement in PostgresSchema.clientsSQL { try connection.execute(sql: statement) }
        }
        migrations.registerMigration("server-v7-webhooks") { connection in
            for statement in PostgresSchema.webhooksSQL { try connection.execute(sql: statement) }
        }
        migrations.registerMigration("server-v8-outbox-documents") { connection in
            for statement in PostgresSchema.outboxDocumentsSQL { try connection.execute(sql: statement) }
        }
        migrations.registerMigration("server-v9-fewer-order-indexes") { connection in
            for statement in PostgresSchema.fewerOrderIndexesSQL { try connection.execute(sql: statement) }
        }
        migrations.registerMigration("server-v10-one-customer-order-index") { connection in
            for statement in PostgresSchema.oneCustomerOrderIndexSQL { try connection.execute(sql: statement) }
            // Only instances on PostgreSQL share orders (`sharesOrders`): here `owner` stays NULL and no
            // statement reads the index, which each new and each settled order wrote a page of.
            try connection.execute(sql: "DROP INDEX IF EXISTS orders_owner")
        }
        return migrations
    }

    // MARK: - SQL of the hot paths (checked against EXPLAIN QUERY PLAN by the tests)

    enum SQL {
        static let summaryColumns =
            "provider_order_id, customer_order_id, client_identity, client_address, state, is_open, revision, created_at, updated_at, owner"
        static let orderColumns = summaryColumns + ", snapshot"
        static let orderByProviderID = "SELECT \(orderColumns) FROM orders WHERE provider_order_id = ?"
        /// The open order first, then the most recent.
        static func orderByClientAndCustomerID(_ dialect: SQLDialect) -> String {
            """
            SELECT \(orderColumns) FROM orders WHERE client_identity = ? AND customer_order_id = ?
            ORDER BY is_open DESC, created_at DESC, \(insertionOrder(dialect)) DESC LIMIT 1
            """
        }
        /// The order rows were inserted in: SQLite's `rowid`, PostgreSQL's identity column `seq`.
        static func insertionOrder(_ dialect: SQLDialect) -> String { dialect == .sqlite ? "rowid" : "seq" }
        static let openOrders = "SELECT \(orderColumns) FROM orders WHERE is_open = 1"
        /// Through the partial index of resident orders: without statistics, SQLite's planner took
        /// `orders_open` and read every open order's row, each a page of its own on a cold start
        /// (10 s for 100,000 open agreements at rest; docs/performance.md, round 18).
        static func residentOrders(_ dialect: SQLDialect) -> String {
            "SELECT \(orderColumns) FROM orders\(dialect == .sqlite ? " INDEXED BY orders_resident" : "") WHERE is_open = 1 AND resident = 1"
        }
        static let openOrderCountsByClient = "SELECT client_identity, COUNT(*) FROM orders WHERE is_open = 1 GROUP BY client_identity"
        static let openOrderCount = "SELECT COUNT(*) FROM orders WHERE is_open = 1 AND client_identity = ?"
        static let customerOrderIDExists = "SELECT EXISTS (SELECT 1 FROM orders WHERE client_identity = ? AND customer_order_id = ?)"
        static let providerOrderIDExists = "SELECT EXISTS (SELECT 1 FROM orders WHERE provider_order_id = ?)"
        static let orderHead = """
            SELECT client_identity, customer_order_id, revision, is_open, state, client_address, resident, owner
            FROM orders WHERE provider_order_id = ?
            """

        /// Columns of `orders` an update sets only when their value changes.
        struct OrderColumns: OptionSet {
            let rawValue: Int
            static let state = OrderColumns(rawValue: 1)
            static let isOpen = OrderColumns(rawValue: 2)
            static let clientAddress = OrderColumns(rawValue: 4)
            static let resident = OrderColumns(rawValue: 8)
            static let owner = OrderColumns(rawValue: 16)
        }

        /// The update of a stored order: its snapshot, revision and time, and the `changed` columns, in
        /// the order of ``OrderColumns``. SQLite rewrites the entry of every index on a column a statement
        /// sets, whatever its value: an agreement set `is_open` to the 1 it was and rewrote three indexes
        /// (docs/design/storage.md).
        static func orderUpdate(_ changed: OrderColumns) -> String { orderUpdates[changed.rawValue] }

        private static let orderUpdates: [String] = (0..<32).map { mask in
            let optional = ["state", "is_open", "client_address", "resident", "owner"].enumerated().filter { mask & (1 << $0.offset) != 0 }
            let assignments = ["snapshot", "revision", "updated_at"] + optional.map(\.element)
            return "UPDATE orders SET \(assignments.map { "\($0) = ?" }.joined(separator: ", ")) WHERE provider_order_id = ?"
        }
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
        static func lockClients(_ count: Int) -> String {
            "SELECT client_identity FROM clients WHERE client_identity IN (\((0..<count).map { _ in "?" }.joined(separator: ", "))) ORDER BY client_identity FOR UPDATE"
        }
        /// The kept totals of `count` resources, both directions and kinds: the one read of a commit's capacity check.
        static func keptTotalsOfResources(_ count: Int) -> String {
            "SELECT resource_id, direction, kind, total FROM reservation_totals WHERE resource_id IN (\((0..<count).map { _ in "?" }.joined(separator: ", ")))"
        }
        static let upsertReservationTotals = "INSERT INTO reservation_totals (resource_id, direction, kind, total)"
        static let upsertReservationTotalsConflict = "ON CONFLICT (resource_id, direction, kind) DO UPDATE SET total = excluded.total"
        static let outboxColumns = "id, provider_order_id, kind, payload, document, created_at, attempts, next_attempt_at, delivered_at, last_error"
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
        /// Whether any undelivered event is due (``claimableOutbox(_:)`` narrows it down).
        static let dueOutboxExists = "SELECT EXISTS (SELECT 1 FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= ?)"
        /// Due events first in line for their order, not claimed by another claimant.
        static func claimableOutbox(_ dialect: SQLDialect) -> String {
            """
            SELECT \(outboxColumns) FROM outbox AS o
            WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ?
              AND (o.claimed_until IS NULL OR o.claimed_until < ? OR o.claimed_by = ?
                   OR NOT EXISTS (SELECT 1 FROM instances AS i WHERE i.instance_id = o.claimed_by AND i.heartbeat_at >= ?))
              AND NOT EXISTS (
                SELECT 1 FROM outbox AS p
                WHERE p.provider_order_id = o.provider_order_id AND p.id < o.id AND p.delivered_at IS NULL)
            ORDER BY o.next_attempt_at, o.id LIMIT ?\(dialect == .postgres ? " FOR UPDATE OF o SKIP LOCKED" : "")
            """
        }
        /// Resident open orders that no live instance drives (not the claimant's own).
        static func orphanedOrders(_ dialect: SQLDialect) -> String {
            """
            SELECT \(orderColumns) FROM orders AS o
            WHERE o.is_open = 1 AND o.resident = 1 AND (o.owner IS NULL OR o.owner <> ?)
              AND NOT EXISTS (SELECT 1 FROM instances AS i WHERE i.instance_id = o.owner AND i.heartbeat_at >= ?)
            ORDER BY o.updated_at LIMIT ?\(dialect == .postgres ? " FOR UPDATE OF o SKIP LOCKED" : "")
            """
        }
        static let adminColumns = "id, provider_order_id, action, status_code, diagnostic, requested_by, created_at, processed_at, outcome"
        static let pendingAdminRequests = "SELECT \(adminColumns) FROM admin_requests WHERE processed_at IS NULL ORDER BY id LIMIT ?"
    }

    /// `EXPLAIN QUERY PLAN` of one of ``SQL``'s statements (SQLite).
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
        let revision = try database.write { connection in
            try Self.lockShared(of: [change], in: connection)
            var totals = try rememberedTotals.begin(in: connection)
            let revision = try Self.commit(change, prepared: prepared, in: connection, totals: &totals)
            totals.keepChange()
            try totals.writeKept(in: connection)
            rememberedTotals.remember(totals, in: connection)
            return revision
        }
        documents.learn(prepared.written)
        return revision
    }

    /// Commits several changes in ONE transaction (all or nothing), e.g. bulk expiries after a restart.
    /// Returns the new revisions, in order.
    @discardableResult
    public func commit(_ changes: [OrderChange]) throws -> [Int64] {
        let prepared = try changes.map { try prepare($0) }
        let revisions = try database.write { connection in
            try Self.lockShared(of: changes, in: connection)
            var totals = try rememberedTotals.begin(in: connection)
            var revisions: [Int64] = []
            for (change, preparedChange) in zip(changes, prepared) {
                revisions.append(try Self.commit(change, prepared: preparedChange, in: connection, totals: &totals))
                totals.keepChange()
            }
            try totals.writeKept(in: connection)
            rememberedTotals.remember(totals, in: connection)
            return revisions
        }
        for preparedChange in prepared { documents.learn(preparedChange.written) }
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
        for (i, change) in changes.enumerated() {
            do { prepared[i] = try prepare(change) } catch { results[i] = .failure(error) }
        }
        let initial = results
        results = try database.write { connection in
            try Self.lockShared(of: changes, in: connection)
            var totals = try rememberedTotals.begin(in: connection)
            var out = initial
            var failed = Set<String>()
            for (i, change) in changes.enumerated() {
                let providerOrderID = change.machine.providerOrderID.rawValue
                guard let preparedChange = prepared[i], !failed.contains(providerOrderID) else {
                    if out[i] == nil { out[i] = .failure(BatchCommitError.earlierChangeFailed(providerOrderID: providerOrderID)) }
                    failed.insert(providerOrderID)
                    continue
                }
                do {
                    out[i] = .success(
                        try connection.inSavepoint { try Self.commit(change, prepared: preparedChange, in: connection, totals: &totals) })
                    totals.keepChange()
                } catch let error as StoreError where error.isSerializationConflict {
                    // Another writer got there first: the whole transaction is re-run (SQLDatabase.write).
                    throw error
                } catch let error as SavepointRollbackFailure {
                    // The change may be half in the transaction: none of the batch is stored.
                    throw error
                } catch {
                    totals.dropChange()
                    out[i] = .failure(error)
                    failed.insert(providerOrderID)
                }
            }
            try totals.writeKept(in: connection)
            rememberedTotals.remember(totals, in: connection)
            return out
        }
        for (preparedChange, result) in zip(prepared, results) {
            if let preparedChange, case .success? = result { documents.learn(preparedChange.written) }
        }
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
        if !open, let reservations = change.reservations, !reservations.isEmpty {
            throw StoreError.reservationsOnClosedOrder(providerOrderID: change.machine.providerOrderID.rawValue)
        }
        guard !change.clientIdentity.isEmpty else { throw StoreError.invalidArgument("the client identity is empty") }
        for event in change.outbox where event.document != nil {
            guard case .object = event.payload else { throw StoreError.invalidArgument("an outbox event with a document needs an object payload") }
        }
        return Prepared(
            written: documents.write({ change.machine.snapshotJSON(reference: $0) }, also: change.outbox.compactMap(\.document)), isOpen: open,
            resident: change.resident, outboxPayloads: change.outbox.map { StoreDatabase.text($0.payload) })
    }

    private static func commit(
        _ change: OrderChange, prepared: Prepared, in connection: any SQLConnection, totals transactionTotals: inout TransactionTotals
    ) throws -> Int64 {
        let machine = change.machine
        let providerOrderID = machine.providerOrderID.rawValue
        let customerOrderID = machine.customerOrderID.rawValue
        let changedAt = StoreDatabase.ms(change.at)

        // On PostgreSQL the row is locked until the commit: a writer of the same order waits, then sees this revision.
        let head = try connection.queryOne(connection.dialect == .postgres ? SQL.orderHead + " FOR UPDATE" : SQL.orderHead, [providerOrderID])
        if let head {
            let identity = try head.text("client_identity")
            let storedCustomerOrderID = try head.text("customer_order_id")
            if identity != change.clientIdentity || storedCustomerOrderID != customerOrderID {
                throw StoreError.providerOrderIDInUse(
                    providerOrderID: providerOrderID, clientIdentity: identity, customerOrderID: storedCustomerOrderID)
            }
        }
        let stored: Int64? = try head?.integer("revision")
        if let expected = change.expectedRevision, expected != (stored ?? 0) {
            throw StoreError.revisionConflict(orderID: providerOrderID, expected: expected, actual: stored)
        }
        // An order stored open is the one open order of its customer order id already (the unique
        // index orders_customer_order); only one that opens here needs the look.
        let storedOpen = try head?.bool("is_open") ?? false
        if prepared.isOpen, !storedOpen,
            let other = try connection.scalarText(SQL.otherOpenOrder, [change.clientIdentity, customerOrderID, providerOrderID])
        {
            throw StoreError.openOrderExists(customerOrderID: customerOrderID, providerOrderID: other)
        }
        if prepared.isOpen, stored == nil, let limit = change.openOrderLimit,
            try connection.scalarInteger(SQL.openOrderCount, [change.clientIdentity]) ?? 0 >= Int64(limit)
        {
            throw StoreError.openOrderLimitReached(clientIdentity: change.clientIdentity, limit: limit)
        }
        let owner = prepared.resident ? change.owner : nil

        try DocumentTable.insert(prepared.written, in: connection)

        // The writes below go out without waiting for each (pipelined on PostgreSQL); the reads that
        // decide something wait for them, and so does the end of the change.
        let revision = (stored ?? 0) + 1
        if stored == nil {
            try connection.executeLater(
                """
                INSERT INTO orders (provider_order_id, customer_order_id, client_identity, client_address, state, is_open,
                                    snapshot, revision, created_at, updated_at, resident, owner)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    providerOrderID, customerOrderID, change.clientIdentity, change.clientAddress, machine.state.rawValue, prepared.isOpen,
                    prepared.snapshot, revision, changedAt, changedAt, prepared.resident, owner,
                ])
        } else if let head {
            // Only the columns whose value changes (SQL.orderUpdate).
            var changed = SQL.OrderColumns()
            var values: [any SQLBindable] = [prepared.snapshot, revision, changedAt]
            if try head.text("state") != machine.state.rawValue {
                changed.insert(.state)
                values.append(machine.state.rawValue)
            }
            if storedOpen != prepared.isOpen {
                changed.insert(.isOpen)
                values.append(prepared.isOpen)
            }
            if try head.text("client_address") != change.clientAddress {
                changed.insert(.clientAddress)
                values.append(change.clientAddress)
            }
            if try head.bool("resident") != prepared.resident {
                changed.insert(.resident)
                values.append(prepared.resident)
            }
            if try head.optionalText("owner") != owner {
                changed.insert(.owner)
                values.append(owner)
            }
            try connection.executeLater(SQL.orderUpdate(changed), values + [providerOrderID])
        }

        // Several rows of a table in one statement.
        try connection.insertLater(
            "INSERT INTO audit (provider_order_id, at, from_state, to_state, event, client_address, client_identity)",
            rows: change.transitions.map { transition in
                [
                    providerOrderID, changedAt, transition.from.rawValue, transition.to.rawValue, transition.event, change.clientAddress,
                    change.clientIdentity,
                ]
            })
        var documentReferences = prepared.written.alsoReferences.makeIterator()
        try connection.insertLater(
            "INSERT INTO outbox (provider_order_id, kind, payload, document, created_at, attempts, next_attempt_at, delivered_at)",
            rows: zip(change.outbox, prepared.outboxPayloads).map { event, payload in
                [
                    providerOrderID, event.kind.rawValue, payload, event.document == nil ? nil : documentReferences.next(), changedAt, 0,
                    event.notBefore.map(StoreDatabase.ms) ?? changedAt, event.delivered ? changedAt : nil,
                ]
            })
        for request in change.processedAdminRequests {
            // Exactly once, whichever instance got there first: a request already settled rolls this change back.
            guard
                try connection.execute(
                    "UPDATE admin_requests SET processed_at = ?, outcome = ? WHERE id = ? AND processed_at IS NULL",
                    [changedAt, request.outcome, request.id]) == 1
            else {
                throw StoreError.adminRequestAlreadyProcessed(id: request.id)
            }
        }

        // Reservations last, so that a failing check or constraint there rolls everything back. The
        // totals move by the difference between the order's old rows and its new ones.
        var delta: [TotalKey: CPNPDecimal] = [:]
        if !prepared.isOpen || change.reservations != nil {
            // A new order holds no rows yet.
            let held = stored == nil ? HeldCapacity.empty : try reservations(ofOrder: providerOrderID, in: connection)
            let holding = prepared.isOpen ? (change.reservations ?? .empty) : .empty
            for (kind, reservation) in held.byKind { delta[TotalKey(resource: reservation.key, kind: kind), default: 0] -= reservation.mbps }
            for (kind, reservation) in holding.byKind { delta[TotalKey(resource: reservation.key, kind: kind), default: 0] += reservation.mbps }
            try writeReservations(of: providerOrderID, held: held, holding: holding, in: connection)
        }
        delta = delta.filter { $0.value != 0 }
        guard !delta.isEmpty || !change.capacityLimits.isEmpty else { return revision }
        // One read of the kept totals of every resource the change moves or checks (on PostgreSQL,
        // locked until the commit, so that no other writer moves them meanwhile: a release of an
        // order's reservations may touch resources lockShared did not know of).
        var totals = try transactionTotals.totals(of: Set(delta.keys.map(\.resource) + change.capacityLimits.keys), in: connection)
        var moved: [[any SQLBindable]] = []
        for (key, difference) in delta.sorted(by: { ($0.key.resource, $0.key.kind.rawValue) < ($1.key.resource, $1.key.kind.rawValue) }) {
            let total = (totals[key] ?? 0) + difference
            guard !total.isNegative else {
                throw StoreError.corruptRow(
                    table: "reservation_totals", key: key.resource.description, reason: "total would fall below zero (\(total))")
            }
            totals[key] = total
            transactionTotals.wrote(key, total)
            if !transactionTotals.remembering {
                moved.append([key.resource.linkID, key.resource.direction.rawValue, key.kind.rawValue, total.description])
            }
        }
        // SQLite writes the totals its changes moved once, at the end of the transaction
        // (TransactionTotals.writeKept); PostgreSQL reads them from its rows at each change.
        try connection.insertLater(SQL.upsertReservationTotals, rows: moved, then: SQL.upsertReservationTotalsConflict)
        for (key, limit) in change.capacityLimits.sorted(by: { $0.key < $1.key }) {
            let total = ReservationKind.allCases.reduce(CPNPDecimal(0)) { $0 + (totals[TotalKey(resource: key, kind: $1)] ?? 0) }
            if total > limit { throw StoreError.capacityExceeded(key, total: total, limit: limit) }
        }
        return revision
    }

    /// Replaces the order's reservation rows `held` by `holding`, writing as little as it can: nothing
    /// when they are the same; one `UPDATE` in place when every row keeps its link, direction and
    /// amount and only their one kind moves, as when an agreement commits what was offered; else the
    /// rows deleted and inserted again. In place, the table and its index keep their pages: a delete
    /// and an insert each change the table and the index.
    private static func writeReservations(
        of providerOrderID: String, held: HeldCapacity, holding: HeldCapacity, in connection: any SQLConnection
    ) throws {
        if held == holding { return }
        // Rows are read back in the order they were written (`reservationsOfOrder`), so rows of one
        // kind turned into the other in place stay in the order given.
        let offeredBecomeCommitted = held.committed.isEmpty && holding.offered.isEmpty && held.offered == holding.committed
        let committedBecomeOffered = held.offered.isEmpty && holding.committed.isEmpty && held.committed == holding.offered
        if offeredBecomeCommitted || committedBecomeOffered {
            let kind: ReservationKind = offeredBecomeCommitted ? .committed : .offered
            try connection.executeLater("UPDATE reservations SET kind = ? WHERE provider_order_id = ?", [kind.rawValue, providerOrderID])
            return
        }
        if !held.isEmpty {
            try connection.executeLater("DELETE FROM reservations WHERE provider_order_id = ?", [providerOrderID])
        }
        try connection.insertLater(
            "INSERT INTO reservations (provider_order_id, resource_id, direction, amount, kind)",
            rows: holding.byKind.map { kind, reservation in
                [providerOrderID, reservation.linkID, reservation.direction.rawValue, reservation.mbps.description, kind.rawValue]
            })
    }

    /// PostgreSQL (several writers, `READ COMMITTED`): locks, before any change of the transaction is
    /// written and always in the same order, what its checks read and other writers move — each
    /// client's row for the open-order cap, and the kept totals of every resource the changes reserve
    /// or check. A writer of the same link or client waits for this transaction instead of failing
    /// with a serialization error, then reads what it committed (docs/design/storage.md).
    private static func lockShared(of changes: [OrderChange], in connection: any SQLConnection) throws {
        guard connection.dialect == .postgres else { return }
        let clients = Set(changes.filter { $0.openOrderLimit != nil }.map(\.clientIdentity)).sorted()
        if !clients.isEmpty {
            try connection.insertLater("INSERT INTO clients (client_identity)", rows: clients.map { [$0] }, then: "ON CONFLICT DO NOTHING")
            _ = try connection.query(SQL.lockClients(clients.count), clients)
        }
        var keys = Set<Reservation.Key>()
        for change in changes {
            keys.formUnion(change.reservations?.byKind.map(\.reservation.key) ?? [])
            keys.formUnion(change.capacityLimits.keys)
        }
        guard !keys.isEmpty else { return }
        try lockTotals(of: keys, in: connection)
        let resources = Set(keys.map(\.linkID)).sorted()
        _ = try connection.query(SQL.keptTotalsOfResources(resources.count) + " ORDER BY resource_id, direction, kind FOR UPDATE", resources)
    }

    /// Makes sure the totals rows of `keys` exist (zero), so that `FOR UPDATE` has rows to lock:
    /// two writers creating one row both wait on it instead of both inserting.
    static func lockTotals(of keys: Set<Reservation.Key>, in connection: any SQLConnection) throws {
        let rows: [[any SQLBindable]] = keys.sorted().flatMap { key in
            ReservationKind.allCases.map { kind -> [any SQLBindable] in [key.linkID, key.direction.rawValue, kind.rawValue, "0"] }
        }
        try connection.insertLater(SQL.upsertReservationTotals, rows: rows, then: "ON CONFLICT DO NOTHING")
    }

    /// A row of `reservation_totals`: a link (column `resource_id`), a direction and a kind.
    struct TotalKey: Hashable {
        var resource: Reservation.Key
        var kind: ReservationKind
    }

    /// The totals recounted from the reservation rows (the migration; consistency checks).
    static func recountedTotals(in connection: any SQLConnection) throws -> [TotalKey: CPNPDecimal] {
        var totals: [TotalKey: CPNPDecimal] = [:]
        for row in try connection.query("SELECT \(SQL.reservationColumns) FROM reservations") {
            let key = try resourceKey(row)
            totals[TotalKey(resource: key, kind: try kind(row, key)), default: 0] += try amount(row, key)
        }
        return totals
    }

    /// The kept totals that differ from a recount of the reservation rows: empty when the store is
    /// consistent (tests, `cpnpd admin` checks). Keys absent on one side count as zero.
    public func reservationTotalMismatches() throws -> [String] {
        try database.read { connection in
            let recount = try Self.recountedTotals(in: connection)
            var kept: [TotalKey: CPNPDecimal] = [:]
            for row in try connection.query("SELECT resource_id, direction, kind, total FROM reservation_totals") {
                let key = try Self.resourceKey(row)
                let text = try row.text("total")
                guard let total = CPNPDecimal(parsing: text) else { return ["\(key): invalid total \"\(text)\""] }
                kept[TotalKey(resource: key, kind: try Self.kind(row, key))] = total
            }
            var out: [String] = []
            for key in Set(recount.keys).union(kept.keys) {
                let keptTotal = kept[key] ?? 0, recountedTotal = recount[key] ?? 0
                if keptTotal != recountedTotal {
                    out.append("\(key.resource) \(key.kind.rawValue): kept \(keptTotal), rows sum to \(recountedTotal)")
                }
            }
            return out.sorted()
        }
    }

    // MARK: - Orders

    /// The order with this provider order id (RFC 8921 §9.1.2).
    public func order(providerOrderID: ProviderOrderID) throws -> StoredOrder? {
        try database.lookup { connection in
            try connection.queryOne(SQL.orderByProviderID, [providerOrderID.rawValue]).map { try Self.storedOrder($0, connection) }
        }
    }

    /// The order a client's message refers to: the client's open order with this customer order id,
    /// else its most recent closed one (RFC 8921 §9.1.1: customer order ids are the client's own).
    public func order(clientIdentity: String, customerOrderID: CustomerOrderID) throws -> StoredOrder? {
        try database.lookup { connection in
            try connection.queryOne(SQL.orderByClientAndCustomerID(connection.dialect), [clientIdentity, customerOrderID.rawValue])
                .map { try Self.storedOrder($0, connection) }
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
        try decodedOrders(SQL.residentOrders(database.dialect))
    }

    /// Open orders per client identity (the cap on open orders, RFC 8921 §13), from the index alone.
    public func openOrderCountsByClient() throws -> [String: Int] {
        try database.read { connection in
            var out: [String: Int] = [:]
            for row in try connection.query(SQL.openOrderCountsByClient) {
                guard case .text(let client) = row[0], case .integer(let count) = row[1] else {
                    throw StoreError.corruptRow(table: "orders", key: "open order counts", reason: "unexpected \(row.values)")
                }
                out[client] = Int(count)
            }
            return out
        }
    }

    /// Offered plus committed capacity per link and direction, from the kept totals (one row per link,
    /// direction and kind; ``reservedTotals(kind:)`` recounts the reservation rows instead).
    public func keptReservedTotals() throws -> [Reservation.Key: CPNPDecimal] {
        try database.read { connection in
            var out: [Reservation.Key: CPNPDecimal] = [:]
            for row in try connection.query("SELECT resource_id, direction, total FROM reservation_totals") {
                let key = try Self.resourceKey(row)
                out[key, default: 0] += try Self.total(try row.text("total"), key)
            }
            return out.filter { !$0.value.isZero }
        }
    }

    private func decodedOrders(_ sql: String) throws -> [StoredOrder] {
        let rows: [(summary: OrderSummary, snapshot: String)] = try database.read { connection in
            try connection.query(sql).map { (try Self.summary($0), try $0.text("snapshot")) }
        }
        let chunk = 128
        let results = Mutex<[Result<StoredOrder, any Error>?]>(Array(repeating: nil, count: rows.count))
        DispatchQueue.concurrentPerform(iterations: (rows.count + chunk - 1) / chunk) { chunkIndex in
            let range = chunkIndex * chunk..<min(rows.count, (chunkIndex + 1) * chunk)
            let decoded: [Result<StoredOrder, any Error>]
            do {
                decoded = try database.read { connection in
                    range.map { i in Result { try Self.storedOrder(rows[i].summary, snapshot: rows[i].snapshot, connection) } }
                }
            } catch {
                decoded = range.map { _ in .failure(error) }
            }
            results.withLock { slots in for (i, result) in zip(range, decoded) { slots[i] = result } }
        }
        return try results.withLock { $0 }.map { try $0!.get() }
    }

    /// Orders newest first, optionally in one state, of one client, created since a time
    /// (`cpnpd admin orders`, the console's order list).
    public func orders(
        limit: Int = 100, offset: Int = 0, state: ServerOrderStateMachine.State? = nil, clientIdentity: String? = nil,
        createdSince: CPNPTimestamp? = nil
    ) throws -> [OrderSummary] {
        guard limit >= 0, offset >= 0 else { throw StoreError.invalidArgument("limit and offset must not be negative") }
        let (condition, arguments) = Self.filter(state: state, clientIdentity: clientIdentity, createdSince: createdSince)
        return try database.read { connection in
            let order = "ORDER BY created_at DESC, \(SQL.insertionOrder(connection.dialect)) DESC LIMIT ? OFFSET ?"
            return try connection.query("SELECT \(SQL.summaryColumns) FROM orders \(condition) \(order)", arguments + [limit, offset]).map(
                Self.summary)
        }
    }

    /// How many orders there are, with the filters of ``orders(limit:offset:state:clientIdentity:createdSince:)``.
    public func orderCount(state: ServerOrderStateMachine.State? = nil, clientIdentity: String? = nil, createdSince: CPNPTimestamp? = nil) throws
        -> Int
    {
        let (condition, arguments) = Self.filter(state: state, clientIdentity: clientIdentity, createdSince: createdSince)
        return try database.read { connection in Int(try connection.scalarInteger("SELECT COUNT(*) FROM orders \(condition)", arguments) ?? 0) }
    }

    private static func filter(
        state: ServerOrderStateMachine.State?, clientIdentity: String?, createdSince: CPNPTimestamp?
    ) -> (String, [any SQLBindable]) {
        var conditions: [String] = []
        var arguments: [any SQLBindable] = []
        if let state {
            conditions.append("state = ?")
            arguments.append(state.rawValue)
        }
        if let clientIdentity {
            conditions.append("client_identity = ?")
            arguments.append(clientIdentity)
        }
        if let createdSince {
            conditions.append("created_at >= ?")
            arguments.append(StoreDatabase.ms(createdSince))
        }
        return (conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "), arguments)
    }

    /// The client's open orders, for the cap on open orders per customer (RFC 8921 §13).
    public func openOrderCount(clientIdentity: String) throws -> Int {
        try database.read { connection in Int(try connection.scalarInteger(SQL.openOrderCount, [clientIdentity]) ?? 0) }
    }

    /// When each client's orders created at or after `time` were created, oldest first: what a
    /// restart replays into the QUOTATION rate limiter, so that it is not refilled by a restart
    /// (RFC 8921 §9.2.5, §13).
    public func orderCreationTimesByClient(createdSince time: CPNPTimestamp) throws -> [String: [CPNPTimestamp]] {
        try database.read { connection in
            var times: [String: [CPNPTimestamp]] = [:]
            let rows = try connection.query(
                "SELECT client_identity, created_at FROM orders WHERE created_at >= ? ORDER BY created_at", [time.millisecondsSinceEpoch])
            for row in rows { times[try row.text("client_identity"), default: []].append(StoreDatabase.time(try row.integer("created_at"))) }
            return times
        }
    }

    /// Whether the client ever used `id` as a customer order id. A provider order id must never equal
    /// one (RFC 8921 §13: detect swapped identifiers).
    public func customerOrderIDExists(clientIdentity: String, _ id: String) throws -> Bool {
        try database.lookup { connection in try connection.scalarInteger(SQL.customerOrderIDExists, [clientIdentity, id]) == 1 }
    }

    /// Whether a provider order id is already assigned (to any client).
    public func providerOrderIDExists(_ id: String) throws -> Bool {
        try database.read { connection in try connection.scalarInteger(SQL.providerOrderIDExists, [id]) == 1 }
    }

    // MARK: - Audit

    /// The order's audit trail, oldest first (RFC 8921 §8.11, §12.1).
    public func audit(providerOrderID: ProviderOrderID) throws -> [AuditEntry] {
        try database.read { connection in try Self.audit(providerOrderID, in: connection) }
    }

    /// An order with its reservations and audit trail as one committed state (`cpnpd admin show`):
    /// separate reads could pair one state with the reservations of the next (a commit between them).
    public func details(providerOrderID: ProviderOrderID) throws -> OrderDetails? {
        try database.snapshot { connection in
            guard let row = try connection.queryOne(SQL.orderByProviderID, [providerOrderID.rawValue]) else { return nil }
            return OrderDetails(
                order: try Self.storedOrder(row, connection), reservations: try Self.reservations(ofOrder: providerOrderID.rawValue, in: connection),
                audit: try Self.audit(providerOrderID, in: connection))
        }
    }

    private static func audit(_ providerOrderID: ProviderOrderID, in connection: any SQLConnection) throws -> [AuditEntry] {
        try connection.query(SQL.auditOfOrder, [providerOrderID.rawValue]).map { row in
            let entryID = try row.integer("id")
            func state(_ column: String) throws -> ServerOrderStateMachine.State {
                let name = try row.text(column)
                guard let state = ServerOrderStateMachine.State(rawValue: name) else {
                    throw StoreError.corruptRow(table: "audit", key: String(entryID), reason: "unknown state \(name)")
                }
                return state
            }
            return AuditEntry(
                id: entryID, providerOrderID: try Self.providerOrderID(try row.text("provider_order_id"), table: "audit"),
                at: StoreDatabase.time(try row.integer("at")), from: try state("from_state"), to: try state("to_state"),
                event: try row.text("event"), clientAddress: try row.text("client_address"), clientIdentity: try row.text("client_identity"))
        }
    }

    // MARK: - Reservations

    /// The order's reservations by kind, each kind in the order it was given.
    public func reservations(providerOrderID: ProviderOrderID) throws -> HeldCapacity {
        try database.read { connection in try Self.reservations(ofOrder: providerOrderID.rawValue, in: connection) }
    }

    private static func reservations(ofOrder providerOrderID: String, in connection: any SQLConnection) throws -> HeldCapacity {
        var held = HeldCapacity.empty
        for row in try connection.query(SQL.reservationsOfOrder, [providerOrderID]) { try Self.add(row, to: &held) }
        return held
    }

    /// Every order's reservations in one read, each kind in the order it was given (restart recovery).
    /// Only open orders hold reservations: a closing commit releases them.
    public func reservationsByOrder() throws -> [ProviderOrderID: HeldCapacity] {
        try database.read { connection in
            var out: [ProviderOrderID: HeldCapacity] = [:]
            for row in try connection.query("SELECT provider_order_id, \(SQL.reservationColumns) FROM reservations ORDER BY id") {
                try Self.add(row, to: &out[try Self.providerOrderID(try row.text("provider_order_id"), table: "reservations"), default: .empty])
            }
            return out
        }
    }

    /// Appends a row of `reservations` to the list of its kind.
    private static func add(_ row: SQLRow, to held: inout HeldCapacity) throws {
        let key = try resourceKey(row)
        held[try kind(row, key)].append(Reservation(key, mbps: try amount(row, key)))
    }

    /// The capacity reserved on each link and direction by all orders, summed exactly: offered and
    /// committed, or only `kind`. Links and directions with nothing reserved are absent.
    public func reservedTotals(kind: ReservationKind? = nil) throws -> [Reservation.Key: CPNPDecimal] {
        try database.read { connection in
            var totals: [Reservation.Key: CPNPDecimal] = [:]
            for (key, total) in try Self.recountedTotals(in: connection) where kind == nil || key.kind == kind {
                totals[key.resource, default: 0] += total
            }
            return totals
        }
    }

    /// The capacity reserved on one link and direction by all orders (an indexed lookup), summed exactly.
    public func reservedTotal(for resource: Reservation.Key, kind: ReservationKind? = nil) throws -> CPNPDecimal {
        try database.read { connection in try Self.reservedTotal(for: resource, kind: kind, in: connection) }
    }

    /// From the kept totals: one keyed read per kind, whatever the number of reservations.
    private static func reservedTotal(for key: Reservation.Key, kind: ReservationKind?, in connection: any SQLConnection) throws -> CPNPDecimal {
        let rows: [SQLRow]
        if let kind {
            rows = try connection.query(SQL.reservedOnResourceOfKind, [key.linkID, key.direction.rawValue, kind.rawValue])
        } else {
            rows = try connection.query(SQL.reservedOnResource, [key.linkID, key.direction.rawValue])
        }
        var total: CPNPDecimal = 0
        for row in rows {
            total += try Self.total(try row.text("total"), key)
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
        try database.read { connection in
            try connection.query(SQL.dueOutbox, [StoreDatabase.ms(now), limit]).map { try Self.outboxEntry($0, in: connection) }
        }
    }

    /// When the next event first in line for its order becomes due (possibly in the past), or nil when
    /// nothing is undelivered: how long the delivery worker may sleep.
    public func nextOutboxAttempt() throws -> CPNPTimestamp? {
        try database.read { connection in StoreDatabase.time(try connection.scalarInteger(SQL.nextOutboxAttempt)) }
    }

    /// Records a successful delivery. Returns false when the event is unknown or was already delivered.
    @discardableResult
    public func markDelivered(id: Int64, at: CPNPTimestamp) throws -> Bool {
        try database.write { connection in
            try connection.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ? AND delivered_at IS NULL",
                [StoreDatabase.ms(at), id]) == 1
        }
    }

    /// Records a failed delivery and when to try again (the worker's back-off). Returns false when the
    /// event is unknown or was already delivered.
    @discardableResult
    public func markAttemptFailed(id: Int64, error: String, nextAttemptAt: CPNPTimestamp) throws -> Bool {
        try database.write { connection in
            try connection.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claimed_until = NULL WHERE id = ? AND delivered_at IS NULL",
                [error, StoreDatabase.ms(nextAttemptAt), id]) == 1
        }
    }

    /// The order's outbox events, delivered or not, oldest first (`cpnpd admin show`).
    public func outbox(providerOrderID: ProviderOrderID) throws -> [OutboxEntry] {
        try database.read { connection in
            try connection.query("SELECT \(SQL.outboxColumns) FROM outbox WHERE provider_order_id = ? ORDER BY id", [providerOrderID.rawValue])
                .map { try Self.outboxEntry($0, in: connection) }
        }
    }

    /// How many events await delivery.
    public func undeliveredOutboxCount() throws -> Int {
        try database.read { connection in Int(try connection.scalarInteger("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL") ?? 0) }
    }

    /// Claims up to `limit` due events, first in line for their order, that no other claimant holds:
    /// each is held by `claimant` until `now + lease` (several instances never hand one event off
    /// twice at once; one that dies leaves it to another once the claim lapses). Mark each claimed event
    /// with ``markDelivered(id:at:)`` or ``markAttemptFailed(id:error:nextAttemptAt:)``. When no
    /// undelivered event is due, a read says so and nothing is written: the worker asks twice a second,
    /// on the writer the engine commits on, and without a hook nothing is ever due.
    public func claimDueOutbox(claimant: String, now: CPNPTimestamp, lease: Duration, limit: Int = 100) throws -> [OutboxEntry] {
        let nowMilliseconds = StoreDatabase.ms(now)
        guard try database.read({ try $0.scalarInteger(SQL.dueOutboxExists, [nowMilliseconds]) == 1 }) else { return [] }
        return try database.write { connection in
            // A claim of an instance that stopped sending heartbeats lapses with that instance.
            let rows = try connection.query(
                SQL.claimableOutbox(connection.dialect),
                [nowMilliseconds, nowMilliseconds, claimant, nowMilliseconds - Self.milliseconds(ServerOrderStore.instanceLease), limit])
            for row in rows {
                try connection.execute(
                    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                    [claimant, nowMilliseconds + Self.milliseconds(lease), try row.integer("id")])
            }
            return try rows.map { try Self.outboxEntry($0, in: connection) }
        }
    }

    // MARK: - Several instances on one database (docs/deployment.md)

    /// Whether several `cpnpd` may share this store: true on PostgreSQL. They then claim resident orders
    /// no live instance drives (``claimOrphanedOrders(instance:now:lease:limit:)``) and refresh their
    /// capacity totals from the store.
    public var sharesOrders: Bool { database.dialect == .postgres }

    /// Records that `instance` is alive (at start, then at least once per lease).
    public func heartbeat(instance: String, address: String, now: CPNPTimestamp) throws {
        let nowMilliseconds = StoreDatabase.ms(now)
        _ = try database.write { connection in
            try connection.execute(
                """
                INSERT INTO instances (instance_id, address, started_at, heartbeat_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, address = excluded.address
                """, [instance, address, nowMilliseconds, nowMilliseconds])
        }
    }

    /// An instance that stops cleanly: its orders can be claimed at once instead of after its lease.
    public func retire(instance: String) throws {
        try database.write { connection in
            try connection.execute("UPDATE orders SET owner = NULL WHERE owner = ?", [instance])
            try connection.execute("DELETE FROM instances WHERE instance_id = ?", [instance])
        }
    }

    /// The instances whose last heartbeat is less than `lease` old.
    public func liveInstances(now: CPNPTimestamp, lease: Duration) throws -> [String] {
        try database.read { connection in
            try connection.query(
                "SELECT instance_id FROM instances WHERE heartbeat_at >= ? ORDER BY instance_id", [StoreDatabase.ms(now) - Self.milliseconds(lease)]
            )
            .map { try $0.text("instance_id") }
        }
    }

    /// Takes over up to `limit` open orders with something in flight that no live instance drives
    /// (their owner is gone, or stopped sending heartbeats `lease` ago): each gets `instance` as owner
    /// and a new revision, so a stalled former owner can no longer commit it. Returns them, to be
    /// resumed as a restart resumes its own (timers re-armed, interrupted work redone).
    public func claimOrphanedOrders(instance: String, now: CPNPTimestamp, lease: Duration, limit: Int = 100) throws -> [StoredOrder] {
        let alive = StoreDatabase.ms(now) - Self.milliseconds(lease)
        return try database.write { connection in
            try connection.query(SQL.orphanedOrders(connection.dialect), [instance, alive, limit]).map { row in
                var order = try Self.storedOrder(row, connection)
                try connection.execute(
                    "UPDATE orders SET owner = ?, revision = revision + 1 WHERE provider_order_id = ?", [instance, order.providerOrderID.rawValue])
                order.summary.owner = instance
                order.summary.revision += 1
                return order
            }
        }
    }

    /// How many orders the client created since `time` (the QUOTATION rate limit, counted across instances).
    public func orderCount(clientIdentity: String, createdSince time: CPNPTimestamp) throws -> Int {
        try database.read { connection in
            Int(
                try connection.scalarInteger(
                    "SELECT COUNT(*) FROM orders WHERE client_identity = ? AND created_at >= ?", [clientIdentity, StoreDatabase.ms(time)]) ?? 0)
        }
    }

    /// Open orders per state name, all instances together (monitoring).
    public func openOrderCountsByState() throws -> [String: Int] {
        try database.read { connection in
            var counts: [String: Int] = [:]
            for row in try connection.query("SELECT state, COUNT(*) AS n FROM orders WHERE is_open = 1 GROUP BY state") {
                counts[try row.text("state")] = Int(try row.integer("n"))
            }
            return counts
        }
    }

    /// The stored revision of each of these orders; those not stored are absent.
    public func revisions(of orders: [ProviderOrderID]) throws -> [ProviderOrderID: Int64] {
        var revisions: [ProviderOrderID: Int64] = [:]
        let byText = Dictionary(orders.map { ($0.rawValue, $0) }, uniquingKeysWith: { first, _ in first })
        try database.read { connection in
            for chunk in stride(from: 0, to: orders.count, by: 500).map({ orders[$0..<min($0 + 500, orders.count)] }) {
                let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                for row in try connection.query(
                    "SELECT provider_order_id, revision FROM orders WHERE provider_order_id IN (\(placeholders))", chunk.map(\.rawValue))
                {
                    if let providerOrderID = byText[try row.text("provider_order_id")] { revisions[providerOrderID] = try row.integer("revision") }
                }
            }
        }
        return revisions
    }

    /// How long an instance may go without a heartbeat before its claims on provisioning events lapse.
    public static let instanceLease: Duration = .seconds(5)

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
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
            case .reject(let status, let text): ("reject", status.rawValue, text)
            }
        return try database.write { connection in
            guard try connection.scalarInteger(SQL.providerOrderIDExists, [providerOrderID.rawValue]) == 1 else {
                throw StoreError.unknownOrder(providerOrderID.rawValue)
            }
            let requestID = try connection.scalarInteger(
                """
                INSERT INTO admin_requests (provider_order_id, action, status_code, diagnostic, requested_by, created_at)
                VALUES (?, ?, ?, ?, ?, ?) RETURNING id
                """,
                [providerOrderID.rawValue, name, code, diagnostic, requestedBy, StoreDatabase.ms(at)])
            guard let requestID else { throw StoreError.corruptRow(table: "admin_requests", key: providerOrderID.rawValue, reason: "no id returned") }
            return requestID
        }
    }

    /// Unprocessed requests, oldest first.
    public func pendingAdminRequests(limit: Int = 100) throws -> [AdminRequest] {
        try database.read { connection in try connection.query(SQL.pendingAdminRequests, [limit]).map(Self.adminRequest) }
    }

    /// One request, e.g. for the CLI to wait for its outcome.
    public func adminRequest(id: Int64) throws -> AdminRequest? {
        try database.read { connection in
            try connection.queryOne("SELECT \(SQL.adminColumns) FROM admin_requests WHERE id = ?", [id]).map(Self.adminRequest)
        }
    }

    /// The order's requests, oldest first.
    public func adminRequests(providerOrderID: ProviderOrderID) throws -> [AdminRequest] {
        try database.read { connection in
            try connection.query("SELECT \(SQL.adminColumns) FROM admin_requests WHERE provider_order_id = ? ORDER BY id", [providerOrderID.rawValue])
                .map(Self.adminRequest)
        }
    }

    /// Marks a request processed, when it changed no order (otherwise settle it within the order's
    /// ``OrderChange/processedAdminRequests``). Returns false when unknown or already processed.
    @discardableResult
    public func markAdminRequestProcessed(id: Int64, at: CPNPTimestamp, outcome: String) throws -> Bool {
        try database.write { connection in
            try connection.execute(
                "UPDATE admin_requests SET processed_at = ?, outcome = ? WHERE id = ? AND processed_at IS NULL", [StoreDatabase.ms(at), outcome, id])
                == 1
        }
    }

    // MARK: - Row decoding

    private static func providerOrderID(_ text: String, table: String) throws -> ProviderOrderID {
        guard let parsed = ProviderOrderID(text) else { throw StoreError.corruptRow(table: table, key: text, reason: "invalid provider order id") }
        return parsed
    }

    private static func summary(_ row: SQLRow) throws -> OrderSummary {
        let providerOrderIDText = try row.text("provider_order_id")
        let customerOrderIDText = try row.text("customer_order_id")
        let stateName = try row.text("state")
        guard let customerOrderID = CustomerOrderID(customerOrderIDText) else {
            throw StoreError.corruptRow(table: "orders", key: providerOrderIDText, reason: "invalid customer order id")
        }
        guard let state = ServerOrderStateMachine.State(rawValue: stateName) else {
            throw StoreError.corruptRow(table: "orders", key: providerOrderIDText, reason: "unknown state \(stateName)")
        }
        return OrderSummary(
            providerOrderID: try providerOrderID(providerOrderIDText, table: "orders"), customerOrderID: customerOrderID,
            clientIdentity: try row.text("client_identity"), clientAddress: try row.text("client_address"), state: state,
            isOpen: try row.bool("is_open"), createdAt: StoreDatabase.time(try row.integer("created_at")),
            updatedAt: StoreDatabase.time(try row.integer("updated_at")), revision: try row.integer("revision"),
            owner: try row.optionalText("owner"))
    }

    private static func storedOrder(_ row: SQLRow, _ connection: any SQLConnection) throws -> StoredOrder {
        try storedOrder(try summary(row), snapshot: try row.text("snapshot"), connection)
    }

    private static func storedOrder(_ summary: OrderSummary, snapshot: String, _ connection: any SQLConnection) throws -> StoredOrder {
        let key = summary.providerOrderID.rawValue
        let json = try StoreDatabase.json(snapshot, table: "orders", key: key)
        let machine: ServerOrderStateMachine
        do {
            // Each document decoded once and shared (request, offer, agreement, cached ACCEPT and ACK).
            machine = try DocumentTable.decoding(in: connection) { () throws(SnapshotError) -> ServerOrderStateMachine in
                try ServerOrderStateMachine(snapshot: json)
            }
        } catch {
            throw StoreError.corruptRow(table: "orders", key: key, reason: "snapshot: \(error)")
        }
        guard machine.providerOrderID == summary.providerOrderID, machine.customerOrderID == summary.customerOrderID else {
            throw StoreError.corruptRow(table: "orders", key: key, reason: "the snapshot belongs to another order")
        }
        return StoredOrder(summary: summary, machine: machine)
    }

    /// The link and direction of a `reservations` or `reservation_totals` row: columns `resource_id`
    /// and `direction` (the ``CPDDirection`` raw value, `incoming` or `outgoing`).
    static func resourceKey(_ row: SQLRow) throws -> Reservation.Key {
        let linkID = try row.text("resource_id")
        let directionText = try row.text("direction")
        guard let direction = CPDDirection(rawValue: directionText) else {
            throw StoreError.corruptRow(table: "reservations", key: linkID, reason: "unknown direction \(directionText)")
        }
        return Reservation.Key(linkID, direction)
    }

    /// A kept total of `reservation_totals`, read back exactly.
    static func total(_ text: String, _ key: Reservation.Key) throws -> CPNPDecimal {
        guard let value = CPNPDecimal(parsing: text) else {
            throw StoreError.corruptRow(table: "reservation_totals", key: key.description, reason: "invalid total \"\(text)\"")
        }
        return value
    }

    private static func amount(_ row: SQLRow, _ key: Reservation.Key) throws -> CPNPDecimal {
        let text = try row.text("amount")
        guard let value = CPNPDecimal(parsing: text) else {
            throw StoreError.corruptRow(table: "reservations", key: key.description, reason: "invalid amount \"\(text)\"")
        }
        return value
    }

    static func kind(_ row: SQLRow, _ key: Reservation.Key) throws -> ReservationKind {
        let kindText = try row.text("kind")
        guard let kind = ReservationKind(rawValue: kindText) else {
            throw StoreError.corruptRow(table: "reservations", key: key.description, reason: "unknown kind \(kindText)")
        }
        return kind
    }

    /// An outbox row, its document (``OutboxEvent/document``) read from `documents` into the payload.
    private static func outboxEntry(_ row: SQLRow, in connection: any SQLConnection) throws -> OutboxEntry {
        let entryID = try row.integer("id")
        var payload = try StoreDatabase.json(try row.text("payload"), table: "outbox", key: String(entryID))
        if let reference = try row.optionalText("document") {
            guard case .object(var members) = payload, let document = try DocumentTable.body(reference, in: connection) else {
                throw StoreError.corruptRow(
                    table: "outbox", key: String(entryID), reason: "document \(reference.prefix(80)) not stored, or the payload is not an object")
            }
            members["cpd"] = document
            payload = .object(members)
        }
        return OutboxEntry(
            id: entryID, providerOrderID: try providerOrderID(try row.text("provider_order_id"), table: "outbox"),
            kind: OutboxEventKind(rawValue: try row.text("kind")),
            payload: payload,
            createdAt: StoreDatabase.time(try row.integer("created_at")), attempts: Int(try row.integer("attempts")),
            nextAttemptAt: StoreDatabase.time(try row.integer("next_attempt_at")),
            deliveredAt: StoreDatabase.time(try row.optionalInteger("delivered_at")), lastError: try row.optionalText("last_error"))
    }

    private static func adminRequest(_ row: SQLRow) throws -> AdminRequest {
        let requestID = try row.integer("id")
        let name = try row.text("action")
        let action: AdminAction
        switch name {
        case "approve":
            action = .approve
        case "reject":
            guard let raw = try row.optionalInteger("status_code"), let code = FailStatusCode(rawValue: Int(raw)) else {
                throw StoreError.corruptRow(table: "admin_requests", key: String(requestID), reason: "invalid status code")
            }
            action = .reject(code, diagnostic: try row.optionalText("diagnostic"))
        default:
            throw StoreError.corruptRow(table: "admin_requests", key: String(requestID), reason: "unknown action \(name)")
        }
        return AdminRequest(
            id: requestID, providerOrderID: try providerOrderID(try row.text("provider_order_id"), table: "admin_requests"), action: action,
            requestedBy: try row.optionalText("requested_by"), createdAt: StoreDatabase.time(try row.integer("created_at")),
            processedAt: StoreDatabase.time(try row.optionalInteger("processed_at")), outcome: try row.optionalText("outcome"))
    }
}
