// Negotiations over a lossy network: CPNP messages lost, duplicated, reordered and
// delayed in each direction (ChaosTransport, seeded), between client engines and a real provider
// engine over real DTLS on loopback. Every negotiation that can complete does, none completes twice,
// and the provider's reserved capacity is exactly that of its agreements and live offers.
import CPNPClient
import CPNPCore
import CPNPPolicy
import CPNPRuntime
import CPNPServer
import CPNPStorage
import CPNPTransport
import CPNPTesting
import Testing

@Suite(.serialized)
struct LossyNetworkTests {
    struct Scenario: Sendable, CustomTestStringConvertible {
        var loss: Double
        var retries: Int
        /// With this many retries every negotiation is expected to complete (P(failure) < 1e-3 per run).
        var allComplete: Bool
        var testDescription: String { "\(Int(loss * 100)) % loss each way" }
    }

    struct CustomerRun: Sendable {
        var agreements: [Agreement] = []
        /// Orders whose ACCEPT went unanswered (the client was told: `noResponse`).
        var unconfirmed: [CustomerOrderID] = []
        var failed: [String] = []
        var outgoing = ChaosTransport.Counters()
        var incoming = ChaosTransport.Counters()
    }

    @Test(
        .timeLimit(.minutes(3)),
        arguments: [
            Scenario(loss: 0.05, retries: 8, allComplete: true),
            Scenario(loss: 0.2, retries: 8, allComplete: true),
            Scenario(loss: 0.4, retries: 10, allComplete: false),
        ])
    func negotiationsCompleteExactlyOnceUnderLoss(_ scenario: Scenario) async throws {
        let pki = try TestPKI()
        var configuration = providerConfiguration()
        // The provider retransmits its OFFER like the clients retransmit their requests.
        configuration.timers.retransmissionInitial = .milliseconds(50)
        configuration.timers.retransmissionMaxRetries = scenario.retries
        // Room for every agreement: the point is the network, not the inventory.
        for i in configuration.policy.links.indices { configuration.policy.links[i].capacity = LinkCapacity(symmetric: 100_000) }
        let provider = try await InProcessProvider(pki: pki, configuration: configuration)
        let peer = try provider.peer()
        let request = try loadExample("l3vpn-3-sites.json")
        let faults = ChaosTransport.Faults(drop: scenario.loss, duplicate: 0.05, reorder: 0.05, delay: .zero ... .milliseconds(20))

        let customers = 4
        let perCustomer = 5
        let runs = try await withThrowingTaskGroup(of: CustomerRun.self) { group in
            for c in 0..<customers {
                group.addTask {
                    let dtls = try await DTLSTransport.client(
                        bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: try pki.client("acme")),
                        logger: quietLogger("cpnp-client-test"))
                    let chaos = ChaosTransport(wrapping: dtls, outgoing: faults, incoming: faults, seed: 0x5EED_0000 + UInt64(c))
                    let engine = CPNPClientEngine(
                        transport: chaos, store: try ClientOrderStore.inMemory(),
                        configuration: CPNPClientEngine.Configuration(
                            machine: .init(
                                retransmission: RetransmissionPolicy(initialInterval: .milliseconds(50), maximumRetries: scenario.retries)),
                            expectedResponseTime: .seconds(120)),
                        logger: quietLogger("cpnp-client-test"))
                    await engine.start()
                    var run = CustomerRun()
                    for _ in 0..<perCustomer {
                        let id = try await engine.quote(request, to: peer)
                        do {
                            guard case .offer = try await engine.awaitOffer(id) else {
                                run.failed.append("no offer")
                                continue
                            }
                            run.agreements.append(try await engine.accept(id))
                        } catch CPNPClientError.noResponse(.accept) {
                            run.unconfirmed.append(id)
                        } catch {
                            run.failed.append("\(error)")
                        }
                    }
                    await engine.settle(timeout: .seconds(5))
                    await engine.shutdown()
                    run.outgoing = chaos.counters(.outgoing)
                    run.incoming = chaos.counters(.incoming)
                    return run
                }
            }
            var all: [CustomerRun] = []
            for try await r in group { all.append(r) }
            return all
        }
        let agreements = runs.flatMap(\.agreements)
        if scenario.allComplete {
            #expect(agreements.count == customers * perCustomer, "failures: \(runs.flatMap(\.failed)) unconfirmed: \(runs.flatMap(\.unconfirmed))")
        } else {
            #expect(agreements.count >= customers * perCustomer / 2)
        }
        // The faults really happened.
        let dropped = runs.reduce(0) { $0 + $1.outgoing.dropped + $1.incoming.dropped }
        let messages = runs.reduce(0) { $0 + $1.outgoing.messages + $1.incoming.messages }
        #expect(Double(dropped) > Double(messages) * scenario.loss / 2, "dropped \(dropped) of \(messages)")

        // Exactly once: every client agreement is one Completed provider order; a provider order
        // Completed without the client's agreement is one whose ACK the client was told it missed.
        let completed = try provider.store.orders(limit: 1_000, state: .completed)
        let completedIDs = Set(completed.map(\.providerOrderID))
        #expect(completed.count == completedIDs.count)
        #expect(Set(agreements.map(\.providerOrderID)).isSubset(of: completedIDs))
        #expect(completed.count - agreements.count <= runs.reduce(0) { $0 + $1.unconfirmed.count }, "failures: \(runs.flatMap(\.failed))")
        // No capacity double-booked: committed reservations belong to Completed orders only, and every
        // open order other than Completed holds at most its offer.
        for order in try provider.store.openOrders() {
            let reservations = try provider.store.reservations(providerOrderID: order.providerOrderID)
            if order.machine.state == .completed {
                #expect(!reservations.committed.isEmpty && reservations.offered.isEmpty)
            } else {
                #expect(reservations.committed.isEmpty, "\(order.machine.state.rawValue) holds committed capacity")
            }
        }
        for closed in try provider.store.orders(limit: 1_000, state: .cancelled) {
            #expect(try provider.store.reservations(providerOrderID: closed.providerOrderID).isEmpty)
        }
        #expect(try provider.store.reservationTotalMismatches() == [])
        await provider.stop()
    }
}
