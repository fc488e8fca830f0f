import CPNPTransport
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

struct TimeoutError: Error, CustomStringConvertible {
    /// What the test waited for, when it says.
    var waitingFor = ""
    var seconds: Double = 0
    var description: String { "test deadline exceeded" + (waitingFor.isEmpty ? "" : " after \(seconds) s waiting for \(waitingFor)") }
}

/// A stream that finished before giving the element a test waited for.
struct StreamFinishedError: Error, CustomStringConvertible {
    var description: String { "the stream finished without the element the test waited for" }
}

/// Runs `body` with a hard deadline so that no test can hang. Unlike a task group, this does
/// not wait for a body that ignores cancellation: the caller gets `TimeoutError` on time.
func withDeadline<T: Sendable>(
    _ seconds: Double = 10, waitingFor: String = "", _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = ResumeOnce<T>()
    return try await withCheckedThrowingContinuation { continuation in
        once.install(continuation)
        let work = Task {
            do { once.resume(.success(try await body())) } catch { once.resume(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            if once.resume(.failure(TimeoutError(waitingFor: waitingFor, seconds: seconds))) { work.cancel() }
        }
    }
}

final class ResumeOnce<T: Sendable>: Sendable {
    private let state = NIOLockedValueBox<(CheckedContinuation<T, any Error>?, Result<T, any Error>?)>((nil, nil))

    func install(_ continuation: CheckedContinuation<T, any Error>) {
        let early: Result<T, any Error>? = state.withLockedValue { state in
            if let result = state.1 { state.1 = nil; return result }
            state.0 = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// Resumes the waiter once; returns whether this call did it.
    @discardableResult
    func resume(_ result: Result<T, any Error>) -> Bool {
        let continuation: CheckedContinuation<T, any Error>?? = state.withLockedValue { state in
            if let continuation = state.0 {
                state.0 = nil
                state.1 = nil
                return .some(continuation)
            }
            return .none
        }
        if let continuation = continuation ?? nil {
            continuation.resume(with: result)
            return true
        }
        return false
    }
}

/// The next element of a stream, or a timeout.
func next<E: Sendable>(_ stream: AsyncStream<E>, within seconds: Double = 10, waitingFor: String = "") async throws -> E {
    try await withDeadline(seconds, waitingFor: waitingFor) {
        var iterator = stream.makeAsyncIterator()
        guard let element = await iterator.next() else { throw StreamFinishedError() }
        return element
    }
}

/// A log handler that keeps the lines, to check that failures are logged once and clearly.
struct CapturingLogHandler: LogHandler {
    let lines: NIOLockedValueBox<[(Logger.Level, String)]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.withLockedValue { $0.append((event.level, "\(event.message)")) }
    }
}

func capturingLogger() -> (Logger, NIOLockedValueBox<[(Logger.Level, String)]>) {
    let lines = NIOLockedValueBox<[(Logger.Level, String)]>([])
    let logger = Logger(label: "test") { _ in CapturingLogHandler(lines: lines) }
    return (logger, lines)
}
