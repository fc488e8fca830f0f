/// Chooses the fixed value a provider offers for a negotiable field (RFC 8921 §8.7: an offer
/// that should be ACCEPTed is concrete).
public protocol NegotiableChooser {
    /// The value to offer for `requested` (at `path`, relative to the CPD root), or nil to leave
    /// the field as it is. The value need not satisfy the request (a partial offer).
    func choose<V: NegotiableValue>(_ requested: Negotiable<V>, at path: JSONPath) -> V?
}

/// Chooses ``Negotiable/preferredValue``; for `"any"` uses `valuesForAny[key]`, where `key` is the
/// field's JSON key (e.g. `"delay-variation-ms": 4`), else leaves the field loose.
public struct PreferredValueChooser: NegotiableChooser, Sendable, Hashable {
    public var valuesForAny: [String: JSONValue]

    public init(valuesForAny: [String: JSONValue] = [:]) {
        self.valuesForAny = valuesForAny
    }

    public func choose<V: NegotiableValue>(_ requested: Negotiable<V>, at path: JSONPath) -> V? {
        if let preferred = requested.preferredValue { return preferred }
        guard case .key(let key)? = path.last, let configured = valuesForAny[key] else { return nil }
        return try? V(negotiableJSON: configured, at: path)
    }
}

/// One requested capacity (RFC 7297 §3.5), as the server's decision engine needs it.
public struct CPDCapacityRequest: Sendable, Hashable {
    /// Path of the capacity entry, e.g. `components[0].profiles[0].capacity[1]`.
    public var path: JSONPath
    public var componentIndex: Int
    public var profileIndex: Int
    public var entryIndex: Int
    public var customerNode: String
    /// The entry's `link-identifier`, if any.
    public var linkIdentifier: String?
    /// The customer node's `link-identifiers` (`[]` = provider chooses; empty too if the node is unknown).
    public var nodeLinkIdentifiers: [String]
    public var incomingBandwidthMbps: Negotiable<CPNPDecimal>?
    public var outgoingBandwidthMbps: Negotiable<CPNPDecimal>?
}

/// Visits every negotiable field of a CPD, in document order.
protocol NegotiableVisitor {
    mutating func visit<V: NegotiableValue>(_ value: inout Negotiable<V>, at path: JSONPath)
}

extension NegotiableVisitor {
    mutating func visit<V: NegotiableValue>(_ value: inout Negotiable<V>?, at path: JSONPath) {
        guard var present = value else { return }
        visit(&present, at: path)
        value = present
    }
}

private struct ConcreteCheck: NegotiableVisitor {
    var loose: [JSONPath] = []
    mutating func visit<V: NegotiableValue>(_ value: inout Negotiable<V>, at path: JSONPath) {
        if !value.isFixed { loose.append(path) }
    }
}

private struct Concretizer<C: NegotiableChooser>: NegotiableVisitor {
    let chooser: C
    mutating func visit<V: NegotiableValue>(_ value: inout Negotiable<V>, at path: JSONPath) {
        guard !value.isFixed, let chosen = chooser.choose(value, at: path) else { return }
        value = .fixed(chosen)
    }
}

extension ConnectivityProvisioningDocument {
    /// Whether every negotiable field is fixed (RFC 8921 §8.7 "concrete CPD"). The empty CPD is concrete.
    public var isConcrete: Bool { looseFields.isEmpty }

    /// ``looseFields``, found afresh.
    func findLooseFields() -> [JSONPath] {
        var copy = self
        var check = ConcreteCheck()
        copy.visitNegotiables(&check, at: .root)
        return check.loose
    }

    /// A copy where every non-fixed negotiable field is replaced by `chooser`'s value (fields for
    /// which it returns nil stay loose; check ``isConcrete``). Customer node `link-identifiers`
    /// left `[]` by the requester are not negotiable fields: fill them in separately.
    public func concretized(choosing chooser: some NegotiableChooser) -> ConnectivityProvisioningDocument {
        var copy = self
        var concretizer = Concretizer(chooser: chooser)
        copy.visitNegotiables(&concretizer, at: .root)
        return copy
    }

    /// Every capacity entry of every profile, in document order.
    public var capacityRequests: [CPDCapacityRequest] {
        var out: [CPDCapacityRequest] = []
        for (componentIndex, component) in components.enumerated() {
            for (profileIndex, profile) in component.profiles.enumerated() {
                for (entryIndex, entry) in (profile.capacity ?? []).enumerated() {
                    let path = JSONPath.root.appending("components").appending(index: componentIndex)
                        .appending("profiles").appending(index: profileIndex).appending("capacity").appending(index: entryIndex)
                    let links = profile.customerNodes.first { $0.identifier == entry.customerNode }?.linkIdentifiers ?? []
                    out.append(
                        CPDCapacityRequest(
                            path: path, componentIndex: componentIndex, profileIndex: profileIndex, entryIndex: entryIndex,
                            customerNode: entry.customerNode, linkIdentifier: entry.linkIdentifier, nodeLinkIdentifiers: links,
                            incomingBandwidthMbps: entry.incomingBandwidthMbps, outgoingBandwidthMbps: entry.outgoingBandwidthMbps))
                }
            }
        }
        return out
    }

    mutating func visitNegotiables(_ visitor: inout some NegotiableVisitor, at base: JSONPath) {
        let componentsPath = base.appending("components")
        for componentIndex in components.indices {
            let profilesPath = componentsPath.appending(index: componentIndex).appending("profiles")
            for profileIndex in components[componentIndex].profiles.indices {
                components[componentIndex].profiles[profileIndex].visitNegotiables(&visitor, at: profilesPath.appending(index: profileIndex))
            }
        }
    }
}

extension ConnectivityProvisioningProfile {
    mutating func visitNegotiables(_ visitor: inout some NegotiableVisitor, at path: JSONPath) {
        for i in scope.indices {
            visitor.visit(&scope[i].reachability, at: path.appending("scope").appending(index: i).appending("reachability"))
        }
        if qosGuarantees != nil {
            let entriesPath = path.appending("qos-guarantees").appending("entries")
            for i in qosGuarantees!.entries.indices {
                let entryPath = entriesPath.appending(index: i)
                visitor.visit(&qosGuarantees!.entries[i].oneWayDelayMs, at: entryPath.appending("one-way-delay-ms"))
                visitor.visit(&qosGuarantees!.entries[i].delayVariationMs, at: entryPath.appending("delay-variation-ms"))
                visitor.visit(&qosGuarantees!.entries[i].lossPercent, at: entryPath.appending("loss-percent"))
                visitor.visit(&qosGuarantees!.entries[i].throughputMbps, at: entryPath.appending("throughput-mbps"))
            }
        }
        if availability != nil {
            visitor.visit(&availability!.availabilityPercent, at: path.appending("availability").appending("availability-percent"))
        }
        if capacity != nil {
            for i in capacity!.indices {
                let entryPath = path.appending("capacity").appending(index: i)
                visitor.visit(&capacity![i].incomingBandwidthMbps, at: entryPath.appending("incoming-bandwidth-mbps"))
                visitor.visit(&capacity![i].outgoingBandwidthMbps, at: entryPath.appending("outgoing-bandwidth-mbps"))
            }
        }
        if conformanceTraffic != nil {
            visitor.visit(&conformanceTraffic!.mtuBytes, at: path.appending("conformance-traffic").appending("mtu-bytes"))
        }
        if invocationMeans != nil {
            visitor.visit(&invocationMeans!.type, at: path.appending("invocation-means").appending("type"))
        }
        if notifications != nil {
            for i in notifications!.indices {
                visitor.visit(
                    &notifications![i].intervalSeconds,
                    at: path.appending("notifications").appending(index: i).appending("interval-seconds"))
            }
        }
    }
}
