// The kept capacity totals (table `reservation_totals`) as the store's write transactions read and
// move them (docs/design/storage.md, "What is stored").
import CPNPCore
import GRDB
import Synchronization

extension ServerOrderStore {
    /// The kept totals SQLite's writer remembers between its transactions, so that a commit reads from
    /// the database only the links it has not seen. Every write of a SQLite store goes through its one
    /// writer connection, in this process; another process (or another store on the same file) writing
    /// is seen by `PRAGMA data_version`, and then everything remembered is forgotten. What a transaction
    /// read or wrote is remembered only once it committed. A PostgreSQL store remembers nothing: other
    /// `cpnpd` move the totals too, so each transaction reads and locks them.
    final class RememberedTotals: Sendable {
        struct State {
            /// `PRAGMA data_version` when the totals were last remembered.
            var dataVersion: Int64?
            var totals: [TotalKey: CPNPDecimal] = [:]
            /// The links whose totals (every direction and kind; an absent row is zero) are remembered.
            var links: Set<String> = []
        }
        private let state = Mutex(State())

        /// The totals as a write transaction starting on `connection` sees them.
        func begin(in connection: any SQLConnection) throws -> TransactionTotals {
            guard connection.dialect == .sqlite else { return TransactionTotals(remembering: false) }
            let dataVersion = try connection.scalarInteger("PRAGMA data_version")
            var totals = TransactionTotals(remembering: true)
            totals.dataVersion = dataVersion
            state.withLock { state in
                guard state.dataVersion == dataVersion else { return }
                totals.remembered = state.totals
                totals.rememberedLinks = state.links
            }
            return totals
        }

        /// Remembers what `transaction` read and wrote once the transaction on `connection` commits:
        /// on SQLite's writer queue, before any other write can begin (GRDB's `afterNextTransaction`).
        /// Call it last in the transaction; nothing is remembered if it rolls back.
        func remember(_ transaction: TransactionTotals, in connection: any SQLConnection) {
            guard transaction.remembering, let connection = connection as? GRDBConnection else { return }
            // Without its copy of what was remembered: the merge then changes the remembered totals in
            // place instead of copying them whole.
            var finished = transaction
            finished.remembered = [:]
            finished.rememberedLinks = []
            connection.database.afterNextTransaction(onCommit: { [finished] _ in self.merge(finished) })
        }

        private func merge(_ transaction: TransactionTotals) {
            state.withLock { state in
                if state.dataVersion != transaction.dataVersion {
                    state = State(dataVersion: transaction.dataVersion)
                }
                state.totals.merge(transaction.read) { _, read in read }
                state.totals.merge(transaction.written) { _, written in written }
                state.links.formUnion(transaction.readLinks)
            }
        }
    }

    /// The kept totals one write transaction reads and moves: remembered ones, those it read, and those
    /// its changes wrote. A change's writes are kept when its savepoint is released (``keepChange()``)
    /// and dropped when it rolls back (``dropChange()``).
    struct TransactionTotals {
        let remembering: Bool
        var dataVersion: Int64?
        var remembered: [TotalKey: CPNPDecimal] = [:]
        var rememberedLinks: Set<String> = []
        /// Read from the database in this transaction: committed values of links no change here moved yet.
        var read: [TotalKey: CPNPDecimal] = [:]
        var readLinks: Set<String> = []
        /// Written by the changes kept so far, and by the current one.
        var written: [TotalKey: CPNPDecimal] = [:]
        var writtenByChange: [TotalKey: CPNPDecimal] = [:]

        init(remembering: Bool) { self.remembering = remembering }

        /// The kept totals of `resources` (both directions and kinds; a missing key is zero). On
        /// PostgreSQL read in one statement and locked until the commit; on SQLite read only for
        /// the links not known.
        mutating func totals(of resources: Set<Reservation.Key>, in connection: any SQLConnection) throws -> [TotalKey: CPNPDecimal] {
            guard !resources.isEmpty else { return [:] }
            let links = Set(resources.map(\.linkID))
            guard remembering else {
                var out: [TotalKey: CPNPDecimal] = [:]
                try ServerOrderStore.readTotals(of: links.sorted(), locking: resources, in: connection) { key, total in out[key] = total }
                return out
            }
            let unknown = links.filter { !rememberedLinks.contains($0) && !readLinks.contains($0) }
            if !unknown.isEmpty {
                try ServerOrderStore.readTotals(of: unknown.sorted(), locking: [], in: connection) { key, total in read[key] = total }
                readLinks.formUnion(unknown)
            }
            var out: [TotalKey: CPNPDecimal] = [:]
            for direction in CPDDirection.allCases {
                for link in links {
                    for kind in ReservationKind.allCases {
                        let key = TotalKey(resource: Reservation.Key(link, direction), kind: kind)
                        if let total = writtenByChange[key] ?? written[key] ?? read[key] ?? remembered[key] { out[key] = total }
                    }
                }
            }
            return out
        }

        /// The current change wrote `total` for `key`.
        mutating func wrote(_ key: TotalKey, _ total: CPNPDecimal) {
            if remembering { writtenByChange[key] = total }
        }

        /// The current change is kept (its savepoint released).
        mutating func keepChange() {
            written.merge(writtenByChange) { _, new in new }
            writtenByChange = [:]
        }

        /// The current change is rolled back.
        mutating func dropChange() { writtenByChange = [:] }

        /// SQLite: writes the totals the kept changes moved, each once, at the end of the transaction.
        /// The changes of a group commit mostly move the same links: written at each change, a batch
        /// of 15 negotiations on three links upserted 270 rows where 12 hold the result.
        /// Checks read the totals from memory (``totals(of:in:)``), never from the rows, until then.
        func writeKept(in connection: any SQLConnection) throws {
            guard remembering, !written.isEmpty else { return }
            let rows: [[any SQLBindable]] = written.sorted { ($0.key.resource, $0.key.kind.rawValue) < ($1.key.resource, $1.key.kind.rawValue) }
                .map { key, total in [key.resource.linkID, key.resource.direction.rawValue, key.kind.rawValue, total.description] }
            for start in stride(from: 0, to: rows.count, by: 500) {
                try connection.insertLater(
                    SQL.upsertReservationTotals, rows: Array(rows[start..<min(start + 500, rows.count)]), then: SQL.upsertReservationTotalsConflict)
            }
        }
    }

    /// Reads the kept totals of `links` in one statement, each passed to `row`. On PostgreSQL they are
    /// locked until the commit, after the rows `resources` lack are created.
    static func readTotals(
        of links: [String], locking resources: Set<Reservation.Key>, in connection: any SQLConnection, _ row: (TotalKey, CPNPDecimal) -> Void
    ) throws {
        let rows: [SQLRow]
        if connection.dialect == .postgres {
            try lockTotals(of: resources, in: connection)
            rows = try connection.query(SQL.keptTotalsOfResources(links.count) + " ORDER BY resource_id, direction, kind FOR UPDATE", links)
        } else {
            rows = try connection.query(SQL.keptTotalsOfResources(links.count), links)
        }
        for totalRow in rows {
            let key = try resourceKey(totalRow)
            row(TotalKey(resource: key, kind: try kind(totalRow, key)), try total(try totalRow.text("total"), key))
        }
    }
}
