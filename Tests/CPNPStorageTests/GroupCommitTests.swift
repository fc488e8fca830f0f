// ServerOrderStore.commit(batch:): many order changes in one transaction, each in a savepoint, so one
// failing change (capacity) is rolled back alone and later changes of its order are not attempted.
@testable import CPNPCore
@testable import CPNPStorage
import Foundation
import GRDB
import Testing

@Suite("ServerOrderStore group commit")
struct GroupCommitTests {
    static let link = Reservation.Key("link-1", .outgoing)

    /// A new order `p-NAME` offering `amount` on ``link``, whose capacity is 100.
    static func change(_ name: String, _ amount: CPNPDecimal) -> OrderChange {
        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(name)", providerOrderID: "p-\(name)")
        return OrderChange(
            machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions,
            reservations: HeldCapacity(offered: [Reservation(link, mbps: amount)]), capacityLimits: [link: 100])
    }

    @Test func aFailingChangeIsRolledBackAloneAndLaterChangesOfItsOrderAreSkipped() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-group-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ServerOrderStore(path: directory.appendingPathComponent("cpnpd.sqlite").path)
        let link = Self.link
        // b does not fit after a; b's second change would fit, but it follows a failed change of b.
        let results = try store.commit(batch: [Self.change("a", 60), Self.change("b", 50), Self.change("b", 10), Self.change("c", 40)])
        #expect(results.count == 4)
        #expect((try? results[0].get()) == 1)
        #expect(throws: StoreError.capacityExceeded(link, total: 110, limit: 100)) { try results[1].get() }
        #expect(throws: BatchCommitError.earlierChangeFailed(providerOrderID: "p-b")) { try results[2].get() }
        #expect((try? results[3].get()) == 1)
        #expect(try store.providerOrderIDExists("p-a") && store.providerOrderIDExists("p-c"))
        #expect(try store.providerOrderIDExists("p-b") == false)
        #expect(try store.audit(providerOrderID: ProviderOrderID("p-b")!).isEmpty)
        #expect(try store.reservedTotal(for: link) == 100)
        #expect(try store.commit(batch: []).isEmpty)
    }

    @Test("each change runs in its own savepoint, on statements prepared once; a failing one is rolled back to it; totals are written once")
    func savepointsAreCachedStatements() throws {
        let store = try ServerOrderStore.inMemory()
        let trace = WriterStatementTrace(store)
        let link = Self.link
        let results = try store.commit(batch: [Self.change("a", 60), Self.change("b", 50), Self.change("c", 40)])
        #expect(results.map { (try? $0.get()) != nil } == [true, false, true])
        let traced = trace.statements
        #expect(traced.filter { $0 == "SAVEPOINT cpnp_change" }.count == 3)
        #expect(traced.filter { $0 == "ROLLBACK TRANSACTION TO SAVEPOINT cpnp_change" }.count == 1)
        #expect(traced.filter { $0 == "RELEASE SAVEPOINT cpnp_change" }.count == 3)
        #expect(!traced.contains { $0.contains("grdb") })
        #expect(try store.providerOrderIDExists("p-b") == false)
        #expect(try store.reservedTotal(for: link) == 100)
        // The kept totals the two kept changes moved are written once, at the end of the transaction.
        #expect(traced.filter { $0.hasPrefix("INSERT INTO reservation_totals") }.count == 1)
        #expect(try store.reservationTotalMismatches().isEmpty)
    }

    @Test("a rollback to a savepoint that fails is reported as such, so the transaction is not committed")
    func aFailedRollbackToTheSavepointIsReported() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (x INTEGER)")
            let connection = GRDBConnection(database: db)
            struct Refused: Error {}
            #expect {
                try connection.inSavepoint {
                    try connection.executeLater("INSERT INTO t (x) VALUES (1)", [])
                    // The savepoint is gone: rolling back to it must fail.
                    try connection.executeLater("RELEASE SAVEPOINT cpnp_change", [])
                    throw Refused()
                }
            } throws: { error in
                guard let failure = error as? SavepointRollbackFailure else { return false }
                return failure.cause is Refused
            }
            // A release that fails is rolled back too; here the rollback cannot be done either.
            #expect {
                try connection.inSavepoint {
                    try connection.executeLater("INSERT INTO t (x) VALUES (2)", [])
                    try connection.executeLater("RELEASE SAVEPOINT cpnp_change", [])
                }
            } throws: { error in
                guard let failure = error as? SavepointRollbackFailure else { return false }
                return failure.cause is DatabaseError && failure.description.contains("rolling a change back")
            }
        }
    }

    @Test func successiveChangesOfOneOrderInABatchAllApply() throws {
        let store = try ServerOrderStore.inMemory()
        let link = Reservation.Key("link-1", .outgoing)
        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-x", providerOrderID: "p-x")
        let first = OrderChange(
            machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions,
            reservations: HeldCapacity(offered: [Reservation(link, mbps: 30)]), capacityLimits: [link: 100])
        var second = first
        second.transitions = []
        second.reservations = HeldCapacity(offered: [Reservation(link, mbps: 70)])
        let results = try store.commit(batch: [first, second])
        #expect(results.compactMap { try? $0.get() } == [1, 2])
        #expect(try store.order(providerOrderID: m.providerOrderID)?.revision == 2)
        #expect(try store.reservedTotal(for: link) == 70)
    }
}
