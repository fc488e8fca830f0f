// openOrders() decodes snapshots in parallel chunks: a corrupt snapshot among many still fails the
// read with the row named, and nothing else changes.
@testable import CPNPCore
@testable import CPNPStorage
import Foundation
import GRDB
import Testing

@Suite("ServerOrderStore recovery read")
struct RecoveryReadTests {
    @Test func aCorruptSnapshotAmongManyFailsTheReadNamingItsRow() async throws {
        let store = try ServerOrderStore.inMemory()
        var batch: [OrderChange] = []
        for i in 0..<700 {
            let (m, a) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(i)", providerOrderID: "p-\(i)", seed: UInt64(i))
            batch.append(OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(i)), actions: a))
        }
        try store.commit(batch)
        #expect(try store.openOrders().count == 700)
        try await store.writer.write { db in
            try db.execute(sql: "UPDATE orders SET snapshot = '{\"not\": \"a machine\"}' WHERE provider_order_id = 'p-517'")
        }
        #expect {
            try store.openOrders()
        } throws: { error in
            guard case StoreError.corruptRow(let table, let key, _) = error else { return false }
            return table == "orders" && key == "p-517"
        }
        #expect(
            try store.order(providerOrderID: StoreFixture.providerOrderID("p-516"))?.machine.customerOrderID == StoreFixture.customerOrderID("c-516"))
    }
}
