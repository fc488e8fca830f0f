import CPNPCore
import Foundation
import Testing
@testable import CPNPPolicy

/// Builders for requests and decisions.
enum Fixture {
    static let now = CPNPTimestamp(year: 2026, month: 11, day: 21, hour: 10)!
    static let demo = ServerConfiguration.demo
    static var acme: CustomerProfile { demo.customerProfile(matching: ["acme"])! }
    static var globex: CustomerProfile { demo.customerProfile(matching: ["globex"])! }

    /// An example CPD of the repository (`Examples/NAME`).
    static func example(_ name: String) throws -> CPD {
        let data = try Data(contentsOf: Repo.root.appendingPathComponent("Examples").appendingPathComponent(name))
        return try CPD(json: JSONParser.parse(data), at: JSONPath.root.appending("cpd"))
    }

    static func node(_ id: String, links: [String] = [], site: String? = nil, country: String? = "FR") -> CPDCustomerNode {
        CPDCustomerNode(identifier: id, linkIdentifiers: links, localization: CPDLocalization(siteID: site, country: country))
    }

    static func cap(
        _ node: String, link: String? = nil, in i: Negotiable<CPNPDecimal>?,
        out o: Negotiable<CPNPDecimal>?
    ) -> CPDCapacityEntry {
        CPDCapacityEntry(customerNode: node, linkIdentifier: link, incomingBandwidthMbps: i, outgoingBandwidthMbps: o)
    }

    /// One profile: the nodes, a global outgoing scope entry per node, the capacity entries and
    /// the given optional clauses.
    static func cpd(
        _ nodes: [CPDCustomerNode], capacity: [CPDCapacityEntry]? = nil, qos: CPDQoSGuarantees? = nil,
        availability: CPDAvailability? = nil, change: (inout ConnectivityProvisioningProfile) -> Void = { _ in }
    ) -> CPD {
        var p = ConnectivityProvisioningProfile(
            customerNodes: nodes,
            scope: nodes.map { CPDScopeEntry(customerNode: $0.identifier, direction: .outgoing, reachability: .fixed(.global)) },
            qosGuarantees: qos, availability: availability, capacity: capacity,
            conformanceTraffic: capacity == nil ? nil : CPDConformanceTraffic(enforcement: .policing, outOfProfileAction: .discard))
        change(&p)
        return CPD(components: [ConnectivityProvisioningComponent(profiles: [p])])
    }

    /// A single attachment at `site` (or on `link`) asking `mbps` both ways.
    static func single(_ mbps: Negotiable<CPNPDecimal>, site: String = "PARIS-HQ", link: String? = nil) -> CPD {
        cpd([node("CE-1", links: link.map { [$0] } ?? [], site: site)], capacity: [cap("CE-1", in: mbps, out: mbps)])
    }

    static func options(
        cost: Bool = false, purpose: Purpose? = nil, testEnd: CPNPTimestamp? = nil,
        activation: ActivationType? = nil
    ) -> InformationElements {
        InformationElements(
            negotiationOptions: NegotiationOptions(
                purpose: purpose, testPeriodEnd: testEnd, activationType: activation, costRequested: cost))
    }

    static func decide(
        _ request: CPD, config: ServerConfiguration = demo, ies: InformationElements? = nil,
        profile: CustomerProfile? = Fixture.acme, identityPresent: Bool = true, reservations: [Reservation] = [],
        clientAddress: String? = nil, openOrders: Int = 0, updating: [Reservation]? = nil
    ) -> Decision {
        DecisionEngine(configuration: config).decide(
            request: request, informationElements: ies, profile: profile, identityPresent: identityPresent,
            inventory: config.inventory(reservations: reservations), now: now, clientAddress: clientAddress,
            openOrders: openOrders, updating: updating)
    }

    /// Holds everything on `link` but `free` Mbit/s each way.
    static func leaving(_ free: CPNPDecimal, on link: String, config: ServerConfiguration = demo) -> [Reservation] {
        let c = config.policy.link(link)!.capacity
        return [
            Reservation(linkID: link, direction: .incoming, mbps: c.incoming - free),
            Reservation(linkID: link, direction: .outgoing, mbps: c.outgoing - free),
        ]
    }
}

extension Decision {
    var offer: Offer? {
        switch self {
        case .offer(let o): o
        case .needsApproval(_, let o): o
        case .fail: nil
        }
    }

    var failure: (code: FailStatusCode, diagnostic: String)? {
        if case .fail(let c, let d) = self { return (c, d) }
        return nil
    }

    var isPlainOffer: Bool {
        if case .offer = self { return true }
        return false
    }
}

extension Offer {
    /// The offered capacity entries of the first profile.
    var capacity: [CPDCapacityEntry] { cpd.components[0].profiles[0].capacity ?? [] }
    var profile: ConnectivityProvisioningProfile { cpd.components[0].profiles[0] }
}
