/// The customer's durable order store (RFC 8921 §8.11: persistent storage of orders, every
/// state change time-stamped), so that orders, their identifiers, nonces and open transactions survive
/// restarts and later commands (withdraw, update, activate) find them.
public import CPNPCore
import GRDB

/// An order of the client as stored, with its machine restored from the stored snapshot.
public struct StoredClientOrder: Sendable, Hashable {
    /// The client's own id (RFC 8921 §9.1.1), unique in this store.
    public var customerOrderID: CustomerOrderID
    /// The server the order was placed with, `host:port`.
    public var serverAddress: String
    /// The server's name (the host or SRV domain asked for, or its certificate's name), when known.
    public var serverName: String?
    /// The provider's id of the order once the server gave it (RFC 8921 §9.1.2).
    public var providerOrderID: ProviderOrderID?
    /// The RFC 8921 §8.11.1 state.
    public var state: ClientOrderStateMachine.State
    /// See ``ClientOrderStore/isOpen(_:)``.
    public var isOpen: Bool
    /// Orders sent together (e.g. one best-of-N negotiation, RFC 8921 §8.10) share a group.
    public var group: String?
    public var createdAt: CPNPTimestamp
    public var updatedAt: CPNPTimestamp
    /// 1 on creation, +1 at each save; see ``ClientOrderChange/expectedRevision``.
    public var revision: Int64
    /// The machine exactly as saved; re-arm ``ClientOrderStateMachine/armedTimers(now:)`` after a restart.
    public var machine: ClientOrderStateMachine
}

/// One entry of a client order's history (RFC 8921 §8.11: time-stamped state changes).
public struct ClientOrderEvent: Sendable, Hashable {
    public var id: Int64
    public var customerOrderID: CustomerOrderID
    public var at: CPNPTimestamp
    public var from: ClientOrderStateMachine.State
    public var to: ClientOrderStateMachine.State
    public var event: String
    public var serverAddress: String
}

/// One atomic save of a client order: the row and snapshot, and its history entries.
public struct ClientOrderChange: Sendable, Hashable {
    /// A state change for the history: one per `.persist` action.
    public struct Transition: Sendable, Hashable {
        public var from: ClientOrderStateMachine.State
        public var to: ClientOrderStateMachine.State
        public var event: String
        /// When it happened; nil = the change's ``ClientOrderChange/at``. A change the engine wrote with
        /// a later one keeps its own time.
        public var at: CPNPTimestamp?
        public init(from: ClientOrderStateMachine.State, to: ClientOrderStateMachine.State, event: String, at: CPNPTimestamp? = nil) {
            self.from = from
            self.to = to
            self.event = event
            self.at = at
        }
    }

    public var machine: ClientOrderStateMachine
    /// The server's address for this change, `host:port`; nil = the machine's session's remote end (or
    /// the stored address when the machine has no transaction).
    public var serverAddress: String?
    /// nil keeps the stored name.
    public var serverName: String?
    /// nil keeps the stored group.
    public var group: String?
    public var at: CPNPTimestamp
    public var transitions: [Transition]
    /// When set, the save fails with ``StoreError/revisionConflict(orderID:expected:actual:)`` unless the
    /// stored revision equals it (0 = the order must not exist yet): two `cpnp` commands on one order.
    public var expectedRevision: Int64?

    public init(
        machine: ClientOrderStateMachine, serverAddress: String? = nil, serverName: String? = nil, group: String? = nil,
        at: CPNPTimestamp, transitions: [Transition] = [], expectedRevision: Int64? = nil
    ) {
        self.machine = machine
        self.serverAddress = serverAddress
        self.serverName = serverName
        self.group = group
        self.at = at
        self.transitions = transitions
        self.expectedRevision = expectedRevision
    }

    /// A change whose history entries are the `.persist` actions among `actions`.
    public init(
        machine: ClientOrderStateMachine, serverAddress: String? = nil, serverName: String? = nil, group: String? = nil,
        at: CPNPTimestamp, actions: [ClientOrderStateMachine.Action], expectedRevision: Int64? = nil
    ) {
        self.init(
            machine: machine, serverAddress: serverAddress, serverName: serverName, group: group, at: at,
            transitions: Self.transitions(in: actions), expectedRevision: expectedRevision)
    }

    /// The history entries of `actions`: one per `.persist` action.
    public static func transitions(in actions: [ClientOrderStateMachine.Action]) -> [Transition] {
        actions.compactMap { action in
            if case .persist(let from, let to, let event) = action { Transition(from: from, to: to, event: event) } else { nil }
        }
    }
}

/// What the customer's engine and its tools need of an order store (RFC 8921 §8.11): atomic saves
/// with history, and reads. ``ClientOrderStore`` (SQLite, durable) and ``VolatileClientOrderStore``
/// (memory) implement it alike; `ClientOrderStoreTests` runs its round trip and lookups against
/// both and holds their answers equal.
public protocol ClientOrderStoring: Sendable {
    /// Saves the order atomically, with its history entries; returns its new revision.
    @discardableResult func save(_ change: ClientOrderChange) throws -> Int64
    /// The order with this customer order id.
    func order(customerOrderID: CustomerOrderID) throws -> StoredClientOrder?
    /// Whether the client already used this customer order id.
    func customerOrderIDExists(_ id: String) throws -> Bool
    /// The order with that customer order id, else the orders with that provider order id, oldest first.
    func orders(identifiedBy id: String) throws -> [StoredClientOrder]
    /// Orders newest first, optionally in one state.
    func orders(limit: Int, offset: Int, state: ClientOrderStateMachine.State?) throws -> [StoredClientOrder]
    /// Open orders (``ClientOrderStore/isOpen(_:)``), oldest first.
    func openOrders() throws -> [StoredClientOrder]
    /// The orders of one group, oldest first.
    func orders(group: String) throws -> [StoredClientOrder]
    /// The order's history, oldest first.
    func events(customerOrderID: CustomerOrderID) throws -> [ClientOrderEvent]
}

extension ClientOrderStoring {
    /// Orders newest first, in any state.
    public func orders(limit: Int = 100, offset: Int = 0) throws -> [StoredClientOrder] { try orders(limit: limit, offset: offset, state: nil) }
    /// Orders in one state, newest first.
    public func orders(state: ClientOrderStateMachine.State, limit: Int = 100, offset: Int = 0) throws -> [StoredClientOrder] {
        try orders(limit: limit, offset: offset, state: state)
    }
}

extension ClientOrderStore: ClientOrderStoring {}

extension ClientOrderChange {
    /// The server's address this change gives: its own, else its machine's session's remote end.
    var givenServerAddress: String? { serverAddress ?? machine.transaction?.session.remote.description }
}

/// The client's orders and their history in one SQLite file (WAL), shared safely by concurrent `cpnp`
/// commands and the library. Same concurrency rules as ``ServerOrderStore``: `Sendable`, synchronous
/// calls, one transaction per save, history kept forever (orders are never deleted).
public final class ClientOrderStore: Sendable {
    let writer: any DatabaseWriter
    /// Each distinct CPD of the snapshots, stored once (``CPDReferences``; docs/design/storage.md).
    let documents = DocumentTable()

    /// Opens (creating and migrating it if needed) the store file at `path`, in WAL mode.
    public init(path: String, options: StoreOptions = StoreOptions()) throws {
        writer = try StoreDatabase.openPool(path: path, options: options, label: "CPNPStorage.client", migrator: Self.migrator)
    }

    private init(writer: any DatabaseWriter) { self.writer = writer }

    /// A read that leaves the statements of a save prepared (``DatabaseWriter/readKeepingStatements(_:)``).
    private func read<T>(_ body: (Database) throws -> T) throws -> T { try writer.readKeepingStatements(body) }

    /// A private in-memory store, for tests and dry runs.
    public static func inMemory() throws -> ClientOrderStore {
        ClientOrderStore(writer: try StoreDatabase.openInMemory(label: "CPNPStorage.client", migrator: migrator))
    }

    /// SQLite's journal mode (`wal` for a file store).
    public func journalMode() throws -> String {
        try read { connection in try String.fetchOne(connection, sql: "PRAGMA journal_mode") ?? "" }
    }

    /// Whether a client order still needs the engine: every RFC 8921 §8.11.1 state but Cancelled, and a
    /// Cancelled order whose last request (CANCEL, DECLINE, WITHDRAW) still awaits its answer — its
    /// retransmission or withdrawal-retry timer must be re-armed after a restart (§11.1.2, §11.4).
    public static func isOpen(_ machine: ClientOrderStateMachine) -> Bool {
        machine.state != .cancelled || machine.transaction?.pending != nil
    }

    static var migrator: DatabaseMigrator {
        var migrations = DatabaseMigrator()
        migrations.registerMigration("client-v1") { connection in
            try connection.execute(
                sql: """
                    CREATE TABLE orders (
                        customer_order_id TEXT NOT NULL PRIMARY KEY,
                        server_address TEXT NOT NULL,
                        server_name TEXT,
                        provider_order_id TEXT,
                        state TEXT NOT NULL,
                        is_open INTEGER NOT NULL CHECK (is_open IN (0, 1)),
                        negotiation_group TEXT,
                        snapshot TEXT NOT NULL,
                        revision INTEGER NOT NULL,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL
                    );
                    CREATE INDEX orders_open ON orders(is_open);
                    CREATE INDEX orders_provider_order_id ON orders(provider_order_id);
                    CREATE INDEX orders_group ON orders(negotiation_group);
                    CREATE INDEX orders_state ON orders(state, created_at);
                    CREATE INDEX orders_created ON orders(created_at);

                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        customer_order_id TEXT NOT NULL REFERENCES orders(customer_order_id),
                        at INTEGER NOT NULL,
                        from_state TEXT NOT NULL,
                        to_state TEXT NOT NULL,
                        event TEXT NOT NULL,
                        server_address TEXT NOT NULL
                    );
                    CREATE INDEX events_order ON events(customer_order_id, id);
                    """)
        }
        migrations.registerMigration("client-v2-documents") { connection in
            // As the provider's store: snapshots name their CPDs; older snapshots are read as they are.
            try connection.execute(sql: DocumentTable.createSQL)
        }
        return migrations
    }

    enum SQL {
        static let columns = """
            customer_order_id, server_address, server_name, provider_order_id, state, is_open, negotiation_group, \
            snapshot, revision, created_at, updated_at
            """
        static let byCustomerOrderID = "SELECT \(columns) FROM orders WHERE customer_order_id = ?"
        static let byProviderOrderID = "SELECT \(columns) FROM orders WHERE provider_order_id = ? ORDER BY created_at, rowid"
        static let openOrders = "SELECT \(columns) FROM orders WHERE is_open = 1 ORDER BY created_at, rowid"
        static let byGroup = "SELECT \(columns) FROM orders WHERE negotiation_group = ? ORDER BY created_at, rowid"
        static let events = """
            SELECT id, customer_order_id, at, from_state, to_state, event, server_address FROM events
            WHERE customer_order_id = ? ORDER BY id
            """
    }

    func queryPlan(_ sql: String, _ arguments: [String]) throws -> [String] {
        try StoreDatabase.queryPlan(writer, sql: sql, arguments: StatementArguments(arguments))
    }

    // MARK: - Writing

    /// Saves the order atomically: inserts or updates its row and snapshot and appends its history
    /// entries, in ONE transaction. Save before sending what the machine asked to send (a QUOTATION's
    /// ids, an ACCEPT) so that a restart can carry on. Returns the order's new revision.
    @discardableResult
    public func save(_ change: ClientOrderChange) throws -> Int64 {
        let machine = change.machine
        let customerOrderID = machine.customerOrderID.rawValue
        let written = documents.write { machine.snapshotJSON(reference: $0) }
        let snapshot = written.snapshot
        let open = Self.isOpen(machine)
        let changedAt = StoreDatabase.ms(change.at)
        let sessionAddress = change.givenServerAddress
        let revision = try writer.writeWithoutTransaction { database in
            let connection = GRDBConnection(database: database)
            return try connection.immediateTransaction { () throws -> Int64 in
                let head = try connection.queryOne("SELECT revision, server_address FROM orders WHERE customer_order_id = ?", [customerOrderID])
                let stored = try head?.integer("revision")
                if let expected = change.expectedRevision, expected != (stored ?? 0) {
                    throw StoreError.revisionConflict(orderID: customerOrderID, expected: expected, actual: stored)
                }
                let storedAddress = try head?.optionalText("server_address")
                guard let address = sessionAddress ?? storedAddress else {
                    throw StoreError.invalidArgument("order \(customerOrderID): no server address (give one, or a machine with a session)")
                }
                try DocumentTable.insert(written, in: connection)
                let revision = (stored ?? 0) + 1
                if stored == nil {
                    try connection.executeLater(
                        """
                        INSERT INTO orders (customer_order_id, server_address, server_name, provider_order_id, state, is_open,
                                            negotiation_group, snapshot, revision, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                        [
                            customerOrderID, address, change.serverName, machine.providerOrderID?.rawValue, machine.state.rawValue, open,
                            change.group,
                            snapshot, revision, changedAt, changedAt,
                        ])
                } else {
                    try connection.executeLater(
                        """
                        UPDATE orders SET server_address = ?, server_name = COALESCE(?, server_name), provider_order_id = ?, state = ?,
                            is_open = ?, negotiation_group = COALESCE(?, negotiation_group), snapshot = ?, revision = ?, updated_at = ?
                        WHERE customer_order_id = ?
                        """,
                        [
                            address, change.serverName, machine.providerOrderID?.rawValue, machine.state.rawValue, open, change.group, snapshot,
                            revision, changedAt, customerOrderID,
                        ])
                }
                for transition in change.transitions {
                    try connection.executeLater(
                        "INSERT INTO events (customer_order_id, at, from_state, to_state, event, server_address) VALUES (?, ?, ?, ?, ?, ?)",
                        [
                            customerOrderID, transition.at.map(StoreDatabase.ms) ?? changedAt, transition.from.rawValue, transition.to.rawValue,
                            transition.event, address,
                        ])
                }
                return revision
            }
        }
        documents.learn(written)
        return revision
    }

    // MARK: - Reading

    /// The order with this customer order id.
    public func order(customerOrderID: CustomerOrderID) throws -> StoredClientOrder? {
        try read { connection in
            try Row.fetchOne(connection, cachedSQL: SQL.byCustomerOrderID, arguments: [customerOrderID.rawValue]).map {
                try Self.order($0, connection)
            }
        }
    }

    /// Whether the client already used this customer order id (choose another for a new order).
    public func customerOrderIDExists(_ id: String) throws -> Bool {
        try read { connection in
            try Bool.fetchOne(connection, cachedSQL: "SELECT EXISTS (SELECT 1 FROM orders WHERE customer_order_id = ?)", arguments: [id]) ?? false
        }
    }

    /// The orders an identifier given on a command line designates: the order with that customer order
    /// id, else the orders (of possibly several servers) with that provider order id.
    public func orders(identifiedBy id: String) throws -> [StoredClientOrder] {
        try read { connection in
            if let row = try Row.fetchOne(connection, cachedSQL: SQL.byCustomerOrderID, arguments: [id]) { return [try Self.order(row, connection)] }
            return try Row.fetchAll(connection, cachedSQL: SQL.byProviderOrderID, arguments: [id]).map { try Self.order($0, connection) }
        }
    }

    /// Orders newest first, optionally in one state (`cpnp orders`).
    public func orders(limit: Int = 100, offset: Int = 0, state: ClientOrderStateMachine.State? = nil) throws -> [StoredClientOrder] {
        guard limit >= 0, offset >= 0 else { throw StoreError.invalidArgument("limit and offset must not be negative") }
        return try read { connection in
            if let state {
                return try Row.fetchAll(
                    connection, sql: "SELECT \(SQL.columns) FROM orders WHERE state = ? ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                    arguments: [state.rawValue, limit, offset]
                ).map { try Self.order($0, connection) }
            }
            return try Row.fetchAll(
                connection, sql: "SELECT \(SQL.columns) FROM orders ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                arguments: [limit, offset]
            ).map { try Self.order($0, connection) }
        }
    }

    /// Open orders (``isOpen(_:)``), oldest first: what a restarted client re-arms and carries on.
    public func openOrders() throws -> [StoredClientOrder] {
        try read { connection in try Row.fetchAll(connection, cachedSQL: SQL.openOrders).map { try Self.order($0, connection) } }
    }

    /// The orders of one group (e.g. a best-of-N negotiation), oldest first.
    public func orders(group: String) throws -> [StoredClientOrder] {
        try read { connection in
            try Row.fetchAll(connection, cachedSQL: SQL.byGroup, arguments: [group]).map { try Self.order($0, connection) }
        }
    }

    /// The order's history, oldest first.
    public func events(customerOrderID: CustomerOrderID) throws -> [ClientOrderEvent] {
        try read { connection in
            try Row.fetchAll(connection, cachedSQL: SQL.events, arguments: [customerOrderID.rawValue]).map { row in
                let eventID: Int64 = row["id"]
                func state(_ column: String) throws -> ClientOrderStateMachine.State {
                    let name: String = row[column]
                    guard let state = ClientOrderStateMachine.State(rawValue: name) else {
                        throw StoreError.corruptRow(table: "events", key: String(eventID), reason: "unknown state \(name)")
                    }
                    return state
                }
                return ClientOrderEvent(
                    id: eventID, customerOrderID: customerOrderID, at: StoreDatabase.time(row["at"] as Int64),
                    from: try state("from_state"), to: try state("to_state"), event: row["event"], serverAddress: row["server_address"])
            }
        }
    }

    private static func order(_ row: Row, _ connection: Database) throws -> StoredClientOrder {
        let customerOrderIDText: String = row["customer_order_id"]
        guard let customerOrderID = CustomerOrderID(customerOrderIDText) else {
            throw StoreError.corruptRow(table: "orders", key: customerOrderIDText, reason: "invalid customer order id")
        }
        let stateName: String = row["state"]
        guard let state = ClientOrderStateMachine.State(rawValue: stateName) else {
            throw StoreError.corruptRow(table: "orders", key: customerOrderIDText, reason: "unknown state \(stateName)")
        }
        var providerOrderID: ProviderOrderID?
        if let providerOrderIDText = row["provider_order_id"] as String? {
            guard let parsed = ProviderOrderID(providerOrderIDText) else {
                throw StoreError.corruptRow(table: "orders", key: customerOrderIDText, reason: "invalid provider order id")
            }
            providerOrderID = parsed
        }
        let json = try StoreDatabase.json(row["snapshot"], table: "orders", key: customerOrderIDText)
        let machine: ClientOrderStateMachine
        do {
            // Equal documents in the snapshot (agreement, cached ACCEPT and ACK) decoded once, shared.
            machine = try DocumentTable.decoding(in: GRDBConnection(database: connection)) { () throws(SnapshotError) -> ClientOrderStateMachine in
                try ClientOrderStateMachine(snapshot: json)
            }
        } catch {
            throw StoreError.corruptRow(table: "orders", key: customerOrderIDText, reason: "snapshot: \(error)")
        }
        guard machine.customerOrderID == customerOrderID else {
            throw StoreError.corruptRow(table: "orders", key: customerOrderIDText, reason: "the snapshot belongs to another order")
        }
        return StoredClientOrder(
            customerOrderID: customerOrderID, serverAddress: row["server_address"], serverName: row["server_name"],
            providerOrderID: providerOrderID, state: state, isOpen: row["is_open"], group: row["negotiation_group"],
            createdAt: StoreDatabase.time(row["created_at"] as Int64), updatedAt: StoreDatabase.time(row["updated_at"] as Int64),
            revision: row["revision"], machine: machine)
    }
}
