public import CPNPCore

/// Which customer nodes of a request the local network serves, and which another provider would
/// have to (RFC 8921 §8.8 cascaded negotiation, docs/cascade.md).
public struct LocalCoverage: Sendable, Hashable {
    /// Nodes served here: network presence and free capacity, in document order.
    public var local: [String]
    /// Nodes not served here, with the reason (no network presence, no free capacity).
    public var elsewhere: [String: String]
    /// The nodes of ``elsewhere`` with no network presence here (the others lack capacity).
    public var withoutPresence: Set<String>

    public init(local: [String], elsewhere: [String: String], withoutPresence: Set<String>) {
        self.local = local
        self.elsewhere = elsewhere
        self.withoutPresence = withoutPresence
    }
}

extension DecisionEngine {
    /// Splits `request` into what the local network serves and what it does not (RFC 8921 §8.8).
    /// Nil when another check refuses the request (identity, entitlements, options, validation):
    /// no other provider changes that answer.
    ///
    /// - Parameters:
    ///   - request: the Requested CPD.
    ///   - informationElements: the request's IEs.
    ///   - profile: the customer.
    ///   - inventory: free capacity (not counting this order's).
    ///   - now: the current time.
    ///   - updating: for an UPDATE, the order's reservations, given back first.
    public func localCoverage(
        request: CPD, informationElements: InformationElements?, profile: CustomerProfile?, inventory: InventoryView, now: CPNPTimestamp,
        updating: [Reservation]? = nil
    ) -> LocalCoverage? {
        guard let profile else { return nil }
        var relaxed = configuration
        relaxed.policy.counterOffers.dropUnservedSites = true
        relaxed.policy.counterOffers.dropExhaustedSites = true
        let available = updating.map { inventory.releasing($0) } ?? inventory
        func run(_ cpd: CPD) -> DecisionRun {
            DecisionRun(
                config: relaxed, profile: profile, request: cpd, options: informationElements?.negotiationOptions,
                inventory: available, now: now, requestValidated: true)
        }
        let whole = run(request)
        do throws(Refusal) {
            try whole.checkRequest()
            try whole.checkOptions()
        } catch {
            return nil
        }
        var elsewhere: [String: String] = [:]
        for component in request.components {
            for profile in component.profiles {
                for node in profile.customerNodes {
                    do throws(Refusal) {
                        _ = try whole.attachment(for: node, capacityLinks: profile.capacity ?? [])
                    } catch {
                        guard error.code == .networkPresenceError else { return nil }
                        elsewhere[node.identifier] = error.diagnostic
                    }
                }
            }
        }
        let withoutPresence = Set(elsewhere.keys)
        let present = request.customerNodeIdentifiers.filter { elsewhere[$0] == nil }
        guard !present.isEmpty, let part = request.restricted(to: Set(present)) else {
            return LocalCoverage(local: [], elsewhere: elsewhere, withoutPresence: withoutPresence)
        }
        do throws(Refusal) {
            let offer = try run(part).makeOffer(openOrders: nil)
            let served = Set(offer.cpd.customerNodeIdentifiers)
            for node in present where !served.contains(node) { elsewhere[node] = "customer node \(node): no free capacity" }
            return LocalCoverage(local: present.filter(served.contains), elsewhere: elsewhere, withoutPresence: withoutPresence)
        } catch {
            guard error.code == .outOfResources else { return nil }
            for node in present { elsewhere[node] = clip(error.diagnostic) }
            return LocalCoverage(local: [], elsewhere: elsewhere, withoutPresence: withoutPresence)
        }
    }
}
