public import CPNPCore
import Synchronization

/// Fires callbacks at absolute wall-clock deadlines; arming a key again replaces its timer
/// (the machines' `armTimer`/`cancelTimer` actions map onto it one to one).
public final class TimerScheduler<Key: Hashable & Sendable>: Sendable {
    private let state = Mutex(State())
    private let clock: any WallClock

    private struct State {
        var tasks: [Key: (generation: UInt64, task: Task<Void, Never>)] = [:]
        var generation: UInt64 = 0
    }

    public init(clock: any WallClock) { self.clock = clock }

    /// Arms (or re-arms) `key` to call `fire` at `deadline`; a deadline in the past fires at once.
    public func arm(_ key: Key, at deadline: CPNPTimestamp, fire: @escaping @Sendable (Key) async -> Void) {
        let delay = max(.zero, deadline.duration(since: clock.now()))
        state.withLock { s in
            s.generation &+= 1
            let generation = s.generation
            s.tasks[key]?.task.cancel()
            let task = Task { [weak self] in
                if delay > .zero {
                    do { try await Task.sleep(for: delay) } catch { return }
                }
                guard let self, self.take(key, generation: generation) else { return }
                await fire(key)
            }
            s.tasks[key] = (generation, task)
        }
    }

    /// Cancels `key` if armed.
    public func cancel(_ key: Key) {
        state.withLock { s in s.tasks.removeValue(forKey: key)?.task.cancel() }
    }

    /// Cancels every timer whose key matches.
    public func cancelAll(where predicate: (Key) -> Bool) {
        state.withLock { s in
            for k in s.tasks.keys where predicate(k) { s.tasks.removeValue(forKey: k)?.task.cancel() }
        }
    }

    /// Number of armed timers.
    public var count: Int { state.withLock { $0.tasks.count } }

    private func take(_ key: Key, generation: UInt64) -> Bool {
        state.withLock { s in
            guard s.tasks[key]?.generation == generation else { return false }
            s.tasks.removeValue(forKey: key)
            return true
        }
    }

    deinit {
        state.withLock { s in for (_, t) in s.tasks { t.task.cancel() } }
    }
}
