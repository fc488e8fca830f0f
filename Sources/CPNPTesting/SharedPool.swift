// Tests share Swift's concurrency pool: one thread per CPU (two on the project's machines) for
// every test of a run. A test that holds a pool thread, blocked in waitpid or a sleep or busy for
// seconds, holds up every other test, and their wall-clock bounds run out. So blocking waits run
// on threads of their own, and long computations run on one thread outside the pool.
public import Foundation
import Synchronization

/// Runs `body`, which blocks (a child process to its end, a sleep), on a thread of its own and
/// returns its result without holding a thread of the concurrency pool.
public func onOwnThread<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Swift.Result { try body() }) }
        thread.start()
    }
}

/// Runs `body`, a CPU-heavy computation (a fuzzer, a property run), on the suite's computation
/// thread, outside the pool: one computation at a time, while the operating system shares the CPUs
/// between that thread and the pool's. `body` returns what it found; the test records issues from
/// its own task (swift-testing ties an issue to its test through the task).
public func computeOffThePool<Output: Sendable, Failure: Error>(
    _ body: @escaping @Sendable () throws(Failure) -> Output
) async throws(Failure) -> Output {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Output, Failure>, Never>) in
        ComputationThread.shared.run { continuation.resume(returning: Result { () throws(Failure) -> Output in try body() }) }
    }
    return try result.get()
}

/// One thread, started on first use, that runs the computations given to it in turn.
private final class ComputationThread: Sendable {
    static let shared = ComputationThread()
    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let queued = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { self.runJobs() }
        thread.name = "tests.computation"
        thread.start()
    }

    private func runJobs() -> Never {
        while true {
            queued.wait()
            let job = jobs.withLock { $0.removeFirst() }
            job()
        }
    }

    func run(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(job) }
        queued.signal()
    }
}

extension Process {
    /// Waits for the process to end, looking every 20 ms rather than blocking a thread: whether it
    /// ended within `timeout` (or before the task was cancelled).
    public func ends(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline {
            guard (try? await Task.sleep(for: .milliseconds(20))) != nil else { break }
        }
        return !isRunning
    }
}
