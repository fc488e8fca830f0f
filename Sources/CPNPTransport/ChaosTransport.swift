import CPNPCore
public import NIOCore
import Synchronization

/// A transport that injects faults (docs/fuzzing.md, "Fault injection"): wraps another
/// ``CPNPTransport`` and, independently for outgoing sends and incoming messages, drops,
/// duplicates, delays and reorders messages with configured probabilities. Decisions come from a
/// seeded ``SplitMix64`` per direction, so a seed replays the same decisions for the same sequence
/// of messages.
///
/// Delays never block the caller: delayed copies are delivered by scheduled tasks, which
/// ``close()`` cancels. It consumes the wrapped transport's ``CPNPTransport/inbound``; read this
/// transport's ``inbound`` instead.
public final class ChaosTransport: CPNPTransport {
    /// The faults applied to one direction.
    public struct Faults: Sendable, Hashable {
        /// Probability that a message is lost.
        public var drop: Double
        /// Probability that a message that is not lost is delivered twice.
        public var duplicate: Double
        /// Probability that a message is held back until the next one has been delivered.
        public var reorder: Double
        /// Each copy waits a uniformly chosen time in this range (`.zero...(.zero)`: none).
        public var delay: ClosedRange<Duration>
        /// A held message with no successor within this time is delivered anyway.
        public var reorderWindow: Duration

        /// Faults with the given probabilities (each in 0...1).
        public init(
            drop: Double = 0, duplicate: Double = 0, reorder: Double = 0,
            delay: ClosedRange<Duration> = .zero ... .zero, reorderWindow: Duration = .milliseconds(100)
        ) {
            precondition([drop, duplicate, reorder].allSatisfy { (0...1).contains($0) }, "probabilities must be in 0...1")
            precondition(delay.lowerBound >= .zero && reorderWindow >= .zero, "durations must not be negative")
            self.drop = drop
            self.duplicate = duplicate
            self.reorder = reorder
            self.delay = delay
            self.reorderWindow = reorderWindow
        }

        /// No fault: the wrapper is transparent.
        public static let none = Faults()
    }

    /// A message's direction, seen from this endpoint.
    public enum Direction: Sendable, Hashable, CaseIterable {
        /// Messages given to ``send(_:to:)``.
        case outgoing
        /// Messages read from the wrapped transport.
        case incoming
    }

    /// What was done to one direction's messages.
    public struct Counters: Sendable, Hashable {
        /// Messages offered to the fault injector.
        public var messages = 0
        /// Messages lost.
        public var dropped = 0
        /// Extra copies made.
        public var duplicated = 0
        /// Copies delivered late (a delay above zero).
        public var delayed = 0
        /// Messages overtaken by their successor.
        public var reordered = 0
        /// Copies handed to the wrapped transport or to ``ChaosTransport/inbound``.
        public var delivered = 0
        /// Scheduled copies abandoned by ``ChaosTransport/close()``.
        public var cancelled = 0

        public init() {}
    }

    /// The fault decided for one message.
    public struct Decision: Sendable, Hashable {
        /// The message is lost.
        public var drop: Bool
        /// The delay of each copy (one, or two when duplicated); empty when dropped.
        public var copies: [Duration]
        /// The message waits for its successor.
        public var reorder: Bool
    }

    /// The deterministic decisions of one direction: the same faults and seed give the same
    /// sequence. Every message consumes five draws, whatever is decided.
    public struct Schedule: Sendable {
        public let faults: Faults
        private var generator: SplitMix64

        public init(faults: Faults, seed: UInt64) {
            self.faults = faults
            generator = SplitMix64(seed: seed)
        }

        /// The decision for the next message.
        public mutating func next() -> Decision {
            let drop = generator.nextUnit() < faults.drop
            let duplicate = generator.nextUnit() < faults.duplicate
            let reorder = generator.nextUnit() < faults.reorder
            let delays = [delay(generator.nextUnit()), delay(generator.nextUnit())]
            if drop { return Decision(drop: true, copies: [], reorder: false) }
            return Decision(drop: false, copies: Array(delays.prefix(duplicate ? 2 : 1)), reorder: reorder)
        }

        private func delay(_ unit: Double) -> Duration {
            let low = faults.delay.lowerBound, high = faults.delay.upperBound
            return high > low ? low + (high - low) * unit : low
        }
    }

    public var kind: CPNPTransportKind { inner.kind }
    public var maximumMessageSize: Int { inner.maximumMessageSize }
    public var localAddress: SocketAddress? { inner.localAddress }
    public let inbound: AsyncStream<CPNPInboundMessage>
    public var failures: AsyncStream<CPNPTransportError> { inner.failures }
    /// The wrapped transport.
    public let inner: any CPNPTransport
    /// The seed the decisions derive from.
    public let seed: UInt64

    private let core: Core
    private let pump: Task<Void, Never>

    /// Wraps `transport`.
    /// - Parameters:
    ///   - transport: the real transport; its `inbound` is consumed by the wrapper.
    ///   - outgoing: faults applied to ``send(_:to:)``.
    ///   - incoming: faults applied to received messages.
    ///   - seed: replays the same decisions; each direction draws from its own stream.
    public init(wrapping transport: any CPNPTransport, outgoing: Faults = .none, incoming: Faults = .none, seed: UInt64) {
        inner = transport
        self.seed = seed
        let (stream, continuation) = AsyncStream.makeStream(of: CPNPInboundMessage.self, bufferingPolicy: .bufferingOldest(16_384))
        inbound = stream
        var seeds = SplitMix64(seed: seed)
        let core = Core(
            outgoing: Schedule(faults: outgoing, seed: seeds.next()),
            incoming: Schedule(faults: incoming, seed: seeds.next()),
            continuation: continuation)
        self.core = core
        pump = Task { [inner] in
            for await message in inner.inbound {
                try? await core.submit(Item.incoming(message), direction: Direction.incoming) { _ throws(CPNPTransportError) in }
            }
            core.inboundEnded()
        }
    }

    /// What has been done so far to `direction`'s messages.
    public func counters(_ direction: Direction) -> Counters {
        core.counters(direction)
    }

    /// Scheduled deliveries and reorder timers whose tasks have not ended yet.
    public var runningTasks: Int {
        core.runningTasks
    }

    /// Sends after the outgoing faults. Throws what the wrapped transport throws for an undelayed
    /// copy; errors of delayed or held copies are dropped, like a network's.
    public func send(_ message: [UInt8], to peer: CPNPPeer) async throws(CPNPTransportError) {
        guard message.count <= inner.maximumMessageSize else {
            throw CPNPTransportError(.messageTooLarge(size: message.count, limit: inner.maximumMessageSize), peer: peer.address)
        }
        try await core.submit(.outgoing(message, peer), direction: .outgoing) { [inner] item throws(CPNPTransportError) in
            if case .outgoing(let bytes, let peer) = item { try await inner.send(bytes, to: peer) }
        }
    }

    /// Cancels pending deliveries, closes the wrapped transport and finishes ``inbound``.
    public func close() async {
        core.close()
        await inner.close()
        pump.cancel()
    }
}

extension ChaosTransport {
    /// One message on its way.
    enum Item: Sendable {
        case outgoing([UInt8], CPNPPeer)
        case incoming(CPNPInboundMessage)
    }

    /// A copy to deliver after `delay`.
    struct Step: Sendable {
        var item: Item
        var delay: Duration
        /// The copy of the message being submitted (its errors reach the caller).
        var current: Bool
    }

    struct Held: Sendable {
        var steps: [Step]
        var generation: UInt64
    }

    struct Lane {
        var schedule: Schedule
        var counters = Counters()
        var held: Held?
    }

    struct Pending {
        var task: Task<Void, Never>
        var direction: Direction
        var copies: Int
    }

    struct State {
        var outgoing: Lane
        var incoming: Lane
        var pending: [UInt64: Pending] = [:]
        var running = 0
        var nextID: UInt64 = 0
        var closed = false

        subscript(direction: Direction) -> Lane {
            get { direction == .outgoing ? outgoing : incoming }
            set { if direction == .outgoing { outgoing = newValue } else { incoming = newValue } }
        }
    }

    typealias Deliver = @Sendable (Item) async throws(CPNPTransportError) -> Void

    /// The shared state and the delivery machinery, separate from the transport so that the
    /// pump and scheduled tasks do not retain it.
    final class Core: Sendable {
        private let state: Mutex<State>
        private let continuation: AsyncStream<CPNPInboundMessage>.Continuation

        init(outgoing: Schedule, incoming: Schedule, continuation: AsyncStream<CPNPInboundMessage>.Continuation) {
            state = Mutex(State(outgoing: Lane(schedule: outgoing), incoming: Lane(schedule: incoming)))
            self.continuation = continuation
        }

        func counters(_ direction: Direction) -> Counters {
            state.withLock { $0[direction].counters }
        }

        var runningTasks: Int {
            state.withLock { $0.running }
        }

        /// Decides the fate of one message, delivers what is due now and schedules the rest.
        func submit(_ item: Item, direction: Direction, send: @escaping Deliver) async throws(CPNPTransportError) {
            let steps: [Step]? = state.withLock { state in
                guard !state.closed else { return nil }
                var lane = state[direction]
                defer { state[direction] = lane }
                lane.counters.messages += 1
                let decision = lane.schedule.next()
                if decision.drop {
                    lane.counters.dropped += 1
                    return []
                }
                lane.counters.duplicated += decision.copies.count - 1
                lane.counters.delayed += decision.copies.filter { $0 > .zero }.count
                var steps = decision.copies.map { Step(item: item, delay: $0, current: true) }
                if let held = lane.held {
                    // The held message goes after this one's last copy.
                    lane.held = nil
                    lane.counters.reordered += 1
                    let after = steps.map(\.delay).max() ?? .zero
                    steps += held.steps.map { Step(item: $0.item, delay: max($0.delay, after), current: false) }
                } else if decision.reorder {
                    let generation = state.nextID
                    let window = lane.schedule.faults.reorderWindow
                    lane.held = Held(steps: steps.map { Step(item: $0.item, delay: $0.delay, current: false) }, generation: generation)
                    schedule([], direction: direction, state: &state) { [self] _ in
                        try? await Task.sleep(for: window)
                        releaseHeld(direction, generation: generation, send: send)
                    }
                    return []
                }
                return steps
            }
            guard let steps else {
                if direction == .outgoing { throw CPNPTransportError(.closed) }
                return
            }
            try await run(steps, direction: direction, send: send)
        }

        /// Delivers the leading undelayed steps in order and schedules the others, in order too.
        private func run(_ steps: [Step], direction: Direction, send: @escaping Deliver) async throws(CPNPTransportError) {
            let ordered = steps.enumerated().sorted { ($0.element.delay, $0.offset) < ($1.element.delay, $1.offset) }.map(\.element)
            let now = ordered.prefix { $0.delay == .zero }
            let later = Array(ordered.dropFirst(now.count))
            if !later.isEmpty {
                state.withLock { state in
                    guard !state.closed else { return }
                    schedule(later, direction: direction, state: &state) { [self] id in
                        var elapsed = Duration.zero
                        for step in later {
                            do { try await Task.sleep(for: step.delay - elapsed) } catch { return }
                            elapsed = step.delay
                            try? await deliver(step, direction: direction, task: id, send: send)
                        }
                    }
                }
            }
            var failure: CPNPTransportError?
            for step in now {
                do {
                    try await deliver(step, direction: direction, send: send)
                } catch {
                    if step.current, failure == nil { failure = error }
                }
            }
            if let failure { throw failure }
        }

        /// Starts and registers a task that will deliver `steps` (those it has not delivered count
        /// as cancelled if it is); `body` gets the task's id.
        private func schedule(
            _ steps: [Step], direction: Direction, state lockedState: inout State, _ body: @escaping @Sendable (UInt64) async -> Void
        ) {
            let taskID = lockedState.nextID
            lockedState.nextID += 1
            lockedState.running += 1
            let task = Task { [self] in
                await body(taskID)
                state.withLock { state in
                    state.pending[taskID] = nil
                    state.running -= 1
                }
            }
            lockedState.pending[taskID] = Pending(task: task, direction: direction, copies: steps.count)
        }

        private func releaseHeld(_ direction: Direction, generation: UInt64, send: @escaping Deliver) {
            let steps: [Step]? = state.withLock { state in
                guard !state.closed, let held = state[direction].held, held.generation == generation else { return nil }
                state[direction].held = nil
                return held.steps
            }
            guard let steps else { return }
            Task { try? await run(steps, direction: direction, send: send) }
        }

        /// Delivers one copy unless closed; `task` is the scheduled task delivering it, if any.
        private func deliver(_ step: Step, direction: Direction, task: UInt64? = nil, send: Deliver) async throws(CPNPTransportError) {
            let open = state.withLock { state in
                guard !state.closed else { return false }
                state[direction].counters.delivered += 1
                if let task { state.pending[task]?.copies -= 1 }
                return true
            }
            guard open else { return }
            switch step.item {
            case .incoming(let message): continuation.yield(message)
            case .outgoing: try await send(step.item)
            }
        }

        func inboundEnded() {
            continuation.finish()
        }

        func close() {
            let tasks = state.withLock { state in
                state.closed = true
                for direction in Direction.allCases {
                    state[direction].counters.cancelled += state[direction].held?.steps.count ?? 0
                    state[direction].held = nil
                }
                for pending in state.pending.values { state[pending.direction].counters.cancelled += pending.copies }
                defer { state.pending = [:] }
                return state.pending.values.map(\.task)
            }
            for task in tasks { task.cancel() }
            continuation.finish()
        }
    }
}
