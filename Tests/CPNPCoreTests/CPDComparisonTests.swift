import Testing
@testable import CPNPCore

@Suite("CPD comparison")
struct CPDComparisonTests {
    static let p0 = "components[0].profiles[0]"

    static func request() throws -> CPD { try CPDExamples.cpd("l3vpn-3-sites.json") }
    static func offer() throws -> CPD { try CPDExamples.cpd("l3vpn-3-sites-offer.json") }

    /// Gaps of the full offer after `change`, as descriptions.
    static func gaps(_ change: (inout ConnectivityProvisioningProfile) -> Void) throws -> [CPDGap] {
        var offer = try offer()
        change(&offer.components[0].profiles[0])
        return offer.comparison(against: try request()).gaps
    }

    @Test func fullOfferSatisfies() throws {
        let c = try Self.offer().comparison(against: Self.request())
        #expect(c.gaps == [])
        #expect(c.satisfies)
        #expect(c.description == "satisfies")
        #expect(try Self.offer().satisfies(Self.request()))
        #expect(try CPD.compare(offered: Self.offer(), requested: Self.request()).satisfies)
    }

    @Test func requestSatisfiesItself() throws {
        for name in CPDExamples.requests {
            let r = try CPDExamples.cpd(name)
            #expect(r.comparison(against: r).gaps == [], "\(name)")
        }
        #expect(CPD.empty.satisfies(.empty))
    }

    @Test func partialOfferHasExactlyTheCapacityGap() throws {
        let partial = try CPDExamples.cpd("l3vpn-3-sites-partial-offer.json")
        let c = partial.comparison(against: try Self.request())
        #expect(!c.satisfies)
        #expect(
            c.gaps == [
                CPDGap(
                    path: CPDTestJSON.path("\(Self.p0).capacity[0].incoming-bandwidth-mbps"), kind: .notSatisfied,
                    requested: CPDTestJSON.parse(#"{"min":80,"max":100}"#), offered: .number(75))
            ])
        #expect(
            c.gaps.first?.description
                == #"components[0].profiles[0].capacity[0].incoming-bandwidth-mbps: requested {"min":80,"max":100}, offered 75"#)
        // With a base path, as a server would report it inside a message.
        let based = partial.comparison(against: try Self.request(), at: JSONPath.root.appending("cpd"))
        #expect(based.gaps.first?.path.description == "cpd.\(Self.p0).capacity[0].incoming-bandwidth-mbps")
    }

    @Test func missingClause() throws {
        let gaps = try Self.gaps { $0.availability = nil }
        #expect(gaps.count == 1)
        #expect(gaps.first?.kind == .missing)
        #expect(gaps.first?.path.description == "\(Self.p0).availability")
        #expect(
            gaps.first?.requested == CPDTestJSON.parse(#"{"availability-percent":{"min":99.9},"statistic":"average","measurement-period":"month"}"#))
        #expect(gaps.first?.offered == nil)
        #expect(
            gaps.first?.description
                == #"components[0].profiles[0].availability: requested {"availability-percent":{"min":99.9},"statistic":"average","measurement-period":"month"}, offered nothing"#
        )

        #expect(try Self.gaps { $0.capacity = nil }.map(\.path.description) == ["\(Self.p0).capacity"])
        #expect(try Self.gaps { $0.notifications = nil }.map(\.path.description) == ["\(Self.p0).notifications"])
        #expect(try Self.gaps { $0.extensions = nil }.map(\.path.description) == ["\(Self.p0).extensions"])
        #expect(try Self.gaps { $0.invocationMeans = nil }.map(\.path.description) == ["\(Self.p0).invocation-means"])
        #expect(
            try Self.gaps { $0.routingAndForwarding!.geoRestrictions = nil }.map(\.path.description)
                == ["\(Self.p0).routing-and-forwarding.geo-restrictions"])
        // A negotiable field missing from the offer.
        let field = try Self.gaps { $0.qosGuarantees!.entries[1].lossPercent = nil }
        #expect(
            field.map(\.description) == [#"components[0].profiles[0].qos-guarantees.entries[1].loss-percent: requested {"max":0.1}, offered nothing"#]
        )
        // Clauses and fields only in the offer are ignored.
        var request = try Self.request()
        request.components[0].profiles[0].routingAndForwarding = nil
        request.components[0].profiles[0].qosGuarantees!.entries[0].lossPercent = nil
        #expect(try Self.offer().satisfies(request))
    }

    @Test func anyIsSatisfiedEvenByAbsence() throws {
        #expect(try Self.gaps { $0.qosGuarantees!.entries[2].delayVariationMs = nil } == [])
        #expect(try Self.gaps { $0.qosGuarantees!.entries[2].delayVariationMs = .any } == [])
        // An offered "any" only satisfies a requested "any".
        let g = try Self.gaps { $0.qosGuarantees!.entries[0].delayVariationMs = .any }
        #expect(
            g.map(\.description) == [#"components[0].profiles[0].qos-guarantees.entries[0].delay-variation-ms: requested {"max":5}, offered "any""#])
    }

    @Test func customerNodes() throws {
        // Extra node.
        let extra = try Self.gaps {
            $0.customerNodes.append(
                CPDCustomerNode(
                    identifier: "CE-NCE-1", linkIdentifiers: ["PE-NCE-1:ge-0/0/0"],
                    localization: CPDLocalization(country: "FR")))
        }
        #expect(extra.count == 1)
        #expect(extra.first?.kind == .extraNode)
        #expect(extra.first?.path.description == "\(Self.p0).customer-nodes[3]")
        #expect(extra.first?.description == "components[0].profiles[0].customer-nodes[3]: offered customer node \"CE-NCE-1\" was not requested")
        // Missing node.
        let missing = try Self.gaps { $0.customerNodes.remove(at: 2) }
        #expect(missing.map(\.path.description) == ["\(Self.p0).customer-nodes[2]"])
        #expect(missing.first?.kind == .missing)
        // Renamed node: both.
        let renamed = try Self.gaps { $0.customerNodes[0].identifier = "CE-PAR-9" }
        #expect(renamed.map(\.kind) == [.missing, .extraNode])
        // Localization compared field by field.
        let moved = try Self.gaps { $0.customerNodes[1].localization.address = "Lyon 3e" }
        #expect(
            moved.map(\.description) == [#"components[0].profiles[0].customer-nodes[1].localization.address: requested "Lyon 7e", offered "Lyon 3e""#]
        )
        // Matching by identifier, not position.
        #expect(try Self.gaps { $0.customerNodes.reverse() } == [])
    }

    @Test func linkIdentifiers() throws {
        // Requested [] = provider chooses: any offered list, even empty.
        #expect(try Self.gaps { $0.customerNodes[1].linkIdentifiers = [] } == [])
        #expect(try Self.gaps { $0.customerNodes[1].linkIdentifiers = ["X", "Y"] } == [])
        // Non-empty: equal as a set.
        let g = try Self.gaps { $0.customerNodes[0].linkIdentifiers = ["PE-PAR-3:ge-0/0/1"] }
        #expect(
            g.map(\.description) == [
                #"components[0].profiles[0].customer-nodes[0].link-identifiers: requested ["PE-PAR-2:ge-0/0/1"], offered ["PE-PAR-3:ge-0/0/1"]"#
            ])
        #expect(try Self.gaps { $0.customerNodes[0].linkIdentifiers.append("PE-PAR-3:ge-0/0/1") }.count == 1)
        var request = try Self.request()
        request.components[0].profiles[0].customerNodes[0].linkIdentifiers = ["B", "A"]
        var offer = try Self.offer()
        offer.components[0].profiles[0].customerNodes[0].linkIdentifiers = ["A", "B"]
        #expect(offer.satisfies(request))
    }

    @Test func entriesMatching() throws {
        // Scope by customer-node + direction (order irrelevant), prefixes as sets of prefixes.
        #expect(try Self.gaps { $0.scope.reverse() } == [])
        #expect(try Self.gaps { $0.scope[0].destinationPrefixes = ["10.3.0.0/16", "10.2.0.0/16"] } == [])
        #expect(
            try Self.gaps { $0.scope[0].destinationPrefixes = ["10.2.0.0/16"] }.map(\.path.description)
                == ["\(Self.p0).scope[0].destination-prefixes"])
        #expect(
            try Self.gaps { $0.scope[0].reachability = .fixed(.global) }.map(\.path.description)
                == ["\(Self.p0).scope[0].reachability"])
        #expect(
            try Self.gaps { $0.scope.remove(at: 5) }.map(\.path.description)
                == ["\(Self.p0).scope[5]"])
        // QoS by from + to + statistic.
        #expect(try Self.gaps { $0.qosGuarantees!.entries.reverse() } == [])
        let dropped = try Self.gaps { $0.qosGuarantees!.entries.remove(at: 2) }
        #expect(dropped.map(\.path.description) == ["\(Self.p0).qos-guarantees.entries[2]"])
        #expect(dropped.first?.kind == .missing)
        #expect(
            try Self.gaps { $0.qosGuarantees!.entries[0].statistic = .average }.map(\.path.description)
                == ["\(Self.p0).qos-guarantees.entries[0]"])
        #expect(
            try Self.gaps { $0.qosGuarantees!.entries[0].percentile = 95 }.map(\.description)
                == ["components[0].profiles[0].qos-guarantees.entries[0].percentile: requested 99, offered 95"])
        // Capacity by customer node (+ link).
        #expect(try Self.gaps { $0.capacity!.reverse() } == [])
        #expect(try Self.gaps { $0.capacity![2].linkIdentifier = "PE-MRS-1:xe-1/0/0" } == [])
        #expect(try Self.gaps { $0.capacity!.remove(at: 1) }.map(\.path.description) == ["\(Self.p0).capacity[1]"])
    }

    @Test func oneOfRequests() throws {
        let request = try CPDExamples.cpd("as-interconnect-upgrade.json")
        var offer = request.concretized(choosing: PreferredValueChooser())
        #expect(offer.isConcrete)
        #expect(offer.components[0].profiles[0].conformanceTraffic?.mtuBytes == .fixed(1500))
        #expect(offer.satisfies(request))
        offer.components[0].profiles[0].conformanceTraffic?.mtuBytes = .fixed(9000)
        #expect(offer.satisfies(request))
        offer.components[0].profiles[0].conformanceTraffic?.mtuBytes = .fixed(4470)
        #expect(
            offer.comparison(against: request).gaps.map(\.description)
                == [#"components[0].profiles[0].conformance-traffic.mtu-bytes: requested {"one-of":[1500,9000]}, offered 4470"#])
        offer.components[0].profiles[0].conformanceTraffic?.mtuBytes = .oneOf([9000, 1500])
        #expect(offer.satisfies(request))
        // Enumerations: one-of reachability in the CDN request.
        let cdn = try CPDExamples.cpd("cdn-footprint-extension.json")
        var cdnOffer = cdn.concretized(choosing: PreferredValueChooser())
        #expect(cdnOffer.components[0].profiles[0].scope[1].reachability == .fixed(.restricted))
        #expect(cdnOffer.satisfies(cdn))
        cdnOffer.components[1].profiles[0].invocationMeans?.type = .fixed(.explicit)
        #expect(cdnOffer.satisfies(cdn))
    }

    @Test func gapsAreCompleteAndOrdered() throws {
        let gaps = try Self.gaps {
            $0.notifications![0].intervalSeconds = .fixed(600)
            $0.capacity![2].outgoingBandwidthMbps = .fixed(10)
            $0.customerNodes.append(CPDCustomerNode(identifier: "CE-X", localization: CPDLocalization(country: "FR")))
            $0.conformanceTraffic!.mtuBytes = .fixed(1400)
            $0.qosGuarantees!.entries[3].oneWayDelayMs = .fixed(36)
            $0.availability!.availabilityPercent = .fixed(99)
            $0.capacity![0].incomingBandwidthMbps = .fixed(75)
            $0.trafficIsolation!.encryptionRequired = true
            $0.flowIdentification!.classifiers[0].dscp = 34
            $0.activationMeans![0].parameters = ["customer-as": "64513"]
            $0.routingAndForwarding!.avoid = ["satellite", "microwave"]
            $0.extensions!.customerDescription!.email = "other@example.com"
        }
        #expect(
            gaps.map(\.path.description) == [
                "\(Self.p0).customer-nodes[3]",
                "\(Self.p0).qos-guarantees.entries[3].one-way-delay-ms",
                "\(Self.p0).availability.availability-percent",
                "\(Self.p0).capacity[0].incoming-bandwidth-mbps",
                "\(Self.p0).capacity[2].outgoing-bandwidth-mbps",
                "\(Self.p0).traffic-isolation.encryption-required",
                "\(Self.p0).conformance-traffic.mtu-bytes",
                "\(Self.p0).flow-identification.classifiers[0].dscp",
                "\(Self.p0).routing-and-forwarding.avoid",
                "\(Self.p0).activation-means[0].parameters.customer-as",
                "\(Self.p0).notifications[0].interval-seconds",
                "\(Self.p0).extensions.customer-description.email",
            ])
        #expect(gaps.map(\.kind) == [.extraNode] + Array(repeating: .notSatisfied, count: 11))
        // Deterministic: same input, same list.
        #expect(try Self.gaps { $0.capacity![0].incomingBandwidthMbps = .fixed(75) }.count == 1)
    }

    @Test func structureMismatch() throws {
        var offer = try Self.offer()
        offer.components.append(offer.components[0])
        let gaps = offer.comparison(against: try Self.request()).gaps
        #expect(gaps.count == 1)
        #expect(gaps.first?.kind == .structureMismatch)
        #expect(gaps.first?.description == "components: requested 1, offered 2 (element counts differ)")
        var offer2 = try Self.offer()
        offer2.components[0].profiles.append(offer2.components[0].profiles[0])
        #expect(offer2.comparison(against: try Self.request()).gaps.map(\.path.description) == ["components[0].profiles"])
        #expect(CPD.empty.comparison(against: try Self.request()).gaps.map(\.kind) == [.structureMismatch])
    }

    @Test func decisionEngineHelpers() throws {
        let request = try Self.request()
        let caps = request.capacityRequests
        #expect(
            caps.map(\.path.description) == [
                "\(Self.p0).capacity[0]", "\(Self.p0).capacity[1]", "\(Self.p0).capacity[2]",
            ])
        #expect(caps.map(\.customerNode) == ["CE-PAR-1", "CE-LYS-1", "CE-MRS-1"])
        #expect(caps[0].incomingBandwidthMbps == .range(min: 80, max: 100))
        #expect(caps[0].nodeLinkIdentifiers == ["PE-PAR-2:ge-0/0/1"])
        #expect(caps[1].nodeLinkIdentifiers == [])
        #expect(caps[2].outgoingBandwidthMbps == .range(min: 20, max: nil))

        // "any" stays loose unless a value is supplied.
        let loose = request.concretized(choosing: PreferredValueChooser())
        #expect(
            loose.looseFields.map(\.description) == [
                "\(Self.p0).qos-guarantees.entries[2].delay-variation-ms",
                "\(Self.p0).qos-guarantees.entries[3].delay-variation-ms",
            ])
        let concrete = request.concretized(choosing: PreferredValueChooser(valuesForAny: ["delay-variation-ms": .number(8)]))
        #expect(concrete.isConcrete)
        #expect(concrete.satisfies(request))
        #expect(concrete.components[0].profiles[0].capacity?[0].incomingBandwidthMbps == .fixed(100))
        #expect(concrete.components[0].profiles[0].qosGuarantees?.entries[2].delayVariationMs == .fixed(8))
        #expect(concrete.validate() == [])

        // A custom chooser producing a partial offer.
        struct Cap75: NegotiableChooser {
            func choose<V: NegotiableValue>(_ requested: Negotiable<V>, at path: JSONPath) -> V? {
                if path.description.hasSuffix("capacity[0].incoming-bandwidth-mbps"), let v = CPNPDecimal(75) as? V { return v }
                return requested.preferredValue ?? (try? V(negotiableJSON: .number(1), at: path))
            }
        }
        let partial = request.concretized(choosing: Cap75())
        #expect(partial.isConcrete)
        #expect(partial.comparison(against: request).gaps.map(\.path.description) == ["\(Self.p0).capacity[0].incoming-bandwidth-mbps"])
    }
}
