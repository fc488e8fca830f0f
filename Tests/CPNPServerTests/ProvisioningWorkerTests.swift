import Testing
import CPNPCore
import CPNPPolicy
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation

@Suite("Provisioning hand-off")
struct ProvisioningWorkerTests {
    /// With no hook configured, the events are kept (the log is the audit) and recorded as delivered
    /// when committed: no delivery round runs for them.
    @Test func withoutAHookEventsAreRecordedDeliveredAtOnce() async throws {
        let store = try ServerOrderStore(path: TestPaths().database)
        let sink = CollectingSink()
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        let acme = TestCustomer("acme", port: 40_011)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-no-hook")!)
        try await acme.agree(&order, CPD.marseille(min: 10, max: 20), engine: engine, sink: sink, now: SystemWallClock().now())
        #expect(order.state == .completed)
        let events = try store.outbox(providerOrderID: try #require(order.providerOrderID))
        #expect(events.map(\.kind) == [.agreement, .activation])
        #expect(events.allSatisfy { $0.deliveredAt != nil && $0.attempts == 0 })
        #expect(try store.undeliveredOutboxCount() == 0)
        #expect(
            await ProvisioningWorker(configuration: ProvisioningConfiguration(), store: store, logger: quietLogger("cpnpd-test")).deliverDue() == 0)
    }

    /// An agreement is handed to the command hook with the order as JSON on stdin; a failing hook
    /// is retried later and the event is not lost.
    @Test func commandHookReceivesTheOrderAndFailuresAreRetried() async throws {
        let paths = TestPaths()
        let store = try ServerOrderStore(path: paths.database)
        let sink = CollectingSink()
        var configuration = testConfiguration()
        configuration.provisioning = ProvisioningConfiguration(command: ["/bin/true"])
        let engine = CPNPServerEngine(configuration: configuration, store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        let acme = TestCustomer("acme", port: 40_010)
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-prov")!)
        await acme.deliver(
            try order.quote(requestedCPD: CPD.marseille(min: 10, max: 20), session: acme.clientSession, now: now, using: &rng), to: engine)
        await acme.receive(sink, into: &order, engine: engine, now: now)
        await acme.deliver(try order.accept(now: now), to: engine)
        await acme.receive(sink, into: &order, engine: engine, now: now)
        #expect(order.state == .completed)

        // A hook that fails: nothing delivered, the events stay in the outbox with a later attempt.
        var failing = ProvisioningConfiguration(command: ["/bin/sh", "-c", "cat >/dev/null; echo broken >&2; exit 3"])
        failing.retryInitialBackoff = .milliseconds(1)
        #expect(await ProvisioningWorker(configuration: failing, store: store, logger: quietLogger("cpnpd-test")).deliverDue() == 0)
        #expect(try store.undeliveredOutboxCount() == 2)
        let pending = try store.outbox(providerOrderID: order.providerOrderID!)
        #expect(pending.map(\.kind) == [.agreement, .activation])
        // Events of one order go in order: the activation waits for the agreement.
        #expect(pending[0].attempts == 1 && pending[0].lastError?.contains("status 3") == true)
        #expect(pending[1].attempts == 0)

        // A working hook: each event arrives as one JSON document on stdin.
        let file = paths.directory.appendingPathComponent("hook.log").path
        try await Task.sleep(for: .milliseconds(20))
        let working = ProvisioningConfiguration(command: ["/bin/sh", "-c", "cat >> '\(file)'; echo >> '\(file)'"])
        #expect(await ProvisioningWorker(configuration: working, store: store, logger: quietLogger("cpnpd-test")).deliverDue() == 2)
        #expect(try store.undeliveredOutboxCount() == 0)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try JSONParser.parse(Array(lines[0].utf8)).object(at: .root)
        #expect(first["event"] == .string("agreed"))
        #expect(first["provider-order-id"] == .string(order.providerOrderID!.rawValue))
        // The order with its agreed CPD, read from the documents table (stored once).
        let agreed = try #require(first["order"]).object(at: .root)
        #expect(agreed["cpd"] == order.agreement?.acceptedCPD.json)
        let second = try JSONParser.parse(Array(lines[1].utf8)).object(at: .root)
        #expect(second["event"] == .string("activated"))
        // Each carries the id of its event, for a hook to ignore a repeated delivery.
        #expect(first["event-id"] == .number(CPNPDecimal(parsing: String(pending[0].id))!))
        #expect(second["event-id"] == .number(CPNPDecimal(parsing: String(pending[1].id))!))
    }
}
