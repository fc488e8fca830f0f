// The SQL a store's writer connection runs, for tests that check which statements a commit or a
// lookup sends (SQLite's trace, which sees the statements stepped through its C API too).
@testable import CPNPStorage
import GRDB
import Synchronization

/// Records every statement `store`'s writer connection runs from now on.
final class WriterStatementTrace: Sendable {
    private let recorded = Mutex<[String]>([])

    init(_ store: ServerOrderStore) {
        store.writer.writeWithoutTransaction { db in
            db.trace(options: .statement) { [self] event in
                if case .statement(let statement) = event { self.recorded.withLock { $0.append(statement.sql) } }
            }
        }
    }

    /// The statements recorded so far, oldest first.
    var statements: [String] { recorded.withLock { $0 } }

    /// Forgets what was recorded.
    func reset() { recorded.withLock { $0.removeAll() } }
}
