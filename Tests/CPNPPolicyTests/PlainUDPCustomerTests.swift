// `listen.plain-udp-customer`: the lab identity of unauthenticated plain-UDP clients.
import CPNPPolicy
import Foundation
import Testing

struct PlainUDPCustomerTests {
    func example(listen: String) throws -> String {
        let text = try String(contentsOf: Repo.root.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        let start = try #require(text.range(of: "listen:\n"))
        let end = try #require(text.range(of: "\n\n", range: start.upperBound..<text.endIndex))
        return text.replacingCharacters(in: start.lowerBound..<end.lowerBound, with: listen)
    }

    @Test func aKnownCustomerWithPlainUDPLoads() throws {
        let c = try loadValid(try example(listen: "listen:\n  transport: plain-udp\n  plain-udp-customer: acme"))
        #expect(c.listen.plainUDPCustomer == "acme" && c.listen.transport == .plainUDP)
    }

    @Test func itIsRefusedWithASecureTransportOrAnUnknownCustomer() throws {
        #expect(
            errors(try example(listen: "listen:\n  transport: dtls\n  plain-udp-customer: acme"))
                == ["listen.plain-udp-customer: only allowed with transport: plain-udp"])
        #expect(
            errors(try example(listen: "listen:\n  transport: plain-udp\n  plain-udp-customer: initech"))
                == [#"listen.plain-udp-customer: unknown customer identity "initech" (not in customers)"#])
    }
}
