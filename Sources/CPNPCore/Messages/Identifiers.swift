/// Identifier attributes of RFC 8921 §9.1 with the lexical rules of docs/protocol.md §2.6.

/// The lowercase hexadecimal digits, as bytes.
private let hexDigits = Array("0123456789abcdef".utf8)

/// 12 hex characters of milliseconds since 1970 (clamped to 0…2^48 − 1): identifiers made later sort later.
private func timeHex(_ time: CPNPTimestamp) -> String {
    let milliseconds = UInt64(clamping: max(0, time.millisecondsSinceEpoch)) & 0xFFFF_FFFF_FFFF
    let hex = hexDigits
    var clock: [UInt8] = []
    clock.reserveCapacity(12)
    for shift in stride(from: 44, through: 0, by: -4) { clock.append(hex[Int((milliseconds >> UInt64(shift)) & 0xF)]) }
    return String(decoding: clock, as: UTF8.self)
}

/// Generates the characters of an identifier from a random source: 8 random bytes per draw, since a
/// draw from the system's generator is a system call (`getrandom` on Linux).
private func randomHex(bytes count: Int, using rng: inout some RandomNumberGenerator) -> String {
    let hex = hexDigits
    var out: [UInt8] = []
    out.reserveCapacity(count * 2)
    var word: UInt64 = 0
    for index in 0..<count {
        if index % 8 == 0 { word = rng.next() }
        let byte = UInt8(truncatingIfNeeded: word)
        word >>= 8
        out.append(hex[Int(byte >> 4)])
        out.append(hex[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// True when the string is 1…`max` Unicode scalars with no control characters (C0, DEL, C1).
func isPrintableIdentifier(_ text: String, max: Int) -> Bool {
    var scalarCount = 0
    for scalar in text.unicodeScalars {
        scalarCount += 1
        if scalarCount > max { return false }
        if scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) { return false }
    }
    return scalarCount >= 1
}

/// TRANSACTION_ID (RFC 8921 §9.1.3): chosen by the client, random and unguessable.
/// 16…64 characters of `[0-9A-Za-z_-]`.
public struct TransactionID: Sendable, Hashable, CustomStringConvertible, Comparable {
    public let rawValue: String

    /// Validates `rawValue`; nil when it breaks the lexical rule.
    public init?(_ rawValue: String) {
        let bytes = rawValue.utf8
        guard (16...64).contains(bytes.count),
            bytes.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x5f || $0 == 0x2d })
        else { return nil }
        self.rawValue = rawValue
    }

    /// 32 lowercase hex characters from 128 random bits (use a CSPRNG, RFC 4086).
    public static func random(using rng: inout some RandomNumberGenerator) -> TransactionID {
        TransactionID(randomHex(bytes: 16, using: &rng))!
    }

    public var description: String { rawValue }
    public static func < (a: TransactionID, b: TransactionID) -> Bool { a.rawValue < b.rawValue }
}

/// CUSTOMER_ORDER_IDENTIFIER (RFC 8921 §9.1.1): assigned by the client, opaque to the server.
public struct CustomerOrderID: Sendable, Hashable, CustomStringConvertible, Comparable {
    public let rawValue: String
    /// Validates: 1…128 printable characters.
    public init?(_ rawValue: String) {
        guard isPrintableIdentifier(rawValue, max: 128) else { return nil }
        self.rawValue = rawValue
    }
    /// `prefix` + 16 hex characters from 64 random bits (use a CSPRNG): a customer's fresh order id.
    public static func random(prefix: String = "co-", using rng: inout some RandomNumberGenerator) -> CustomerOrderID {
        CustomerOrderID(prefix + randomHex(bytes: 8, using: &rng))!
    }

    /// `prefix` + the creation time (12 hex characters of milliseconds since 1970) + 16 hex
    /// characters of randomness, as ``ProviderOrderID/timeOrdered(at:prefix:using:)``: a server's
    /// index keyed by the client and its customer order ids then grows at its end, one page for the
    /// orders a client opens at once instead of a page per order (docs/design/storage.md).
    public static func timeOrdered(at time: CPNPTimestamp, prefix: String = "co-", using rng: inout some RandomNumberGenerator) -> CustomerOrderID {
        CustomerOrderID(prefix + timeHex(time) + randomHex(bytes: 8, using: &rng))!
    }
    public var description: String { rawValue }
    public static func < (a: CustomerOrderID, b: CustomerOrderID) -> Bool { a.rawValue < b.rawValue }
}

/// PROVIDER_ORDER_IDENTIFIER (RFC 8921 §9.1.2): assigned by the server, opaque to the client.
public struct ProviderOrderID: Sendable, Hashable, CustomStringConvertible, Comparable {
    public let rawValue: String
    /// Validates: 1…128 printable characters.
    public init?(_ rawValue: String) {
        guard isPrintableIdentifier(rawValue, max: 128) else { return nil }
        self.rawValue = rawValue
    }

    /// A fresh identifier `prefix` + the creation time (12 hex characters of milliseconds since 1970)
    /// + 16 hex characters of randomness. Identifiers made later sort later, so the store's indexes
    /// keyed by the provider order id grow at their end instead of at random pages
    /// (docs/design/storage.md); the 64 random bits keep it unguessable (RFC 8921 §13). Callers must
    /// make sure it never equals a customer order id of the same client.
    public static func timeOrdered(at time: CPNPTimestamp, prefix: String = "po-", using rng: inout some RandomNumberGenerator) -> ProviderOrderID {
        ProviderOrderID(prefix + timeHex(time) + randomHex(bytes: 8, using: &rng))!
    }

    public var description: String { rawValue }
    public static func < (a: ProviderOrderID, b: ProviderOrderID) -> Bool { a.rawValue < b.rawValue }
}

/// NONCE (RFC 8921 §9.1.5): server-assigned, 32 lowercase hex characters (128 bits).
public struct Nonce: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    /// Validates: exactly 32 characters of `[0-9a-f]`.
    public init?(_ rawValue: String) {
        let bytes = rawValue.utf8
        guard bytes.count == 32, bytes.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        self.rawValue = rawValue
    }
    /// 128 random bits (use a CSPRNG).
    public static func random(using rng: inout some RandomNumberGenerator) -> Nonce {
        Nonce(randomHex(bytes: 16, using: &rng))!
    }
    public var description: String { rawValue }
}

/// SEQUENCE_NUMBER (RFC 8921 §9.1.4, docs/protocol.md §5.1): 0 … 2^32−1.
public typealias SequenceNumber = UInt32

extension SequenceNumber {
    /// A random initial sequence number in 0 … 2^31−1, so a transaction never wraps
    /// (docs/protocol.md §5.1).
    public static func randomInitial(using rng: inout some RandomNumberGenerator) -> SequenceNumber {
        SequenceNumber.random(in: 0...0x7fff_ffff, using: &rng)
    }
}
