// Server addresses and SRV discovery (RFC 8921 §8.1; RFC 2782) against a DNS responder on loopback.
import CPNPClient
import CPNPTransport
import CPNPTesting
import Foundation
import Testing

struct DiscoveryTests {
    @Test func serverTargetsParseHostPortAndIPv6() throws {
        let plain = try CPNPServerTarget(parsing: "cpnp.example.net")
        #expect(plain.host == "cpnp.example.net" && plain.port == 8921 && !plain.portGiven)
        let withPort = try CPNPServerTarget(parsing: "10.0.0.1:9000")
        #expect(withPort.host == "10.0.0.1" && withPort.port == 9000 && withPort.portGiven && withPort.isIPLiteral)
        let v6 = try CPNPServerTarget(parsing: "[2001:db8::1]:8922")
        #expect(v6.host == "2001:db8::1" && v6.port == 8922 && v6.description == "[2001:db8::1]:8922")
        #expect(try CPNPServerTarget(parsing: "2001:db8::1").port == 8921)
        for bad in ["", "host:0", "host:70000", "host:x", "[::1", "[::1]x"] {
            #expect(throws: CPNPClientError.self, "\(bad)") { try CPNPServerTarget(parsing: bad) }
        }
    }

    @Test func rfc2782OrderIsByPriorityThenWeightedAndSkipsDot() {
        let records: [SRVResolver.Record] = [
            .init(priority: 20, weight: 0, port: 1, target: "backup.example"),
            .init(priority: 10, weight: 60, port: 2, target: "a.example"),
            .init(priority: 10, weight: 40, port: 3, target: "b.example"),
            .init(priority: 5, weight: 0, port: 4, target: "."),
        ]
        var rng = SystemRandomNumberGenerator()
        var firstA = 0
        for _ in 0..<2_000 {
            let ordered = SRVResolver.order(records, using: &rng)
            #expect(ordered.map(\.priority) == [10, 10, 20])
            if ordered[0].target == "a.example" { firstA += 1 }
        }
        // Weighted 60/40: a.example first about 60 % of the time (±5 % is > 4 standard deviations).
        #expect((1_100...1_300).contains(firstA), "a.example first \(firstA) times out of 2000")
    }

    @Test(.timeLimit(.minutes(1)))
    func srvRecordsComeFromTheDNSServer() async throws {
        let responder = try LoopbackDNSResponder { name in
            switch name {
            case "_cpnp._udp.provider.example": [(10, 5, 9001, "cpnp1.provider.example"), (5, 0, 9002, "cpnp0.provider.example")]
            case "_cpnp._udp.lab.example": [(1, 0, 9101, "127.0.0.1")]
            default: nil
            }
        }
        defer { responder.stop() }
        let resolver = SRVResolver(nameserver: ("127.0.0.1", responder.port), timeout: .seconds(2))
        let servers = try await resolver.servers(for: "provider.example")
        #expect(servers.map(\.description) == ["cpnp0.provider.example:9002", "cpnp1.provider.example:9001"])
        #expect(try await resolver.servers(for: "nothing.example").isEmpty)

        // The locator: a bare domain goes through SRV; an explicit port or an IP literal does not;
        // a domain without SRV records falls back to itself on the default port.
        let located = try await CPNPServerLocator.peers(for: try CPNPServerTarget(parsing: "lab.example"), resolver: resolver)
        #expect(located.map(\.displayName) == ["127.0.0.1:9101"])
        let direct = try await CPNPServerLocator.peers(for: try CPNPServerTarget(parsing: "127.0.0.1:9100"), resolver: resolver)
        #expect(direct.map(\.displayName) == ["127.0.0.1:9100"])
    }
}
