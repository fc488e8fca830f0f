/// A request served by several providers, segment by segment (RFC 8921 §8.8 cascaded negotiation,
/// §8.9 multi-segment requests): restricting a CPD to the customer nodes one provider serves, and
/// composing the providers' offers back into one offer shaped like the request.
extension ConnectivityProvisioningDocument {
    /// The customer node identifiers, in document order (each once).
    public var customerNodeIdentifiers: [String] {
        var seen: Set<String> = []
        var out: [String] = []
        for component in components {
            for profile in component.profiles {
                for node in profile.customerNodes where seen.insert(node.identifier).inserted { out.append(node.identifier) }
            }
        }
        return out
    }

    /// The part of this request about `nodes`: their customer nodes, scope, capacity and activation
    /// entries; the QoS entries between them (or with `*`); the profile-wide clauses as they are.
    /// Profiles and components left without a node are dropped; nil when none is left. Flow
    /// classifiers keep pointing at the same QoS entries (their `qos-entry-ref` is renumbered; those of
    /// removed entries are dropped).
    public func restricted(to nodes: Set<String>) -> ConnectivityProvisioningDocument? {
        var out: [ConnectivityProvisioningComponent] = []
        for component in components {
            let profiles = component.profiles.compactMap { $0.restricted(to: nodes) }
            if !profiles.isEmpty { out.append(ConnectivityProvisioningComponent(profiles: profiles)) }
        }
        return out.isEmpty ? nil : ConnectivityProvisioningDocument(components: out)
    }

    /// One offer shaped like `request` from the offers of its segments (each the offer for a
    /// ``restricted(to:)`` part; the first is preferred for what several hold, e.g. the local
    /// provider's). Each customer node, its scope and capacity entries come from the segment holding
    /// the node; QoS entries from every segment, without repeats; availability is the lowest offered
    /// (guarantees across domains hold no better than the weakest); other profile-wide clauses come
    /// from the first segment holding part of the profile. Nodes no segment holds are left out (a
    /// partial offer, RFC 8921 §7).
    public static func composed(request: ConnectivityProvisioningDocument, segments: [ConnectivityProvisioningDocument])
        -> ConnectivityProvisioningDocument
    {
        let parts = segments.flatMap { $0.components.flatMap(\.profiles) }
        var components: [ConnectivityProvisioningComponent] = []
        for component in request.components {
            var profiles: [ConnectivityProvisioningProfile] = []
            for profile in component.profiles {
                let wanted = Set(profile.customerNodes.map(\.identifier))
                let holding = parts.filter { !wanted.isDisjoint(with: $0.customerNodes.map(\.identifier)) }
                guard var composed = holding.first else { continue }
                func part(of node: String) -> ConnectivityProvisioningProfile? {
                    holding.first { $0.customerNodes.contains { $0.identifier == node } }
                }
                composed.customerNodes = profile.customerNodes.compactMap { node in
                    part(of: node.identifier)?.customerNodes.first { $0.identifier == node.identifier }
                }
                let served = Set(composed.customerNodes.map(\.identifier))
                composed.scope = profile.customerNodes.flatMap { node in
                    (part(of: node.identifier)?.scope ?? []).filter { $0.customerNode == node.identifier }
                }
                let capacity = profile.customerNodes.flatMap { node in
                    (part(of: node.identifier)?.capacity ?? []).filter { $0.customerNode == node.identifier }
                }
                composed.capacity = profile.capacity == nil && capacity.isEmpty ? nil : capacity
                var entries: [CPDQoSEntry] = []
                for holder in holding {
                    for entry in holder.qosGuarantees?.entries ?? []
                    where !entries.contains(entry) && [entry.from, entry.to].allSatisfy({ $0 == "*" || served.contains($0) }) {
                        entries.append(entry)
                    }
                }
                if var qos = holding.lazy.compactMap(\.qosGuarantees).first {
                    qos.entries = entries
                    composed.qosGuarantees = entries.isEmpty ? nil : qos
                }
                let availabilities = holding.compactMap(\.availability)
                composed.availability = availabilities.min { left, right in
                    guard let leftPercent = left.availabilityPercent.fixedValue, let rightPercent = right.availabilityPercent.fixedValue else {
                        return false
                    }
                    return leftPercent < rightPercent
                }
                let activation =
                    profile.customerNodes.flatMap { node in
                        (part(of: node.identifier)?.activationMeans ?? []).filter { $0.customerNode == node.identifier }
                    }
                    + (composed.activationMeans ?? []).filter { $0.customerNode == nil }
                composed.activationMeans = composed.activationMeans == nil && activation.isEmpty ? nil : activation
                if !served.isEmpty { profiles.append(composed) }
            }
            if !profiles.isEmpty { components.append(ConnectivityProvisioningComponent(profiles: profiles)) }
        }
        return ConnectivityProvisioningDocument(components: components)
    }
}

extension ConnectivityProvisioningProfile {
    func restricted(to nodes: Set<String>) -> ConnectivityProvisioningProfile? {
        var profile = self
        profile.customerNodes = customerNodes.filter { nodes.contains($0.identifier) }
        guard !profile.customerNodes.isEmpty else { return nil }
        let kept = Set(profile.customerNodes.map(\.identifier))
        profile.scope = scope.filter { kept.contains($0.customerNode) }
        profile.capacity = capacity.map { $0.filter { kept.contains($0.customerNode) } }
        if var qos = qosGuarantees {
            var renumbered: [Int64: Int64] = [:]
            var entries: [CPDQoSEntry] = []
            for (index, entry) in qos.entries.enumerated() where [entry.from, entry.to].allSatisfy({ $0 == "*" || kept.contains($0) }) {
                renumbered[Int64(index)] = Int64(entries.count)
                entries.append(entry)
            }
            qos.entries = entries
            profile.qosGuarantees = entries.isEmpty ? nil : qos
            if var flows = profile.flowIdentification {
                flows.classifiers = flows.classifiers.compactMap { classifier in
                    guard let ref = classifier.qosEntryRef else { return classifier }
                    guard let new = renumbered[ref] else { return nil }
                    var classifier = classifier
                    classifier.qosEntryRef = new
                    return classifier
                }
                profile.flowIdentification = flows.classifiers.isEmpty && (flows.remarking ?? []).isEmpty ? nil : flows
            }
        }
        profile.activationMeans = activationMeans.map { $0.filter { $0.customerNode.map(kept.contains) ?? true } }
        return profile
    }
}
