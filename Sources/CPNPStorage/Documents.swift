import CPNPCore
import Crypto
import Synchronization

/// Each distinct CPD stored once, in table `documents`, under the reference a snapshot names it by
/// (``CPDReferences``; docs/design/storage.md). Both stores use it for their order snapshots.
final class DocumentTable: Sendable {
    /// The references of documents this store has committed: a snapshot naming one needs neither its
    /// encoding nor its row again. Documents are never deleted, so an entry stays true.
    private let committed = Mutex<Set<String>>([])
    static let memory = 4_096

    static let createSQL = """
        CREATE TABLE documents (
            reference TEXT NOT NULL PRIMARY KEY,
            body TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    static let insertSQL = "INSERT INTO documents (reference, body) VALUES (?, ?) ON CONFLICT (reference) DO NOTHING"
    static let bodySQL = "SELECT body FROM documents WHERE reference = ?"

    /// A snapshot written with references, and the documents it names that are not known committed.
    struct Written: Sendable {
        var snapshot: String
        /// The references of the `also` documents, in order.
        var alsoReferences: [String] = []
        var newDocuments: [(reference: String, body: String)]
        var newReferences: Set<String>
    }

    /// Writes a snapshot with each CPD as its reference (`snapshot` is given the naming), and names the
    /// `also` documents (an outbox event's) the same way, encoding only the documents not known committed.
    func write(_ snapshot: (_ reference: @escaping (CPD) -> String) -> [UInt8], also: [CPD] = []) -> Written {
        let known = committed.withLock { $0 }
        var newDocuments: [(reference: String, body: String)] = []
        var newReferences: Set<String> = []
        func reference(_ document: CPD) -> String {
            let reference = document.reference(digest: Self.digest)
            guard !known.contains(reference), newReferences.insert(reference).inserted else { return reference }
            newDocuments.append((reference, String(decoding: document.compactJSON, as: UTF8.self)))
            return reference
        }
        let text = String(decoding: snapshot(reference), as: UTF8.self)
        let alsoReferences = also.map { reference($0) }
        return Written(snapshot: text, alsoReferences: alsoReferences, newDocuments: newDocuments, newReferences: newReferences)
    }

    /// Inserts the new documents of `written`, inside the transaction that writes its snapshot.
    static func insert(_ written: Written, in connection: any SQLConnection) throws {
        for document in written.newDocuments { try connection.executeLater(insertSQL, [document.reference, document.body]) }
    }

    /// Remembers the documents of a committed snapshot.
    func learn(_ written: Written) {
        guard !written.newReferences.isEmpty else { return }
        committed.withLock { known in
            if known.count + written.newReferences.count > Self.memory { known.removeAll(keepingCapacity: true) }
            known.formUnion(written.newReferences)
        }
    }

    /// The SHA-256 of `body`, in lowercase hex.
    static func digest(_ body: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in SHA256.hash(data: body) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The JSON of the stored document `reference`; nil when there is none.
    static func body(_ reference: String, in connection: any SQLConnection) throws -> JSONValue? {
        guard let text = try connection.scalarText(bodySQL, [reference]) else { return nil }
        return try StoreDatabase.json(text, table: "documents", key: reference)
    }

    /// Decodes a snapshot whose references are read from `connection` (each document decoded once, shared).
    static func decoding<R>(in connection: any SQLConnection, _ decode: () throws -> R) rethrows -> R {
        try CPDInterning.sharingEqualDocuments(resolvingReferences: { reference in (try? Self.body(reference, in: connection)) ?? nil }, decode)
    }
}
