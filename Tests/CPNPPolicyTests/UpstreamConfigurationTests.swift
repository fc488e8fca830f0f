import CPNPCore
import Foundation
import Testing
@testable import CPNPPolicy

/// `upstreams[]`: partner providers for cascaded negotiation (RFC 8921 §8.8), checked with paths.
struct UpstreamConfigurationTests {
    static func directoryWithPKI() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("upstreams-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("pki-b"), withIntermediateDirectories: true)
        for file in ["ca.pem", "client-a.pem", "client-a-key.pem"] {
            try Data("x".utf8).write(to: directory.appendingPathComponent("pki-b/\(file)"))
        }
        return directory
    }

    @Test func anUpstreamLoadsAndKnowsWhatItMayServe() throws {
        let directory = try Self.directoryWithPKI()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("cpnpd.yaml")
        try Data(
            """
            upstreams:
              - name: provider-b
                address: 127.0.0.1:8931
                pki: {ca: pki-b/ca.pem, cert: pki-b/client-a.pem, key: pki-b/client-a-key.pem}
                serves: {countries: [DE], sites: [VIENNA-1]}
                resale: {markup-percent: 12.5, currency: EUR}
                expected-response-time: 45s
                max-open-orders: 50
                customer-description: {name: Provider A, email: noc@provider-a.example}
            """.utf8
        ).write(to: file)
        let c = try ConfigurationLoader.load(contentsOfFile: file.path).get()
        let b = try #require(c.upstreams.first)
        #expect(b.name == "provider-b" && b.address == "127.0.0.1:8931" && b.caFile == directory.appendingPathComponent("pki-b/ca.pem").path)
        #expect(
            b.markupPercent == CPNPDecimal(parsing: "12.5")! && b.currency == "EUR" && b.expectedResponseTime == .seconds(45) && b.maxOpenOrders == 50
        )
        #expect(b.customerDescription?.name == "Provider A")
        func node(site: String?, country: String?) -> CPDCustomerNode {
            CPDCustomerNode(identifier: "CE-1", linkIdentifiers: [], localization: CPDLocalization(siteID: site, country: country))
        }
        #expect(b.mayServe(node(site: nil, country: "DE")) && b.mayServe(node(site: "VIENNA-1", country: "AT")))
        #expect(!b.mayServe(node(site: "PARIS-HQ", country: "FR")))
    }

    @Test func everyProblemIsNamedByItsPath() throws {
        let found = errors(
            """
            upstreams:
              - name: b
                address: "not a host!"
                pki: {ca: /nowhere/ca.pem, cert: /nowhere/c.pem}
                serves: {}
                resale: {markup-percent: -3, currency: euro}
              - name: b
                address: provider-c.example
            """)
        func has(_ prefix: String, _ text: String) -> Bool { found.contains { $0.hasPrefix(prefix) && $0.contains(text) } }
        #expect(has("upstreams[0].address:", "HOST[:PORT]"), "\(found)")
        #expect(has("upstreams[0].pki.ca:", "cannot read /nowhere/ca.pem"))
        #expect(has("upstreams[0].pki.key:", "missing required key"))
        #expect(has("upstreams[0].serves:", "countries, sites, or ask"))
        #expect(has("upstreams[0].resale.markup-percent:", "≥ 0"))
        #expect(has("upstreams[0].resale.currency:", "ISO 4217"))
        #expect(has("upstreams[1].name:", "another upstream is named \"b\""))
        #expect(has("upstreams[1].pki:", "missing required key"))
        #expect(has("upstreams[1].serves:", "missing required key"))
        #expect(ConfigurationParser.isServerAddress("[2001:db8::1]:8921") && ConfigurationParser.isServerAddress("provider-b.example"))
        #expect(!ConfigurationParser.isServerAddress("host:0") && !ConfigurationParser.isServerAddress("a b"))
    }
}
