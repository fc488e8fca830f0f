// A wall clock the test moves by hand; with `ServerEngine(…, manualTimers: true)` the engine's timers
// fire only when the test calls `fireDueTimers()` after moving it.
import CPNPCore
import CPNPRuntime
import Synchronization

final class ManualClock: WallClock {
    private let time: Mutex<CPNPTimestamp>

    init(_ start: CPNPTimestamp) { time = Mutex(start) }

    func now() -> CPNPTimestamp { time.withLock { $0 } }

    func set(_ t: CPNPTimestamp) { time.withLock { $0 = t } }
}
