public import CPNPCore
public import Synchronization

/// Fires callbacks at absolute wall-clock deadlines; arming a key again replaces its timer
/// (the machines' `armTimer`/`cancelTimer` actions map onto it one to one).
///
/// One sleeping task serves every timer: arming and cancelling only update a table and a queue
/// ordered by deadline, and the sleeper is replaced only when a timer falls due before it wakes. A
/// timer that falls due fires in a task of its own.
///
/// `arm` and `cancel`, called for nearly every message, are inlinable: specialised for the caller's
/// key type, they skip the generic metadata look-ups that took a fifth of their time
/// (docs/performance.md, round 12).
public final class TimerScheduler<Key: Hashable & Sendable>: Sendable {
    @usableFromInline let state = Mutex(State())
    @usableFromInline let clock: any WallClock

    @usableFromInline struct Armed {
        @usableFromInline var due: ContinuousClock.Instant
        @usableFromInline var generation: UInt64
        @usableFromInline var fire: @Sendable (Key) async -> Void

        @usableFromInline init(due: ContinuousClock.Instant, generation: UInt64, fire: @escaping @Sendable (Key) async -> Void) {
            self.due = due
            self.generation = generation
            self.fire = fire
        }
    }

    @usableFromInline struct State {
        @usableFromInline var armed: [Key: Armed] = [:]
        /// Deadlines by generation; `keys` names the key each generation was armed for.
        @usableFromInline var queue = DeadlineQueue()
        @usableFromInline var keys: [UInt64: Key] = [:]
        @usableFromInline var generation: UInt64 = 0
        @usableFromInline var sleeper: Task<Void, Never>?
        @usableFromInline var sleeperDue: ContinuousClock.Instant?

        @usableFromInline init() {}
    }

    public init(clock: any WallClock) { self.clock = clock }

    /// Arms (or re-arms) `key` to call `fire` at `deadline`; a deadline in the past fires at once.
    @inlinable public func arm(_ key: Key, at deadline: CPNPTimestamp, fire: @escaping @Sendable (Key) async -> Void) {
        let due = ContinuousClock.now + max(.zero, deadline.duration(since: clock.now()))
        state.withLock { state in
            state.generation &+= 1
            state.armed[key] = Armed(due: due, generation: state.generation, fire: fire)
            state.queue.push(Deadline(due: due, generation: state.generation))
            state.keys[state.generation] = key
            if state.queue.count > 2 * state.armed.count + 1_024 { Self.compact(&state) }
            if state.sleeperDue.map({ due < $0 }) ?? true { startSleeper(&state, until: due) }
        }
    }

    /// Cancels `key` if armed.
    @inlinable public func cancel(_ key: Key) {
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

    @usableFromInline func startSleeper(_ locked: inout State, until due: ContinuousClock.Instant) {
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
                guard let key = state.keys[top.generation], let armed = state.armed[key], armed.generation == top.generation else {
                    state.queue.popFirst()
                    state.keys[top.generation] = nil
                    continue
                }
                guard top.due <= now else { break }
                state.queue.popFirst()
                state.keys[top.generation] = nil
                state.armed[key] = nil
                out.append((key, armed.fire))
            }
            if let next = state.queue.first { startSleeper(&state, until: next.due) }
            return out
        }
        for (key, fire) in due { Task { await fire(key) } }
    }

    /// Rebuilds the queue from the armed timers, dropping stale entries.
    @usableFromInline static func compact(_ locked: inout State) {
        var queue = DeadlineQueue()
        var keys: [UInt64: Key] = [:]
        keys.reserveCapacity(locked.armed.count)
        for (key, armed) in locked.armed {
            queue.push(Deadline(due: armed.due, generation: armed.generation))
            keys[armed.generation] = key
        }
        locked.queue = queue
        locked.keys = keys
    }

    deinit {
        state.withLock { state in state.sleeper?.cancel() }
    }
}

/// An entry of the deadline queue; stale once its key is cancelled or armed again. Not generic, so
/// that the heap's comparisons and moves are plain code in every module that uses a scheduler.
@usableFromInline struct Deadline {
    var due: ContinuousClock.Instant
    var generation: UInt64

    @usableFromInline init(due: ContinuousClock.Instant, generation: UInt64) {
        self.due = due
        self.generation = generation
    }

    func precedes(_ other: Deadline) -> Bool { (due, generation) < (other.due, other.generation) }
}

/// The deadline queue: a binary min-heap ordered by deadline, then by arming order.
@usableFromInline struct DeadlineQueue {
    private var heap: [Deadline] = []

    @usableFromInline init() {}

    @usableFromInline var count: Int { heap.count }
    var first: Deadline? { heap.first }

    @usableFromInline mutating func push(_ entry: Deadline) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() {
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
}
