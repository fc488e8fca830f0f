import Testing
@testable import CPNPCore

/// The open (loose) values of a CPD and filling them in, as the customer portal's catalogue does
/// (RFC 8921 §8.7).
@Suite("CPD templates")
struct CPDTemplateTests {
    static let template = CPDTestJSON.parse(
        """
        {"components": [{"profiles": [{
          "customer-nodes": [{"identifier": "CE-1", "link-identifiers": [], "localization": {"site-id": "S1", "country": "FR"}}],
          "scope": [{"customer-node": "CE-1", "direction": "outgoing", "reachability": {"one-of": ["global", "restricted"]}, "model": "hose",
                     "source-prefixes": ["10.1.0.0/16"], "destination-prefixes": ["10.2.0.0/16"]}],
          "capacity": [{"customer-node": "CE-1", "incoming-bandwidth-mbps": {"min": 10, "max": 500}, "outgoing-bandwidth-mbps": 100}],
          "conformance-traffic": {"enforcement": "policing", "out-of-profile-action": "discard", "mtu-bytes": "any"}}]}]}
        """)

    static func cpd() throws -> CPD { try CPD(json: template, at: .root) }
    static let incoming = CPDTestJSON.path("components[0].profiles[0].capacity[0].incoming-bandwidth-mbps")
    static let reachability = CPDTestJSON.path("components[0].profiles[0].scope[0].reachability")
    static let mtu = CPDTestJSON.path("components[0].profiles[0].conformance-traffic.mtu-bytes")

    @Test func openFieldsAreTheLooseValuesInDocumentOrder() throws {
        let fields = try Self.cpd().openFields
        #expect(fields.map(\.path) == [Self.reachability, Self.incoming, Self.mtu], "the fixed outgoing bandwidth is not open")
        #expect(fields[0].choices == ["global", "restricted"] && !fields[0].isNumber)
        #expect(fields[0].constraintDescription == "one of global, restricted")
        #expect(fields[1].isNumber && fields[1].choices.isEmpty && fields[1].constraintDescription == "10 to 500")
        #expect(fields[2].constraintDescription == "any value")
    }

    @Test func fillingFixesTheValuesGivenAndLeavesBlanksLoose() throws {
        let filled = try Self.cpd().filling([Self.incoming: " 120 ", Self.reachability: "restricted", Self.mtu: ""])
        #expect(filled.openFields.map(\.path) == [Self.mtu])
        let json = CPDTestJSON.text(filled.json)
        #expect(json.contains("\"incoming-bandwidth-mbps\":120"))
        #expect(json.contains("\"reachability\":\"restricted\""))
        #expect(!filled.isConcrete)
        #expect(try Self.cpd().filling([Self.incoming: "500", Self.reachability: "global", Self.mtu: "9000"]).isConcrete)
    }

    @Test func aValueOutsideTheTemplateOrOfTheWrongTypeNamesTheField() throws {
        let cpd = try Self.cpd()
        func problem(_ values: [JSONPath: String]) -> CPNPDecodingError? {
            do {
                _ = try cpd.filling(values)
                return nil
            } catch { return error }
        }
        let above = problem([Self.incoming: "501"])
        #expect(above?.path == Self.incoming)
        #expect(above?.reason == "501 is outside what the template allows (10 to 500)")
        #expect(problem([Self.incoming: "fast"])?.reason == "fast is not a number")
        let notAChoice = problem([Self.reachability: "everywhere"])
        #expect(notAChoice?.path == Self.reachability && notAChoice?.reason.contains("expected one of \"global\", \"restricted\"") == true)
        #expect(problem([Self.mtu: "1500.5"])?.path == Self.mtu, "an integer field refuses a fraction")
        let fixed = CPDTestJSON.path("components[0].profiles[0].capacity[0].outgoing-bandwidth-mbps")
        #expect(problem([fixed: "200"])?.reason == "the template leaves no value open here", "a fixed value cannot be changed")
    }
}
