public import CPNPCore
import Synchronization

/// Fires callbacks at absolute wall-clock deadlines; arming a key again replaces its timer
/// (the machines' `armTimer`/`cancelTimer` actions map onto it one to one).
///
/// One sleeping task serves every timer: arming and cancelling only update a table and a queue
/// ordered by deadline, and the sleeper is replaced only when a timer falls due before it wakes. A
/// timer that falls due fires in a task of its own.
public final class TimerScheduler<Key: Hashable & Sendable>: Sendable {
    private let state = Mutex(State())
    private let clock: any WallClock

    private struct Armed {
        var due: ContinuousClock.Instant
        var generation: UInt64
        var fire: @Sendable (Key) async -> Void
    }

    /// An entry of the deadline queue; stale once its key is cancelled or armed again.
    private struct Pending {
        var due: ContinuousClock.Instant
        var generation: UInt64
        var key: Key
        func precedes(_ other: Pending) -> Bool { (due, generation) < (other.due, other.generation) }
    }

    private struct State {
        var armed: [Key: Armed] = [:]
        var queue: [Pending] = []
        var generation: UInt64 = 0
        var sleeper: Task<Void, Never>?
        var sleeperDue: ContinuousClock.Instant?
    }

    public init(clock: any WallClock) { self.clock = clock }

    /// Arms (or re-arms) `key` to call `fire` at `deadline`; a deadline in the past fires at once.
    public func arm(_ key: Key, at deadline: CPNPTimestamp, fire: @escaping @Sendable (Key) async -> Void) {
        let due = ContinuousClock.now + max(.zero, deadline.duration(since: clock.now()))
        state.withLock { state in
            state.generation &+= 1
            state.armed[key] = Armed(due: due, generation: state.generation, fire: fire)
            Self.push(Pending(due: due, generation: state.generation, key: key), into: &state.queue)
            if state.queue.count > 2 * state.armed.count + 1_024 { Self.compact(&state) }
            if state.sleeperDue.map({ due < $0 }) ?? true { startSleeper(&state, until: due) }
        }
    }

    /// Cancels `key` if armed.
    public func cancel(_ key: Key) {
        state.withLock { state in _ = state.armed.removeValue(forKey: key) }
    }

    /// Cancels every timer whose key matches.
    public func cancelAll(where predicate: (Key) -> Bool) {
        state.withLock { state in
            for armedKey in state.armed.keys where predicate(armedKey) { state.armed.removeValue(forKey: armedKey) }
        }
    }

    /// Number of armed timers.
    public var count: Int { state.withLock { $0.armed.count } }

    /// Entries of the deadline queue, stale ones included (tests: it stays bounded).
    var queuedCount: Int { state.withLock { $0.queue.count } }

    private func startSleeper(_ locked: inout State, until due: ContinuousClock.Instant) {
        locked.sleeper?.cancel()
        locked.sleeperDue = due
        locked.sleeper = Task { [weak self] in
            do { try await Task.sleep(until: due, clock: .continuous) } catch { return }
            self?.wake()
        }
    }

    /// Fires what fell due, each in its own task, and sleeps until the next deadline.
    private func wake() {
        let due: [(Key, @Sendable (Key) async -> Void)] = state.withLock { state in
            state.sleeper = nil
            state.sleeperDue = nil
            let now = ContinuousClock.now
            var out: [(Key, @Sendable (Key) async -> Void)] = []
            while let top = state.queue.first {
                guard let armed = state.armed[top.key], armed.generation == top.generation else {
                    Self.popFirst(&state.queue)
                    continue
                }
                guard top.due <= now else { break }
                Self.popFirst(&state.queue)
                state.armed[top.key] = nil
                out.append((top.key, armed.fire))
            }
            if let next = state.queue.first { startSleeper(&state, until: next.due) }
            return out
        }
        for (key, fire) in due { Task { await fire(key) } }
    }

    // MARK: - The deadline queue (a binary min-heap)

    private static func push(_ entry: Pending, into heap: inout [Pending]) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private static func popFirst(_ heap: inout [Pending]) {
        guard heap.count > 1 else {
            heap.removeAll(keepingCapacity: true)
            return
        }
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var first = parent
            if left < heap.count, heap[left].precedes(heap[first]) { first = left }
            if right < heap.count, heap[right].precedes(heap[first]) { first = right }
            guard first != parent else { return }
            heap.swapAt(parent, first)
            parent = first
        }
    }

    /// Rebuilds the queue from the armed timers, dropping stale entries.
    private static func compact(_ locked: inout State) {
        var heap: [Pending] = []
        heap.reserveCapacity(locked.armed.count)
        for (key, armed) in locked.armed { push(Pending(due: armed.due, generation: armed.generation, key: key), into: &heap) }
        locked.queue = heap
    }

    deinit {
        state.withLock { state in state.sleeper?.cancel() }
    }
}
