// WALCheckpointer: a file store's log is checkpointed by a connection of its own, not in the
// writer's commits, and stays bounded; should that connection fall behind, the writer checkpoints.
@testable import CPNPCore
@testable import CPNPStorage
import Foundation
import GRDB
import Testing

@Suite("ServerOrderStore WAL checkpoints")
struct WALCheckpointerTests {
    /// The size of the store's log after `count` orders committed one transaction each, with the
    /// checkpoints each way and the orders the file holds once the store is opened again.
    static func commitOrders(_ count: Int, checkpoints limits: WALCheckpointer.Limits) throws -> (
        logBytes: Int, checkpoints: WALCheckpointCounts, reopenedCount: Int
    ) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-wal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("cpnpd.sqlite").path
        var logBytes = 0
        var checkpoints = WALCheckpointCounts(background: 0, onWriter: 0)
        do {
            let store = try ServerOrderStore(path: path, options: StoreOptions(), checkpoints: limits)
            for index in 0..<count {
                var change = GroupCommitTests.change("wal-\(index)", 1)
                change.capacityLimits = [:]
                try store.commit(change)
            }
            // The checkpoint asked for by the last commits has run (it never waits for anything).
            let deadline = ContinuousClock.now + .seconds(10)
            while limits.background < .max, try #require(store.walCheckpoints).background == 0, ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.01)
            }
            checkpoints = try #require(store.walCheckpoints)
            logBytes = (try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        }
        let reopened = try ServerOrderStore(path: path)
        #expect(try reopened.writer.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") } == "ok")
        return (logBytes, checkpoints, try reopened.orderCount())
    }

    static let orders = 300
    static let never = WALCheckpointer.Limits(background: .max, onWriter: .max)

    @Test("the checkpointer's connection checkpoints the log, the writer only past its own limit, and the log stays a fraction of what was written")
    func theLogIsCheckpointedOffTheWriter() throws {
        let unchecked = try Self.commitOrders(Self.orders, checkpoints: Self.never)
        let checked = try Self.commitOrders(Self.orders, checkpoints: WALCheckpointer.Limits(background: 64, onWriter: 512))
        #expect(unchecked.checkpoints == WALCheckpointCounts(background: 0, onWriter: 0))
        #expect(checked.checkpoints.background > checked.checkpoints.onWriter)
        #expect(checked.logBytes * 4 < unchecked.logBytes, "log \(checked.logBytes) bytes, unchecked \(unchecked.logBytes)")
        #expect(checked.reopenedCount == Self.orders && unchecked.reopenedCount == Self.orders)
    }

    @Test("with no checkpoint from its connection, the writer checkpoints past its own limit, and the log stays bounded")
    func theWriterCheckpointsWhenTheCheckpointerLags() throws {
        let unchecked = try Self.commitOrders(Self.orders, checkpoints: Self.never)
        let checked = try Self.commitOrders(Self.orders, checkpoints: WALCheckpointer.Limits(background: .max, onWriter: 512))
        #expect(checked.checkpoints.background == 0)
        #expect(checked.checkpoints.onWriter > 0)
        #expect(checked.logBytes * 4 < unchecked.logBytes, "log \(checked.logBytes) bytes, unchecked \(unchecked.logBytes)")
        #expect(checked.reopenedCount == Self.orders)
    }

    @Test("a file store checkpoints off the writer by default; an in-memory one has no log")
    func fileStoresHaveACheckpointer() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-wal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("cpnpd.sqlite").path
        #expect(try ServerOrderStore(path: path).walCheckpoints != nil)
        #expect(try ServerOrderStore(path: path, options: StoreOptions(readOnly: true)).walCheckpoints == nil)
        #expect(try ServerOrderStore.inMemory().walCheckpoints == nil)
    }
}
