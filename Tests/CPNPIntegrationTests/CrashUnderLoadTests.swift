// Crash recovery under load (docs/design/storage.md): customers negotiate continuously with a real cpnpd over DTLS
// while the test kills it with SIGKILL at random (seeded) moments and restarts it on the same
// database. Afterwards every order must be in a state consistent on both sides, none duplicated, and
// the provider's reserved capacity exactly that of its live offers and agreements.
import CPNPClient
import CPNPCore
import CPNPStorage
import CPNPTransport
import CPNPTesting
import Foundation
import Logging
import Synchronization
import Testing

/// The suites that load the machine with many customers and kill processes: one at a time, so that
/// one's load never starves another's deadlines (each still runs beside the lighter suites).
@Suite(.serialized)
enum LoadAndKillTests {
    /// The demo policy with room for many QUOTATIONs and open orders from one customer certificate.
    /// With `unlimitedCapacity`, room on every link for every agreement (capacity is checked for exactness, not exhausted).
    static func configuration(offerValidity: String = "10m", unlimitedCapacity: Bool = false) throws -> String {
        var yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "quotations-per-minute: ", with: "quotations-per-minute: 100000 #")
        yaml = yaml.replacingOccurrences(of: "max-open-orders: 20\n", with: "max-open-orders: 100000\n")
        yaml = yaml.replacingOccurrences(of: "offer-validity: 10m", with: "offer-validity: \(offerValidity)")
        if unlimitedCapacity {
            yaml = yaml.replacingOccurrences(of: "capacity-mbps: {incoming: 400, outgoing: 200}", with: "capacity-mbps: 1000000")
            for n in ["10000", "1000", "200"] { yaml = yaml.replacingOccurrences(of: "capacity-mbps: \(n)\n", with: "capacity-mbps: 1000000\n") }
        }
        return yaml
    }
}

extension LoadAndKillTests {
    @Suite(.enabled(if: Daemon.binary != nil, "cpnpd not found next to the test bundle: run `swift build` first"), .serialized)
    struct CrashUnderLoadTests {
        struct CustomerResult: Sendable {
            var store: ClientOrderStore
            var completed = 0
            var withdrawn = 0
            var errors: [String] = []
        }

        @Test(.timeLimit(.minutes(4)))
        func killNineAtRandomPointsUnderLoad() async throws {
            let daemon = try await Daemon.start(configuration: try LoadAndKillTests.configuration(unlimitedCapacity: true))
            defer { daemon.stop() }
            let pki = daemon.pkiDirectory
            let security = try CPNPSecurityConfiguration(
                certificateFile: pki.appendingPathComponent("client-acme.pem").path, keyFile: pki.appendingPathComponent("client-acme-key.pem").path,
                trustRootsFile: pki.appendingPathComponent("ca.pem").path)
            let server = try CPNPPeer.server(host: "127.0.0.1", port: daemon.port)
            let request = try loadExample("l3vpn-3-sites.json")
            let stop = StopFlag()
            let logger = quietLogger("crash-under-load")

            let load = Task {
                try await withThrowingTaskGroup(of: CustomerResult.self) { group in
                    for _ in 0..<4 {
                        group.addTask {
                            let transport = try await DTLSTransport.client(
                                bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: security), logger: logger)
                            var result = CustomerResult(store: try ClientOrderStore.inMemory())
                            // A kill after the server answered a WITHDRAW with PROCESSING and committed its end, before
                            // the final ACK left, loses that ACK (the new process has no DTLS session with the customer):
                            // the customer repeats the WITHDRAW after its withdrawal interval (RFC 8921 §11.1.2), 60 s at
                            // least, and the repeat gets the stored ACK. The WITHDRAW timeout leaves room for it.
                            let engine = CPNPClientEngine(
                                transport: transport, store: result.store,
                                configuration: CPNPClientEngine.Configuration(
                                    machine: .init(
                                        retransmission: RetransmissionPolicy(initialInterval: .milliseconds(200), maximumRetries: 7),
                                        withdrawalRetryInterval: .seconds(60)),
                                    expectedResponseTime: .seconds(60), renewSessionWhenUnanswered: true),
                                logger: logger)
                            await engine.start()
                            var n = 0
                            while !stop.isSet {
                                n += 1
                                do {
                                    let id = try await engine.quote(request, to: server)
                                    guard case .offer = try await engine.awaitOffer(id) else { continue }
                                    _ = try await engine.accept(id)
                                    result.completed += 1
                                    if n % 3 == 0 {
                                        try await engine.withdraw(id, timeout: .seconds(90))
                                        result.withdrawn += 1
                                    }
                                } catch {
                                    result.errors.append("\(error)")
                                }
                            }
                            await engine.settle(timeout: .seconds(15))
                            await engine.shutdown()
                            return result
                        }
                    }
                    var all: [CustomerResult] = []
                    for try await r in group { all.append(r) }
                    return all
                }
            }

            // SIGKILL at random moments (seeded), restarting on the same database and port each time.
            var rng = SplitMix64(seed: 0xC0FFEE)
            var kills = 0
            for _ in 0..<4 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 400...1_500, using: &rng)))
                daemon.kill9()
                kills += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...300, using: &rng)))
                try await daemon.restart()
            }
            try await Task.sleep(for: .seconds(1))
            stop.set()
            let results = try await load.value
            #expect(kills == 4)
            let completed = results.reduce(0) { $0 + $1.completed }
            #expect(completed >= 4, "too little load to mean anything: \(completed) agreements; errors: \(results.flatMap(\.errors))")
            #expect(await daemon.terminate() == 0)
            print(
                "crash under load: \(kills) kills, \(completed) agreements, \(results.reduce(0) { $0 + $1.withdrawn }) withdrawn, "
                    + "\(results.reduce(0) { $0 + $1.errors.count }) client errors (\(Set(results.flatMap(\.errors)).sorted().prefix(3).joined(separator: "; ")))"
            )

            // The provider's view, from its database, against each customer's.
            try expectConsistent(provider: try ServerOrderStore(path: daemon.database.path), customers: results.map(\.store))
        }
    }
}

final class StopFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
