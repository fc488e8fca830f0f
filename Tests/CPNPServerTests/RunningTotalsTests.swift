// The engine's running reservation totals (docs/performance.md, "Profiling pass") against sums
// recomputed from scratch, in memory and in the store, after a random sequence of offers, accepts,
// declines, withdrawals and updates.
import Testing
import CPNPCore
import CPNPPolicy
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting

@Suite("Running reservation totals")
struct RunningTotalsTests {
    @Test(arguments: [UInt64(1), 2])
    func runningTotalsMatchAFullSumAfterRandomOperations(seed: UInt64) async throws {
        let paths = TestPaths()
        let store = try ServerOrderStore(path: paths.database)
        let sink = CollectingSink()
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        var pick = SplitMix64(seed: seed)
        var rng = SystemRandomNumberGenerator()
        var orders: [(customer: TestCustomer, machine: ClientOrderStateMachine)] = []
        func randomCPD() -> CPD {
            Bool.random(using: &pick)
                ? CPD.marseille(min: Int.random(in: 1...20, using: &pick), max: Int.random(in: 20...80, using: &pick))
                : CPD.paris(mbps: Int.random(in: 1...120, using: &pick))
        }
        var counts: [String: Int] = [:]
        for step in 0..<400 {
            let now = SystemWallClock().now()
            let op = Int.random(in: 0..<10, using: &pick)
            if op < 3 || orders.isEmpty {
                let customer = TestCustomer("acme", port: UInt16(30_000 + orders.count))
                var m = ClientOrderStateMachine(customerOrderID: CustomerOrderID("rt-\(seed)-\(step)")!)
                await customer.deliver(try m.quote(requestedCPD: randomCPD(), session: customer.clientSession, now: now, using: &rng), to: engine)
                await customer.receive(sink, into: &m, engine: engine, now: now)
                orders.append((customer, m))
                counts["quote", default: 0] += 1
            } else {
                let i = Int.random(in: 0..<orders.count, using: &pick)
                var (customer, m) = orders[i]
                let actions: [ClientOrderStateMachine.Action]
                switch (m.state, op) {
                case (.offerReceived, 3...6): actions = try m.accept(now: now); counts["accept", default: 0] += 1
                case (.offerReceived, _): actions = try m.decline(now: now); counts["decline", default: 0] += 1
                case (.completed, 3...5):
                    actions = try m.update(
                        requestedCPD: randomCPD(), expectedResponseTime: now.adding(.seconds(60)), session: customer.clientSession, now: now,
                        using: &rng)
                    counts["update", default: 0] += 1
                case (.completed, _):
                    actions = try m.withdraw(session: customer.clientSession, now: now, using: &rng); counts["withdraw", default: 0] += 1
                default: continue
                }
                await customer.deliver(actions, to: engine)
                await customer.receive(sink, into: &m, engine: engine, now: now)
                orders[i] = (customer, m)
            }
            let (running, scanned) = await engine.reservedTotals()
            #expect(running == scanned, "step \(step)")
            if running != scanned { return }
        }
        #expect(counts.values.allSatisfy { $0 >= 10 } && counts.count == 5, "\(counts)")
        // And with what the store holds (its own sums, read back from SQLite).
        let (running, _) = await engine.reservedTotals()
        var stored: [Reservation.Key: CPNPDecimal] = [:]
        for (key, total) in try store.reservedTotals() where !total.isZero {
            stored[key] = total
        }
        #expect(running == stored)
        #expect(!running.isEmpty)
    }
}
