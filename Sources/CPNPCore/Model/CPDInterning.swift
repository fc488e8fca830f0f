/// Sharing of equal CPDs decoded together (issue 6). An order's snapshot repeats its documents: the
/// agreement's CPD is also in the cached ACCEPT and ACK that answer a retransmission (RFC 8921 §11.4).
/// Decoded inside ``CPDInterning/sharingEqualDocuments(_:)``, equal JSON yields one CPD value whose
/// storage the copies share, so a recovered order holds each distinct document once in memory and
/// decodes it once.
public enum CPDInterning {
    /// The documents decoded so far in the current scope, by their JSON. One thread at a time uses a
    /// table: it is bound to the scope of one ``sharingEqualDocuments(_:)`` call.
    final class Table: @unchecked Sendable {
        var documents: [JSONValue: CPD] = [:]
    }

    @TaskLocal static var current: Table?

    /// Runs `body` (typically decoding one snapshot) with equal CPDs shared.
    public static func sharingEqualDocuments<R>(_ body: () throws -> R) rethrows -> R {
        try $current.withValue(Table(), operation: body)
    }

    /// The CPD of `json`, decoded once per scope.
    static func document(_ json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) -> CPD {
        guard let table = current else { return try CPD(json: json, at: path) }
        if let shared = table.documents[json] { return shared }
        let cpd = try CPD(json: json, at: path)
        table.documents[json] = cpd
        return cpd
    }
}
