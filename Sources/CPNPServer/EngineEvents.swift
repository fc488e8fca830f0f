public import CPNPCore
import Synchronization

/// State changes of orders as they become durable, for live views (the console's server-sent
/// events, docs/console.md). Subscribers that fall behind lose the oldest events, never slow the engine.
public final class EngineEvents: Sendable {
    /// One order moved from one RFC 8921 state to another (Figure 9), once committed.
    public struct Transition: Sendable, Hashable {
        public var providerOrderID: ProviderOrderID
        public var customerOrderID: CustomerOrderID
        public var clientIdentity: String
        public var from: ServerOrderStateMachine.State
        public var to: ServerOrderStateMachine.State
        public var event: String
        public var at: CPNPTimestamp
    }

    private let subscribers = Mutex<[Int: AsyncStream<Transition>.Continuation]?>([:])
    private let nextID = Atomic<Int>(0)

    public init() {}

    /// A stream of the transitions from now on; it ends when the subscriber stops iterating.
    public func subscribe(bufferingNewest limit: Int = 256) -> AsyncStream<Transition> {
        let subscriberID = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream.makeStream(of: Transition.self, bufferingPolicy: .bufferingNewest(limit))
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            subscribers.withLock { all in
                all?.removeValue(forKey: subscriberID)
                listening.store(!(all?.isEmpty ?? true), ordering: .relaxed)
            }
        }
        let open = subscribers.withLock { all -> Bool in
            guard all != nil else { return false }
            all![subscriberID] = continuation
            listening.store(true, ordering: .relaxed)
            return true
        }
        if !open { continuation.finish() }
        return stream
    }

    /// Subscribers now (tests).
    public var subscriberCount: Int { subscribers.withLock { $0?.count ?? 0 } }

    /// Whether anyone listens: the engine builds no event otherwise (one atomic load per change).
    var hasSubscribers: Bool { listening.load(ordering: .relaxed) }
    private let listening = Atomic<Bool>(false)

    /// Ends every stream, and those subscribed later at once (the daemon stops: open live views
    /// must not keep its HTTP server waiting).
    public func close() {
        let all = subscribers.withLock { all in
            defer { all = nil }
            listening.store(false, ordering: .relaxed)
            return all.map { Array($0.values) } ?? []
        }
        for continuation in all { continuation.finish() }
    }

    func publish(_ transition: Transition) {
        let targets = subscribers.withLock { $0.map { Array($0.values) } ?? [] }
        for continuation in targets { continuation.yield(transition) }
    }
}
