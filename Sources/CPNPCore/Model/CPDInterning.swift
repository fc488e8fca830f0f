/// Sharing of equal CPDs decoded together (docs/design/storage.md). An order's snapshot repeats its documents: the
/// agreement's CPD is also in the cached ACCEPT and ACK that answer a retransmission (RFC 8921 §11.4).
/// Decoded inside ``CPDInterning/sharingEqualDocuments(_:)``, equal JSON yields one CPD value whose
/// storage the copies share, so a recovered order holds each distinct document once in memory and
/// decodes it once.
public enum CPDInterning {
    /// The documents decoded so far in the current scope, by their JSON. One thread at a time uses a
    /// table: it is bound to the scope of one ``sharingEqualDocuments(_:)`` call.
    final class Table: @unchecked Sendable {
        var documents: [JSONValue: CPD] = [:]
        /// Resolves a document reference of a snapshot (``CPDReferences``); nil outside a store's read.
        let resolve: ((String) -> JSONValue?)?
        var referenced: [String: CPD] = [:]
        init(resolve: ((String) -> JSONValue?)?) { self.resolve = resolve }
    }

    @TaskLocal static var current: Table?

    /// Runs `body` (typically decoding one snapshot) with equal CPDs shared. With `resolve`, a
    /// snapshot's reference to a stored document (``CPDReferences``) is read through it; without, a
    /// reference is an invalid CPD, as it is on the wire.
    public static func sharingEqualDocuments<R>(resolvingReferences resolve: ((String) -> JSONValue?)? = nil, _ body: () throws -> R) rethrows -> R {
        try $current.withValue(Table(resolve: resolve), operation: body)
    }

    /// The CPD of `json`, decoded once per scope.
    static func document(_ json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) -> CPD {
        guard let table = current else { return try CPD(json: json, at: path) }
        if case .string(let reference) = json, let resolve = table.resolve {
            if let shared = table.referenced[reference] { return shared }
            guard CPDReferences.isReference(reference), let body = resolve(reference) else {
                throw CPNPDecodingError(.invalidValue, at: path, "no stored document \"\(reference.prefix(80))\"")
            }
            let cpd = try document(body, at: path)
            table.referenced[reference] = cpd
            return cpd
        }
        if let shared = table.documents[json] { return shared }
        let cpd = try CPD(json: json, at: path)
        table.documents[json] = cpd
        return cpd
    }
}

/// Snapshots that name their CPDs instead of holding them (docs/design/storage.md): a store keeps each
/// distinct document once, under a reference derived from its content, and an order's snapshot holds
/// only that reference wherever the machine holds the document (request, offer, agreement, cached
/// messages): the machines' `snapshotJSON(reference:)` writes it. Reading resolves the references through
/// ``CPDInterning/sharingEqualDocuments(resolvingReferences:_:)``.
public enum CPDReferences {
    /// The prefix of every reference: content-addressed by SHA-256 of the document's compact JSON.
    public static let prefix = "sha256:"

    static func isReference(_ s: String) -> Bool { s.hasPrefix(prefix) && s.utf8.count == prefix.utf8.count + 64 }
}
