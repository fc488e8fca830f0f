// Snapshots that name their documents (CPDReferences): each distinct CPD is stored once, and a file
// written by the previous release (documents inline in every snapshot) is migrated and its orders continue.
import Testing
import CPNPCore
import CPNPPolicy
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation
import GRDB

@Suite("Server store: documents stored once, and a file of the previous release")
struct DocumentStoreTests {
    /// `Tests/CPNPServerTests/Fixtures/cpnpd-server-v2.sql`: `sqlite3 .dump` of the file `cpnpd` wrote at
    /// commit 69c12df (schema server-v2) after `cpnp-bench --negotiations 4` and `--negotiations 2 --withdraw`
    /// against it (two Completed agreements and one withdrawn order of client `acme` kept).
    static let previousRelease = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/cpnpd-server-v2.sql")

    static func snapshots(_ store: String) throws -> [String: String] {
        try DatabaseQueue(path: store).read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT provider_order_id, snapshot FROM orders").map { ($0[0], $0[1]) })
        }
    }

    static func documentCount(_ store: String) throws -> Int {
        try DatabaseQueue(path: store).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents") ?? -1 }
    }

    static func engine(_ paths: TestPaths) throws -> (CPNPServerEngine, CollectingSink) {
        let sink = CollectingSink()
        return (
            CPNPServerEngine(
                configuration: testConfiguration(), store: try ServerOrderStore(path: paths.database), sink: sink, logger: quietLogger("cpnpd-test")),
            sink
        )
    }

    @Test func negotiationsOfOneDocumentStoreItOnceAndSnapshotsOnlyNameIt() async throws {
        let paths = TestPaths()
        let (engine, sink) = try Self.engine(paths)
        let acme = TestCustomer("acme", port: 40_700)
        let now = SystemWallClock().now()
        var documents = Set<CPD>()
        for i in 0..<5 {
            var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-doc-\(i)")!)
            try await acme.agree(&order, CPD.marseille(min: 10, max: 20), engine: engine, sink: sink, now: now)
            #expect(order.state == .completed)
            documents.formUnion([CPD.marseille(min: 10, max: 20), try #require(order.agreement?.acceptedCPD)])
        }
        // The request and the offer: two distinct documents, whatever the number of orders and copies.
        #expect(documents.count == 2)
        #expect(try Self.documentCount(paths.database) == documents.count)
        for (order, snapshot) in try Self.snapshots(paths.database) {
            #expect(snapshot.contains(CPDReferences.prefix), "\(order)")
            #expect(!snapshot.contains("\"customer-node\""), "\(order): a document is inline")
            #expect(snapshot.utf8.count < 6_000, "\(order): \(snapshot.utf8.count) bytes")
        }
        // The provisioning events (agreement, activation) name the agreement's document too.
        let outboxRows = try Self.outboxRows(paths.database)
        #expect(outboxRows.count == 10)
        for row in outboxRows {
            #expect(row.document?.hasPrefix(CPDReferences.prefix) == true, "\(row.kind): no document reference")
            #expect(!row.payload.contains("\"cpd\"") && row.payload.utf8.count < 400, "\(row.kind): a document is inline: \(row.payload)")
        }
        // A fresh store (no memory of what was committed) reads every order back with its documents.
        let reopened = try ServerOrderStore(path: paths.database)
        let open = try reopened.openOrders()
        #expect(open.count == 5)
        #expect(open.allSatisfy { $0.machine.agreement?.acceptedCPD == open[0].machine.agreement?.acceptedCPD && $0.machine.agreement != nil })
        // and each event with its CPD, as the provisioning hook receives it.
        for order in open {
            let events = try reopened.outbox(providerOrderID: order.providerOrderID)
            #expect(events.map(\.kind) == [.agreement, .activation])
            for event in events {
                let payload = try event.payload.object(at: .root)
                #expect(payload["cpd"] == order.machine.agreement?.acceptedCPD.json)
                #expect(payload["provider-order-id"] == .string(order.providerOrderID.rawValue))
            }
        }
    }

    static func outboxRows(_ store: String) throws -> [(kind: String, payload: String, document: String?)] {
        try DatabaseQueue(path: store).read { db in
            try Row.fetchAll(db, sql: "SELECT kind, payload, document FROM outbox ORDER BY id").map { ($0[0], $0[1], $0[2]) }
        }
    }

    @Test func anOutboxEventNamingAMissingDocumentIsACorruptRowNamingIt() async throws {
        let paths = TestPaths()
        let (engine, sink) = try Self.engine(paths)
        let acme = TestCustomer("acme", port: 40_703)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-doc-event-lost")!)
        try await acme.agree(&order, CPD.marseille(min: 10, max: 50), engine: engine, sink: sink, now: SystemWallClock().now())
        try await DatabaseQueue(path: paths.database).write { db in try db.execute(sql: "DELETE FROM documents") }
        #expect {
            _ = try ServerOrderStore(path: paths.database).outbox(providerOrderID: try #require(order.providerOrderID))
        } throws: { error in
            "\(error)".contains("outbox") && "\(error)".contains("sha256:")
        }
    }

    @Test func aSnapshotNamingAMissingDocumentIsACorruptRowNamingIt() async throws {
        let paths = TestPaths()
        let (engine, sink) = try Self.engine(paths)
        let acme = TestCustomer("acme", port: 40_701)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-doc-lost")!)
        try await acme.agree(&order, CPD.marseille(min: 10, max: 50), engine: engine, sink: sink, now: SystemWallClock().now())
        try await DatabaseQueue(path: paths.database).write { db in try db.execute(sql: "DELETE FROM documents") }
        #expect {
            _ = try ServerOrderStore(path: paths.database).openOrders()
        } throws: { error in
            "\(error)".contains("no stored document \"sha256:")
        }
    }

    @Test func aFileOfThePreviousReleaseIsMigratedAndItsOrdersContinue() async throws {
        let paths = TestPaths()
        let dump = try String(contentsOf: Self.previousRelease, encoding: .utf8)
        try await DatabaseQueue(path: paths.database).writeWithoutTransaction { db in try db.execute(sql: dump) }
        #expect(try Self.snapshots(paths.database).values.allSatisfy { !$0.contains(CPDReferences.prefix) })

        let store = try ServerOrderStore(path: paths.database)
        let sink = CollectingSink()
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        #expect(try await engine.recover() == 2)
        #expect(try store.reservationTotalMismatches() == [])
        let agreements = try store.openOrders().sorted { $0.createdAt < $1.createdAt }
        #expect(agreements.map(\.state) == [.completed, .completed])
        let agreement = try #require(agreements[0].machine.agreement)
        let untouched = agreements[1]

        // The customer withdraws the first agreement (RFC 8921 §9.2.8): PROCESSING, then ACK.
        let acme = TestCustomer("acme", port: 40_702)
        var rng = SystemRandomNumberGenerator()
        await engine.receive(
            acme.datagram(
                .withdraw(
                    WithdrawMessage(
                        sequenceNumber: .randomInitial(using: &rng), transactionID: .random(using: &rng), customerOrderID: agreement.customerOrderID,
                        providerOrderID: agreement.providerOrderID, nonce: agreement.nonce, acceptedCPD: agreement.acceptedCPD)))
        )
        #expect(sink.take(for: acme.endpoint).map(\.method) == [.processing, .ack])
        #expect(try store.order(providerOrderID: agreement.providerOrderID)?.state == .cancelled)
        #expect(try store.reservationTotalMismatches() == [])
        let audit = try store.audit(providerOrderID: agreement.providerOrderID).map(\.event)
        #expect(audit.first == "QUOTATION received" && audit.count > 5, "the previous release's audit trail is kept: \(audit)")
        // Its provisioning events: those of the previous release hold their CPD inline, the withdrawal
        // names it; all read with the agreement's CPD.
        let events = try store.outbox(providerOrderID: agreement.providerOrderID)
        #expect(events.map(\.kind) == [.agreement, .activation, .withdrawal])
        for event in events { #expect(try event.payload.object(at: .root)["cpd"] == agreement.acceptedCPD.json, "\(event.kind)") }
        #expect(try Self.outboxRows(paths.database).filter { $0.document != nil }.map(\.kind) == ["withdrawal"])

        // The withdrawn order is rewritten with references; the untouched one keeps its inline
        // documents and still reads back; a new negotiation on the migrated file works.
        let snapshots = try Self.snapshots(paths.database)
        #expect(snapshots[agreement.providerOrderID.rawValue]?.contains(CPDReferences.prefix) == true)
        #expect(snapshots[untouched.providerOrderID.rawValue]?.contains(CPDReferences.prefix) == false)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-after-migration")!)
        try await acme.agree(&order, CPD.marseille(min: 10, max: 50), engine: engine, sink: sink, now: SystemWallClock().now())
        #expect(order.state == .completed)
        let reopened = try ServerOrderStore(path: paths.database)
        #expect(try reopened.order(providerOrderID: untouched.providerOrderID)?.machine == untouched.machine)
        #expect(try reopened.openOrders().count == 2)
        #expect(try reopened.reservationTotalMismatches() == [])
    }
}
