public import CPNPCore

/// An offer the server is prepared to make (RFC 8921 §8.7 "Offered CPD", §9.2.3 OFFER).
public struct Offer: Sendable, Hashable {
    /// The Offered CPD. Always **concrete** (every negotiable value fixed, RFC 8921 §8.7), so that
    /// the client can ACCEPT it as is (§9.2.4), and valid (`validate()` reports no error).
    public var cpd: CPD
    /// Capacity to hold while the offer is valid and to commit on ACCEPT: one entry per link and
    /// direction (``Reservation/aggregate(_:)`` form). Always fits the inventory the offer was
    /// computed against.
    public var reservations: [Reservation]
    /// The price, when the client asked for it (`negotiation-options.cost`, docs/protocol.md §4.1).
    public var cost: Cost?
    /// Whether ``cpd`` fully satisfies the Requested CPD (docs/protocol.md §4.3). False for a
    /// counter-offer (RFC 8921 §7 step 2: less bandwidth, a subset of sites, a looser QoS).
    public var satisfiesRequest: Bool
    /// Where the offer differs from the request (`cpd.comparison(against: request).gaps`).
    public var gaps: [CPDGap]
    /// Why the offer is partial, for logs and operators (e.g. which link limited the bandwidth).
    public var notes: [String]
    /// Information elements for the OFFER: Provider Description, the negotiation options the
    /// offer assumes (RFC 8921 §9.1.10.3) and the cost IE when asked.
    public var informationElements: InformationElements

    /// - Parameters:
    ///   - cpd: the Offered CPD.
    ///   - reservations: capacity held by the offer.
    ///   - cost: the cost IE, if asked.
    ///   - satisfiesRequest: whether the request is met in full.
    ///   - gaps: differences from the request.
    ///   - notes: explanations of partial values.
    ///   - informationElements: IEs of the OFFER.
    public init(
        cpd: CPD, reservations: [Reservation], cost: Cost?, satisfiesRequest: Bool, gaps: [CPDGap],
        notes: [String] = [], informationElements: InformationElements = .init()
    ) {
        self.cpd = cpd
        self.reservations = reservations
        self.cost = cost
        self.satisfiesRequest = satisfiesRequest
        self.gaps = gaps
        self.notes = notes
        self.informationElements = informationElements
    }
}

/// The engine's answer to a QUOTATION or UPDATE (RFC 8921 §8.2, §9.2.2–§9.2.3, §9.2.10, §12.2).
public enum Decision: Sendable, Hashable {
    /// Send this OFFER.
    case offer(Offer)
    /// Send FAIL with this status code (RFC 8921 Table 4) and diagnostic (≤ 256 characters,
    /// docs/protocol.md §3.10).
    case fail(FailStatusCode, diagnostic: String)
    /// Hold the order in AwaitingProcessing for an operator (RFC 8921 §12.2 administrative
    /// validation); `offer` is what approval would send (nil when the escalated request has no
    /// possible offer, see ``ApprovalConfiguration/escalateOutOfResources``).
    case needsApproval(reason: String, offer: Offer?)
}

/// The provider's decision-making process (RFC 8921 §8.2, §12.2), as pure functions of the
/// configuration, the request and the current inventory. No I/O, no clock, no randomness:
/// the same inputs always give the same decision.
///
/// Checks, in order (the first failing one answers):
/// 1. no client identity → FAIL 2 (Authentication Required);
/// 2. no profile for the identity, or the client's address outside the profile's
///    `source-prefixes` → FAIL 3 (Authorization Failed);
/// 3. a Requested CPD that is empty or does not validate → FAIL 1 (Message Validation Error);
/// 4. the customer's open-order cap reached (QUOTATION only) → FAIL 4;
/// 5. an activation type the provider does not support → FAIL 8;
/// 6. not entitled (testing orders, test period too long, a node in a country or at a PE the
///    profile does not allow) → FAIL 4 (Administratively Prohibited);
/// 7. a customer node no PE serves, or naming an unknown link/PE → FAIL 6 (Network Presence
///    Error) naming the node — or, with `policy.counter-offers.drop-unserved-sites`, a partial
///    offer without that node;
/// 8. capacity: each capacity entry is mapped to one border link and gets the largest value the
///    request admits that is free (never more); less than asked is a counter-offer; a node for
///    which nothing is free is left out of the offer (subset of sites) while others can be
///    served, otherwise FAIL 5 (Out of Resources) naming the link;
/// 9. everything else is concretised (QoS and availability: the values the network achieves;
///    ranges: a value inside; `"any"`: the provider's default; one-of: the first member);
/// 10. approval rules (RFC 8921 §12.2) turn the offer into ``Decision/needsApproval(reason:offer:)``.
///
/// A bandwidth above the profile's `max-bandwidth-mbps` is a counter-offer capped at that
/// maximum (the customer can accept less), not a FAIL 4: RFC 8921 §7 prefers an offer the
/// client may decline to a refusal.
public struct DecisionEngine: Sendable {
    /// The configuration decisions are made from.
    public let configuration: ServerConfiguration

    /// - Parameter configuration: the server configuration (policy, customers, pricing, approval).
    public init(configuration: ServerConfiguration) {
        self.configuration = configuration
    }

    /// Decides how to answer a QUOTATION (or an UPDATE when `updating` is given).
    ///
    /// - Parameters:
    ///   - request: the Requested CPD.
    ///   - informationElements: the request's IEs (negotiation options: purpose, activation type,
    ///     cost request).
    ///   - profile: the customer profile matching the client certificate, or nil.
    ///   - identityPresent: whether the client presented an authenticated identity.
    ///   - inventory: free capacity given the current reservations (not including this order's).
    ///   - now: the current time (test periods).
    ///   - clientAddress: the client's IP address, checked against the profile's source prefixes.
    ///   - openOrders: the customer's orders not yet ended (checked against `max-open-orders`
    ///     for a QUOTATION only).
    ///   - updating: for an UPDATE, the order's current reservations: they are given back to the
    ///     inventory before deciding, and the caller applies ``reservationsDelta(old:new:)``.
    ///   - requestValidated: the request passed `validate()` already (the engine checks every
    ///     QUOTATION and UPDATE it receives); its rules are not checked again.
    /// - Returns: the decision.
    public func decide(
        request: CPD, informationElements: InformationElements?, profile: CustomerProfile?, identityPresent: Bool,
        inventory: InventoryView, now: CPNPTimestamp, clientAddress: String? = nil, openOrders: Int = 0,
        updating: [Reservation]? = nil, requestValidated: Bool = false
    ) -> Decision {
        guard identityPresent else {
            return .fail(
                .authenticationRequired,
                diagnostic: "no authenticated client identity: a client certificate is required (RFC 8921 §13)")
        }
        guard let profile else {
            return .fail(.authorizationFailed, diagnostic: "the client identity is not a known customer")
        }
        if let clientAddress, !profile.admits(address: clientAddress) {
            return .fail(
                .authorizationFailed,
                diagnostic: clip("source address \(clientAddress) is not allowed for customer \(profile.identity)"))
        }
        let available = updating.map { inventory.releasing($0) } ?? inventory
        let run = DecisionRun(
            config: configuration, profile: profile, request: request,
            options: informationElements?.negotiationOptions, inventory: available, now: now,
            requestValidated: requestValidated)
        do throws(Refusal) {
            let offer = try run.makeOffer(openOrders: updating == nil ? openOrders : nil)
            if let reason = approvalReason(offer: offer, profile: profile, options: informationElements?.negotiationOptions) {
                return .needsApproval(reason: clip(reason), offer: offer)
            }
            return .offer(offer)
        } catch {
            if error.code == .outOfResources, configuration.approval.escalateOutOfResources {
                return .needsApproval(reason: clip("escalated: \(error.diagnostic)"), offer: nil)
            }
            return .fail(error.code, diagnostic: clip(error.diagnostic))
        }
    }

    /// The change of reservations when an agreement is updated ("adjusted by the delta on
    /// UPDATE", docs/configuration.md `policy.links[]`): per link and direction, new total − old
    /// total; zero changes omitted. Positive amounts are to reserve, negative ones to release.
    ///
    /// - Parameters:
    ///   - old: the order's current reservations.
    ///   - new: the reservations of the updated offer.
    /// - Returns: signed deltas, sorted by link then direction.
    public static func reservationsDelta(old: [Reservation], new: [Reservation]) -> [Reservation] {
        let negated = Reservation.aggregate(old).map { Reservation(linkID: $0.linkID, direction: $0.direction, mbps: -$0.mbps) }
        return Reservation.aggregate(Reservation.aggregate(new) + negated)
    }

    /// The information elements of an OFFER (RFC 8921 §9.1.10): the Provider Description, the
    /// request's negotiation options echoed (without the price request and the provider chain),
    /// and `cost`.
    public func offerInformationElements(options: NegotiationOptions?, cost: Cost?) -> InformationElements {
        var echoed = options
        echoed?.costRequested = false
        echoed?.providerChain = []
        let provider = configuration.provider
        let hasProvider = provider.name != nil || provider.asNumber != nil || provider.contact != nil
        return InformationElements(providerDescription: hasProvider ? provider : nil, negotiationOptions: echoed, cost: cost)
    }

    /// The price list that applies to `profile` (its own, else the top-level one).
    ///
    /// - Parameter profile: a customer profile.
    public func pricing(for profile: CustomerProfile?) -> PricingRule {
        profile?.pricing ?? configuration.pricing
    }

    /// Why `offer` must wait for an operator (RFC 8921 §12.2), or nil when it may be sent now.
    ///
    /// - Parameters:
    ///   - offer: the offer that would be made.
    ///   - profile: the customer.
    ///   - options: the request's negotiation options.
    public func approvalReason(offer: Offer, profile: CustomerProfile, options: NegotiationOptions?) -> String? {
        let approval = configuration.approval
        if approval.mode == .manual { return "approval mode is manual: every order is validated by an operator" }
        for (index, rule) in approval.rules.enumerated() {
            let tag = "(approval rule \(index): \(rule))"
            switch rule {
            case .all:
                return "every order is validated by an operator \(tag)"
            case .aboveMbps(let threshold):
                let largest = OfferMetrics.largestBandwidth(offer.cpd)
                if threshold < largest { return "offered bandwidth \(largest) Mbps is above \(threshold) Mbps \(tag)" }
            case .aboveTotalMbps(let threshold):
                let total = OfferMetrics.totalBandwidth(offer.cpd)
                if threshold < total { return "total offered bandwidth \(total) Mbps is above \(threshold) Mbps \(tag)" }
            case .aboveAmount(let threshold):
                let cost = offer.cost ?? pricing(for: profile).cost(for: offer.cpd)
                if threshold < cost.amount { return "price \(cost) is above \(threshold) \(cost.currency) \(tag)" }
            case .purpose(let purpose):
                if (options?.effectivePurpose ?? .permanent) == purpose {
                    return "\(purpose.rawValue) orders are validated by an operator \(tag)"
                }
            case .customers(let ids):
                if profile.matches(identities: ids) { return "orders of customer \(profile.identity) are validated by an operator \(tag)" }
            }
        }
        return nil
    }
}

/// A diagnostic shortened to the 256 characters a FAIL may carry (docs/protocol.md §3.10).
func clip(_ text: String, max: Int = 256) -> String {
    guard text.unicodeScalars.count > max else { return text }
    var out = String.UnicodeScalarView()
    out.append(contentsOf: text.unicodeScalars.prefix(max - 1))
    out.append("…")
    return String(out)
}

/// Why no offer can be made.
struct Refusal: Error {
    var code: FailStatusCode
    var diagnostic: String

    init(_ code: FailStatusCode, _ diagnostic: String) {
        self.code = code
        self.diagnostic = diagnostic
    }
}

/// One decision in progress.
struct DecisionRun {
    let config: ServerConfiguration
    let profile: CustomerProfile
    let request: CPD
    let options: NegotiationOptions?
    let inventory: InventoryView
    let now: CPNPTimestamp
    var requestValidated = false

    var policy: PolicyConfiguration { config.policy }

    /// Where a customer node may attach.
    struct Attachment {
        /// Candidate links, in preference order (configuration order).
        var links: [ProviderLink]
        /// The PE for QoS when no link is chosen.
        var pe: String?
    }

    /// The result of one allocation pass.
    struct Allocation {
        var link: ProviderLink
        var incoming: CPNPDecimal?
        var outgoing: CPNPDecimal?
    }

    // MARK: - the offer

    func makeOffer(openOrders: Int?) throws(Refusal) -> Offer {
        try checkRequest()
        if let openOrders {
            let limit = profile.maxOpenOrders ?? config.limits.defaultMaxOpenOrders
            if openOrders >= limit {
                throw Refusal(
                    .administrativelyProhibited,
                    "customer \(profile.identity) already has \(openOrders) open orders (maximum \(limit))")
            }
        }
        try checkOptions()

        // Network presence and entitlements of every node.
        var attachments: [String: Attachment] = [:]
        var unserved: [(node: String, why: String)] = []
        for component in request.components {
            for provisioningProfile in component.profiles {
                for node in provisioningProfile.customerNodes {
                    do throws(Refusal) {
                        attachments[node.identifier] = try attachment(for: node, capacityLinks: provisioningProfile.capacity ?? [])
                    } catch {
                        guard error.code == .networkPresenceError else { throw error }
                        unserved.append((node.identifier, error.diagnostic))
                    }
                }
            }
        }
        var excluded = Set<String>()
        var notes: [String] = []
        if !unserved.isEmpty {
            let why = unserved.map(\.why).joined(separator: "; ")
            let dropped = Set(unserved.map(\.node))
            guard policy.counterOffers.dropUnservedSites, canDrop(dropped) else {
                throw Refusal(.networkPresenceError, why)
            }
            excluded = dropped
            notes.append("left out (no network presence): \(why)")
        }

        // Capacity, dropping exhausted nodes until every remaining one is served.
        let requests = request.capacityRequests
        var allocations: [Int: Allocation] = [:]
        while true {
            let pass = allocate(requests, attachments: attachments, excluding: excluded)
            if pass.exhausted.isEmpty {
                allocations = pass.allocations
                notes += pass.notes
                break
            }
            let why = "out of resources: " + pass.exhausted.map(\.why).joined(separator: "; ")
            let next = excluded.union(pass.exhausted.map(\.node))
            let stillCapacity = requests.contains { !next.contains($0.customerNode) }
            guard policy.counterOffers.dropExhaustedSites, stillCapacity, canDrop(next) else {
                throw Refusal(.outOfResources, why)
            }
            notes.append("left out (\(why))")
            excluded = next
        }

        // Build the Offered CPD.
        var offered = request
        var chosenLinks: [String: [String]] = [:]
        var chosenPE: [String: String] = [:]
        for (requestIndex, capacityRequest) in requests.enumerated() {
            guard let allocation = allocations[requestIndex] else { continue }
            let (componentIndex, profileIndex) = (capacityRequest.componentIndex, capacityRequest.profileIndex)
            var entry = offered.components[componentIndex].profiles[profileIndex].capacity![capacityRequest.entryIndex]
            if let mbps = allocation.incoming { entry.incomingBandwidthMbps = .fixed(mbps) }
            if let mbps = allocation.outgoing { entry.outgoingBandwidthMbps = .fixed(mbps) }
            offered.components[componentIndex].profiles[profileIndex].capacity![capacityRequest.entryIndex] = entry
            // The node's link list names what its capacity entries name (validate() requires
            // it), else the chosen link.
            let label = capacityRequest.linkIdentifier ?? allocation.link.id
            if !chosenLinks[capacityRequest.customerNode, default: []].contains(label) {
                chosenLinks[capacityRequest.customerNode, default: []].append(label)
            }
            if chosenPE[capacityRequest.customerNode] == nil { chosenPE[capacityRequest.customerNode] = allocation.link.pe }
        }
        var nodePE: [String: String] = [:]
        for componentIndex in offered.components.indices {
            for profileIndex in offered.components[componentIndex].profiles.indices {
                for nodeIndex in offered.components[componentIndex].profiles[profileIndex].customerNodes.indices {
                    let node = offered.components[componentIndex].profiles[profileIndex].customerNodes[nodeIndex]
                    guard !excluded.contains(node.identifier), let attachment = attachments[node.identifier] else { continue }
                    var links = chosenLinks[node.identifier] ?? []
                    if links.isEmpty, let best = mostFree(attachment.links) { links = [best.id] }
                    nodePE[node.identifier] = chosenPE[node.identifier] ?? links.first.flatMap { policy.link($0)?.pe } ?? attachment.pe
                    if node.linkIdentifiers.isEmpty {
                        offered.components[componentIndex].profiles[profileIndex].customerNodes[nodeIndex].linkIdentifiers =
                            links.isEmpty ? (attachment.pe.map { [$0] } ?? []) : links
                    }
                }
            }
        }
        for componentIndex in offered.components.indices {
            for profileIndex in offered.components[componentIndex].profiles.indices {
                var provisioningProfile = offered.components[componentIndex].profiles[profileIndex]
                Self.remove(nodes: excluded, from: &provisioningProfile)
                concretizeScope(&provisioningProfile)
                concretizeQoS(&provisioningProfile, nodePE: nodePE, notes: &notes)
                if var availability = provisioningProfile.availability {
                    availability.availabilityPercent =
                        .fixed(Self.higherIsBetter(availability.availabilityPercent, achievable: policy.qos.availabilityPercent))
                    provisioningProfile.availability = availability
                }
                offered.components[componentIndex].profiles[profileIndex] = provisioningProfile
            }
        }
        offered = offered.concretized(choosing: OfferChooser(defaults: policy.defaults))

        var reservations: [Reservation] = []
        for allocation in allocations.values {
            let linkID = allocation.link.id
            if let mbps = allocation.incoming { reservations.append(Reservation(linkID: linkID, direction: .incoming, mbps: mbps)) }
            if let mbps = allocation.outgoing { reservations.append(Reservation(linkID: linkID, direction: .outgoing, mbps: mbps)) }
        }
        reservations = Reservation.aggregate(reservations)

        let comparison = offered.comparison(against: request)
        let cost: Cost? = options?.costRequested == true ? (profile.pricing ?? config.pricing).cost(for: offered) : nil
        let elements = DecisionEngine(configuration: config).offerInformationElements(options: options, cost: cost)
        return Offer(
            cpd: offered, reservations: reservations, cost: cost, satisfiesRequest: comparison.satisfies,
            gaps: comparison.gaps, notes: notes, informationElements: elements)
    }

    // MARK: - checks

    func checkRequest() throws(Refusal) {
        guard !request.isEmpty, request.components.contains(where: { !$0.profiles.isEmpty }) else {
            throw Refusal(.messageValidationError, "the requested CPD is empty")
        }
        if !requestValidated, let issue = request.validate(at: JSONPath.root.appending("cpd")).errors.first {
            throw Refusal(.messageValidationError, issue.description)
        }
    }

    func checkOptions() throws(Refusal) {
        let activation = options?.effectiveActivationType ?? .immediate
        guard policy.activationTypes.contains(activation) else {
            throw Refusal(
                .unsupportedActivationType,
                "activation type \(activation.rawValue) is not supported; supported: "
                    + policy.activationTypes.map(\.rawValue).joined(separator: ", "))
        }
        guard options?.effectivePurpose == .testing else { return }
        guard profile.entitlements.testingOrders else {
            throw Refusal(.administrativelyProhibited, "customer \(profile.identity) is not entitled to testing orders")
        }
        if let end = options?.testPeriodEnd {
            guard now < end else {
                throw Refusal(.messageValidationError, "test-period-end \(end.rfc3339) is not in the future")
            }
            if let max = profile.entitlements.maxTestPeriod, max < end - now {
                throw Refusal(
                    .administrativelyProhibited,
                    "test period until \(end.rfc3339) exceeds the \(Self.text(max)) customer \(profile.identity) is entitled to")
            }
        }
    }

    static func text(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds % 86400 == 0 { return "\(seconds / 86400) days" }
        if seconds % 3600 == 0 { return "\(seconds / 3600) hours" }
        return "\(seconds) seconds"
    }

    func allowedPE(_ edge: String) -> Bool {
        profile.entitlements.pes.map { $0.contains(edge) } ?? true
    }

    /// Where `node` may attach (network presence, RFC 8921 §8.2), checking entitlements.
    /// Throws FAIL 4 (not entitled) or FAIL 6 (no presence, caught by the caller).
    func attachment(for node: CPDCustomerNode, capacityLinks: [CPDCapacityEntry]) throws(Refusal) -> Attachment {
        let nodeID = node.identifier
        if let country = node.localization.country, let allowed = profile.entitlements.countries, !allowed.contains(country) {
            throw Refusal(
                .administrativelyProhibited,
                "customer node \(nodeID): country \(country) is not allowed for customer \(profile.identity)")
        }
        func resolve(_ name: String) throws(Refusal) -> (links: [ProviderLink], pe: String) {
            if let link = policy.link(name) {
                guard allowedPE(link.pe) else {
                    throw Refusal(
                        .administrativelyProhibited,
                        "customer node \(nodeID): customer \(profile.identity) is not entitled to \(link.pe) (link \(name))")
                }
                return ([link], link.pe)
            }
            if policy.edge(name) != nil {
                guard allowedPE(name) else {
                    throw Refusal(
                        .administrativelyProhibited,
                        "customer node \(nodeID): customer \(profile.identity) is not entitled to \(name)")
                }
                return (policy.links(at: name), name)
            }
            throw Refusal(.networkPresenceError, "customer node \(nodeID): link or PE \"\(name)\" is not in the provider's network")
        }
        // Links named by the node's capacity entries must exist too.
        for entry in capacityLinks where entry.customerNode == nodeID {
            if let name = entry.linkIdentifier { _ = try resolve(name) }
        }
        if !node.linkIdentifiers.isEmpty {
            var links: [ProviderLink] = []
            var providerEdge: String?
            for name in node.linkIdentifiers {
                let resolved = try resolve(name)
                for link in resolved.links where !links.contains(link) { links.append(link) }
                providerEdge = providerEdge ?? resolved.pe
            }
            return Attachment(links: links, pe: providerEdge)
        }
        let loc = node.localization
        var pes: [ProviderEdge] = []
        if let site = loc.siteID { pes = policy.networkPresence.filter { $0.sites.contains(site) } }
        if pes.isEmpty, let country = loc.country { pes = policy.networkPresence.filter { $0.countries.contains(country) } }
        guard !pes.isEmpty else {
            let where_ = [loc.siteID.map { "site \($0)" }, loc.country.map { "country \($0)" }].compactMap { $0 }
            let place = where_.isEmpty ? "" : " (" + where_.joined(separator: ", ") + ")"
            throw Refusal(.networkPresenceError, "customer node \(nodeID)\(place): no network presence")
        }
        let allowed = pes.filter { allowedPE($0.id) }
        guard !allowed.isEmpty else {
            throw Refusal(
                .administrativelyProhibited,
                "customer node \(nodeID): served only by "
                    + pes.map(\.id).joined(separator: ", ") + ", which customer \(profile.identity) is not entitled to")
        }
        return Attachment(links: allowed.flatMap { policy.links(at: $0.id) }, pe: allowed[0].id)
    }

    /// Whether leaving out `nodes` still leaves every profile at least one customer node and
    /// one scope entry (a valid CPD with the same structure as the request).
    func canDrop(_ nodes: Set<String>) -> Bool {
        for component in request.components {
            for provisioningProfile in component.profiles {
                guard provisioningProfile.customerNodes.contains(where: { !nodes.contains($0.identifier) }),
                    provisioningProfile.scope.contains(where: { !nodes.contains($0.customerNode) })
                else { return false }
            }
        }
        return true
    }

    // MARK: - capacity

    struct Pass {
        var allocations: [Int: Allocation] = [:]
        var exhausted: [(node: String, why: String)] = []
        var notes: [String] = []
    }

    /// One allocation pass over the capacity entries in document order, each on the link that
    /// serves it best, against an inventory that shrinks as entries are served.
    func allocate(_ requests: [CPDCapacityRequest], attachments: [String: Attachment], excluding excluded: Set<String>) -> Pass {
        var pass = Pass()
        var remaining = inventory
        let maxBW = profile.entitlements.maxBandwidthMbps
        for (requestIndex, capacityRequest) in requests.enumerated() where !excluded.contains(capacityRequest.customerNode) {
            if pass.exhausted.contains(where: { $0.node == capacityRequest.customerNode }) { continue }
            var candidates = attachments[capacityRequest.customerNode]?.links ?? []
            if let name = capacityRequest.linkIdentifier {
                candidates = policy.link(name).map { [$0] } ?? policy.links(at: name)
            }
            guard !candidates.isEmpty else {
                let node = capacityRequest.customerNode
                pass.exhausted.append((node, "customer node \(node): no border link available"))
                continue
            }
            struct Option {
                var link: ProviderLink
                var incoming: CPNPDecimal?
                var outgoing: CPNPDecimal?
                var satisfied: Int
                var total: CPNPDecimal
                var slack: CPNPDecimal
                var empty: Bool
            }
            var options: [Option] = []
            for link in candidates {
                func value(_ requested: Negotiable<CPNPDecimal>?, _ direction: CPDDirection) -> (CPNPDecimal?, Bool, Bool, CPNPDecimal) {
                    guard let requested else { return (nil, true, false, 0) }
                    let free = remaining.free(link.id, direction)
                    let limit = maxBW.map { min($0, free) } ?? free
                    let mbps = Self.bandwidth(requested, limit: limit, default: policy.defaults.bandwidthMbps)
                    return (mbps, requested.admits(mbps), mbps.isZero && requested != .fixed(0), free - mbps)
                }
                let (incoming, iOK, iEmpty, iSlack) = value(capacityRequest.incomingBandwidthMbps, .incoming)
                let (outgoing, oOK, oEmpty, oSlack) = value(capacityRequest.outgoingBandwidthMbps, .outgoing)
                options.append(
                    Option(
                        link: link, incoming: incoming, outgoing: outgoing, satisfied: (iOK ? 1 : 0) + (oOK ? 1 : 0),
                        total: (incoming ?? 0) + (outgoing ?? 0), slack: iSlack + oSlack, empty: iEmpty || oEmpty))
            }
            let usable = options.filter { !$0.empty }
            guard var best = usable.first else {
                let text = exhaustionText(capacityRequest, candidates: candidates, inventory: remaining)
                pass.exhausted.append((capacityRequest.customerNode, text))
                continue
            }
            for option in usable.dropFirst() {
                if option.satisfied != best.satisfied {
                    if option.satisfied > best.satisfied { best = option }
                } else if option.total != best.total {
                    if best.total < option.total { best = option }
                } else if option.slack < best.slack {
                    best = option
                }
            }
            var held: [Reservation] = []
            for (mbps, direction, requested) in [
                (best.incoming, CPDDirection.incoming, capacityRequest.incomingBandwidthMbps),
                (best.outgoing, CPDDirection.outgoing, capacityRequest.outgoingBandwidthMbps),
            ] {
                guard let mbps, let requested else { continue }
                held.append(Reservation(linkID: best.link.id, direction: direction, mbps: mbps))
                if !requested.admits(mbps) {
                    let free = remaining.free(best.link.id, direction)
                    var why = "\(free) Mbps free on \(best.link.id)"
                    if let maxBW, maxBW < free { why = "customer \(profile.identity) is entitled to at most \(maxBW) Mbps" }
                    pass.notes.append(
                        "customer node \(capacityRequest.customerNode) \(direction.rawValue): \(mbps) Mbps offered, "
                            + "\(JSONSerializer.serializeString(requested.json)) requested (\(why))")
                }
            }
            remaining = remaining.reserving(held)
            pass.allocations[requestIndex] = Allocation(link: best.link, incoming: best.incoming, outgoing: best.outgoing)
        }
        return pass
    }

    func exhaustionText(_ capacityRequest: CPDCapacityRequest, candidates: [ProviderLink], inventory inventoryView: InventoryView) -> String {
        var parts: [String] = []
        for link in candidates.prefix(3) {
            for (direction, requested) in [
                (CPDDirection.incoming, capacityRequest.incomingBandwidthMbps),
                (.outgoing, capacityRequest.outgoingBandwidthMbps),
            ] {
                guard let requested else { continue }
                let free = inventoryView.free(link.id, direction)
                if free.isZero || Self.bandwidth(requested, limit: free, default: policy.defaults.bandwidthMbps).isZero {
                    parts.append("link \(link.id) has \(free) Mbps free \(direction.rawValue)")
                }
            }
        }
        if parts.isEmpty, let maxBW = profile.entitlements.maxBandwidthMbps, maxBW.isZero {
            parts.append("no bandwidth entitled")
        }
        return "customer node \(capacityRequest.customerNode): " + (parts.isEmpty ? "no capacity" : parts.joined(separator: ", "))
    }

    /// The link with the most free capacity (both directions), first on ties.
    func mostFree(_ links: [ProviderLink]) -> ProviderLink? {
        var best: (ProviderLink, CPNPDecimal)?
        for link in links {
            let free = inventory.free(link.id, .incoming) + inventory.free(link.id, .outgoing)
            if best == nil || best!.1 < free { best = (link, free) }
        }
        return best?.0
    }

    /// The bandwidth to offer for `requested` when `limit` Mbit/s may be used: the largest value the
    /// request admits within the limit (an open upper bound counts as its minimum: the provider
    /// does not push capacity nobody asked for), else the limit itself (a counter-offer).
    static func bandwidth(_ requested: Negotiable<CPNPDecimal>, limit: CPNPDecimal, default defaultValue: CPNPDecimal) -> CPNPDecimal {
        switch requested {
        case .fixed(let value): return min(value, limit)
        case .any: return min(defaultValue, limit)
        case .range(let lower, let upper): return min(upper ?? lower ?? defaultValue, limit)
        case .oneOf(let values): return values.filter { !(limit < $0) }.max() ?? limit
        }
    }

    // MARK: - QoS and the rest

    /// The value to offer for a metric where lower is better (delay, jitter, loss) when the
    /// network achieves `achievable`: the requested bound when `achievable` meets it, else `achievable` (a looser value:
    /// a counter-offer).
    static func lowerIsBetter(_ requested: Negotiable<CPNPDecimal>, achievable: CPNPDecimal) -> CPNPDecimal {
        switch requested {
        case .fixed(let value): return achievable <= value ? value : achievable
        case .any: return achievable
        case .range(let lower, let upper):
            if let upper, upper < achievable { return achievable }
            return lower.map { max($0, achievable) } ?? achievable
        case .oneOf(let values): return values.filter { achievable <= $0 }.min() ?? achievable
        }
    }

    /// The value to offer for a metric where higher is better (availability).
    static func higherIsBetter(_ requested: Negotiable<CPNPDecimal>, achievable: CPNPDecimal) -> CPNPDecimal {
        switch requested {
        case .fixed(let value): return value <= achievable ? value : achievable
        case .any: return achievable
        case .range(let lower, let upper):
            if let lower, achievable < lower { return achievable }
            return upper.map { min($0, achievable) } ?? achievable
        case .oneOf(let values): return values.filter { $0 <= achievable }.max() ?? achievable
        }
    }

    func concretizeScope(_ provisioningProfile: inout ConnectivityProvisioningProfile) {
        for i in provisioningProfile.scope.indices where !provisioningProfile.scope[i].reachability.isFixed {
            let wantsRestricted = provisioningProfile.scope[i].destinationPrefixes != nil
            let choice: CPDReachability
            switch provisioningProfile.scope[i].reachability {
            case .oneOf(let choices):
                // Destination prefixes are only valid with restricted reachability.
                choice = wantsRestricted ? .restricted : (choices.first ?? .global)
            default:
                choice = wantsRestricted ? .restricted : .global
            }
            provisioningProfile.scope[i].reachability = .fixed(choice)
        }
    }

    func concretizeQoS(_ provisioningProfile: inout ConnectivityProvisioningProfile, nodePE: [String: String], notes: inout [String]) {
        guard var guarantees = provisioningProfile.qosGuarantees else { return }
        for i in guarantees.entries.indices {
            var entry = guarantees.entries[i]
            switch guarantees.kind {
            case .quantitative:
                let from = entry.from == CPDQoSEntry.anyNode ? nil : nodePE[entry.from]
                let to = entry.to == CPDQoSEntry.anyNode ? nil : nodePE[entry.to]
                let achievable = policy.qos.achievable(between: from, and: to)
                if let requested = entry.oneWayDelayMs {
                    entry.oneWayDelayMs = .fixed(Self.lowerIsBetter(requested, achievable: achievable.oneWayDelayMs))
                }
                if let requested = entry.delayVariationMs {
                    entry.delayVariationMs = .fixed(Self.lowerIsBetter(requested, achievable: achievable.delayVariationMs))
                }
                if let requested = entry.lossPercent {
                    entry.lossPercent = .fixed(Self.lowerIsBetter(requested, achievable: achievable.lossPercent))
                }
            case .qualitative:
                let classes = policy.qos.metaQoSClasses
                if let requestedClass = entry.metaQoSClass, !classes.isEmpty, !classes.contains(requestedClass) {
                    entry.metaQoSClass = classes[0]
                    notes.append("\(entry.from) → \(entry.to): meta-QoS class \(requestedClass) is not offered; \(classes[0]) instead")
                }
            }
            guarantees.entries[i] = entry
        }
        provisioningProfile.qosGuarantees = guarantees
    }

    /// Removes customer nodes and every clause entry that refers to them.
    static func remove(nodes: Set<String>, from provisioningProfile: inout ConnectivityProvisioningProfile) {
        guard !nodes.isEmpty else { return }
        provisioningProfile.customerNodes.removeAll { nodes.contains($0.identifier) }
        provisioningProfile.scope.removeAll { nodes.contains($0.customerNode) }
        provisioningProfile.capacity?.removeAll { nodes.contains($0.customerNode) }
        provisioningProfile.activationMeans?.removeAll { $0.customerNode.map(nodes.contains) ?? false }
        if var guarantees = provisioningProfile.qosGuarantees {
            var remap: [Int64: Int64] = [:]
            var kept: [CPDQoSEntry] = []
            for (index, entry) in guarantees.entries.enumerated() where !nodes.contains(entry.from) && !nodes.contains(entry.to) {
                remap[Int64(index)] = Int64(kept.count)
                kept.append(entry)
            }
            guarantees.entries = kept
            provisioningProfile.qosGuarantees = kept.isEmpty ? nil : guarantees
            if var flowIdentification = provisioningProfile.flowIdentification {
                for i in flowIdentification.classifiers.indices {
                    if let ref = flowIdentification.classifiers[i].qosEntryRef {
                        flowIdentification.classifiers[i].qosEntryRef = remap[ref]
                    }
                }
                provisioningProfile.flowIdentification = flowIdentification
            }
        }
    }
}

/// Picks the provider's value for the negotiable fields the engine does not handle itself
/// (MTU, notification interval, invocation type, throughput): a range → a value inside (its
/// maximum, else its minimum), one-of → the first member, `"any"` → the configured default.
/// Never leaves a field loose, so that offers are concrete (RFC 8921 §8.7).
struct OfferChooser: NegotiableChooser {
    let defaults: OfferDefaults

    func choose<V: NegotiableValue>(_ requested: Negotiable<V>, at path: JSONPath) -> V? {
        if let value = requested.preferredValue { return value }
        var key = ""
        if case .key(let lastKey)? = path.last { key = lastKey }
        let json: JSONValue? =
            switch key {
            case "mtu-bytes": .number(CPNPDecimal(defaults.mtuBytes))
            case "interval-seconds": .number(CPNPDecimal(defaults.notificationIntervalSeconds))
            case "type": .string(defaults.invocationType.rawValue)
            case "throughput-mbps", "incoming-bandwidth-mbps", "outgoing-bandwidth-mbps": .number(defaults.bandwidthMbps)
            case "reachability": .string(CPDReachability.global.rawValue)
            default: nil
            }
        for candidate in [json, .number(0), .string("")].compactMap({ $0 }) {
            if let value = try? V(negotiableJSON: candidate, at: path) { return value }
        }
        return nil
    }
}
