import CPNPCore
import Foundation
import Testing
@testable import CPNPPolicy

/// The `catalog` section: templates of the customer portal and `cpnp catalog`, checked as a
/// QUOTATION's CPD is, with every error named by its path.
struct CatalogConfigurationTests {
    static let customers = """
        customers:
          - identity: acme
          - identity: globex

        """
    static let document =
        #"{"components": [{"profiles": [{"customer-nodes": [{"identifier": "CE-1", "link-identifiers": [], "localization": {"country": "FR"}}], "scope": [{"customer-node": "CE-1", "direction": "outgoing", "reachability": "global", "model": "hose", "source-prefixes": ["10.0.0.0/8"]}], "capacity": [{"customer-node": "CE-1", "incoming-bandwidth-mbps": {"min": 1, "max": 10}}], "conformance-traffic": {"enforcement": "shaping", "out-of-profile-action": "discard"}}]}]}"#

    @Test func aTemplateInlineInYAMLOrJSONLoads() throws {
        let yaml =
            Self.customers + """
                catalog:
                  - id: small
                    name: Small
                    customers: [globex]
                    labels:
                      components[0].profiles[0].capacity[0].incoming-bandwidth-mbps: Download
                    cpd:
                      components:
                        - profiles:
                            - customer-nodes: [{identifier: CE-1, link-identifiers: [], localization: {country: FR}}]
                              scope: [{customer-node: CE-1, direction: outgoing, reachability: global, model: hose, source-prefixes: [10.0.0.0/8]}]
                              capacity: [{customer-node: CE-1, incoming-bandwidth-mbps: {min: 1, max: 10}}]
                              conformance-traffic: {enforcement: shaping, out-of-profile-action: discard}
                  - id: json
                    name: As JSON
                    cpd: \(Self.document)
                """
        let c = try loadValid(yaml)
        #expect(c.catalog.map(\.id) == ["small", "json"])
        #expect(c.catalog[0].cpd == c.catalog[1].cpd, "YAML and JSON give the same document")
        #expect(c.catalog[0].isOffered(to: "GLOBEX") && !c.catalog[0].isOffered(to: "acme"))
        #expect(c.catalog[1].isOffered(to: "acme"))
        let field = try #require(c.catalog[0].cpd.openFields.first)
        #expect(c.catalog[0].label(for: field) == "Download")
        #expect(c.catalog[1].label(for: field) == "CE-1 incoming bandwidth (Mbit/s)")
    }

    @Test func cpdFileIsReadRelativeToTheConfigurationFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("catalog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("templates"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(Self.document.utf8).write(to: directory.appendingPathComponent("templates/small.json"))
        let file = directory.appendingPathComponent("cpnpd.yaml")
        try Data((Self.customers + "catalog:\n  - id: small\n    name: Small\n    cpd-file: templates/small.json\n").utf8).write(to: file)
        let c = try ConfigurationLoader.load(contentsOfFile: file.path).get()
        #expect(c.catalog.first?.cpd.openFields.count == 1)
    }

    @Test func everyProblemIsNamedByItsPath() {
        let yaml =
            Self.customers + """
                catalog:
                  - id: "bad id"
                    name: A
                    customers: [initech]
                    cpd: {"components": [{"profiles": [{"customer-nodes": [], "scope": []}]}]}
                  - id: twice
                    name: B
                    cpd: \(Self.document)
                    labels:
                      components[0].profiles[0].capacity[0].outgoing-bandwidth-mbps: Upload
                  - id: twice
                    name: C
                    cpd: \(Self.document)
                    cpd-file: other.json
                  - id: nothing
                    name: D
                  - id: wrong
                    name: E
                    cpd: {"components": [{"profiles": [{"customer-nodes": [{"identifier": "CE-1", "link-identifiers": [], "localization": {"country": "FR"}}], "scope": [{"customer-node": "CE-1", "direction": "outgoing", "reachability": "global", "model": "hose", "source-prefixes": ["10.0.0.0/8"]}], "capacity": [{"customer-node": "CE-1", "incoming-bandwidth-mbps": "lots"}]}]}]}
                """
        let found = errors(yaml)
        func has(_ prefix: String, _ text: String) -> Bool { found.contains { $0.hasPrefix(prefix) && $0.contains(text) } }
        #expect(has("catalog[0].id:", "letters, digits"))
        #expect(has("catalog[0].customers[0]:", "unknown customer identity \"initech\""))
        #expect(has("catalog[0].cpd.components[0].profiles[0].customer-nodes:", "at least one customer node"))
        #expect(has("catalog[1].labels.components[0].profiles[0].capacity[0].outgoing-bandwidth-mbps:", "not a loose value"))
        #expect(has("catalog[2].id:", "another template has the id \"twice\""))
        #expect(has("catalog[2].cpd-file:", "give cpd or cpd-file, not both"))
        #expect(has("catalog[3].cpd:", "missing required key"))
        #expect(has("catalog[4].cpd.components[0].profiles[0].capacity[0].incoming-bandwidth-mbps:", "expected a number"), "\(found)")
    }
}
