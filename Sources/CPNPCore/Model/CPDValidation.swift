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
        var validator = CPDValidator()
        var seenNodes: [String: JSONPath] = [:]
        let componentsPath = base.appending("components")
        for (componentIndex, component) in components.enumerated() {
            let componentPath = componentsPath.appending(index: componentIndex)
            if component.profiles.isEmpty {
                validator.error(componentPath.appending("profiles"), "a component must contain at least one profile")
            }
            for (profileIndex, profile) in component.profiles.enumerated() {
                validator.check(profile, at: componentPath.appending("profiles").appending(index: profileIndex), seenNodes: &seenNodes)
            }
        }
        return validator.issues
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

    mutating func negotiable<T>(
        _ negotiable: Negotiable<T>?, at path: JSONPath, allowed: ClosedRange<CPNPDecimal>? = nil,
        positive: Bool = false, valueName: String = "value"
    ) where T: NegotiableValue {
        guard let negotiable else { return }
        for problem in negotiable.internalProblems { error(path, problem) }
        guard allowed != nil || positive else { return }
        for value in negotiable.mentionedValues {
            let decimal: CPNPDecimal
            if let decimalValue = value as? CPNPDecimal {
                decimal = decimalValue
            } else if let integerValue = value as? Int64 {
                decimal = CPNPDecimal(integerValue)
            } else {
                continue
            }
            if let allowed, !allowed.contains(decimal) {
                error(
                    path,
                    "\(valueName) \(CPDValidator.text(decimal)) is outside \(CPDValidator.text(allowed.lowerBound))...\(CPDValidator.text(allowed.upperBound))"
                )
                return
            }
            if positive && !(CPNPDecimal(0) < decimal) {
                error(path, "\(valueName) \(CPDValidator.text(decimal)) must be greater than 0")
                return
            }
        }
    }

    static func text(_ decimal: CPNPDecimal) -> String { decimal.description }

    mutating func integer(_ value: Int64?, at path: JSONPath, in range: ClosedRange<Int64>, name: String) {
        guard let value, !range.contains(value) else { return }
        error(path, "\(name) \(value) is outside \(range.lowerBound)...\(range.upperBound)")
    }

    mutating func prefixes(_ list: [String]?, at path: JSONPath) {
        guard let list else { return }
        // The entry's path is built only for a problem.
        for (index, text) in list.enumerated() {
            if let problem = CPDIPPrefix.problem(with: text) { error(path.appending(index: index), problem) }
        }
    }

    mutating func prefix(_ prefix: String?, at path: JSONPath) {
        guard let prefix, let problem = CPDIPPrefix.problem(with: prefix) else { return }
        error(path, problem)
    }

    mutating func address(_ address: String?, at path: JSONPath) {
        guard let address, CPDIPAddress(address) == nil else { return }
        error(path, "\"\(address)\" is not a valid IP address")
    }

    mutating func nodeRef(_ identifier: String?, at path: JSONPath, known: Set<String>, wildcard: Bool = false) {
        guard let identifier else { return }
        if wildcard && identifier == CPDQoSEntry.anyNode { return }
        if !known.contains(identifier) {
            error(path, "\"\(identifier)\" is not the identifier of a customer node of this profile")
        }
    }

    // MARK: profile

    mutating func check(_ profile: ConnectivityProvisioningProfile, at path: JSONPath, seenNodes: inout [String: JSONPath]) {
        // 2.1 Customer nodes
        let nodesPath = path.appending("customer-nodes")
        if profile.customerNodes.isEmpty { error(nodesPath, "a profile must list at least one customer node") }
        var known = Set<String>()
        var linksByNode: [String: [String]] = [:]
        for (i, node) in profile.customerNodes.enumerated() {
            let itemPath = nodesPath.appending(index: i)
            let identifierPath = itemPath.appending("identifier")
            if node.identifier.isEmpty {
                error(identifierPath, "identifier must not be empty")
            } else if node.identifier == CPDQoSEntry.anyNode {
                error(identifierPath, "\"*\" is reserved (wildcard of qos-guarantees)")
            } else if let first = seenNodes[node.identifier] {
                error(identifierPath, "duplicate customer node identifier \"\(node.identifier)\" (first at \(first))")
            } else {
                seenNodes[node.identifier] = identifierPath
            }
            known.insert(node.identifier)
            linksByNode[node.identifier] = node.linkIdentifiers
            let linksPath = itemPath.appending("link-identifiers")
            var seenLinks = Set<String>()
            for (linkIndex, link) in node.linkIdentifiers.enumerated() {
                if link.isEmpty { error(linksPath.appending(index: linkIndex), "link identifier must not be empty") }
                if !seenLinks.insert(link).inserted { error(linksPath.appending(index: linkIndex), "duplicate link identifier \"\(link)\"") }
            }
            checkLocalization(node.localization, at: itemPath.appending("localization"))
        }

        // 2.2 Scope
        let scopePath = path.appending("scope")
        if profile.scope.isEmpty { error(scopePath, "a profile must contain at least one scope entry (RFC 7297 §3.2)") }
        var scopeKeys = Set<String>()
        for (i, entry) in profile.scope.enumerated() {
            let entryPath = scopePath.appending(index: i)
            nodeRef(entry.customerNode, at: entryPath.appending("customer-node"), known: known)
            if !scopeKeys.insert("\(entry.customerNode)\u{0}\(entry.direction.rawValue)").inserted {
                error(entryPath, "duplicate scope entry for \"\(entry.customerNode)\" \(entry.direction.rawValue)")
            }
            negotiable(entry.reachability, at: entryPath.appending("reachability"))
            if entry.reachability == .fixed(.global), entry.destinationPrefixes != nil {
                error(entryPath.appending("destination-prefixes"), "only allowed with restricted reachability")
            }
            prefixes(entry.sourcePrefixes, at: entryPath.appending("source-prefixes"))
            prefixes(entry.destinationPrefixes, at: entryPath.appending("destination-prefixes"))
            if let multicastSources = entry.multicastSources {
                for (sourceIndex, source) in multicastSources.enumerated() {
                    address(source, at: entryPath.appending("multicast-sources").appending(index: sourceIndex))
                }
            }
        }

        // 2.3 QoS guarantees
        if let qosGuarantees = profile.qosGuarantees { checkQoS(qosGuarantees, at: path.appending("qos-guarantees"), known: known) }

        // 2.4 Availability
        if let availability = profile.availability {
            negotiable(
                availability.availabilityPercent, at: path.appending("availability").appending("availability-percent"),
                allowed: 0...100, valueName: "availability")
        }

        // 2.5 Capacity
        if let capacity = profile.capacity {
            let capacityPath = path.appending("capacity")
            var capacityKeys = Set<String>()
            for (i, entry) in capacity.enumerated() {
                let entryPath = capacityPath.appending(index: i)
                nodeRef(entry.customerNode, at: entryPath.appending("customer-node"), known: known)
                if let link = entry.linkIdentifier, let links = linksByNode[entry.customerNode], !links.isEmpty, !links.contains(link) {
                    error(entryPath.appending("link-identifier"), "\"\(link)\" is not a link identifier of \"\(entry.customerNode)\"")
                }
                if !capacityKeys.insert("\(entry.customerNode)\u{0}\(entry.linkIdentifier ?? "\u{0}")").inserted {
                    error(
                        entryPath, "duplicate capacity entry for \"\(entry.customerNode)\"" + (entry.linkIdentifier.map { " link \"\($0)\"" } ?? ""))
                }
                if entry.incomingBandwidthMbps == nil && entry.outgoingBandwidthMbps == nil {
                    error(entryPath, "a capacity entry needs incoming-bandwidth-mbps or outgoing-bandwidth-mbps")
                }
                negotiable(
                    entry.incomingBandwidthMbps, at: entryPath.appending("incoming-bandwidth-mbps"), allowed: Self.nonNegative, valueName: "bandwidth"
                )
                negotiable(
                    entry.outgoingBandwidthMbps, at: entryPath.appending("outgoing-bandwidth-mbps"), allowed: Self.nonNegative, valueName: "bandwidth"
                )
            }
        }

        // 2.6 Traffic isolation: no cross-field rule.

        // 2.7 Conformance traffic
        let conformancePath = path.appending("conformance-traffic")
        if let conformance = profile.conformanceTraffic {
            if profile.capacity == nil { error(conformancePath, "conformance-traffic is only allowed when capacity is present") }
            if conformance.reclassifyTo != nil && conformance.outOfProfileAction != .reclassify {
                error(conformancePath.appending("reclassify-to"), "reclassify-to requires out-of-profile-action \"reclassify\"")
            }
            negotiable(conformance.mtuBytes, at: conformancePath.appending("mtu-bytes"), positive: true, valueName: "MTU")
        } else if profile.capacity != nil {
            error(conformancePath, "conformance-traffic is required when capacity is present")
        }

        // 2.8 Flow identification
        if let flowIdentification = profile.flowIdentification {
            let flowPath = path.appending("flow-identification")
            let qosCount = profile.qosGuarantees?.entries.count ?? 0
            for (i, classifier) in flowIdentification.classifiers.enumerated() {
                let itemPath = flowPath.appending("classifiers").appending(index: i)
                if case .links(let linkIdentifiers) = classifier.appliesTo, linkIdentifiers.isEmpty {
                    error(itemPath.appending("applies-to"), "list at least one link identifier, or use \"all-links\"")
                }
                prefix(classifier.sourcePrefix, at: itemPath.appending("source-prefix"))
                prefix(classifier.destinationPrefix, at: itemPath.appending("destination-prefix"))
                checkPort(classifier.sourcePort, at: itemPath.appending("source-port"))
                checkPort(classifier.destinationPort, at: itemPath.appending("destination-port"))
                integer(classifier.protocol, at: itemPath.appending("protocol"), in: 0...255, name: "protocol")
                integer(classifier.dscp, at: itemPath.appending("dscp"), in: 0...63, name: "DSCP")
                address(classifier.tunnelEndpoint, at: itemPath.appending("tunnel-endpoint"))
                if let reference = classifier.qosEntryRef, !(0..<Int64(qosCount)).contains(reference) {
                    error(
                        itemPath.appending("qos-entry-ref"),
                        qosCount == 0
                            ? "refers to qos-guarantees entry \(reference) but there is no qos-guarantees entry"
                            : "qos-guarantees entry \(reference) does not exist (0...\(qosCount - 1))")
                }
            }
            for (i, reference) in (flowIdentification.remarking ?? []).enumerated() {
                let itemPath = flowPath.appending("remarking").appending(index: i)
                integer(reference.matchDSCP, at: itemPath.appending("match-dscp"), in: 0...63, name: "DSCP")
                integer(reference.setDSCP, at: itemPath.appending("set-dscp"), in: 0...63, name: "DSCP")
            }
        }

        // 2.9 Overall traffic guarantees
        if profile.overallTrafficGuarantees != nil, profile.conformanceTraffic?.outOfProfileAction == .discard {
            warning(
                path.appending("overall-traffic-guarantees"),
                "should be absent when out-of-profile traffic is discarded (RFC 7297 §3.7)")
        }

        // 2.11 Activation means
        for (i, means) in (profile.activationMeans ?? []).enumerated() {
            let itemPath = path.appending("activation-means").appending(index: i)
            if means.mechanism.rawValue.isEmpty { error(itemPath.appending("mechanism"), "mechanism must not be empty") }
            nodeRef(means.customerNode, at: itemPath.appending("customer-node"), known: known)
        }

        // 2.12 Invocation means
        if let invocation = profile.invocationMeans {
            negotiable(invocation.type, at: path.appending("invocation-means").appending("type"))
        }

        // 2.13 Notifications
        for (i, notification) in (profile.notifications ?? []).enumerated() {
            let itemPath = path.appending("notifications").appending(index: i)
            if notification.events.isEmpty { error(itemPath.appending("events"), "list at least one event") }
            if notification.method.rawValue.isEmpty { error(itemPath.appending("method"), "method must not be empty") }
            negotiable(notification.intervalSeconds, at: itemPath.appending("interval-seconds"), positive: true, valueName: "interval")
        }
    }

    static let nonNegative: ClosedRange<CPNPDecimal> = CPNPDecimal(0)...CPNPDecimal(Int64.max)

    mutating func checkLocalization(_ localization: CPDLocalization, at path: JSONPath) {
        if localization.isEmpty {
            error(path, "localization needs at least one of site-id, address, latitude, longitude, country")
        }
        if let latitude = localization.latitude, !(CPNPDecimal(-90)...CPNPDecimal(90)).contains(latitude) {
            error(path.appending("latitude"), "latitude \(Self.text(latitude)) is outside -90...90")
        }
        if let longitude = localization.longitude, !(CPNPDecimal(-180)...CPNPDecimal(180)).contains(longitude) {
            error(path.appending("longitude"), "longitude \(Self.text(longitude)) is outside -180...180")
        }
        if (localization.latitude == nil) != (localization.longitude == nil) {
            error(path.appending(localization.latitude == nil ? "latitude" : "longitude"), "latitude and longitude go together")
        }
        if let country = localization.country, !(country.utf8.count == 2 && country.utf8.allSatisfy { $0 >= 0x41 && $0 <= 0x5A }) {
            error(path.appending("country"), "\"\(country)\" is not an ISO 3166-1 alpha-2 code")
        }
    }

    mutating func checkPort(_ port: CPDPortSpec?, at path: JSONPath) {
        guard let port else { return }
        let (lower, upper) = port.bounds
        if !(0...65535).contains(lower) || !(0...65535).contains(upper) {
            error(path, "port is outside 0...65535")
        } else if upper < lower {
            error(path, "port range \(lower)-\(upper) is empty")
        }
    }

    mutating func checkQoS(_ qosGuarantees: CPDQoSGuarantees, at path: JSONPath, known: Set<String>) {
        var keys = Set<String>()
        for (i, entry) in qosGuarantees.entries.enumerated() {
            let entryPath = path.appending("entries").appending(index: i)
            nodeRef(entry.from, at: entryPath.appending("from"), known: known, wildcard: true)
            nodeRef(entry.to, at: entryPath.appending("to"), known: known, wildcard: true)
            let key = "\(entry.from)\u{0}\(entry.to)\u{0}\(entry.statistic?.rawValue ?? "")"
            if !keys.insert(key).inserted {
                error(entryPath, "duplicate QoS entry for \(entry.from) → \(entry.to)" + (entry.statistic.map { " (\($0.rawValue))" } ?? ""))
            }
            switch qosGuarantees.kind {
            case .qualitative:
                var forbidden: [String] = []
                if entry.statistic != nil { forbidden.append("statistic") }
                if entry.percentile != nil { forbidden.append("percentile") }
                if entry.measurementIntervalSeconds != nil { forbidden.append("measurement-interval-seconds") }
                forbidden += entry.metrics.map(\.key)
                for key in forbidden {
                    error(entryPath.appending(key), "not allowed in qualitative QoS guarantees (RFC 7297 §3.3)")
                }
                if entry.metaQoSClass == nil {
                    error(entryPath.appending("meta-qos-class"), "required in qualitative QoS guarantees")
                } else if entry.metaQoSClass!.isEmpty {
                    error(entryPath.appending("meta-qos-class"), "must not be empty")
                }
            case .quantitative:
                if entry.metaQoSClass != nil {
                    error(entryPath.appending("meta-qos-class"), "not allowed in quantitative QoS guarantees (RFC 7297 §3.3)")
                }
                if entry.statistic == nil {
                    error(entryPath.appending("statistic"), "required in quantitative QoS guarantees")
                }
                if entry.metrics.isEmpty {
                    error(entryPath, "a quantitative entry needs at least one of one-way-delay-ms, delay-variation-ms, loss-percent, throughput-mbps")
                }
                if entry.statistic == .percentile {
                    if let percentile = entry.percentile {
                        if !(CPNPDecimal(0) < percentile && percentile < CPNPDecimal(100)) {
                            error(entryPath.appending("percentile"), "percentile \(Self.text(percentile)) must be in (0, 100)")
                        }
                    } else {
                        error(entryPath.appending("percentile"), "required when statistic is \"percentile\"")
                    }
                } else if entry.percentile != nil {
                    error(entryPath.appending("percentile"), "only allowed when statistic is \"percentile\"")
                }
                if let interval = entry.measurementIntervalSeconds, interval <= 0 {
                    error(entryPath.appending("measurement-interval-seconds"), "must be greater than 0")
                }
                negotiable(entry.oneWayDelayMs, at: entryPath.appending("one-way-delay-ms"), allowed: Self.nonNegative, valueName: "delay")
                negotiable(
                    entry.delayVariationMs, at: entryPath.appending("delay-variation-ms"), allowed: Self.nonNegative, valueName: "delay variation")
                negotiable(entry.lossPercent, at: entryPath.appending("loss-percent"), allowed: 0...100, valueName: "loss")
                negotiable(entry.throughputMbps, at: entryPath.appending("throughput-mbps"), allowed: Self.nonNegative, valueName: "throughput")
            }
        }
    }
}
