/// Writes compact JSON straight to bytes, member by member, without building a ``JSONValue`` first:
/// the hot paths (messages on the wire, order snapshots) write through it. The bytes are those
/// ``JSONSerializer`` gives for the same members in the same order (docs/protocol.md §2.3).
///
/// The caller keeps the structure well formed: a ``key(_:)`` before each member's value inside an
/// object, none inside an array, and each container closed.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// The next value or key follows another in its container.
    private var needsComma = false

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// The key of the next member; its value follows.
    public mutating func key(_ key: String) {
        separate()
        JSONSerializer.appendString(key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func string(_ text: String) {
        separate()
        JSONSerializer.appendString(text, to: &bytes)
        needsComma = true
    }

    public mutating func integer(_ value: some BinaryInteger) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let start = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        bytes[start...].reverse()
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
        needsComma = true
    }

    public mutating func null() {
        separate()
        bytes.append(contentsOf: "null".utf8)
        needsComma = true
    }

    /// A number in ``CPNPDecimal``'s canonical text.
    public mutating func decimal(_ value: CPNPDecimal) {
        separate()
        value.appendCanonical(to: &bytes)
        needsComma = true
    }

    /// A value that is mostly a scalar (a negotiable value's bare form): written without the
    /// serializer's walk; a container is serialized in place.
    public mutating func scalar(_ value: JSONValue) {
        switch value {
        case .string(let text): string(text)
        case .number(let number): decimal(number)
        case .bool(let boolean): bool(boolean)
        case .null: null()
        case .array, .object: self.value(value)
        }
    }

    /// A value built as a tree (rare members), serialized in place.
    public mutating func value(_ value: JSONValue) {
        separate()
        JSONSerializer.append(value, to: &bytes)
        needsComma = true
    }

    /// A value whose compact JSON was encoded before (a CPD's ``ConnectivityProvisioningDocument/compactJSON``).
    public mutating func raw(_ compactJSON: [UInt8]) {
        separate()
        bytes.append(contentsOf: compactJSON)
        needsComma = true
    }

    // MARK: - Members

    public mutating func member(_ name: String, _ text: String) {
        key(name)
        string(text)
    }

    /// A member written only when `text` is not nil.
    public mutating func member(_ name: String, ifPresent text: String?) {
        guard let text else { return }
        member(name, text)
    }

    public mutating func member(_ name: String, _ value: some BinaryInteger) {
        key(name)
        integer(value)
    }

    public mutating func member(_ name: String, _ value: Bool) {
        key(name)
        bool(value)
    }

    /// A timestamp as RFC 3339 text, or null.
    public mutating func member(_ name: String, time: CPNPTimestamp?) {
        key(name)
        if let time { string(time.rfc3339) } else { null() }
    }

    /// A member with an object value written by `body`.
    public mutating func object(_ name: String, _ body: (inout JSONWriter) -> Void) {
        key(name)
        beginObject()
        body(&self)
        endObject()
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }
}
