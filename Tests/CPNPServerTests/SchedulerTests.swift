import Testing
import CPNPCore
@testable import CPNPServer
import CPNPRuntime
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

    @Test func rateLimiterRefills() {
        var limiter = RateLimiter<String>(perMinute: 60, burst: 2)
        let t0 = CPNPTimestamp(millisecondsSinceEpoch: 1_000_000)
        var results: [Bool] = []
        for (key, at) in [("acme", t0), ("acme", t0), ("acme", t0), ("globex", t0), ("acme", t0.adding(.seconds(1))), ("acme", t0.adding(.milliseconds(1_100)))] {
            results.append(limiter.allow(key, now: at))
        }
        // Burst of 2, then refused; other keys independent; one token per second at 60/min.
        #expect(results == [true, true, false, true, true, false])
    }
}
