/// Time spent by the engine in each phase of message handling, measured with `ContinuousClock` when
/// profiling is on (``CPNPServerEngine/setProfiling(_:)``; `cpnp-engine-bench`). Off by default: then
/// nothing is measured.
public struct EngineProfile: Sendable, Hashable {
    /// A phase the engine measures.
    public enum Phase: String, Sendable, Hashable, CaseIterable {
        /// JSON parsing and message decoding of one inbound datagram.
        case decode
        /// Free capacity for one decision (the sum of the other orders' reservations).
        case inventory
        /// The decision engine's `decide` call (RFC 8921 §8.2).
        case decide
        /// One store commit (one SQLite write transaction).
        case commit
        /// Encoding one outbound message.
        case encode
        /// Handing one encoded message to the sink.
        case send
        /// A whole `receive` call, end to end.
        case receive
    }

    /// Total time per phase.
    public var total: [Phase: Duration] = [:]
    /// Number of measurements per phase.
    public var count: [Phase: Int] = [:]

    public init() {}

    mutating func add(_ phase: Phase, _ d: Duration) {
        total[phase, default: .zero] += d
        count[phase, default: 0] += 1
    }
}

extension CPNPServerEngine {
    /// Turns profiling on (resetting the figures) or off.
    public func setProfiling(_ on: Bool) { profile = on ? EngineProfile() : nil }

    /// The figures measured since profiling was turned on, or nil when it is off.
    public var profileFigures: EngineProfile? { profile }

    /// Runs `body`, adding its duration to `phase` when profiling is on.
    @inline(__always)
    func measure<T, E: Error>(_ phase: EngineProfile.Phase, _ body: () throws(E) -> T) throws(E) -> T {
        guard profile != nil else { return try body() }
        let start = ContinuousClock.now
        defer { profile?.add(phase, ContinuousClock.now - start) }
        return try body()
    }
}
