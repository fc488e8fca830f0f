import Foundation
import Testing
@testable import CPNPCore

/// A request split by customer nodes between providers, and their offers composed back into one
/// (RFC 8921 §8.8, §8.9).
@Suite("CPD segments")
struct CPDSegmentsTests {
    static func request() throws -> CPD { try VectorFiles.exampleCPD("l3vpn-3-sites.json") }

    static func errors(_ cpd: CPD) -> [CPDValidationIssue] { cpd.validate(at: .root).filter { $0.severity == .error } }

    @Test func aSegmentHoldsItsNodesAndTheGuaranteesBetweenThem() throws {
        let request = try Self.request()
        #expect(request.customerNodeIdentifiers == ["CE-PAR-1", "CE-LYS-1", "CE-MRS-1"])
        let west = try #require(request.restricted(to: ["CE-PAR-1", "CE-LYS-1"]))
        #expect(west.customerNodeIdentifiers == ["CE-PAR-1", "CE-LYS-1"])
        let profile = try #require(west.components.first?.profiles.first)
        #expect(profile.scope.count == 4 && profile.scope.allSatisfy { $0.customerNode != "CE-MRS-1" })
        #expect(profile.capacity?.map(\.customerNode) == ["CE-PAR-1", "CE-LYS-1"])
        #expect(profile.qosGuarantees?.entries.map { "\($0.from)>\($0.to)" } == ["CE-PAR-1>CE-LYS-1", "CE-LYS-1>CE-PAR-1"])
        #expect(profile.flowIdentification?.classifiers.first?.qosEntryRef == 0)
        #expect(profile.activationMeans?.compactMap(\.customerNode) == ["CE-PAR-1", "CE-LYS-1"])
        #expect(Self.errors(west).isEmpty, "\(Self.errors(west))")

        // Marseille's guarantees are towards "*": kept, renumbered; the classifier of PAR→LYS goes.
        let south = try #require(request.restricted(to: ["CE-MRS-1"]))
        let marseille = try #require(south.components.first?.profiles.first)
        #expect(marseille.qosGuarantees?.entries.map { "\($0.from)>\($0.to)" } == ["*>CE-MRS-1", "CE-MRS-1>*"])
        #expect(
            marseille.flowIdentification?.classifiers.isEmpty == true && marseille.flowIdentification?.remarking?.count == 1,
            "the re-marking rule stays")
        #expect(Self.errors(south).isEmpty, "\(Self.errors(south))")
        #expect(request.restricted(to: ["CE-BER-1"]) == nil)
    }

    @Test func segmentOffersComposeIntoOneOfferShapedLikeTheRequest() throws {
        let request = try Self.request()
        let west = try #require(request.restricted(to: ["CE-PAR-1", "CE-LYS-1"]))
        let south = try #require(request.restricted(to: ["CE-MRS-1"]))
        #expect(CPD.composed(request: request, segments: [west, south]) == request, "the parts give back the whole")
        #expect(
            CPD.composed(request: request, segments: [south, west]).customerNodeIdentifiers == request.customerNodeIdentifiers,
            "in the request's order")

        // The weakest availability of the segments is what the whole can promise.
        var weaker = south
        weaker.components[0].profiles[0].availability?.availabilityPercent = .fixed(CPNPDecimal(parsing: "99.5")!)
        var stronger = west
        stronger.components[0].profiles[0].availability?.availabilityPercent = .fixed(CPNPDecimal(parsing: "99.99")!)
        let composed = CPD.composed(request: request, segments: [stronger, weaker])
        #expect(composed.components[0].profiles[0].availability?.availabilityPercent == .fixed(CPNPDecimal(parsing: "99.5")!))

        // A segment nobody offers is left out: a partial offer, still a valid CPD.
        let partial = CPD.composed(request: request, segments: [west])
        #expect(partial.customerNodeIdentifiers == ["CE-PAR-1", "CE-LYS-1"])
        #expect(Self.errors(partial).isEmpty, "\(Self.errors(partial))")
        #expect(!partial.comparison(against: request).gaps.isEmpty, "and the comparison says what is missing")
    }
}
