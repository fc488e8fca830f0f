/// One difference between a requested and an offered CPD (docs/protocol.md §4.3), used for
/// counterproposals (RFC 8921 §7 step 2) and DECLINE reason 1 "unacceptable gap".
public struct CPDGap: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Present in the request, absent from the offer (clause, entry, field or customer node).
        case missing
        /// Present in both, but the offered value does not satisfy the requested one.
        case notSatisfied = "not-satisfied"
        /// A customer node in the offer that the request does not list (path into the offer).
        case extraNode = "extra-node"
        /// Different numbers of components or profiles.
        case structureMismatch = "structure-mismatch"
    }

    /// Where the gap is; indexes of entries are those of the request (except for ``Kind/extraNode``).
    public var path: JSONPath
    public var kind: Kind
    /// The requested JSON at `path` (nil for ``Kind/extraNode``).
    public var requested: JSONValue?
    /// The offered JSON at `path` (nil for ``Kind/missing``).
    public var offered: JSONValue?

    public init(path: JSONPath, kind: Kind, requested: JSONValue?, offered: JSONValue?) {
        self.path = path
        self.kind = kind
        self.requested = requested
        self.offered = offered
    }

    /// E.g. `components[0].profiles[0].capacity[0].incoming-bandwidth-mbps: requested {"min":80,"max":100}, offered 75`.
    public var description: String {
        func text(_ v: JSONValue?) -> String { v.map { JSONSerializer.serializeString($0) } ?? "nothing" }
        switch kind {
        case .missing, .notSatisfied:
            return "\(path): requested \(text(requested)), offered \(text(offered))"
        case .extraNode:
            var id = ""
            if case .object(let o)? = offered, case .string(let s)? = o["identifier"] { id = " \"\(s)\"" }
            return "\(path): offered customer node\(id) was not requested"
        case .structureMismatch:
            return "\(path): requested \(text(requested)), offered \(text(offered)) (element counts differ)"
        }
    }
}

/// The result of comparing an offered CPD with a requested CPD (docs/protocol.md §4.3).
public struct CPDComparison: Sendable, Hashable, CustomStringConvertible {
    /// True when the offer fully satisfies the request (no gap).
    public var satisfies: Bool
    /// Every gap, in document order of the request (deterministic).
    public var gaps: [CPDGap]

    public init(gaps: [CPDGap]) {
        self.gaps = gaps
        self.satisfies = gaps.isEmpty
    }

    /// One gap per line, or "satisfies" when there is none.
    public var description: String {
        gaps.isEmpty ? "satisfies" : gaps.map(\.description).joined(separator: "\n")
    }
}

extension ConnectivityProvisioningDocument {
    /// Compares this **offered** CPD with a **requested** one (docs/protocol.md §4.3): components and
    /// profiles by position, customer nodes by identifier, scope entries by customer-node+direction,
    /// QoS entries by from+to+statistic, capacity by customer-node(+link-identifier), activation means
    /// by customer-node(+mechanism), notifications by position, other clauses field by field; every
    /// negotiable leaf with S(offered) ⊆ S(requested). Clauses or fields only in the offer are ignored.
    /// Gap paths start at `base`.
    public func comparison(against requested: ConnectivityProvisioningDocument, at base: JSONPath = .root) -> CPDComparison {
        var c = CPDComparator()
        c.compare(requested: requested, offered: self, at: base)
        return CPDComparison(gaps: c.gaps)
    }

    /// Same as `offered.comparison(against: requested)`.
    public static func compare(offered: ConnectivityProvisioningDocument, requested: ConnectivityProvisioningDocument,
                               at base: JSONPath = .root) -> CPDComparison {
        offered.comparison(against: requested, at: base)
    }

    /// Whether this offered CPD fully satisfies `requested`.
    public func satisfies(_ requested: ConnectivityProvisioningDocument) -> Bool {
        comparison(against: requested).satisfies
    }
}

struct CPDComparator {
    var gaps: [CPDGap] = []

    mutating func missing(_ path: JSONPath, _ r: JSONValue) {
        gaps.append(CPDGap(path: path, kind: .missing, requested: r, offered: nil))
    }

    mutating func notSatisfied(_ path: JSONPath, _ r: JSONValue, _ o: JSONValue) {
        gaps.append(CPDGap(path: path, kind: .notSatisfied, requested: r, offered: o))
    }

    // MARK: leaves

    /// A negotiable leaf: absent in the request → nothing; absent in the offer → gap unless `"any"`.
    mutating func leaf<V>(_ r: Negotiable<V>?, _ o: Negotiable<V>?, at path: JSONPath) {
        guard let r else { return }
        guard let o else {
            if case .any = r { return }
            missing(path, r.json)
            return
        }
        if !o.satisfies(r) { notSatisfied(path, r.json, o.json) }
    }

    /// A non-negotiable leaf: equality.
    mutating func exact(_ r: JSONValue?, _ o: JSONValue?, at path: JSONPath) {
        guard let r else { return }
        guard let o else { return missing(path, r) }
        if r != o { notSatisfied(path, r, o) }
    }

    mutating func exact<V: NegotiableValue>(_ r: V?, _ o: V?, at path: JSONPath) {
        exact(r?.negotiableJSON, o?.negotiableJSON, at: path)
    }

    /// A list of strings compared as a set; `canonical` maps equivalent spellings together.
    mutating func stringSet(_ r: [String]?, _ o: [String]?, at path: JSONPath, canonical: (String) -> String = { $0 }) {
        guard let r else { return }
        let rj = JSONValue.array(r.map(JSONValue.string))
        guard let o else { return missing(path, rj) }
        if Set(r.map(canonical)) != Set(o.map(canonical)) { notSatisfied(path, rj, .array(o.map(JSONValue.string))) }
    }

    mutating func prefixSet(_ r: [String]?, _ o: [String]?, at path: JSONPath) {
        stringSet(r, o, at: path) { CPDIPPrefix($0)?.description ?? $0 }
    }

    /// Field-by-field comparison of non-negotiable JSON: objects by the requested keys, arrays of
    /// objects by position, other arrays as sets, scalars by equality.
    mutating func generic(_ r: JSONValue, _ o: JSONValue?, at path: JSONPath) {
        guard let o else { return missing(path, r) }
        switch (r, o) {
        case (.object(let ro), .object(let oo)):
            for (k, rv) in ro { generic(rv, oo[k], at: path.appending(k)) }
        case (.array(let ra), .array(let oa)):
            if ra.contains(where: { if case .object = $0 { true } else { false } }) {
                for (i, rv) in ra.enumerated() { generic(rv, i < oa.count ? oa[i] : nil, at: path.appending(index: i)) }
            } else if Set(ra) != Set(oa) {
                notSatisfied(path, r, o)
            }
        default:
            if r != o { notSatisfied(path, r, o) }
        }
    }

    mutating func generic(_ r: JSONValue?, _ o: JSONValue?, at path: JSONPath) {
        guard let r else { return }
        generic(r, o, at: path)
    }

    // MARK: structure

    mutating func compare(requested: CPD, offered: CPD, at base: JSONPath) {
        let cp = base.appending("components")
        if requested.components.count != offered.components.count {
            gaps.append(CPDGap(path: cp, kind: .structureMismatch,
                               requested: .number(CPNPDecimal(Int64(requested.components.count))),
                               offered: .number(CPNPDecimal(Int64(offered.components.count)))))
        }
        for (ci, (rc, oc)) in zip(requested.components, offered.components).enumerated() {
            let pp = cp.appending(index: ci).appending("profiles")
            if rc.profiles.count != oc.profiles.count {
                gaps.append(CPDGap(path: pp, kind: .structureMismatch,
                                   requested: .number(CPNPDecimal(Int64(rc.profiles.count))),
                                   offered: .number(CPNPDecimal(Int64(oc.profiles.count)))))
            }
            for (pi, (rp, op)) in zip(rc.profiles, oc.profiles).enumerated() {
                compare(requested: rp, offered: op, at: pp.appending(index: pi))
            }
        }
    }

    mutating func compare(requested r: ConnectivityProvisioningProfile, offered o: ConnectivityProvisioningProfile, at path: JSONPath) {
        // Customer nodes, by identifier.
        let np = path.appending("customer-nodes")
        for (i, rn) in r.customerNodes.enumerated() {
            let ip = np.appending(index: i)
            guard let on = o.customerNodes.first(where: { $0.identifier == rn.identifier }) else {
                missing(ip, rn.json)
                continue
            }
            if !rn.linkIdentifiers.isEmpty {
                stringSet(rn.linkIdentifiers, on.linkIdentifiers, at: ip.appending("link-identifiers"))
            }
            generic(rn.localization.json, on.localization.json, at: ip.appending("localization"))
        }
        let requestedIDs = Set(r.customerNodes.map(\.identifier))
        for (j, on) in o.customerNodes.enumerated() where !requestedIDs.contains(on.identifier) {
            gaps.append(CPDGap(path: np.appending(index: j), kind: .extraNode, requested: nil, offered: on.json))
        }

        // Scope, by customer-node + direction.
        let sp = path.appending("scope")
        for (i, re) in r.scope.enumerated() {
            let ip = sp.appending(index: i)
            guard let oe = o.scope.first(where: { $0.customerNode == re.customerNode && $0.direction == re.direction }) else {
                missing(ip, re.json)
                continue
            }
            leaf(re.reachability, oe.reachability, at: ip.appending("reachability"))
            prefixSet(re.sourcePrefixes, oe.sourcePrefixes, at: ip.appending("source-prefixes"))
            prefixSet(re.destinationPrefixes, oe.destinationPrefixes, at: ip.appending("destination-prefixes"))
            stringSet(re.multicastSources, oe.multicastSources, at: ip.appending("multicast-sources")) {
                CPDIPAddress($0)?.description ?? $0
            }
            exact(re.model, oe.model, at: ip.appending("model"))
            stringSet(re.ingressPoints, oe.ingressPoints, at: ip.appending("ingress-points"))
            stringSet(re.egressPoints, oe.egressPoints, at: ip.appending("egress-points"))
        }

        // QoS guarantees, entries by from + to + statistic.
        if let rq = r.qosGuarantees {
            let qp = path.appending("qos-guarantees")
            if let oq = o.qosGuarantees {
                exact(rq.kind, oq.kind, at: qp.appending("kind"))
                for (i, re) in rq.entries.enumerated() {
                    let ip = qp.appending("entries").appending(index: i)
                    guard let oe = oq.entries.first(where: { $0.from == re.from && $0.to == re.to && $0.statistic == re.statistic }) else {
                        missing(ip, re.json)
                        continue
                    }
                    exact(re.percentile.map(JSONValue.number), oe.percentile.map(JSONValue.number), at: ip.appending("percentile"))
                    exact(re.measurementIntervalSeconds, oe.measurementIntervalSeconds, at: ip.appending("measurement-interval-seconds"))
                    leaf(re.oneWayDelayMs, oe.oneWayDelayMs, at: ip.appending("one-way-delay-ms"))
                    leaf(re.delayVariationMs, oe.delayVariationMs, at: ip.appending("delay-variation-ms"))
                    leaf(re.lossPercent, oe.lossPercent, at: ip.appending("loss-percent"))
                    leaf(re.throughputMbps, oe.throughputMbps, at: ip.appending("throughput-mbps"))
                    exact(re.metaQoSClass, oe.metaQoSClass, at: ip.appending("meta-qos-class"))
                }
            } else {
                missing(qp, rq.json)
            }
        }

        // Availability.
        if let ra = r.availability {
            let ap = path.appending("availability")
            if let oa = o.availability {
                leaf(ra.availabilityPercent, oa.availabilityPercent, at: ap.appending("availability-percent"))
                exact(ra.statistic, oa.statistic, at: ap.appending("statistic"))
                exact(ra.measurementPeriod, oa.measurementPeriod, at: ap.appending("measurement-period"))
            } else {
                missing(ap, ra.json)
            }
        }

        // Capacity, by customer-node (+ link-identifier).
        if let rc = r.capacity {
            let cp = path.appending("capacity")
            if let oc = o.capacity {
                for (i, re) in rc.enumerated() {
                    let ip = cp.appending(index: i)
                    guard let oe = Self.matchCapacity(re, in: oc) else {
                        missing(ip, re.json)
                        continue
                    }
                    leaf(re.incomingBandwidthMbps, oe.incomingBandwidthMbps, at: ip.appending("incoming-bandwidth-mbps"))
                    leaf(re.outgoingBandwidthMbps, oe.outgoingBandwidthMbps, at: ip.appending("outgoing-bandwidth-mbps"))
                }
            } else {
                missing(cp, .array(rc.map(\.json)))
            }
        }

        // Traffic isolation.
        generic(r.trafficIsolation?.json, o.trafficIsolation?.json, at: path.appending("traffic-isolation"))

        // Conformance traffic.
        if let rc = r.conformanceTraffic {
            let cp = path.appending("conformance-traffic")
            if let oc = o.conformanceTraffic {
                exact(rc.enforcement, oc.enforcement, at: cp.appending("enforcement"))
                exact(rc.outOfProfileAction, oc.outOfProfileAction, at: cp.appending("out-of-profile-action"))
                exact(rc.reclassifyTo, oc.reclassifyTo, at: cp.appending("reclassify-to"))
                leaf(rc.mtuBytes, oc.mtuBytes, at: cp.appending("mtu-bytes"))
            } else {
                missing(cp, rc.json)
            }
        }

        generic(r.flowIdentification?.json, o.flowIdentification?.json, at: path.appending("flow-identification"))
        generic(r.overallTrafficGuarantees?.json, o.overallTrafficGuarantees?.json, at: path.appending("overall-traffic-guarantees"))
        generic(r.routingAndForwarding?.json, o.routingAndForwarding?.json, at: path.appending("routing-and-forwarding"))

        // Activation means, by customer-node (+ mechanism).
        if let ra = r.activationMeans {
            let ap = path.appending("activation-means")
            if let oa = o.activationMeans {
                for (i, re) in ra.enumerated() {
                    let ip = ap.appending(index: i)
                    let sameNode = oa.filter { $0.customerNode == re.customerNode }
                    guard let oe = sameNode.first(where: { $0.mechanism == re.mechanism }) ?? sameNode.first else {
                        missing(ip, re.json)
                        continue
                    }
                    exact(.string(re.mechanism.rawValue), .string(oe.mechanism.rawValue), at: ip.appending("mechanism"))
                    generic(re.parametersJSON, oe.parametersJSON, at: ip.appending("parameters"))
                }
            } else {
                missing(ap, .array(ra.map(\.json)))
            }
        }

        // Invocation means.
        if let ri = r.invocationMeans {
            let ip = path.appending("invocation-means")
            if let oi = o.invocationMeans {
                leaf(ri.type, oi.type, at: ip.appending("type"))
                stringSet(ri.protocols, oi.protocols, at: ip.appending("protocols"))
            } else {
                missing(ip, ri.json)
            }
        }

        // Notifications, by position.
        if let rn = r.notifications {
            let np = path.appending("notifications")
            if let on = o.notifications {
                for (i, re) in rn.enumerated() {
                    let ip = np.appending(index: i)
                    guard i < on.count else {
                        missing(ip, re.json)
                        continue
                    }
                    let oe = on[i]
                    stringSet(re.events, oe.events, at: ip.appending("events"))
                    exact(.string(re.method.rawValue), .string(oe.method.rawValue), at: ip.appending("method"))
                    exact(re.destination, oe.destination, at: ip.appending("destination"))
                    leaf(re.intervalSeconds, oe.intervalSeconds, at: ip.appending("interval-seconds"))
                    exact(re.dataModel, oe.dataModel, at: ip.appending("data-model"))
                }
            } else {
                missing(np, .array(rn.map(\.json)))
            }
        }

        generic(r.extensions?.json, o.extensions?.json, at: path.appending("extensions"))
    }

    /// Exact customer-node + link-identifier match; a request without link falls back to the only
    /// offered entry of that node.
    static func matchCapacity(_ r: CPDCapacityEntry, in offered: [CPDCapacityEntry]) -> CPDCapacityEntry? {
        if let exact = offered.first(where: { $0.customerNode == r.customerNode && $0.linkIdentifier == r.linkIdentifier }) {
            return exact
        }
        guard r.linkIdentifier == nil else { return nil }
        let sameNode = offered.filter { $0.customerNode == r.customerNode }
        return sameNode.count == 1 ? sameNode[0] : nil
    }
}
