import Foundation
import Testing
@testable import CPNPCore

/// The example documents of `Examples/`, loaded relative to this file.
enum CPDExamples {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Examples")

    static let requests = [
        "l3vpn-3-sites.json", "as-interconnect-upgrade.json", "cdn-footprint-extension.json",
        "testing-purpose-order.json",
    ]
    static let offers = ["l3vpn-3-sites-offer.json", "l3vpn-3-sites-partial-offer.json"]

    static func json(_ name: String) throws -> JSONValue {
        try JSONParser.parse(Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func cpd(_ name: String) throws -> CPD {
        try CPD(json: json(name), at: JSONPath.root.appending("cpd"))
    }
}

@Suite("CPD coding")
struct CPDCodingTests {
    @Test(arguments: CPDExamples.requests + CPDExamples.offers)
    func examplesRoundTrip(name: String) throws {
        let source = try CPDExamples.json(name)
        let cpd = try CPD(json: source, at: JSONPath.root.appending("cpd"))
        // Nothing is lost (all keys of the examples are known, or preserved extensions).
        #expect(cpd.json == source)
        // decode(encode(x)) == x, and encoding is deterministic.
        let bytes = JSONSerializer.serialize(cpd.json)
        let again = try CPD(json: JSONParser.parse(bytes), at: .root)
        #expect(again == cpd)
        #expect(JSONSerializer.serialize(again.json) == bytes)
        // Every example is valid.
        #expect(cpd.validate(at: JSONPath.root.appending("cpd")) == [])
        #expect(!cpd.isEmpty)
    }

    @Test func exampleShapes() throws {
        let l3 = try CPDExamples.cpd("l3vpn-3-sites.json")
        let p = l3.components[0].profiles[0]
        #expect(p.customerNodes.map(\.identifier) == ["CE-PAR-1", "CE-LYS-1", "CE-MRS-1"])
        #expect(p.customerNodes[1].linkIdentifiers == [])
        #expect(p.customerNodes[0].localization.latitude == CPNPDecimal(parsing: "48.8566"))
        #expect(p.scope.count == 6)
        #expect(p.qosGuarantees?.entries[0].percentile == 99)
        #expect(p.qosGuarantees?.entries[2].delayVariationMs == .any)
        #expect(p.qosGuarantees?.entries[0].lossPercent == .range(min: nil, max: CPNPDecimal(parsing: "0.1")))
        #expect(p.capacity?[0].incomingBandwidthMbps == .range(min: 80, max: 100))
        #expect(p.capacity?[1].incomingBandwidthMbps == .fixed(100))
        #expect(p.conformanceTraffic?.mtuBytes == .range(min: 1500, max: nil))
        #expect(p.activationMeans?[0].parameters == ["customer-as": "64512"])
        #expect(p.invocationMeans?.type == .fixed(.implicit))
        #expect(p.notifications?[0].intervalSeconds == .range(min: nil, max: 300))
        #expect(p.extensions?.customerDescription?.name == "Example Corp")

        let cdn = try CPDExamples.cpd("cdn-footprint-extension.json")
        #expect(cdn.components.count == 2)
        let c0 = cdn.components[0].profiles[0]
        #expect(c0.extensions?.additional["x-cdn-tier"] == .string("edge"))
        #expect(c0.flowIdentification?.classifiers[0].destinationPort == .range(low: 1024, high: 65535))
        #expect(c0.flowIdentification?.classifiers[0].sourcePort == .single(443))
        #expect(c0.flowIdentification?.classifiers[0].appliesTo == .allLinks)
        #expect(c0.scope[1].reachability == .oneOf([.restricted, .global]))
        let asx = try CPDExamples.cpd("as-interconnect-upgrade.json")
        #expect(asx.components[0].profiles[0].conformanceTraffic?.mtuBytes == .oneOf([1500, 9000]))
        #expect(asx.components[0].profiles[0].extensions?.activationSchedule == CPNPTimestamp(rfc3339: "2026-12-01T02:00:00Z"))
    }

    @Test func empty() throws {
        #expect(CPD.empty.isEmpty)
        #expect(CPDTestJSON.text(CPD.empty.json) == #"{"components":[]}"#)
        #expect(try CPD(json: CPDTestJSON.parse(#"{"components":[]}"#), at: .root) == .empty)
        #expect(CPD.empty.validate() == [])
        #expect(CPD.empty.isConcrete)
    }

    @Test func encodingOrderFollowsRBNF() throws {
        // Keys written in reverse order come out in RBNF / spec order; absent optionals omitted.
        let text = #"""
            {"components":[{"profiles":[{"extensions":{"z-unknown":1,"customer-description":{"email":"a@b.example","name":"A"}},
              "invocation-means":{"type":"explicit"},
              "conformance-traffic":{"mtu-bytes":1500,"out-of-profile-action":"discard","enforcement":"shaping"},
              "capacity":[{"outgoing-bandwidth-mbps":{"max":10,"min":5},"customer-node":"N1"}],
              "scope":[{"reachability":"global","direction":"incoming","customer-node":"N1"}],
              "customer-nodes":[{"localization":{"country":"FR","site-id":"S"},"link-identifiers":[],"identifier":"N1"}]}]}]}
            """#
        let cpd = try CPD(json: CPDTestJSON.parse(text), at: .root)
        #expect(
            CPDTestJSON.text(cpd.json)
                == #"{"components":[{"profiles":[{"customer-nodes":[{"identifier":"N1","link-identifiers":[],"localization":{"site-id":"S","country":"FR"}}],"scope":[{"customer-node":"N1","direction":"incoming","reachability":"global"}],"capacity":[{"customer-node":"N1","outgoing-bandwidth-mbps":{"min":5,"max":10}}],"conformance-traffic":{"enforcement":"shaping","out-of-profile-action":"discard","mtu-bytes":1500},"invocation-means":{"type":"explicit"},"extensions":{"customer-description":{"name":"A","email":"a@b.example"},"z-unknown":1}}]}]}"#
        )
    }

    @Test func unknownKeysIgnoredOutsideExtensions() throws {
        let base = try CPDExamples.json("testing-purpose-order.json")
        let withUnknown =
            base
            .cpdSetting("x-top", to: .bool(true))
            .cpdSetting("components[0].profiles[0].x-clause", to: .string("?"))
            .cpdSetting("components[0].profiles[0].scope[0].x-field", to: .number(1))
        let cpd = try CPD(json: withUnknown, at: .root)
        #expect(try cpd == CPD(json: base, at: .root))
        #expect(cpd.json == base)
    }

    @Test func constructedModelEncodes() throws {
        let node = CPDCustomerNode(identifier: "CE-1", localization: CPDLocalization(siteID: "S1"))
        let profile = ConnectivityProvisioningProfile(
            customerNodes: [node],
            scope: [CPDScopeEntry(customerNode: "CE-1", direction: .outgoing, reachability: .fixed(.global))],
            capacity: [CPDCapacityEntry(customerNode: "CE-1", incomingBandwidthMbps: .range(min: 10, max: nil))],
            conformanceTraffic: CPDConformanceTraffic(enforcement: .policing, outOfProfileAction: .discard),
            activationMeans: [CPDActivationMeans(mechanism: .cpnpActivate, parameters: ["b": "2", "a": "1"])],
            notifications: [CPDNotification(events: ["link-down"], method: .syslog, intervalSeconds: .fixed(60))],
            extensions: CPDExtensions(providerDescription: CPDPartyDescription(name: "P", asNumber: 4_200_000_000)))
        let cpd = CPD(components: [ConnectivityProvisioningComponent(profiles: [profile])])
        #expect(cpd.validate() == [])
        #expect(try CPD(json: cpd.json, at: .root) == cpd)
        let text = CPDTestJSON.text(cpd.json)
        #expect(text.contains(#""parameters":{"a":"1","b":"2"}"#))
        #expect(text.contains(#""as-number":4200000000"#))
    }

    // MARK: decode errors

    static func decodeError(_ json: JSONValue) -> CPNPDecodingError? {
        do {
            _ = try CPD(json: json, at: JSONPath.root.appending("cpd"))
            return nil
        } catch {
            return error
        }
    }

    static let p0 = "components[0].profiles[0]"

    /// (mutation path, new value JSON or nil to delete, expected code, expected error path).
    static let malformed: [(String, String?, CPNPDecodingError.Code, String)] = [
        ("components", nil, .missingField, "cpd.components"),
        ("components", #"{"profiles":[]}"#, .wrongType, "cpd.components"),
        ("components[0].profiles", nil, .missingField, "cpd.components[0].profiles"),
        ("\(p0).customer-nodes", nil, .missingField, "cpd.components[0].profiles[0].customer-nodes"),
        ("\(p0).scope", nil, .missingField, "cpd.components[0].profiles[0].scope"),
        ("\(p0).customer-nodes[0].identifier", "42", .wrongType, "cpd.components[0].profiles[0].customer-nodes[0].identifier"),
        ("\(p0).customer-nodes[0].link-identifiers", nil, .missingField, "cpd.components[0].profiles[0].customer-nodes[0].link-identifiers"),
        ("\(p0).customer-nodes[0].link-identifiers[1]", "7", .wrongType, "cpd.components[0].profiles[0].customer-nodes[0].link-identifiers[1]"),
        ("\(p0).customer-nodes[2].localization", #""Marseille""#, .wrongType, "cpd.components[0].profiles[0].customer-nodes[2].localization"),
        (
            "\(p0).customer-nodes[0].localization.latitude", #""48.8N""#, .wrongType,
            "cpd.components[0].profiles[0].customer-nodes[0].localization.latitude"
        ),
        ("\(p0).scope[1].direction", #""sideways""#, .invalidValue, "cpd.components[0].profiles[0].scope[1].direction"),
        ("\(p0).scope[1].reachability", #"{"min":"global"}"#, .invalidValue, "cpd.components[0].profiles[0].scope[1].reachability"),
        (
            "\(p0).qos-guarantees.entries[0].one-way-delay-ms", #"{"min":"5"}"#, .wrongType,
            "cpd.components[0].profiles[0].qos-guarantees.entries[0].one-way-delay-ms.min"
        ),
        (
            "\(p0).qos-guarantees.entries[1].measurement-interval-seconds", "2.5", .outOfRange,
            "cpd.components[0].profiles[0].qos-guarantees.entries[1].measurement-interval-seconds"
        ),
        ("\(p0).qos-guarantees.kind", #""both""#, .invalidValue, "cpd.components[0].profiles[0].qos-guarantees.kind"),
        ("\(p0).availability", "null", .wrongType, "cpd.components[0].profiles[0].availability"),
        ("\(p0).capacity[0].incoming-bandwidth-mbps", "{}", .invalidValue, "cpd.components[0].profiles[0].capacity[0].incoming-bandwidth-mbps"),
        (
            "\(p0).capacity[2].outgoing-bandwidth-mbps", #"{"one-of":[]}"#, .invalidValue,
            "cpd.components[0].profiles[0].capacity[2].outgoing-bandwidth-mbps.one-of"
        ),
        ("\(p0).traffic-isolation.isolated", #""yes""#, .wrongType, "cpd.components[0].profiles[0].traffic-isolation.isolated"),
        ("\(p0).conformance-traffic.mtu-bytes", "1500.5", .outOfRange, "cpd.components[0].profiles[0].conformance-traffic.mtu-bytes"),
        (
            "\(p0).flow-identification.classifiers[0].applies-to", "5", .wrongType,
            "cpd.components[0].profiles[0].flow-identification.classifiers[0].applies-to"
        ),
        (
            "\(p0).flow-identification.classifiers[0].source-port", #""80-""#, .invalidValue,
            "cpd.components[0].profiles[0].flow-identification.classifiers[0].source-port"
        ),
        ("\(p0).overall-traffic-guarantees.loss", #""none""#, .invalidValue, "cpd.components[0].profiles[0].overall-traffic-guarantees.loss"),
        (
            "\(p0).activation-means[0].parameters.customer-as", "64512", .wrongType,
            "cpd.components[0].profiles[0].activation-means[0].parameters.customer-as"
        ),
        ("\(p0).invocation-means.type", #""any-time""#, .invalidValue, "cpd.components[0].profiles[0].invocation-means.type"),
        ("\(p0).notifications[0].events", #""link-down""#, .wrongType, "cpd.components[0].profiles[0].notifications[0].events"),
        (
            "\(p0).extensions.provider-description", #"{"as-number":4294967296}"#, .outOfRange,
            "cpd.components[0].profiles[0].extensions.provider-description.as-number"
        ),
        ("\(p0).extensions.activation-schedule", #""tomorrow""#, .invalidValue, "cpd.components[0].profiles[0].extensions.activation-schedule"),
    ]

    @Test func malformedVariants() throws {
        let base = try CPDExamples.json("l3vpn-3-sites.json")
        #expect(Self.decodeError(base) == nil)
        for (path, value, code, errorPath) in Self.malformed {
            let doc = base.cpdSetting(path, to: value.map(CPDTestJSON.parse))
            let e = Self.decodeError(doc)
            #expect(e?.code == code, "\(path)")
            #expect(e?.path.description == errorPath, "\(path)")
        }
        #expect(Self.decodeError(.array([]))?.path.description == "cpd")
    }

    @Test func sizeLimits() throws {
        let base = try CPDExamples.json("testing-purpose-order.json")
        // Too many components.
        guard case .object(let top) = base, case .array(let comps)? = top["components"] else { Issue.record(); return }
        let many = base.cpdSetting("components", to: .array(Array(repeating: comps[0], count: CPDLimits.maxComponents + 1)))
        #expect(Self.decodeError(many)?.code == .outOfRange)
        #expect(Self.decodeError(many)?.path.description == "cpd.components")
        // Too long identifier.
        let long = base.cpdSetting(
            "components[0].profiles[0].customer-nodes[0].identifier",
            to: .string(String(repeating: "x", count: CPDLimits.maxShortString + 1)))
        #expect(Self.decodeError(long)?.code == .stringTooLong)
        #expect(Self.decodeError(long)?.path.description == "cpd.components[0].profiles[0].customer-nodes[0].identifier")
        // Too many prefixes in one scope entry.
        let prefixes = JSONValue.array(Array(repeating: .string("10.0.0.0/8"), count: CPDLimits.maxListItems + 1))
        let wide = base.cpdSetting("components[0].profiles[0].scope[0].source-prefixes", to: prefixes)
        #expect(Self.decodeError(wide)?.path.description == "cpd.components[0].profiles[0].scope[0].source-prefixes")
    }
}
