import Foundation
import Synchronization

/// SIGTERM and SIGINT as a request for a graceful shutdown, caught from ``install()`` on. The handler
/// only writes a byte to a pipe (async-signal-safe); a thread reading the pipe runs the shutdown
/// once it is set with ``onSignal(_:)``, even for a signal that came before.
public final class ShutdownSignals: Sendable {
    public static let shared = ShutdownSignals()
    private let state = Mutex<(handler: (@Sendable () async -> Void)?, received: Bool)>((nil, false))

    /// The pipe the handler writes to (a global: a C signal handler captures nothing).
    nonisolated(unsafe) static var writeEnd: Int32 = -1

    public func install() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw ShutdownSignalsError(errno: errno) }
        Self.writeEnd = ends[1]
        let handler: @convention(c) (Int32) -> Void = { _ in
            var byte: UInt8 = 1
            _ = write(ShutdownSignals.writeEnd, &byte, 1)
        }
        signal(SIGTERM, handler)
        signal(SIGINT, handler)
        let readEnd = ends[0]
        let thread = Thread { [self] in
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) == 1 {
                let handler = state.withLock { s -> (@Sendable () async -> Void)? in
                    s.received = true
                    return s.handler
                }
                if let handler { Task { await handler() } }
            }
        }
        thread.start()
    }

    /// What a signal does; runs at once if one already came.
    public func onSignal(_ handler: @escaping @Sendable () async -> Void) {
        let received = state.withLock { s -> Bool in
            s.handler = handler
            return s.received
        }
        if received { Task { await handler() } }
    }
}

/// The signal pipe could not be made.
public struct ShutdownSignalsError: Error, CustomStringConvertible {
    public var errno: Int32
    public var description: String { "cannot create the signal pipe: errno \(errno)" }
}
