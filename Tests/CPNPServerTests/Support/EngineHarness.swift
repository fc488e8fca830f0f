// An in-process harness: a real CPNPServerEngine with a real SQLite store and the demo policy, and
// client order machines on the other side exchanging encoded messages (no sockets).
import CPNPCore
import CPNPPolicy
import CPNPStorage
import CPNPTesting
@testable import CPNPServer
import Foundation
import Logging
import Synchronization

struct TestPaths {
    let directory: URL
    var database: String { directory.appendingPathComponent("cpnpd.sqlite").path }
    init() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-engine-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }
}

/// A server engine on a fresh SQLite store in a directory of its own, and a sink that keeps what it sends.
func engineUnderTest(configuration: ServerConfiguration = testConfiguration()) throws -> (
    store: ServerOrderStore, sink: CollectingSink, engine: CPNPServerEngine
) {
    let store = try ServerOrderStore(path: TestPaths().database)
    let sink = CollectingSink()
    return (store, sink, CPNPServerEngine(configuration: configuration, store: store, sink: sink, logger: quietLogger("cpnpd-test")))
}

/// The demo policy with limits raised for load tests.
func testConfiguration(quotationsPerMinute: Int = 100_000, maxOpenOrders: Int = 100_000) -> ServerConfiguration {
    var c = ServerConfiguration.demo
    c.rateLimits.quotationsPerMinute = quotationsPerMinute
    c.rateLimits.failsPerMinute = 100_000
    for i in c.customers.indices { c.customers[i].maxOpenOrders = maxOpenOrders }
    return c
}

let serverEndpoint = CPNPEndpoint(host: "127.0.0.1", port: 8921)

/// One customer: a client machine per order, on its own port.
struct TestCustomer {
    var identity: ClientIdentity
    var endpoint: CPNPEndpoint
    var clientSession: CPNPSession { CPNPSession(local: endpoint, remote: serverEndpoint) }
    var serverSession: CPNPSession { CPNPSession(local: serverEndpoint, remote: endpoint) }

    init(_ name: String, port: UInt16) {
        identity = ClientIdentity(names: [name], subject: "CN=\(name)")
        endpoint = CPNPEndpoint(host: "127.0.0.1", port: port)
    }

    func datagram(_ m: CPNPMessage) -> InboundDatagram {
        InboundDatagram(bytes: CPNPCodec.encode(m), session: serverSession, identity: identity)
    }

    /// Sends every message among `actions` to the engine.
    func deliver(_ actions: [ClientOrderStateMachine.Action], to engine: CPNPServerEngine) async {
        for case .send(let m) in actions { await engine.receive(datagram(m)) }
    }

    /// Quotes `cpd` and accepts the offer: the order is Completed on both sides.
    func agree(_ order: inout ClientOrderStateMachine, _ cpd: CPD, engine: CPNPServerEngine, sink: CollectingSink, now: CPNPTimestamp) async throws {
        var rng = SystemRandomNumberGenerator()
        await deliver(try order.quote(requestedCPD: cpd, session: clientSession, now: now, using: &rng), to: engine)
        await receive(sink, into: &order, engine: engine, now: now)
        await deliver(try order.accept(now: now), to: engine)
        await receive(sink, into: &order, engine: engine, now: now)
    }

    /// Feeds what the engine sent to this customer into `machine`; returns the messages.
    @discardableResult
    func receive(_ sink: CollectingSink, into machine: inout ClientOrderStateMachine, engine: CPNPServerEngine, now: CPNPTimestamp) async
        -> [CPNPMessage]
    {
        let messages = sink.take(for: endpoint)
        for m in messages {
            let a = machine.messageReceived(m, session: clientSession, now: now)
            await deliver(a, to: engine)
        }
        return messages
    }
}
