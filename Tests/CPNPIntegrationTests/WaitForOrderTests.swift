import CPNPClient
import CPNPCore
import CPNPTesting
import CPNPTransport
import Foundation
import Synchronization
import Testing

/// `waitForOrder` (Sources/CPNPTesting/ProviderModes.swift) judges only views fetched once its time is
/// up: a slow `cpnpd admin show` begun earlier may return the state from before the change awaited.
@Suite("Waiting for an order's state through slow views")
struct WaitForOrderTests {
    /// A provider whose `admin show` prints the state the order had when the call began, and returns
    /// after `delay`; the order is cancelled `cancelledAfter` its creation.
    final class SlowViews: ProviderUnderTest {
        let created = ContinuousClock.now
        let cancelledAfter: Duration
        let delay: Duration
        let fetches = Mutex(0)

        init(cancelledAfter: Duration, delay: Duration) {
            self.cancelledAfter = cancelledAfter
            self.delay = delay
        }

        var pkiDirectory: URL { FileManager.default.temporaryDirectory }
        var server: CPNPPeer { get throws { throw DaemonError(description: "no server") } }

        func admin(_ arguments: [String]) async throws -> String {
            fetches.withLock { $0 += 1 }
            let cancelled = ContinuousClock.now - created >= cancelledAfter
            try await Task.sleep(for: delay)
            return cancelled ? "state: Cancelled (closed)\n" : "state: AwaitingProcessing\n"
        }

        func testClient(_ name: String) async throws -> TestClient { throw DaemonError(description: "no customers") }
        func customerEngine() async throws -> CPNPClientEngine { throw DaemonError(description: "no customers") }
    }

    static let order = ProviderOrderID("po-0000000000000000000000000001")!

    @Test(.timeLimit(.minutes(1)))
    func aViewBegunBeforeTheDeadlineIsFetchedAgain() async throws {
        // The first fetch begins before the change and returns after the deadline, stale.
        let provider = SlowViews(cancelledAfter: .milliseconds(100), delay: .milliseconds(600))
        let view = try await provider.waitForOrder(Self.order, timeout: .milliseconds(300)) { $0.isClosed }
        #expect(view.state == "Cancelled")
        #expect(provider.fetches.withLock { $0 } == 2)
    }

    @Test(.timeLimit(.minutes(1)))
    func aStateNeverReachedStillFails() async throws {
        let provider = SlowViews(cancelledAfter: .seconds(3600), delay: .milliseconds(50))
        await #expect(throws: DaemonError.self) {
            try await provider.waitForOrder(Self.order, timeout: .milliseconds(300)) { $0.isClosed }
        }
        // Fetched until one began after the deadline, and not much later.
        #expect((2...6).contains(provider.fetches.withLock { $0 }))
    }
}
