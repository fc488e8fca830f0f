// Server addresses and SRV discovery (RFC 8921 §8.1; RFC 2782) against a DNS responder on loopback.
import CPNPClient
import CPNPTransport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

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
        let responder = try FakeDNS { name in
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

/// A one-thread DNS responder on 127.0.0.1 answering SRV questions from a table (NXDOMAIN otherwise),
/// with name compression in the answers.
final class FakeDNS: @unchecked Sendable {
    let fd: Int32
    let port: Int
    private let thread: Thread

    init(_ table: @escaping @Sendable (String) -> [(UInt16, UInt16, UInt16, String)]?) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 1_500)
            while true {
                var from = sockaddr_storage()
                var fromLen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let n = withUnsafeMutablePointer(to: &from) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &fromLen) }
                }
                if n <= 0 { return }
                let query = Array(buffer.prefix(n))
                let reply = FakeDNS.answer(query, table)
                _ = withUnsafePointer(to: &from) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, reply, reply.count, 0, $0, fromLen) }
                }
            }
        }
        thread.start()
    }

    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    static func answer(_ q: [UInt8], _ table: (String) -> [(UInt16, UInt16, UInt16, String)]?) -> [UInt8] {
        var labels: [String] = []
        var i = 12
        while q[i] != 0 { labels.append(String(decoding: q[(i + 1)...(i + Int(q[i]))], as: UTF8.self)); i += 1 + Int(q[i]) }
        let questionEnd = i + 5
        let records = table(labels.joined(separator: "."))
        var r = Array(q[0..<2]) + [0x81, records == nil ? 0x83 : 0x80, 0, 1, 0, UInt8(records?.count ?? 0), 0, 0, 0, 0]
        r += q[12..<questionEnd]
        for (priority, weight, port, target) in records ?? [] {
            var rdata = [UInt8(priority >> 8), UInt8(priority & 0xff), UInt8(weight >> 8), UInt8(weight & 0xff), UInt8(port >> 8), UInt8(port & 0xff)]
            if target.hasSuffix(".provider.example") {
                // The target's first label, then a pointer to the question's "provider.example" suffix.
                let first = target.split(separator: ".")[0]
                rdata += [UInt8(first.utf8.count)] + Array(first.utf8) + [0xc0, UInt8(12 + 1 + 5 + 1 + 4)]
            } else {
                for label in target.split(separator: ".") { rdata += [UInt8(label.utf8.count)] + Array(label.utf8) }
                rdata.append(0)
            }
            r += [0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, UInt8(rdata.count)] + rdata
        }
        return r
    }
}
