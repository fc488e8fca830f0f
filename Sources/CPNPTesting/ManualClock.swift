// A wall clock that a test moves by hand.
public import CPNPCore
public import CPNPRuntime
import Synchronization

/// A ``WallClock`` that stands still until the test moves it with ``set(_:)``.
///
/// With `CPNPServerEngine(…, manualTimers: true)` the engine's timers (RFC 8921 §7, offer validity and
/// expected response times) fire only when the test calls `fireDueTimers()` after moving the clock.
public final class ManualClock: WallClock {
    private let time: Mutex<CPNPTimestamp>

    /// A clock that reads `start` until moved.
    public init(_ start: CPNPTimestamp) { time = Mutex(start) }

    public func now() -> CPNPTimestamp { time.withLock { $0 } }

    /// Moves the clock to `timestamp` (forwards or backwards).
    public func set(_ timestamp: CPNPTimestamp) { time.withLock { $0 = timestamp } }
}
