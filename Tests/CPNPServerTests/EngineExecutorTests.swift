// The engine on an executor it is given (cpnpd gives it the CPNP socket's event loop): every change
// and every send runs there, and sends go straight to a sink that takes them without waiting.
import CPNPCore
import CPNPRuntime
@testable import CPNPServer
import CPNPStorage
import CPNPTesting
import Foundation
import Synchronization
import Testing

@Suite("Server engine on a given executor")
struct EngineExecutorTests {
    /// A serial executor on one thread of its own, standing in for an event loop. The thread holds it
    /// and never ends (one per test run, like NIO's shared loops).
    final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
        private let condition = NSCondition()
        private var jobs: [UnownedJob] = []
        private var thread: Thread?

        init() {
            let thread = Thread { self.run() }
            self.thread = thread
            thread.start()
        }

        var isCurrent: Bool { Thread.current === thread }

        private func run() {
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                condition.unlock()
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
        }

        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            condition.lock()
            jobs.append(job)
            condition.signal()
            condition.unlock()
        }

        func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
    }

    /// Takes every message without waiting, noting whether it came from the executor's thread.
    final class DirectSink: ServerMessageSink {
        let executor: ThreadExecutor
        let inner = CollectingSink()
        let fromElsewhere = Mutex(0)
        let direct = Mutex(0)
        init(executor: ThreadExecutor) { self.executor = executor }

        func send(_ bytes: [UInt8], on session: CPNPSession) async {
            Issue.record("a message went through the sender task")
            await inner.send(bytes, on: session)
        }

        func sendWithoutWaiting(_ bytes: [UInt8], on session: CPNPSession) -> Bool {
            if !executor.isCurrent { fromElsewhere.withLock { $0 += 1 } }
            direct.withLock { $0 += 1 }
            inner.sent.withLock { $0.append((bytes, session)) }
            return true
        }
    }

    @Test func negotiationsRunOnTheGivenExecutorAndSendStraightToTheSink() async throws {
        let executor = ThreadExecutor()
        let sink = DirectSink(executor: executor)
        let engine = CPNPServerEngine(
            configuration: testConfiguration(), store: try ServerOrderStore.inMemory(), sink: sink, logger: quietLogger("cpnpd-test"),
            sendsWithoutWaiting: true, executor: executor)
        var (parties, quotations) = try GroupCommitEngineTests.parties(4, prefix: "exec")
        for quotation in quotations { #expect(engine.submit(quotation)) }
        let deadline = ContinuousClock.now + .seconds(60)
        // QUOTATION → PROCESSING + OFFER, then ACCEPT → ACK, all through submit.
        while parties.contains(where: { $0.machine.state != .completed }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
            var next = GroupCommitEngineTests.deliver(sink.inner, to: &parties)
            for i in parties.indices where parties[i].machine.state == .offerReceived {
                for case .send(let accept) in try parties[i].machine.accept(now: SystemWallClock().now()) {
                    next.append(parties[i].customer.datagram(accept))
                }
            }
            for datagram in next { #expect(engine.submit(datagram)) }
        }
        #expect(parties.allSatisfy { $0.machine.state == .completed })
        #expect(sink.direct.withLock { $0 } >= 8)
        #expect(sink.fromElsewhere.withLock { $0 } == 0)
    }
}
