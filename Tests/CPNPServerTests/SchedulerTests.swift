import Testing
import CPNPCore
@testable import CPNPServer
@testable import CPNPRuntime
import Synchronization

@Suite("Timer scheduler and rate limiter")
struct SchedulerTests {
    @Test func firesAtDeadlineAndReplacesOnReArm() async throws {
        let clock = SystemWallClock()
        let scheduler = TimerScheduler<String>(clock: clock)
        let fired = Mutex<[String]>([])
        let (stream, continuation) = AsyncStream<String>.makeStream()
        scheduler.arm("a", at: clock.now().adding(.seconds(30))) { k in fired.withLock { $0.append("first \(k)") } }
        // Re-arming replaces the earlier timer: only the second fires.
        scheduler.arm("a", at: clock.now().adding(.milliseconds(20))) { k in
            fired.withLock { $0.append("second \(k)") }
            continuation.yield(k)
        }
        scheduler.arm("b", at: clock.now().adding(.milliseconds(10))) { k in
            fired.withLock { $0.append("b") }
            continuation.yield(k)
        }
        scheduler.arm("c", at: clock.now().adding(.milliseconds(10))) { _ in fired.withLock { $0.append("c") } }
        scheduler.cancel("c")
        var seen: [String] = []
        for await k in stream {
            seen.append(k)
            if seen.count == 2 { break }
        }
        #expect(Set(seen) == ["a", "b"])
        try await Task.sleep(for: .milliseconds(30))
        #expect(Set(fired.withLock { $0 }) == ["second a", "b"])
        #expect(scheduler.count == 0)
    }

    /// One sleeper serves every timer: a timer armed before the sleeper's deadline still fires on time,
    /// and the queue of deadlines stays bounded however many timers are armed and cancelled.
    /// (Timer 1 is ten minutes away: were the sleeper kept for it, timer 2 would miss the time limit.)
    @Test(.timeLimit(.minutes(1)))
    func anEarlierTimerFiresOnTimeAndCancelledOnesDoNotPileUp() async throws {
        let clock = SystemWallClock()
        let scheduler = TimerScheduler<Int>(clock: clock)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        scheduler.arm(1, at: clock.now().adding(.seconds(600))) { continuation.yield($0) }
        scheduler.arm(2, at: clock.now().adding(.milliseconds(20))) { continuation.yield($0) }
        for await k in stream {
            #expect(k == 2)
            break
        }
        for i in 3..<20_003 {
            scheduler.arm(i, at: clock.now().adding(.seconds(30)), fire: { _ in })
            scheduler.cancel(i)
        }
        #expect(scheduler.count == 1)
        #expect(scheduler.queuedCount < 3_000)
        scheduler.cancel(1)
        #expect(scheduler.count == 0)
    }

    /// The deadline queue gives its entries back by deadline, then in the order they were armed.
    @Test func theDeadlineQueueYieldsEntriesInDeadlineOrder() {
        var rng = SplitMix64(seed: 7)
        let start = ContinuousClock.now
        var queue = DeadlineQueue()
        var pushed: [Deadline] = []
        for generation in UInt64(1)...2_000 {
            // Few distinct deadlines, so that ties are broken by generation.
            let entry = Deadline(due: start + .milliseconds(Int(rng.next() % 50)), generation: generation)
            queue.push(entry)
            pushed.append(entry)
            if generation % 3 == 0, let first = queue.first {
                queue.popFirst()
                pushed.removeAll { $0.generation == first.generation }
                #expect(!pushed.contains { $0.precedes(first) }, "popped \(first.generation) before an earlier entry")
            }
        }
        var popped: [Deadline] = []
        while let first = queue.first {
            popped.append(first)
            queue.popFirst()
        }
        #expect(queue.count == 0)
        #expect(popped.map(\.generation) == pushed.sorted { $0.precedes($1) }.map(\.generation))
    }

    @Test func rateLimiterRefills() {
        var limiter = RateLimiter<String>(perMinute: 60, burst: 2)
        let t0 = CPNPTimestamp(millisecondsSinceEpoch: 1_000_000)
        var results: [Bool] = []
        for (key, at) in [
            ("acme", t0), ("acme", t0), ("acme", t0), ("globex", t0), ("acme", t0.adding(.seconds(1))), ("acme", t0.adding(.milliseconds(1_100))),
        ] {
            results.append(limiter.allow(key, now: at))
        }
        // Burst of 2, then refused; other keys independent; one token per second at 60/min.
        #expect(results == [true, true, false, true, true, false])
    }

    @Test func aRestoredRateLimiterResumesWhereTheEventsLeftIt() {
        let now = CPNPTimestamp(millisecondsSinceEpoch: 10_000_000)
        let minuteAgo = now.adding(.seconds(-60))
        // Ten QUOTATIONs a minute: ten taken in the last two seconds leave nothing to take now.
        var drained = RateLimiter<String>(perMinute: 10)
        drained.restore("acme", events: (0..<10).map { now.adding(.milliseconds(-2_000 + Int64($0) * 100)) }, since: minuteAgo, now: now)
        let answers = [
            drained.allow("acme", now: now), drained.allow("globex", now: now),
            // Six seconds later one token came back (10/min), and only one.
            drained.allow("acme", now: now.adding(.seconds(6))), drained.allow("acme", now: now.adding(.seconds(6))),
        ]
        #expect(answers == [false, true, true, false])
        // Ten taken 30 s ago have half refilled: the restart gives back five, not ten.
        var earlier = RateLimiter<String>(perMinute: 10)
        earlier.restore("acme", events: (0..<10).map { _ in now.adding(.seconds(-30)) }, since: minuteAgo, now: now)
        var allowed = 0
        for _ in 0..<10 where earlier.allow("acme", now: now) { allowed += 1 }
        #expect(allowed == 5)
    }
}
