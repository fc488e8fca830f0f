public import CPNPCore
public import CPNPTransport

/// How far an offer may fall short of the request and still be acceptable (RFC 8921 §7 step 3).
public struct OfferTolerances: Sendable, Hashable {
    /// Largest accepted relative shortfall of a numeric value (0.2: 80 Mbps for a requested 100).
    public var relative: Double
    /// Clause paths (prefixes such as `components[0].profiles[0].qos-guarantees`) whose gaps are ignored.
    public var ignoredPaths: [String]

    public init(relative: Double = 0, ignoredPaths: [String] = []) {
        self.relative = max(0, relative)
        self.ignoredPaths = ignoredPaths
    }

    /// The offer must satisfy the request exactly.
    public static let exact = OfferTolerances()

    /// Whether every gap of `comparison` is within these tolerances.
    public func accepts(_ comparison: CPDComparison) -> Bool { comparison.gaps.allSatisfy(tolerates) }

    /// Whether `gap` is within these tolerances.
    public func tolerates(_ gap: CPDGap) -> Bool {
        let path = gap.path.description
        if ignoredPaths.contains(where: { path.hasPrefix($0) || path.hasPrefix("$." + $0) }) { return true }
        guard gap.kind == .notSatisfied, let shortfall = OfferTolerances.shortfall(gap) else { return false }
        return shortfall <= relative + 1e-12
    }

    /// The relative shortfall of a numeric gap: how far the offered number is outside the requested
    /// number or `{min, max}` range, relative to the bound it misses. nil when not numeric.
    public static func shortfall(_ gap: CPDGap) -> Double? {
        guard case .number(let offeredNumber)? = gap.offered, let offered = Double(offeredNumber.description) else { return nil }
        func value(_ member: JSONValue?) -> Double? { if case .number(let decimal)? = member { Double(decimal.description) } else { nil } }
        var low: Double?
        var high: Double?
        switch gap.requested {
        case .number(let requestedNumber)?: low = Double(requestedNumber.description); high = low
        case .object(let range)?: low = value(range["min"]); high = value(range["max"])
        default: return nil
        }
        if let low, offered < low { return low == 0 ? .infinity : (low - offered) / abs(low) }
        if let high, offered > high { return high == 0 ? .infinity : (offered - high) / abs(high) }
        return 0
    }
}

/// An offer (or its absence) from one server in a negotiation round.
public struct NegotiationCandidate: Sendable, Hashable {
    public var server: CPNPPeer
    public var customerOrderID: CustomerOrderID
    /// The offer, if the server made one in time.
    public var offer: OfferMessage?
    /// Why there is no offer.
    public var failure: String?
    /// The offer against the request (nil without an offer).
    public var comparison: CPDComparison?

    public init(
        server: CPNPPeer, customerOrderID: CustomerOrderID, offer: OfferMessage? = nil, failure: String? = nil, comparison: CPDComparison? = nil
    ) {
        self.server = server
        self.customerOrderID = customerOrderID
        self.offer = offer
        self.failure = failure
        self.comparison = comparison
    }

    /// Sum of relative numeric shortfalls, plus one per other gap: 0 = satisfies.
    public var gapScore: Double {
        comparison?.gaps.reduce(0) { $0 + (OfferTolerances.shortfall($1) ?? 1) } ?? .infinity
    }

    /// The offered cost, when given.
    public var cost: Cost? { offer?.informationElements?.cost }

    public func isAcceptable(within tolerances: OfferTolerances) -> Bool {
        guard let comparison else { return false }
        return tolerances.accepts(comparison)
    }
}

/// What a negotiation round collected (RFC 8921 §7, figure 4).
public struct NegotiationRound: Sendable {
    /// 1 for the first QUOTATION.
    public var number: Int
    public var request: CPD
    public var informationElements: InformationElements?
    public var candidates: [NegotiationCandidate]

    public init(number: Int, request: CPD, informationElements: InformationElements?, candidates: [NegotiationCandidate]) {
        self.number = number
        self.request = request
        self.informationElements = informationElements
        self.candidates = candidates
    }
}

/// A strategy's decision on a round.
public enum NegotiationDecision: Sendable, Hashable {
    /// Accept this order's offer; every other offer is declined with reason 2 (conflict with another offer).
    case accept(CustomerOrderID)
    /// Decline every offer (reason 1, unacceptable gap) and quote again with this request (figure 4's N steps).
    case requote(CPD, InformationElements?)
    /// Decline every offer (reason 1) and stop, with the reason shown to the user.
    case stop(String)
}

/// Chooses among offers (RFC 8921 §7 step 3, §8.10). Write your own to encode a purchasing policy.
public protocol NegotiationStrategy: Sendable {
    /// A short name for logs and the CLI.
    var name: String { get }
    func decide(_ round: NegotiationRound) -> NegotiationDecision
}

/// Accepts the first offer that satisfies the request clause by clause within `tolerances`.
public struct AcceptIfSatisfies: NegotiationStrategy {
    public var tolerances: OfferTolerances
    public init(tolerances: OfferTolerances = .exact) { self.tolerances = tolerances }
    public var name: String { "accept-if-satisfies" }

    public func decide(_ round: NegotiationRound) -> NegotiationDecision {
        if let candidate = round.candidates.first(where: { $0.isAcceptable(within: tolerances) }) { return .accept(candidate.customerOrderID) }
        return .stop(BestOfN.whyNone(round))
    }
}

/// The same request to several providers; the best acceptable offer wins: lowest cost first (offers with
/// a cost before those without), then smallest gap to the request, then the order servers were given.
public struct BestOfN: NegotiationStrategy {
    public var tolerances: OfferTolerances
    public init(tolerances: OfferTolerances = .exact) { self.tolerances = tolerances }
    public var name: String { "best-of-n" }

    public func decide(_ round: NegotiationRound) -> NegotiationDecision {
        let acceptable = round.candidates.enumerated().filter { $0.element.isAcceptable(within: tolerances) }
        guard let best = acceptable.min(by: { BestOfN.ranks($0.element, before: $1.element, $0.offset, $1.offset) }) else {
            return .stop(BestOfN.whyNone(round))
        }
        return .accept(best.element.customerOrderID)
    }

    /// Cost, then gap, then position. Costs in different currencies are not compared (position decides).
    static func ranks(_ candidate: NegotiationCandidate, before other: NegotiationCandidate, _ position: Int, _ otherPosition: Int) -> Bool {
        switch (candidate.cost, other.cost) {
        case (let cost?, let otherCost?) where cost.currency == otherCost.currency && cost.amount != otherCost.amount:
            return cost.amount < otherCost.amount
        case (.some, nil): return true
        case (nil, .some): return false
        default: break
        }
        if candidate.gapScore != other.gapScore { return candidate.gapScore < other.gapScore }
        return position < otherPosition
    }

    static func whyNone(_ round: NegotiationRound) -> String {
        let offers = round.candidates.filter { $0.offer != nil }.count
        if offers == 0 {
            return "no offer: " + round.candidates.map { "\($0.server.displayName): \($0.failure ?? "no answer")" }.joined(separator: "; ")
        }
        return "\(offers) offer\(offers == 1 ? "" : "s") received, none within the tolerances"
    }
}

/// Multi-round negotiation (figure 4): when `base` finds nothing acceptable, quote again with the
/// request adjusted by `adjust`, up to `maximumRounds` rounds in all.
public struct MultiRound: NegotiationStrategy {
    public var base: any NegotiationStrategy
    public var maximumRounds: Int
    public var adjust: any RequestAdjuster
    public init(base: any NegotiationStrategy, maximumRounds: Int, adjust: any RequestAdjuster) {
        self.base = base
        self.maximumRounds = max(1, maximumRounds)
        self.adjust = adjust
    }
    public var name: String { "multi-round(\(base.name), \(maximumRounds))" }

    public func decide(_ round: NegotiationRound) -> NegotiationDecision {
        let decision = base.decide(round)
        guard case .stop(let why) = decision else { return decision }
        guard round.number < maximumRounds else { return .stop(why + "; \(round.number) round\(round.number == 1 ? "" : "s") done") }
        guard let next = adjust.adjust(round) else { return .stop(why + "; the request cannot be adjusted further") }
        return .requote(next, round.informationElements)
    }
}

/// Builds the next round's request from a round's offers.
public protocol RequestAdjuster: Sendable {
    func adjust(_ round: NegotiationRound) -> CPD?
}

/// Takes the best partial offer and relaxes the request to what it offers where the shortfall is
/// at most `floor` (e.g. 0.5: accept down to half of a requested bandwidth); other gaps stop.
public struct RelaxTowardsOffer: RequestAdjuster {
    public var floor: Double
    public init(floor: Double) { self.floor = floor }

    public func adjust(_ round: NegotiationRound) -> CPD? {
        let offers = round.candidates.filter { $0.offer != nil }
        guard let best = offers.enumerated().min(by: { BestOfN.ranks($0.element, before: $1.element, $0.offset, $1.offset) })?.element,
            let gaps = best.comparison?.gaps, !gaps.isEmpty
        else { return nil }
        var json = round.request.json
        for gap in gaps {
            guard gap.kind == .notSatisfied, let shortfall = OfferTolerances.shortfall(gap), shortfall <= floor, let offered = gap.offered else {
                return nil
            }
            guard json.replacing(at: gap.path.components, with: offered) else { return nil }
        }
        guard let next = try? CPD(json: json, at: .root), next != round.request else { return nil }
        return next
    }
}

extension JSONValue {
    /// Replaces the value at `path`; false when the path does not exist.
    mutating func replacing(at path: ArraySlice<JSONPath.Component>, with value: JSONValue) -> Bool {
        guard let first = path.first else {
            self = value
            return true
        }
        switch (self, first) {
        case (.object(var object), .key(let key)):
            guard var child = object[key], child.replacing(at: path.dropFirst(), with: value) else { return false }
            object[key] = child
            self = .object(object)
            return true
        case (.array(var elements), .index(let index)):
            guard elements.indices.contains(index), elements[index].replacing(at: path.dropFirst(), with: value) else { return false }
            self = .array(elements)
            return true
        default:
            return false
        }
    }

    mutating func replacing(at path: [JSONPath.Component], with value: JSONValue) -> Bool {
        replacing(at: path[...], with: value)
    }
}
