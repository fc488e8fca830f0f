/// An instant in UTC with millisecond precision, carried on the wire as an RFC 3339
/// date-time (RFC 8921 §9.1.6–9.1.8; wire-format.md §2.1).
public struct CPNPTimestamp: Sendable, Hashable, Comparable {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }

    public static func < (lhs: CPNPTimestamp, rhs: CPNPTimestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }
}
