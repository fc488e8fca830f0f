import Testing
@testable import CPNPCore

@Suite("CPD validation")
struct CPDValidationTests {
    static let cpdPath = JSONPath.root.appending("cpd")
    static let p0 = "cpd.components[0].profiles[0]"

    static func request() throws -> CPD { try CPDExamples.cpd("l3vpn-3-sites.json") }

    /// Applies `change` to the first profile of the L3VPN request and returns the issues as
    /// "path: message" strings (paths only when `pathsOnly`).
    static func issues(_ change: (inout ConnectivityProvisioningProfile) -> Void) throws -> [CPDValidationIssue] {
        var cpd = try request()
        change(&cpd.components[0].profiles[0])
        return cpd.validate(at: cpdPath)
    }

    static func paths(_ change: (inout ConnectivityProvisioningProfile) -> Void) throws -> [String] {
        try issues(change).map(\.path.description)
    }

    @Test func structure() {
        #expect(CPD.empty.validate() == [])
        let noProfile = CPD(components: [ConnectivityProvisioningComponent(profiles: [])])
        #expect(
            noProfile.validate(at: Self.cpdPath).map(\.description)
                == ["cpd.components[0].profiles: a component must contain at least one profile"])
        let noNode = CPD(components: [
            ConnectivityProvisioningComponent(profiles: [
                ConnectivityProvisioningProfile(customerNodes: [], scope: [])
            ])
        ])
        #expect(
            noNode.validate(at: Self.cpdPath).map(\.description) == [
                "cpd.components[0].profiles[0].customer-nodes: a profile must list at least one customer node",
                "cpd.components[0].profiles[0].scope: a profile must contain at least one scope entry (RFC 7297 §3.2)",
            ])
        #expect(!noNode.isValid)
        #expect(CPD.empty.isValid)
    }

    @Test func customerNodes() throws {
        // CE-MRS-1 renamed: a duplicate, and the references to CE-MRS-1 dangle.
        #expect(
            try Self.paths { $0.customerNodes[2].identifier = "CE-PAR-1" } == [
                "\(Self.p0).customer-nodes[2].identifier", "\(Self.p0).scope[4].customer-node", "\(Self.p0).scope[5].customer-node",
                "\(Self.p0).qos-guarantees.entries[2].to", "\(Self.p0).qos-guarantees.entries[3].from",
                "\(Self.p0).capacity[2].customer-node", "\(Self.p0).activation-means[2].customer-node",
            ])
        let dup = try Self.issues { $0.customerNodes[2].identifier = "CE-PAR-1" }
        #expect(
            dup.first?.description
                == "\(Self.p0).customer-nodes[2].identifier: duplicate customer node identifier \"CE-PAR-1\" (first at \(Self.p0).customer-nodes[0].identifier)"
        )
        // Unique across the whole CPD, not only within a profile.
        var two = try Self.request()
        two.components.append(two.components[0])
        #expect(
            two.validate(at: Self.cpdPath).map(\.path.description) == [
                "cpd.components[1].profiles[0].customer-nodes[0].identifier",
                "cpd.components[1].profiles[0].customer-nodes[1].identifier",
                "cpd.components[1].profiles[0].customer-nodes[2].identifier",
            ])
        #expect(
            try Self.paths {
                $0.customerNodes[0].identifier = "*"; $0.customerNodes.append($0.customerNodes[0])
            }.contains("\(Self.p0).customer-nodes[0].identifier"))
        #expect(
            try Self.paths { $0.customerNodes[0].linkIdentifiers = ["a", "a"] }
                == ["\(Self.p0).customer-nodes[0].link-identifiers[1]"])
        #expect(
            try Self.paths { $0.customerNodes[1].localization = CPDLocalization() }
                == ["\(Self.p0).customer-nodes[1].localization"])
        #expect(
            try Self.paths { $0.customerNodes[0].localization.latitude = 91 }
                == ["\(Self.p0).customer-nodes[0].localization.latitude"])
        #expect(
            try Self.paths { $0.customerNodes[0].localization.longitude = nil }
                == ["\(Self.p0).customer-nodes[0].localization.longitude"])
        #expect(
            try Self.paths { $0.customerNodes[0].localization.country = "fr" }
                == ["\(Self.p0).customer-nodes[0].localization.country"])
    }

    @Test func emptyScope() throws {
        #expect(
            try Self.issues { $0.scope = [] }.map(\.description)
                == ["\(Self.p0).scope: a profile must contain at least one scope entry (RFC 7297 §3.2)"])
    }

    @Test func references() throws {
        #expect(try Self.paths { $0.scope[3].customerNode = "CE-NCE-1" } == ["\(Self.p0).scope[3].customer-node"])
        #expect(try Self.paths { $0.scope[3].direction = .outgoing } == ["\(Self.p0).scope[3]"])
        #expect(try Self.paths { $0.capacity![1].customerNode = "CE-XXX" } == ["\(Self.p0).capacity[1].customer-node"])
        #expect(try Self.paths { $0.capacity![0].linkIdentifier = "PE-OTHER:ge-0/0/0" } == ["\(Self.p0).capacity[0].link-identifier"])
        // Lyon has no link identifier yet: any link is acceptable.
        #expect(try Self.paths { $0.capacity![1].linkIdentifier = "PE-LYS-1:ge-0/0/3" } == [])
        #expect(try Self.paths { $0.activationMeans![2].customerNode = "CE-NOPE" } == ["\(Self.p0).activation-means[2].customer-node"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].from = "CE-NOPE" } == ["\(Self.p0).qos-guarantees.entries[0].from"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].to = "*" } == [])
        let msg = try Self.issues { $0.scope[0].customerNode = "X" }.first?.description
        #expect(msg == "\(Self.p0).scope[0].customer-node: \"X\" is not the identifier of a customer node of this profile")
    }

    /// Entries are unique by their key: a scope entry by node and direction, a capacity entry by node
    /// and link, a QoS entry by its ends and statistic. Only the later copy is named.
    @Test func repeatedEntries() throws {
        #expect(
            try Self.issues { $0.scope[1] = $0.scope[0] }.map(\.description) == [
                "\(Self.p0).scope[1]: duplicate scope entry for \"CE-PAR-1\" outgoing"
            ])
        // The same node in the other direction is another entry (the request has both for each node).
        #expect(try Self.request().validate().isEmpty)
        #expect(try Self.paths { $0.scope[3].direction = .outgoing } == ["\(Self.p0).scope[3]"])
        #expect(
            try Self.issues { $0.capacity![2] = $0.capacity![0] }.map(\.description) == [
                "\(Self.p0).capacity[2]: duplicate capacity entry for \"CE-PAR-1\""
            ])
        // The same node on another link is another entry; on the same link it repeats.
        #expect(
            try Self.paths {
                $0.customerNodes[0].linkIdentifiers = ["a", "b"]
                $0.capacity![0].linkIdentifier = "a"
                $0.capacity![1] = $0.capacity![0]
                $0.capacity![1].linkIdentifier = "b"
            } == [])
        #expect(
            try Self.issues {
                $0.customerNodes[0].linkIdentifiers = ["a", "b"]
                $0.capacity![0].linkIdentifier = "a"
                $0.capacity![1] = $0.capacity![0]
            }.map(\.description) == ["\(Self.p0).capacity[1]: duplicate capacity entry for \"CE-PAR-1\" link \"a\""])
        // A QoS entry with the same ends and another statistic is another entry.
        #expect(
            try Self.paths {
                $0.qosGuarantees!.entries[1] = $0.qosGuarantees!.entries[0]
                $0.qosGuarantees!.entries[1].statistic = .average
                $0.qosGuarantees!.entries[1].percentile = nil
            } == [])
    }

    @Test func qosRules() throws {
        let e0 = "\(Self.p0).qos-guarantees.entries[0]"
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].percentile = nil } == ["\(e0).percentile"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].percentile = 100 } == ["\(e0).percentile"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].percentile = 0 } == ["\(e0).percentile"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].statistic = .average } == ["\(e0).percentile"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].statistic = nil } == ["\(e0).statistic", "\(e0).percentile"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].measurementIntervalSeconds = 0 } == ["\(e0).measurement-interval-seconds"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].metaQoSClass = "gold" } == ["\(e0).meta-qos-class"])
        #expect(
            try Self.paths { $0.qosGuarantees!.entries[1] = $0.qosGuarantees!.entries[0] }
                == ["\(Self.p0).qos-guarantees.entries[1]"])
        #expect(
            try Self.paths {
                let e = $0.qosGuarantees!.entries[0]
                $0.qosGuarantees!.entries[0] = CPDQoSEntry(from: e.from, to: e.to, statistic: .average)
            } == [e0])
        // Qualitative: only meta-qos-class (plus from/to).
        #expect(
            try Self.paths { $0.qosGuarantees!.kind = .qualitative }.prefix(6) == [
                "\(e0).statistic", "\(e0).percentile", "\(e0).measurement-interval-seconds",
                "\(e0).one-way-delay-ms", "\(e0).delay-variation-ms", "\(e0).loss-percent",
            ])
        #expect(
            try Self.paths {
                $0.qosGuarantees = CPDQoSGuarantees(
                    kind: .qualitative,
                    entries: [
                        CPDQoSEntry(from: "CE-PAR-1", to: "*", metaQoSClass: "gold"),
                        CPDQoSEntry(from: "*", to: "CE-PAR-1"),
                    ])
                $0.flowIdentification = nil
            } == ["\(Self.p0).qos-guarantees.entries[1].meta-qos-class"])
    }

    @Test func numericRanges() throws {
        let e0 = "\(Self.p0).qos-guarantees.entries[0]"
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].lossPercent = .range(min: nil, max: 101) } == ["\(e0).loss-percent"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].lossPercent = .fixed(-1) } == ["\(e0).loss-percent"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].oneWayDelayMs = .fixed(-1) } == ["\(e0).one-way-delay-ms"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].delayVariationMs = .oneOf([1, -2]) } == ["\(e0).delay-variation-ms"])
        #expect(try Self.paths { $0.qosGuarantees!.entries[0].throughputMbps = .fixed(-3) } == ["\(e0).throughput-mbps"])
        #expect(
            try Self.paths { $0.availability!.availabilityPercent = .range(min: CPNPDecimal(parsing: "100.5"), max: nil) }
                == ["\(Self.p0).availability.availability-percent"])
        #expect(try Self.paths { $0.capacity![0].incomingBandwidthMbps = .fixed(-5) } == ["\(Self.p0).capacity[0].incoming-bandwidth-mbps"])
        #expect(
            try Self.paths {
                $0.capacity![0].incomingBandwidthMbps = nil; $0.capacity![0].outgoingBandwidthMbps = nil
            }
                == ["\(Self.p0).capacity[0]"])
        #expect(try Self.paths { $0.conformanceTraffic!.mtuBytes = .fixed(0) } == ["\(Self.p0).conformance-traffic.mtu-bytes"])
        #expect(
            try Self.paths { $0.notifications![0].intervalSeconds = .range(min: 0, max: 10) }
                == ["\(Self.p0).notifications[0].interval-seconds"])
        #expect(try Self.paths { $0.notifications![0].events = [] } == ["\(Self.p0).notifications[0].events"])
        let msg = try Self.issues { $0.qosGuarantees!.entries[0].lossPercent = .range(min: nil, max: 101) }.first?.message
        #expect(msg == "loss 101 is outside 0...100")
    }

    @Test func negotiableInternalRules() throws {
        let issues = try Self.issues { $0.capacity![0].incomingBandwidthMbps = .range(min: 100, max: 80) }
        #expect(issues.map(\.description) == ["\(Self.p0).capacity[0].incoming-bandwidth-mbps: \"min\" is greater than \"max\""])
        #expect(
            try Self.paths { $0.capacity![0].incomingBandwidthMbps = .range(min: nil, max: nil) }
                == ["\(Self.p0).capacity[0].incoming-bandwidth-mbps"])
        #expect(try Self.paths { $0.scope[0].reachability = .oneOf([]) } == ["\(Self.p0).scope[0].reachability"])
        #expect(try Self.paths { $0.invocationMeans!.type = .range(min: .implicit, max: nil) } == ["\(Self.p0).invocation-means.type"])
    }

    @Test func conformanceAndOverall() throws {
        #expect(
            try Self.issues { $0.conformanceTraffic = nil }.map(\.description)
                == ["\(Self.p0).conformance-traffic: conformance-traffic is required when capacity is present"])
        #expect(try Self.paths { $0.capacity = nil } == ["\(Self.p0).conformance-traffic"])
        #expect(
            try Self.paths {
                $0.capacity = nil; $0.conformanceTraffic = nil
            } == [])
        #expect(
            try Self.paths {
                $0.conformanceTraffic!.outOfProfileAction = .discard; $0.conformanceTraffic!.reclassifyTo = nil
            }
                == ["\(Self.p0).overall-traffic-guarantees"])
        let warn = try Self.issues {
            $0.conformanceTraffic!.outOfProfileAction = .discard; $0.conformanceTraffic!.reclassifyTo = nil
        }
        #expect(warn.first?.severity == .warning)
        #expect(warn.errors.isEmpty)
        #expect(
            try Self.paths {
                $0.conformanceTraffic!.outOfProfileAction = .discard; $0.overallTrafficGuarantees = nil
            }
                == ["\(Self.p0).conformance-traffic.reclassify-to"])
    }

    @Test func flowIdentification() throws {
        let c0 = "\(Self.p0).flow-identification.classifiers[0]"
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].dscp = 64 } == ["\(c0).dscp"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].dscp = -1 } == ["\(c0).dscp"])
        #expect(try Self.paths { $0.flowIdentification!.remarking![0].setDSCP = 64 } == ["\(Self.p0).flow-identification.remarking[0].set-dscp"])
        #expect(try Self.paths { $0.flowIdentification!.remarking![0].matchDSCP = -1 } == ["\(Self.p0).flow-identification.remarking[0].match-dscp"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].qosEntryRef = 4 } == ["\(c0).qos-entry-ref"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].qosEntryRef = 3 } == [])
        #expect(try Self.paths { $0.qosGuarantees = nil } == ["\(c0).qos-entry-ref"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].protocol = 256 } == ["\(c0).protocol"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].sourcePort = .single(70000) } == ["\(c0).source-port"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].destinationPort = .range(low: 9, high: 1) } == ["\(c0).destination-port"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].appliesTo = .links([]) } == ["\(c0).applies-to"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].tunnelEndpoint = "2001:db8::1" } == [])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].tunnelEndpoint = "10.0.0.256" } == ["\(c0).tunnel-endpoint"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].sourcePrefix = "10.1.0.0/33" } == ["\(c0).source-prefix"])
        #expect(try Self.paths { $0.flowIdentification!.classifiers[0].destinationPrefix = "2001:db8::/32" } == [])
    }

    @Test func scopePrefixes() throws {
        let s0 = "\(Self.p0).scope[0]"
        #expect(try Self.paths { $0.scope[0].sourcePrefixes = ["10.1.0.0/16", "10.1.0.1/16"] } == ["\(s0).source-prefixes[1]"])
        #expect(try Self.paths { $0.scope[0].destinationPrefixes = ["2001:db8::/129"] } == ["\(s0).destination-prefixes[0]"])
        #expect(try Self.paths { $0.scope[0].reachability = .fixed(.global) } == ["\(s0).destination-prefixes"])
        #expect(
            try Self.paths { $0.scope[0].multicastSources = ["192.0.2.1", "2001:db8::1", "2001:db8::1::"] }
                == ["\(s0).multicast-sources[2]"])
        let message = try Self.issues { $0.scope[0].sourcePrefixes = ["10.1.0.1/16"] }.first?.message
        #expect(message == "\"10.1.0.1/16\" has host bits set beyond /16")
    }

    @Test(arguments: [
        ("0.0.0.0/0", true), ("10.0.0.0/8", true), ("192.0.2.255/32", true), ("224.0.0.0/4", true),
        ("::/0", true), ("2001:db8::/32", true), ("2001:DB8:0:0:0:0:0:0/32", true), ("ff3e::/96", true),
        ("::ffff:192.0.2.0/120", true), ("fe80::/10", true), ("2001:db8:1:2:3:4:5:6/128", true), ("::1/128", true),
        ("10.0.0.0", false), ("10.0.0.0/", false), ("10.0.0.0/33", false), ("10.0.0.0/-1", false),
        ("10.0.0.0/08", false), ("300.0.0.0/8", false), ("10.0.0/24", false), ("010.0.0.0/8", false),
        ("10.0.0.1/24", false), ("2001:db8::/129", false), ("2001:db8:::/32", false), ("2001:db8::1::/64", false),
        ("fe80::1%eth0/64", false), ("2001:db8:0:0:0:0:0:0:0/64", false), ("12345::/16", false), ("g::/16", false),
        ("1:2:3:4:5:6:7::8/128", false), ("::ffff:300.0.2.0/120", false), ("10.0.0.0/8/8", false), ("", false),
    ])
    func cidrSyntax(text: String, valid: Bool) {
        #expect((CPDIPPrefix(text) != nil) == valid, "\(text)")
        #expect((CPDIPPrefix.problem(with: text) == nil) == valid, "\(text)")
    }

    @Test func ipCanonicalForm() {
        #expect(CPDIPPrefix("2001:DB8::/32")?.description == "2001:db8:0:0:0:0:0:0/32")
        #expect(CPDIPPrefix("2001:DB8::/32") == CPDIPPrefix("2001:0db8:0::/32"))
        #expect(CPDIPAddress("::ffff:192.0.2.1")?.bytes == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1])
        #expect(CPDIPAddress("232.1.1.1")?.isMulticast == true)
        #expect(CPDIPAddress("ff3e::1")?.isMulticast == true)
        #expect(CPDIPAddress("10.0.0.1")?.isMulticast == false)
    }

    @Test func concreteness() throws {
        let request = try Self.request()
        #expect(!request.isConcrete)
        #expect(request.looseFields.first?.description == "components[0].profiles[0].qos-guarantees.entries[0].one-way-delay-ms")
        #expect(request.looseFields.count == 4 * 3 + 1 + 4 + 1 + 1)
        #expect(try CPDExamples.cpd("l3vpn-3-sites-offer.json").isConcrete)
        #expect(try CPDExamples.cpd("l3vpn-3-sites-partial-offer.json").isConcrete)
        #expect(try CPDExamples.cpd("testing-purpose-order.json").isConcrete)
        #expect(try !CPDExamples.cpd("cdn-footprint-extension.json").isConcrete)
        var offer = try CPDExamples.cpd("l3vpn-3-sites-offer.json")
        offer.components[0].profiles[0].scope[0].reachability = .oneOf([.restricted])
        #expect(!offer.isConcrete)
        #expect(offer.looseFields.map(\.description) == ["components[0].profiles[0].scope[0].reachability"])
    }
}
