import CPNPCore
import Foundation
import Testing
@testable import CPNPPolicy

/// What the local network serves and what is left to upstream providers (RFC 8921 §8.8), and the
/// `cascade` section.
struct LocalCoverageTests {
    /// The demo, with acme entitled to German sites too (no PE serves them).
    static var config: ServerConfiguration {
        var c = Fixture.demo
        c.customers[0].entitlements.countries = ["FR", "DE"]
        return c
    }

    static let request = Fixture.cpd(
        [
            Fixture.node("CE-PAR", site: "PARIS-HQ"), Fixture.node("CE-LYS", site: "LYON-DC"),
            Fixture.node("CE-FRA", site: "FRANKFURT-DC", country: "DE"),
        ],
        capacity: ["CE-PAR", "CE-LYS", "CE-FRA"].map { Fixture.cap($0, in: .fixed(CPNPDecimal(50)), out: .fixed(CPNPDecimal(50))) })

    static func coverage(_ request: CPD, config: ServerConfiguration = config, reservations: [Reservation] = []) -> LocalCoverage? {
        DecisionEngine(configuration: config).localCoverage(
            request: request, informationElements: nil, profile: config.customerProfile(matching: ["acme"]),
            inventory: config.inventory(reservations: reservations), now: Fixture.now)
    }

    @Test func nodesWithoutPresenceAreLeftToOthers() throws {
        let coverage = try #require(Self.coverage(Self.request))
        #expect(coverage.local == ["CE-PAR", "CE-LYS"])
        #expect(coverage.elsewhere.keys.sorted() == ["CE-FRA"])
        #expect(coverage.elsewhere["CE-FRA"]?.contains("CE-FRA") == true)
    }

    @Test func nodesWithoutFreeCapacityAreLeftToOthers() throws {
        let full = Fixture.leaving(0, on: "PE-LYS-1:ge-0/0/3", config: Self.config)
        let coverage = try #require(Self.coverage(Self.request, reservations: full))
        #expect(coverage.local == ["CE-PAR"])
        #expect(Set(coverage.elsewhere.keys) == ["CE-LYS", "CE-FRA"])
    }

    @Test func anotherRefusalIsNotCoveredByOthers() {
        // Not entitled to Germany: no other provider changes a FAIL 4.
        #expect(Self.coverage(Self.request, config: Fixture.demo) == nil)
        // No customer profile.
        #expect(
            DecisionEngine(configuration: Self.config).localCoverage(
                request: Self.request, informationElements: nil, profile: nil, inventory: Self.config.inventory(), now: Fixture.now) == nil)
    }

    @Test func everythingLocalLeavesNothingElsewhere() throws {
        let local = try #require(Self.request.restricted(to: ["CE-PAR", "CE-LYS"]))
        let coverage = try #require(Self.coverage(local))
        #expect(coverage.elsewhere.isEmpty && coverage.local == ["CE-PAR", "CE-LYS"])
    }

    @Test func theCascadeSectionLoadsAndIsChecked() throws {
        let loaded = try ConfigurationLoader.load(
            yaml: """
                database: {path: /var/lib/cpnpd/cpnpd.sqlite}
                cascade: {accept-children: after-accept, on-child-failure: fail, provider-id: provider-a}
                """
        ).get()
        #expect(loaded.cascade == CascadeConfiguration(acceptChildren: .afterAccept, onChildFailure: .fail, providerID: "provider-a"))
        #expect(loaded.cascadeStorePath == "/var/lib/cpnpd/cascade.sqlite")
        #expect(loaded.cascadeProviderID == "provider-a")
        let defaults = try ConfigurationLoader.load(yaml: "provider: {name: Provider A}").get()
        #expect(defaults.cascade.acceptChildren == .beforeOffer && defaults.cascade.onChildFailure == .counterOffer)
        #expect(defaults.cascadeProviderID == "Provider A")
        let found = errors("cascade: {accept-children: later, store: 3, colour: blue}")
        #expect(found.contains { $0.hasPrefix("cascade.accept-children:") && $0.contains("before-offer") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("cascade.colour:") || $0.contains("colour") }, "\(found)")
    }

    @Test func upstreamsOnASharedDatabaseAreRefused() throws {
        let directory = try UpstreamConfigurationTests.directoryWithPKI()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("cpnpd.yaml")
        try Data(
            """
            database: {url: "postgres://cpnp@127.0.0.1/cpnp"}
            upstreams:
              - name: provider-b
                address: 127.0.0.1:8931
                pki: {ca: pki-b/ca.pem, cert: pki-b/client-a.pem, key: pki-b/client-a-key.pem}
                serves: {countries: [DE]}
            """.utf8
        ).write(to: file)
        guard case .failure(let problems) = ConfigurationLoader.load(contentsOfFile: file.path) else {
            Issue.record("upstreams with PostgreSQL loaded")
            return
        }
        #expect("\(problems)".contains("upstreams"), "\(problems)")
    }
}
