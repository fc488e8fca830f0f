public import CPNPCore
import Foundation

/// The wall clock the engines read: CPNP deadlines are absolute RFC 3339 times (RFC 8921 §9.1.6–9.1.8).
public protocol WallClock: Sendable {
    func now() -> CPNPTimestamp
}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> CPNPTimestamp {
        CPNPTimestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)))
    }
}
