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

/// The last few distinct CPDs a receiver took from messages, offered for recognition by their bytes
/// in the next messages of any order (``CPNPCodec/parse(_:limits:documents:recent:)``): a customer
/// orders the same document again and again from a provider's catalogue, and a provider's offers for
/// equal requests are equal (docs/performance.md, round 18). A recognised document is the value
/// decoded and checked the first time, so its validation, compact JSON and stored reference are
/// derived once (``ConnectivityProvisioningDocument``'s memo).
///
/// Bounded: at most ``capacity`` documents, each from a message of at most ``maximumMessageBytes``,
/// the least recently seen forgotten first. Documents parsed under looser limits than the next
/// parse's are not offered to it.
public struct RecentDocuments: Sendable {
    public let capacity: Int
    /// Least recently seen first.
    public private(set) var documents: [CPD] = []
    /// The compact JSON of each of ``documents``, kept next to it: a parse compares them all.
    private var bytes: [[UInt8]] = []
    /// The limits the documents were parsed under (their size is bounded by each message's).
    private var limits: JSONParser.Limits?

    /// Documents from larger messages (a stream transport's) are not remembered: the memory stays small.
    public static let maximumMessageBytes = 65_536

    public init(capacity: Int = 16) {
        self.capacity = max(0, capacity)
    }

    /// The documents a parse under `limits` may recognise, with their bytes: none if they were parsed
    /// under looser limits.
    func candidates(under limits: JSONParser.Limits) -> (documents: [CPD], bytes: [[UInt8]]) {
        guard let remembered = self.limits, remembered.admitsNoMoreThan(limits) else { return ([], []) }
        return (documents, bytes)
    }

    /// Remembers `document`, taken from a message parsed under `limits`, as the most recently seen.
    public mutating func remember(_ document: CPD, parsedUnder limits: JSONParser.Limits) {
        guard capacity > 0 else { return }
        if let remembered = self.limits, !(remembered.admitsNoMoreThan(limits) && limits.admitsNoMoreThan(remembered)) {
            // Documents parsed under other checks: start again rather than keep the looser of both. A
            // message size of its own (a stream transport's, the portal's) changes no check of a document.
            documents.removeAll()
            bytes.removeAll()
        }
        self.limits = limits
        append(document)
    }

    /// Remembers the CPD `message` carries, decoded from `parsed` under `limits`, unless the parse
    /// recognised it or it is the empty CPD. Call it once the message is accepted (valid, and from the
    /// peer it concerns), so that what a peer sent is offered to later parses only then.
    public mutating func remember(carriedBy message: CPNPMessage, parsed: CPNPCodec.ParsedMessage, limits: JSONParser.Limits) {
        guard parsed.recognizedCPD == nil, parsed.byteCount <= Self.maximumMessageBytes, let document = message.carriedCPD, !document.isEmpty
        else { return }
        remember(document, parsedUnder: limits)
    }

    /// `document`, or the remembered document equal to it, which becomes the most recently seen;
    /// a document not remembered is remembered. For the documents a receiver makes rather than
    /// parses (a provider's offers: equal requests get equal offers), so that equal ones share what
    /// is derived from them once: compact JSON, stored reference, checks. Compared by their hashes
    /// first, which a document keeps once computed. An instance used this way is not one to parse with.
    public mutating func interned(_ document: CPD) -> CPD {
        guard capacity > 0 else { return document }
        let hash = document.hashValue
        if let index = documents.lastIndex(where: { $0.hashValue == hash && $0 == document }) {
            touch(index)
            return documents[documents.count - 1]
        }
        append(document)
        return document
    }

    private mutating func append(_ document: CPD) {
        if documents.count == capacity {
            documents.removeFirst()
            bytes.removeFirst()
        }
        documents.append(document)
        bytes.append(document.compactJSON)
    }

    /// Marks the document at `index` of ``documents`` as the most recently seen.
    mutating func touch(_ index: Int) {
        guard documents.indices.contains(index), index != documents.count - 1 else { return }
        documents.append(documents.remove(at: index))
        bytes.append(bytes.remove(at: index))
    }
}

extension JSONParser.Limits {
    /// Whether everything accepted under these limits is accepted under `other` (the document size
    /// aside: a document's bytes are inside the message that is checked).
    func admitsNoMoreThan(_ other: Self) -> Bool {
        maxDepth <= other.maxDepth && maxStringLength <= other.maxStringLength && maxNumberLength <= other.maxNumberLength
            && maxExponentMagnitude <= other.maxExponentMagnitude
    }
}
