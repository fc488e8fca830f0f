// Tests share Swift's concurrency pool: one thread per CPU (two on the project's machines) for
// every test of a run. A test that holds a pool thread, blocked in waitpid or a sleep or busy for
// seconds, holds up every other test, and their wall-clock bounds run out. So blocking waits run
// on threads of their own, and long computations let the others take turns.
public import Foundation

/// Runs `body`, which blocks (a child process to its end, a sleep), on a thread of its own and
/// returns its result without holding a thread of the concurrency pool.
public func onOwnThread<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Swift.Result { try body() }) }
        thread.start()
    }
}

/// In a long computation (a fuzzer, a property check), gives the pool's threads to the other
/// tests once every `period` steps (`step` counts from 0).
public func yieldEvery(_ period: Int, _ step: Int) async {
    if step % period == period - 1 { await Task.yield() }
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
