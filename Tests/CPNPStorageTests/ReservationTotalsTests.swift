// The kept reservation totals (migration server-v2): every commit moves them by exactly what it
// changed, a failing change moves nothing, and an older store file gets them computed on opening.
@testable import CPNPCore
@testable import CPNPStorage
import Foundation
import GRDB
import Synchronization
import Testing

@Suite("ServerOrderStore kept reservation totals")
struct ReservationTotalsTests {
    static let links = (0..<3).flatMap { [Reservation.Key("link-\($0)", .incoming), Reservation.Key("link-\($0)", .outgoing)] }

    /// 600 random commits (new orders, changed reservations, offers turned agreements, closings, some
    /// refused by a capacity limit, single and batched); after each step the kept totals equal a recount.
    @Test func keptTotalsEqualARecountAfterRandomCommits() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-totals-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ServerOrderStore(path: dir.appendingPathComponent("cpnpd.sqlite").path)
        var rng = SplitMix64(seed: 2026)
        var open: [String: ServerOrderStateMachine] = [:]
        var next = 0
        var refused = 0
        func randomReservations() -> [(kind: ReservationKind, reservation: Reservation)] {
            (0..<Int.random(in: 0...3, using: &rng)).map { _ in
                let reservation = Reservation(
                    Self.links.randomElement(using: &rng)!,
                    mbps: CPNPDecimal(parsing: "\(Int.random(in: 1...40, using: &rng)).\(Int.random(in: 0...9, using: &rng))")!)
                return (Bool.random(using: &rng) ? .offered : .committed, reservation)
            }
        }
        func aggregate(_ r: [(kind: ReservationKind, reservation: Reservation)]) -> HeldCapacity {
            var sums: [ReservationTotalsKey: CPNPDecimal] = [:]
            for x in r { sums[ReservationTotalsKey(resource: x.reservation.key, kind: x.kind), default: 0] += x.reservation.mbps }
            var held = HeldCapacity.empty
            for (key, total) in sums.sorted(by: { ($0.key.resource, $0.key.kind.rawValue) < ($1.key.resource, $1.key.kind.rawValue) }) {
                held[key.kind].append(Reservation(key.resource, mbps: total))
            }
            return held
        }
        func change() -> OrderChange {
            let limits =
                Bool.random(using: &rng)
                ? Dictionary(uniqueKeysWithValues: Self.links.map { ($0, CPNPDecimal(Int64(Int.random(in: 60...400, using: &rng)))) }) : [:]
            if open.isEmpty || Int.random(in: 0..<3, using: &rng) == 0 {
                next += 1
                let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(next)", providerOrderID: "p-\(next)", seed: UInt64(next))
                return OrderChange(
                    machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(next)), actions: actions,
                    reservations: aggregate(randomReservations()), capacityLimits: limits)
            }
            let poid = open.keys.sorted().randomElement(using: &rng)!
            var m = open[poid]!
            if Int.random(in: 0..<4, using: &rng) == 0 {
                _ = try? m.reject(.outOfResources, now: StoreFixture.at(Int64(next)))
                return OrderChange(
                    machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(next)),
                    transitions: [.init(from: .pqoReceived, to: .cancelled, event: "FAIL 5 sent")])
            }
            return OrderChange(
                machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(next)), reservations: aggregate(randomReservations()),
                capacityLimits: limits)
        }
        for step in 0..<600 {
            if step % 5 == 4 {
                let batch = (0..<Int.random(in: 1...6, using: &rng)).map { _ in change() }
                for (c, r) in zip(batch, try store.commit(batch: batch)) {
                    switch r {
                    case .success:
                        if ServerOrderStore.isOpen(c.machine) {
                            open[c.machine.providerOrderID.rawValue] = c.machine
                        } else {
                            open[c.machine.providerOrderID.rawValue] = nil
                        }
                    case .failure: refused += 1
                    }
                }
            } else {
                let c = change()
                do {
                    try store.commit(c)
                    if ServerOrderStore.isOpen(c.machine) {
                        open[c.machine.providerOrderID.rawValue] = c.machine
                    } else {
                        open[c.machine.providerOrderID.rawValue] = nil
                    }
                } catch { refused += 1 }
            }
            let mismatches = try store.reservationTotalMismatches()
            #expect(mismatches.isEmpty, "step \(step): \(mismatches)")
            if !mismatches.isEmpty { return }
        }
        // The run exercised refusals, closings and real totals.
        #expect(refused > 10)
        #expect(next > 150 && open.count < next)
        let recount = try store.reservedTotals()
        #expect(!recount.isEmpty)
        for key in Self.links { #expect(try store.reservedTotal(for: key) == (recount[key] ?? 0), "\(key)") }
        let committed = try store.reservedTotals(kind: .committed)
        for key in Self.links { #expect(try store.reservedTotal(for: key, kind: .committed) == (committed[key] ?? 0), "\(key)") }
    }

    /// A SQLite store reads a link's kept totals once, then remembers them; a commit by another
    /// store on the same file is noticed (`PRAGMA data_version`), and the totals read again.
    @Test func rememberedTotalsAreReadOnceAndForgottenWhenAnotherStoreWrites() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-totals-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cpnpd.sqlite").path
        let first = try ServerOrderStore(path: path)
        let second = try ServerOrderStore(path: path)
        let trace = WriterStatementTrace(first)
        let link = Reservation.Key("link-1", .outgoing)
        var next = 0
        /// Commits a new order holding `mbps` on the link; returns whether the commit read the kept totals.
        func commitNew(_ store: ServerOrderStore, mbps: Int64, limit: Int64? = nil) throws -> Bool {
            next += 1
            let (machine, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(next)", providerOrderID: "p-\(next)", seed: UInt64(next))
            trace.reset()
            try store.commit(
                OrderChange(
                    machine: machine, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(next)), actions: actions,
                    reservations: HeldCapacity(offered: [Reservation(link, mbps: CPNPDecimal(mbps))]),
                    capacityLimits: limit.map { [link: CPNPDecimal($0)] } ?? [:]))
            return trace.statements.contains { $0.contains("FROM reservation_totals") }
        }
        #expect(try commitNew(first, mbps: 10), "the first commit on the link reads its totals")
        #expect(try !commitNew(first, mbps: 20), "then they are remembered")
        #expect(try first.reservedTotal(for: link) == 30)
        // Another store moves them behind the first one's back.
        _ = try commitNew(second, mbps: 5)
        #expect(try commitNew(first, mbps: 1), "read again after another connection's commit")
        #expect(try first.reservedTotal(for: link) == 36 && first.reservationTotalMismatches().isEmpty)
        // A change refused by a capacity limit moves nothing, in the database or in what is remembered.
        #expect(throws: StoreError.self) { try commitNew(first, mbps: 50, limit: 40) }
        #expect(try !commitNew(first, mbps: 4, limit: 40))
        #expect(try first.reservedTotal(for: link) == 40 && first.reservationTotalMismatches().isEmpty)
        let batch = (0..<3).map { i -> OrderChange in
            next += 1
            let (machine, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(next)", providerOrderID: "p-\(next)", seed: UInt64(next))
            return OrderChange(
                machine: machine, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(next)), actions: actions,
                reservations: HeldCapacity(offered: [Reservation(link, mbps: CPNPDecimal(Int64(i == 1 ? 30 : 2)))]),
                capacityLimits: [link: 45])
        }
        let results = try first.commit(batch: batch)
        #expect(results.map { (try? $0.get()) != nil } == [true, false, true])
        #expect(try first.reservedTotal(for: link) == 44 && first.reservationTotalMismatches().isEmpty)
        #expect(try !commitNew(first, mbps: 1, limit: 45))
        #expect(try first.reservedTotal(for: link) == 45 && second.reservationTotalMismatches().isEmpty)
    }

    /// Commits from four threads at once on one link: each transaction sees what the one before it
    /// committed, since the totals are remembered on the writer's queue before the next write begins.
    @Test func concurrentCommitsKeepTheRememberedTotalsRight() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-totals-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ServerOrderStore(path: dir.appendingPathComponent("cpnpd.sqlite").path)
        let link = Reservation.Key("link-1", .incoming)
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for i in 0..<150 {
                let id = "w\(worker)-\(i)"
                let (machine, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-" + id, providerOrderID: "p-" + id, seed: UInt64(i))
                let change = OrderChange(
                    machine: machine, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(i)), actions: actions,
                    reservations: HeldCapacity(offered: [Reservation(link, mbps: 1)]))
                do {
                    if i % 3 == 0 { _ = try store.commit(batch: [change]).map { try $0.get() } } else { try store.commit(change) }
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(try store.reservedTotal(for: link) == 600)
        #expect(try store.reservationTotalMismatches().isEmpty)
    }

    /// A store written before the totals existed (schema server-v1) gets them from its rows on opening.
    @Test func anOlderStoreGetsItsTotalsOnOpening() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-totals-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cpnpd.sqlite").path
        let link = Reservation.Key("link-1", .outgoing)
        do {
            let store = try ServerOrderStore(path: path)
            for i in 0..<5 {
                let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(i)", providerOrderID: "p-\(i)", seed: UInt64(i))
                try store.commit(
                    OrderChange(
                        machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(i)), actions: actions,
                        reservations: i % 2 == 0
                            ? HeldCapacity(offered: [Reservation(link, mbps: StoreFixture.decimal("12.5"))])
                            : HeldCapacity(committed: [Reservation(link, mbps: StoreFixture.decimal("12.5"))])))
            }
        }
        // Back to the server-v1 schema, as a file from the previous release has it.
        do {
            let queue = try DatabaseQueue(path: path)
            try queue.write { db in
                try db.execute(
                    sql: """
                        DROP TABLE reservation_totals;
                        CREATE INDEX reservations_resource ON reservations(resource_id, direction, kind, amount);
                        DELETE FROM grdb_migrations WHERE identifier = 'server-v2-reservation-totals';
                        """)
            }
        }
        let store = try ServerOrderStore(path: path)
        #expect(try store.reservationTotalMismatches().isEmpty)
        #expect(try store.reservedTotal(for: link) == StoreFixture.decimal("62.5"))
        #expect(try store.reservedTotal(for: link, kind: .offered) == StoreFixture.decimal("37.5"))
        #expect(try store.reservedTotal(for: link, kind: .committed) == 25)
    }
}

typealias ReservationTotalsKey = ServerOrderStore.TotalKey
