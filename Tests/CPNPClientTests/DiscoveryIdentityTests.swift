// Which name a discovered server's certificate is checked against (RFC 8921 §8.1; RFC 6125 §6.2).
import CPNPClient
import CPNPTransport
import CPNPTesting
import Testing

struct DiscoveryIdentityTests {
    @Test(.timeLimit(.minutes(1)))
    func aServerFoundBySRVIsCheckedAgainstTheSourceDomainNotTheTarget() async throws {
        let responder = try LoopbackDNSResponder { name in
            name == "_cpnp._udp.Lab.Example" || name == "_cpnp._udp.lab.example" ? [(1, 0, 9101, "127.0.0.1"), (2, 0, 9102, "localhost")] : nil
        }
        defer { responder.stop() }
        let resolver = SRVResolver(nameserver: ("127.0.0.1", responder.port), timeout: .seconds(2))
        // Found through SRV: the reference identity is the SRV-ID of the domain the user gave
        // (the certificate must carry SRV-ID _cpnp.lab.example or DNS-ID lab.example).
        let located = try await CPNPServerLocator.peers(for: try CPNPServerTarget(parsing: "Lab.Example"), resolver: resolver)
        #expect(located.map(\.serverName) == ["_cpnp.lab.example", "_cpnp.lab.example"])
        #expect(located.map(\.displayName) == ["127.0.0.1:9101", "127.0.0.1:9102"])
        // Dialled directly: the name dialled.
        let direct = try await CPNPServerLocator.peers(for: try CPNPServerTarget(parsing: "localhost:9100"), resolver: resolver)
        #expect(direct.map(\.serverName) == ["localhost"])
        let noSRV = try await CPNPServerLocator.peers(for: try CPNPServerTarget(parsing: "127.0.0.1"), resolver: resolver)
        #expect(noSRV.map(\.serverName) == ["127.0.0.1"])
    }
}
