/// A semantic problem in a decoded CPD (cross-field rules of docs/protocol.md §2.7, §4.2).
public struct CPDValidationIssue: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable {
        /// The CPD violates a rule and must be rejected (FAIL status 1, RFC 8921 §10.2).
        case error
        /// A "should" of RFC 7297 is not followed; the CPD remains usable.
        case warning
    }

    /// Where the problem is.
    public var path: JSONPath
    /// What is wrong.
    public var message: String
    public var severity: Severity

    public init(path: JSONPath, message: String, severity: Severity = .error) {
        self.path = path
        self.message = message
        self.severity = severity
    }

    /// `path: message`.
    public var description: String { "\(path): \(message)" }
}

extension Array where Element == CPDValidationIssue {
    /// The issues of severity `error`.
    public var errors: [CPDValidationIssue] { filter { $0.severity == .error } }
}

extension ConnectivityProvisioningDocument {
    /// Checks the cross-field rules (docs/protocol.md §2.7, §4.2). Paths start at `base`
    /// (pass `JSONPath.root.appending("cpd")` to get message-level paths). The empty CPD is valid;
    /// a non-empty one needs ≥ 1 profile per component and ≥ 1 customer node per profile.
    /// Issues come in document order.
    public func validate(at base: JSONPath = .root) -> [CPDValidationIssue] {
        var v = CPDValidator()
        var seenNodes: [String: JSONPath] = [:]
        let cp = base.appending("components")
        for (ci, component) in components.enumerated() {
            let cpath = cp.appending(index: ci)
            if component.profiles.isEmpty {
                v.error(cpath.appending("profiles"), "a component must contain at least one profile")
            }
            for (pi, profile) in component.profiles.enumerated() {
                v.check(profile, at: cpath.appending("profiles").appending(index: pi), seenNodes: &seenNodes)
            }
        }
        return v.issues
    }

    /// Whether ``validate(at:)`` reports no error (warnings allowed).
    public var isValid: Bool { validate().errors.isEmpty }
}

struct CPDValidator {
    var issues: [CPDValidationIssue] = []

    mutating func error(_ path: JSONPath, _ message: String) {
        issues.append(CPDValidationIssue(path: path, message: message))
    }

    mutating func warning(_ path: JSONPath, _ message: String) {
        issues.append(CPDValidationIssue(path: path, message: message, severity: .warning))
    }

    // MARK: value checks

    mutating func negotiable<T>(_ n: Negotiable<T>?, at path: JSONPath, allowed: ClosedRange<CPNPDecimal>? = nil,
                                positive: Bool = false, valueName: String = "value") where T: NegotiableValue {
        guard let n else { return }
        for p in n.internalProblems { error(path, p) }
        guard allowed != nil || positive else { return }
        for value in n.mentionedValues {
            let d: CPNPDecimal
            if let x = value as? CPNPDecimal { d = x } else if let i = value as? Int64 { d = CPNPDecimal(i) } else { continue }
            if let allowed, !allowed.contains(d) {
                error(path, "\(valueName) \(CPDValidator.text(d)) is outside \(CPDValidator.text(allowed.lowerBound))...\(CPDValidator.text(allowed.upperBound))")
                return
            }
            if positive && !(CPNPDecimal(0) < d) {
                error(path, "\(valueName) \(CPDValidator.text(d)) must be greater than 0")
                return
            }
        }
    }

    static func text(_ d: CPNPDecimal) -> String { d.description }

    mutating func integer(_ value: Int64?, at path: JSONPath, in range: ClosedRange<Int64>, name: String) {
        guard let value, !range.contains(value) else { return }
        error(path, "\(name) \(value) is outside \(range.lowerBound)...\(range.upperBound)")
    }

    mutating func prefixes(_ list: [String]?, at path: JSONPath) {
        guard let list else { return }
        for (i, s) in list.enumerated() { prefix(s, at: path.appending(index: i)) }
    }

    mutating func prefix(_ s: String?, at path: JSONPath) {
        guard let s, let problem = CPDIPPrefix.problem(with: s) else { return }
        error(path, problem)
    }

    mutating func address(_ s: String?, at path: JSONPath) {
        guard let s, CPDIPAddress(s) == nil else { return }
        error(path, "\"\(s)\" is not a valid IP address")
    }

    mutating func nodeRef(_ id: String?, at path: JSONPath, known: Set<String>, wildcard: Bool = false) {
        guard let id else { return }
        if wildcard && id == CPDQoSEntry.anyNode { return }
        if !known.contains(id) {
            error(path, "\"\(id)\" is not the identifier of a customer node of this profile")
        }
    }

    // MARK: profile

    mutating func check(_ p: ConnectivityProvisioningProfile, at path: JSONPath, seenNodes: inout [String: JSONPath]) {
        // 2.1 Customer nodes
        let np = path.appending("customer-nodes")
        if p.customerNodes.isEmpty { error(np, "a profile must list at least one customer node") }
        var known = Set<String>()
        var linksByNode: [String: [String]] = [:]
        for (i, node) in p.customerNodes.enumerated() {
            let ip = np.appending(index: i)
            let idp = ip.appending("identifier")
            if node.identifier.isEmpty {
                error(idp, "identifier must not be empty")
            } else if node.identifier == CPDQoSEntry.anyNode {
                error(idp, "\"*\" is reserved (wildcard of qos-guarantees)")
            } else if let first = seenNodes[node.identifier] {
                error(idp, "duplicate customer node identifier \"\(node.identifier)\" (first at \(first))")
            } else {
                seenNodes[node.identifier] = idp
            }
            known.insert(node.identifier)
            linksByNode[node.identifier] = node.linkIdentifiers
            let lp = ip.appending("link-identifiers")
            var seenLinks = Set<String>()
            for (li, link) in node.linkIdentifiers.enumerated() {
                if link.isEmpty { error(lp.appending(index: li), "link identifier must not be empty") }
                if !seenLinks.insert(link).inserted { error(lp.appending(index: li), "duplicate link identifier \"\(link)\"") }
            }
            checkLocalization(node.localization, at: ip.appending("localization"))
        }

        // 2.2 Scope
        let sp = path.appending("scope")
        if p.scope.isEmpty { error(sp, "a profile must contain at least one scope entry (RFC 7297 §3.2)") }
        var scopeKeys = Set<String>()
        for (i, e) in p.scope.enumerated() {
            let ep = sp.appending(index: i)
            nodeRef(e.customerNode, at: ep.appending("customer-node"), known: known)
            if !scopeKeys.insert("\(e.customerNode)\u{0}\(e.direction.rawValue)").inserted {
                error(ep, "duplicate scope entry for \"\(e.customerNode)\" \(e.direction.rawValue)")
            }
            negotiable(e.reachability, at: ep.appending("reachability"))
            if e.reachability == .fixed(.global), e.destinationPrefixes != nil {
                error(ep.appending("destination-prefixes"), "only allowed with restricted reachability")
            }
            prefixes(e.sourcePrefixes, at: ep.appending("source-prefixes"))
            prefixes(e.destinationPrefixes, at: ep.appending("destination-prefixes"))
            if let ms = e.multicastSources {
                for (k, s) in ms.enumerated() { address(s, at: ep.appending("multicast-sources").appending(index: k)) }
            }
        }

        // 2.3 QoS guarantees
        if let q = p.qosGuarantees { checkQoS(q, at: path.appending("qos-guarantees"), known: known) }

        // 2.4 Availability
        if let a = p.availability {
            negotiable(a.availabilityPercent, at: path.appending("availability").appending("availability-percent"),
                       allowed: 0...100, valueName: "availability")
        }

        // 2.5 Capacity
        if let cap = p.capacity {
            let cp = path.appending("capacity")
            var capKeys = Set<String>()
            for (i, e) in cap.enumerated() {
                let ep = cp.appending(index: i)
                nodeRef(e.customerNode, at: ep.appending("customer-node"), known: known)
                if let link = e.linkIdentifier, let links = linksByNode[e.customerNode], !links.isEmpty, !links.contains(link) {
                    error(ep.appending("link-identifier"), "\"\(link)\" is not a link identifier of \"\(e.customerNode)\"")
                }
                if !capKeys.insert("\(e.customerNode)\u{0}\(e.linkIdentifier ?? "\u{0}")").inserted {
                    error(ep, "duplicate capacity entry for \"\(e.customerNode)\"" + (e.linkIdentifier.map { " link \"\($0)\"" } ?? ""))
                }
                if e.incomingBandwidthMbps == nil && e.outgoingBandwidthMbps == nil {
                    error(ep, "a capacity entry needs incoming-bandwidth-mbps or outgoing-bandwidth-mbps")
                }
                negotiable(e.incomingBandwidthMbps, at: ep.appending("incoming-bandwidth-mbps"), allowed: Self.nonNegative, valueName: "bandwidth")
                negotiable(e.outgoingBandwidthMbps, at: ep.appending("outgoing-bandwidth-mbps"), allowed: Self.nonNegative, valueName: "bandwidth")
            }
        }

        // 2.6 Traffic isolation: no cross-field rule.

        // 2.7 Conformance traffic
        let ctp = path.appending("conformance-traffic")
        if let ct = p.conformanceTraffic {
            if p.capacity == nil { error(ctp, "conformance-traffic is only allowed when capacity is present") }
            if ct.reclassifyTo != nil && ct.outOfProfileAction != .reclassify {
                error(ctp.appending("reclassify-to"), "reclassify-to requires out-of-profile-action \"reclassify\"")
            }
            negotiable(ct.mtuBytes, at: ctp.appending("mtu-bytes"), positive: true, valueName: "MTU")
        } else if p.capacity != nil {
            error(ctp, "conformance-traffic is required when capacity is present")
        }

        // 2.8 Flow identification
        if let f = p.flowIdentification {
            let fp = path.appending("flow-identification")
            let qosCount = p.qosGuarantees?.entries.count ?? 0
            for (i, c) in f.classifiers.enumerated() {
                let ip = fp.appending("classifiers").appending(index: i)
                if case .links(let l) = c.appliesTo, l.isEmpty {
                    error(ip.appending("applies-to"), "list at least one link identifier, or use \"all-links\"")
                }
                prefix(c.sourcePrefix, at: ip.appending("source-prefix"))
                prefix(c.destinationPrefix, at: ip.appending("destination-prefix"))
                checkPort(c.sourcePort, at: ip.appending("source-port"))
                checkPort(c.destinationPort, at: ip.appending("destination-port"))
                integer(c.protocol, at: ip.appending("protocol"), in: 0...255, name: "protocol")
                integer(c.dscp, at: ip.appending("dscp"), in: 0...63, name: "DSCP")
                address(c.tunnelEndpoint, at: ip.appending("tunnel-endpoint"))
                if let r = c.qosEntryRef, !(0..<Int64(qosCount)).contains(r) {
                    error(ip.appending("qos-entry-ref"),
                          qosCount == 0 ? "refers to qos-guarantees entry \(r) but there is no qos-guarantees entry"
                                        : "qos-guarantees entry \(r) does not exist (0...\(qosCount - 1))")
                }
            }
            for (i, r) in (f.remarking ?? []).enumerated() {
                let ip = fp.appending("remarking").appending(index: i)
                integer(r.matchDSCP, at: ip.appending("match-dscp"), in: 0...63, name: "DSCP")
                integer(r.setDSCP, at: ip.appending("set-dscp"), in: 0...63, name: "DSCP")
            }
        }

        // 2.9 Overall traffic guarantees
        if p.overallTrafficGuarantees != nil, p.conformanceTraffic?.outOfProfileAction == .discard {
            warning(path.appending("overall-traffic-guarantees"),
                    "should be absent when out-of-profile traffic is discarded (RFC 7297 §3.7)")
        }

        // 2.11 Activation means
        for (i, a) in (p.activationMeans ?? []).enumerated() {
            let ip = path.appending("activation-means").appending(index: i)
            if a.mechanism.rawValue.isEmpty { error(ip.appending("mechanism"), "mechanism must not be empty") }
            nodeRef(a.customerNode, at: ip.appending("customer-node"), known: known)
        }

        // 2.12 Invocation means
        if let inv = p.invocationMeans {
            negotiable(inv.type, at: path.appending("invocation-means").appending("type"))
        }

        // 2.13 Notifications
        for (i, n) in (p.notifications ?? []).enumerated() {
            let ip = path.appending("notifications").appending(index: i)
            if n.events.isEmpty { error(ip.appending("events"), "list at least one event") }
            if n.method.rawValue.isEmpty { error(ip.appending("method"), "method must not be empty") }
            negotiable(n.intervalSeconds, at: ip.appending("interval-seconds"), positive: true, valueName: "interval")
        }
    }

    static let nonNegative: ClosedRange<CPNPDecimal> = CPNPDecimal(0)...CPNPDecimal(Int64.max)

    mutating func checkLocalization(_ l: CPDLocalization, at path: JSONPath) {
        if l.isEmpty {
            error(path, "localization needs at least one of site-id, address, latitude, longitude, country")
        }
        if let lat = l.latitude, !(CPNPDecimal(-90)...CPNPDecimal(90)).contains(lat) {
            error(path.appending("latitude"), "latitude \(Self.text(lat)) is outside -90...90")
        }
        if let lon = l.longitude, !(CPNPDecimal(-180)...CPNPDecimal(180)).contains(lon) {
            error(path.appending("longitude"), "longitude \(Self.text(lon)) is outside -180...180")
        }
        if (l.latitude == nil) != (l.longitude == nil) {
            error(path.appending(l.latitude == nil ? "latitude" : "longitude"), "latitude and longitude go together")
        }
        if let c = l.country, !(c.utf8.count == 2 && c.utf8.allSatisfy { $0 >= 0x41 && $0 <= 0x5A }) {
            error(path.appending("country"), "\"\(c)\" is not an ISO 3166-1 alpha-2 code")
        }
    }

    mutating func checkPort(_ port: CPDPortSpec?, at path: JSONPath) {
        guard let port else { return }
        let (lo, hi) = port.bounds
        if !(0...65535).contains(lo) || !(0...65535).contains(hi) {
            error(path, "port is outside 0...65535")
        } else if hi < lo {
            error(path, "port range \(lo)-\(hi) is empty")
        }
    }

    mutating func checkQoS(_ q: CPDQoSGuarantees, at path: JSONPath, known: Set<String>) {
        var keys = Set<String>()
        for (i, e) in q.entries.enumerated() {
            let ep = path.appending("entries").appending(index: i)
            nodeRef(e.from, at: ep.appending("from"), known: known, wildcard: true)
            nodeRef(e.to, at: ep.appending("to"), known: known, wildcard: true)
            let key = "\(e.from)\u{0}\(e.to)\u{0}\(e.statistic?.rawValue ?? "")"
            if !keys.insert(key).inserted {
                error(ep, "duplicate QoS entry for \(e.from) → \(e.to)" + (e.statistic.map { " (\($0.rawValue))" } ?? ""))
            }
            switch q.kind {
            case .qualitative:
                var forbidden: [String] = []
                if e.statistic != nil { forbidden.append("statistic") }
                if e.percentile != nil { forbidden.append("percentile") }
                if e.measurementIntervalSeconds != nil { forbidden.append("measurement-interval-seconds") }
                forbidden += e.metrics.map(\.key)
                for key in forbidden {
                    error(ep.appending(key), "not allowed in qualitative QoS guarantees (RFC 7297 §3.3)")
                }
                if e.metaQoSClass == nil {
                    error(ep.appending("meta-qos-class"), "required in qualitative QoS guarantees")
                } else if e.metaQoSClass!.isEmpty {
                    error(ep.appending("meta-qos-class"), "must not be empty")
                }
            case .quantitative:
                if e.metaQoSClass != nil {
                    error(ep.appending("meta-qos-class"), "not allowed in quantitative QoS guarantees (RFC 7297 §3.3)")
                }
                if e.statistic == nil {
                    error(ep.appending("statistic"), "required in quantitative QoS guarantees")
                }
                if e.metrics.isEmpty {
                    error(ep, "a quantitative entry needs at least one of one-way-delay-ms, delay-variation-ms, loss-percent, throughput-mbps")
                }
                if e.statistic == .percentile {
                    if let pc = e.percentile {
                        if !(CPNPDecimal(0) < pc && pc < CPNPDecimal(100)) {
                            error(ep.appending("percentile"), "percentile \(Self.text(pc)) must be in (0, 100)")
                        }
                    } else {
                        error(ep.appending("percentile"), "required when statistic is \"percentile\"")
                    }
                } else if e.percentile != nil {
                    error(ep.appending("percentile"), "only allowed when statistic is \"percentile\"")
                }
                if let m = e.measurementIntervalSeconds, m <= 0 {
                    error(ep.appending("measurement-interval-seconds"), "must be greater than 0")
                }
                negotiable(e.oneWayDelayMs, at: ep.appending("one-way-delay-ms"), allowed: Self.nonNegative, valueName: "delay")
                negotiable(e.delayVariationMs, at: ep.appending("delay-variation-ms"), allowed: Self.nonNegative, valueName: "delay variation")
                negotiable(e.lossPercent, at: ep.appending("loss-percent"), allowed: 0...100, valueName: "loss")
                negotiable(e.throughputMbps, at: ep.appending("throughput-mbps"), allowed: Self.nonNegative, valueName: "throughput")
            }
        }
    }
}
