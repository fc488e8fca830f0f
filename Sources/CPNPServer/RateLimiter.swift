public import CPNPCore

/// A token bucket per key: at most `burst` events at once, refilled at `perMinute` events per
/// minute. Used for new QUOTATIONs and FAIL answers per client (RFC 8921 §9.2.5, §13).
public struct RateLimiter<Key: Hashable>: Sendable where Key: Sendable {
    public let perMinute: Int
    public let burst: Int
    private var buckets: [Key: (tokens: Double, at: CPNPTimestamp)] = [:]
    private let maximumKeys: Int

    public init(perMinute: Int, burst: Int? = nil, maximumKeys: Int = 100_000) {
        self.perMinute = max(0, perMinute)
        self.burst = max(1, burst ?? perMinute)
        self.maximumKeys = maximumKeys
    }

    /// Replays `events` of `key` (times, oldest first) taken by a previous run of the process, from a
    /// full bucket at `since`: a restart then resumes the bucket where those events left it instead
    /// of refilling it. Pass the events of the last minute: a bucket refills completely in a minute.
    public mutating func restore(_ key: Key, events: [CPNPTimestamp], since: CPNPTimestamp, now: CPNPTimestamp) {
        guard !events.isEmpty, perMinute > 0 else { return }
        var tokens = Double(burst)
        var lastEvent = since
        for event in events where event >= since && event <= now {
            tokens = min(Double(burst), tokens + Double(event.millisecondsSinceEpoch - lastEvent.millisecondsSinceEpoch) / 60_000 * Double(perMinute))
            tokens = max(0, tokens - 1)
            lastEvent = event
        }
        buckets[key] = (tokens, lastEvent)
    }

    /// Takes one token for `key` at `now`; false when the key is over its rate.
    public mutating func allow(_ key: Key, now: CPNPTimestamp) -> Bool {
        if perMinute == 0 { return false }
        var (tokens, at) = buckets[key] ?? (Double(burst), now)
        let elapsed = Double(max(0, now.millisecondsSinceEpoch - at.millisecondsSinceEpoch)) / 60_000
        tokens = min(Double(burst), tokens + elapsed * Double(perMinute))
        guard tokens >= 1 else {
            buckets[key] = (tokens, now)
            return false
        }
        if buckets[key] == nil && buckets.count >= maximumKeys { buckets.removeAll(keepingCapacity: true) }
        buckets[key] = (tokens - 1, now)
        return true
    }
}
