import Dispatch
import GRDB
import GRDBSQLite
import Synchronization

/// Checkpoints a store file's write-ahead log on a connection and thread of its own, so that the
/// writer's commits do not copy the log into the database file and wait for its syncs
/// (docs/design/storage.md, "Checkpoints").
///
/// SQLite checkpoints in the commit that takes the log past 1,000 pages, on the committing thread:
/// in `cpnpd`, the engine's. Installed on the writer, the checkpointer replaces that: SQLite calls it
/// after each commit with the log's size, and past ``Limits/background`` pages it asks its own
/// connection for a passive checkpoint, which copies the committed pages into the database file
/// without blocking readers or the writer. Under steady writes the log never empties that way: the
/// writer commits again while a checkpoint runs, and SQLite starts the log again from its beginning
/// only when a write transaction begins on a log copied whole. So past ``Limits/onWriter`` pages the
/// writer checkpoints itself, as SQLite would have, but copies only what the checkpointer has not
/// (the last commits), and its next transaction starts the log again: the log stays bounded.
///
/// A checkpoint changes nothing a reader sees and nothing of durability: a commit is durable once
/// its frames are synced in the log (`synchronous = FULL`).
final class WALCheckpointer: Sendable {
    /// Log sizes, in pages, that start a checkpoint.
    struct Limits: Sendable, Hashable {
        /// The checkpointer's own connection checkpoints past this size (SQLite's own threshold).
        var background: Int32 = WALCheckpointer.sqliteDefault
        /// The writer checkpoints what remains past this size, and the log starts again.
        var onWriter: Int32 = 4_000
    }

    /// SQLite's own threshold (`PRAGMA wal_autocheckpoint`), given back to the writer at the end.
    static let sqliteDefault: Int32 = 1_000

    private let limits: Limits
    /// The checkpointer's connection to the file, read-write (a pool's readers are read-only).
    private let connection: DatabaseQueue
    /// Whether a background checkpoint is asked for and not yet started.
    private let requested = Atomic<Bool>(false)
    private let backgroundCount = Atomic<Int>(0)
    private let onWriterCount = Atomic<Int>(0)

    private init(path: String, limits: Limits) throws {
        var configuration = Configuration()
        configuration.label = "CPNPStorage.checkpointer"
        // A passive checkpoint never waits; it copies what is not in use.
        configuration.busyMode = .immediateError
        self.connection = try DatabaseQueue(path: path, configuration: configuration)
        self.limits = limits
    }

    /// Checkpoints the log of `pool`'s file from now on. Call ``stop(_:)`` before the pool is released.
    static func start(on pool: DatabasePool, limits: Limits = Limits()) throws -> WALCheckpointer {
        let checkpointer = try WALCheckpointer(path: pool.path, limits: limits)
        // SQLite holds the context until the hook is replaced (stop).
        let context = Unmanaged.passRetained(checkpointer).toOpaque()
        pool.writeWithoutTransaction { database in
            // Replaces SQLite's own hook, the one that checkpoints on the writer (sqlite3_wal_autocheckpoint).
            _ = sqlite3_wal_hook(database.sqliteConnection, walHook, context)
        }
        return checkpointer
    }

    /// Gives SQLite's own checkpoints back to `pool`'s writer and releases the hook's context.
    func stop(_ pool: DatabasePool) {
        pool.writeWithoutTransaction { database in
            _ = sqlite3_wal_hook(database.sqliteConnection, nil, nil)
            _ = sqlite3_wal_autocheckpoint(database.sqliteConnection, Self.sqliteDefault)
        }
        Unmanaged.passUnretained(self).release()
    }

    /// Checkpoints done by the checkpointer's connection, and by the writer itself.
    var checkpoints: WALCheckpointCounts {
        WALCheckpointCounts(background: backgroundCount.load(ordering: .relaxed), onWriter: onWriterCount.load(ordering: .relaxed))
    }

    /// After a commit on the writer, with the log's size in pages.
    fileprivate func committed(logPages: Int32, writer: OpaquePointer?, name: UnsafePointer<CChar>?) {
        if logPages >= limits.onWriter {
            // Busy while the checkpointer's connection runs one: the next commit tries again.
            if sqlite3_wal_checkpoint_v2(writer, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil) == SQLITE_OK {
                onWriterCount.add(1, ordering: .relaxed)
            }
        } else if logPages >= limits.background,
            requested.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        {
            connection.asyncWriteWithoutTransaction { [self] database in
                requested.store(false, ordering: .releasing)
                // Busy (another process checkpoints) or failed: the next commit asks again.
                if (try? database.checkpoint(.passive)) != nil { backgroundCount.add(1, ordering: .relaxed) }
            }
        }
    }
}

/// How many checkpoints of a store's log ran since the store opened (docs/design/storage.md, "Checkpoints").
public struct WALCheckpointCounts: Sendable, Hashable {
    /// By the checkpointer's own connection.
    public var background: Int
    /// By the writer, past the log's limit (what the checkpointer had not copied).
    public var onWriter: Int

    public init(background: Int, onWriter: Int) {
        self.background = background
        self.onWriter = onWriter
    }
}

/// SQLite's WAL hook (sqlite3_wal_hook): runs on the writer's thread after each commit, the write
/// lock released.
private func walHook(context: UnsafeMutableRawPointer?, writer: OpaquePointer?, name: UnsafePointer<CChar>?, logPages: Int32) -> Int32 {
    guard let context else { return SQLITE_OK }
    Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(logPages: logPages, writer: writer, name: name)
    return SQLITE_OK
}
