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
        var seenNodes: [String: CPDValidator.NodePosition] = [:]
        for (componentIndex, component) in components.enumerated() {
            func componentPath() -> JSONPath { base.appending("components").appending(index: componentIndex) }
            if component.profiles.isEmpty {
                validator.error(componentPath().appending("profiles"), "a component must contain at least one profile")
            }
            for (profileIndex, profile) in component.profiles.enumerated() {
                let position = CPDValidator.ProfilePosition(base: base, component: componentIndex, profile: profileIndex)
                validator.check(profile, at: position, seenNodes: &seenNodes)
            }
        }
        return validator.issues
    }

    /// Whether ``validate(at:)`` reports no error (warnings allowed).
    public var isValid: Bool { validate().errors.isEmpty }
}

/// The checks of ``ConnectivityProvisioningDocument/validate(at:)``. Paths are autoclosures: a path is
/// built only for an issue, so a valid CPD allocates none (docs/performance.md, round 16).
struct CPDValidator {
    var issues: [CPDValidationIssue] = []

    mutating func error(_ path: @autoclosure () -> JSONPath, _ message: String) {
        issues.append(CPDValidationIssue(path: path(), message: message))
    }

    mutating func warning(_ path: @autoclosure () -> JSONPath, _ message: String) {
        issues.append(CPDValidationIssue(path: path(), message: message, severity: .warning))
    }

    // MARK: value checks

    mutating func negotiable<T>(
        _ negotiable: Negotiable<T>?, at path: @autoclosure () -> JSONPath, allowed: ClosedRange<CPNPDecimal>? = nil,
        positive: Bool = false, valueName: String = "value"
    ) where T: NegotiableValue {
        guard let negotiable else { return }
        for problem in negotiable.internalProblems { error(path(), problem) }
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
                    path(),
                    "\(valueName) \(CPDValidator.text(decimal)) is outside \(CPDValidator.text(allowed.lowerBound))...\(CPDValidator.text(allowed.upperBound))"
                )
                return
            }
            if positive && !(CPNPDecimal(0) < decimal) {
                error(path(), "\(valueName) \(CPDValidator.text(decimal)) must be greater than 0")
                return
            }
        }
    }

    static func text(_ decimal: CPNPDecimal) -> String { decimal.description }

    mutating func integer(_ value: Int64?, at path: @autoclosure () -> JSONPath, in range: ClosedRange<Int64>, name: String) {
        guard let value, !range.contains(value) else { return }
        error(path(), "\(name) \(value) is outside \(range.lowerBound)...\(range.upperBound)")
    }

    mutating func prefixes(_ list: [String]?, at path: @autoclosure () -> JSONPath) {
        guard let list else { return }
        for (index, text) in list.enumerated() {
            if let problem = CPDIPPrefix.problem(with: text) { error(path().appending(index: index), problem) }
        }
    }

    mutating func prefix(_ prefix: String?, at path: @autoclosure () -> JSONPath) {
        guard let prefix, let problem = CPDIPPrefix.problem(with: prefix) else { return }
        error(path(), problem)
    }

    mutating func address(_ address: String?, at path: @autoclosure () -> JSONPath) {
        guard let address, CPDIPAddress(address) == nil else { return }
        error(path(), "\"\(address)\" is not a valid IP address")
    }

    mutating func nodeRef(_ identifier: String?, at path: @autoclosure () -> JSONPath, known: Set<String>, wildcard: Bool = false) {
        guard let identifier else { return }
        if wildcard && identifier == CPDQoSEntry.anyNode { return }
        if !known.contains(identifier) {
            error(path(), "\"\(identifier)\" is not the identifier of a customer node of this profile")
        }
    }

    // MARK: profile

    /// Where a profile is in its CPD; its path is built only for an issue.
    struct ProfilePosition {
        let base: JSONPath
        let component: Int
        let profile: Int
        var path: JSONPath { base.appending("components").appending(index: component).appending("profiles").appending(index: profile) }
    }

    /// Where a customer node was first seen, for a duplicate's message.
    struct NodePosition {
        let profile: ProfilePosition
        let node: Int
        var identifierPath: JSONPath { profile.path.appending("customer-nodes").appending(index: node).appending("identifier") }
    }

    mutating func check(_ profile: ConnectivityProvisioningProfile, at position: ProfilePosition, seenNodes: inout [String: NodePosition]) {
        func path() -> JSONPath { position.path }
        // 2.1 Customer nodes
        if profile.customerNodes.isEmpty { error(path().appending("customer-nodes"), "a profile must list at least one customer node") }
        var known = Set<String>()
        var linksByNode: [String: [String]] = [:]
        for (i, node) in profile.customerNodes.enumerated() {
            let nodePosition = NodePosition(profile: position, node: i)
            func itemPath() -> JSONPath { path().appending("customer-nodes").appending(index: i) }
            if node.identifier.isEmpty {
                error(nodePosition.identifierPath, "identifier must not be empty")
            } else if node.identifier == CPDQoSEntry.anyNode {
                error(nodePosition.identifierPath, "\"*\" is reserved (wildcard of qos-guarantees)")
            } else if let first = seenNodes[node.identifier] {
                error(nodePosition.identifierPath, "duplicate customer node identifier \"\(node.identifier)\" (first at \(first.identifierPath))")
            } else {
                seenNodes[node.identifier] = nodePosition
            }
            known.insert(node.identifier)
            linksByNode[node.identifier] = node.linkIdentifiers
            func linkPath(_ linkIndex: Int) -> JSONPath { itemPath().appending("link-identifiers").appending(index: linkIndex) }
            var seenLinks = Set<String>()
            for (linkIndex, link) in node.linkIdentifiers.enumerated() {
                if link.isEmpty { error(linkPath(linkIndex), "link identifier must not be empty") }
                if !seenLinks.insert(link).inserted { error(linkPath(linkIndex), "duplicate link identifier \"\(link)\"") }
            }
            checkLocalization(node.localization, at: itemPath().appending("localization"))
        }

        // 2.2 Scope
        if profile.scope.isEmpty { error(path().appending("scope"), "a profile must contain at least one scope entry (RFC 7297 §3.2)") }
        var scopeKeys = Set<ScopeKey>()
        for (i, entry) in profile.scope.enumerated() {
            func entryPath() -> JSONPath { path().appending("scope").appending(index: i) }
            nodeRef(entry.customerNode, at: entryPath().appending("customer-node"), known: known)
            if !scopeKeys.insert(ScopeKey(customerNode: entry.customerNode, direction: entry.direction)).inserted {
                error(entryPath(), "duplicate scope entry for \"\(entry.customerNode)\" \(entry.direction.rawValue)")
            }
            negotiable(entry.reachability, at: entryPath().appending("reachability"))
            if entry.reachability == .fixed(.global), entry.destinationPrefixes != nil {
                error(entryPath().appending("destination-prefixes"), "only allowed with restricted reachability")
            }
            prefixes(entry.sourcePrefixes, at: entryPath().appending("source-prefixes"))
            prefixes(entry.destinationPrefixes, at: entryPath().appending("destination-prefixes"))
            if let multicastSources = entry.multicastSources {
                for (sourceIndex, source) in multicastSources.enumerated() {
                    address(source, at: entryPath().appending("multicast-sources").appending(index: sourceIndex))
                }
            }
        }

        // 2.3 QoS guarantees
        if let qosGuarantees = profile.qosGuarantees { checkQoS(qosGuarantees, at: path().appending("qos-guarantees"), known: known) }

        // 2.4 Availability
        if let availability = profile.availability {
            negotiable(
                availability.availabilityPercent, at: path().appending("availability").appending("availability-percent"),
                allowed: 0...100, valueName: "availability")
        }

        // 2.5 Capacity
        if let capacity = profile.capacity {
            var capacityKeys = Set<CapacityKey>()
            for (i, entry) in capacity.enumerated() {
                func entryPath() -> JSONPath { path().appending("capacity").appending(index: i) }
                nodeRef(entry.customerNode, at: entryPath().appending("customer-node"), known: known)
                if let link = entry.linkIdentifier, let links = linksByNode[entry.customerNode], !links.isEmpty, !links.contains(link) {
                    error(entryPath().appending("link-identifier"), "\"\(link)\" is not a link identifier of \"\(entry.customerNode)\"")
                }
                if !capacityKeys.insert(CapacityKey(customerNode: entry.customerNode, linkIdentifier: entry.linkIdentifier)).inserted {
                    error(
                        entryPath(), "duplicate capacity entry for \"\(entry.customerNode)\"" + (entry.linkIdentifier.map { " link \"\($0)\"" } ?? "")
                    )
                }
                if entry.incomingBandwidthMbps == nil && entry.outgoingBandwidthMbps == nil {
                    error(entryPath(), "a capacity entry needs incoming-bandwidth-mbps or outgoing-bandwidth-mbps")
                }
                negotiable(
                    entry.incomingBandwidthMbps, at: entryPath().appending("incoming-bandwidth-mbps"), allowed: Self.nonNegative,
                    valueName: "bandwidth")
                negotiable(
                    entry.outgoingBandwidthMbps, at: entryPath().appending("outgoing-bandwidth-mbps"), allowed: Self.nonNegative,
                    valueName: "bandwidth")
            }
        }

        // 2.6 Traffic isolation: no cross-field rule.

        // 2.7 Conformance traffic
        func conformancePath() -> JSONPath { path().appending("conformance-traffic") }
        if let conformance = profile.conformanceTraffic {
            if profile.capacity == nil { error(conformancePath(), "conformance-traffic is only allowed when capacity is present") }
            if conformance.reclassifyTo != nil && conformance.outOfProfileAction != .reclassify {
                error(conformancePath().appending("reclassify-to"), "reclassify-to requires out-of-profile-action \"reclassify\"")
            }
            negotiable(conformance.mtuBytes, at: conformancePath().appending("mtu-bytes"), positive: true, valueName: "MTU")
        } else if profile.capacity != nil {
            error(conformancePath(), "conformance-traffic is required when capacity is present")
        }

        // 2.8 Flow identification
        if let flowIdentification = profile.flowIdentification {
            let qosCount = profile.qosGuarantees?.entries.count ?? 0
            for (i, classifier) in flowIdentification.classifiers.enumerated() {
                func itemPath() -> JSONPath { path().appending("flow-identification").appending("classifiers").appending(index: i) }
                if case .links(let linkIdentifiers) = classifier.appliesTo, linkIdentifiers.isEmpty {
                    error(itemPath().appending("applies-to"), "list at least one link identifier, or use \"all-links\"")
                }
                prefix(classifier.sourcePrefix, at: itemPath().appending("source-prefix"))
                prefix(classifier.destinationPrefix, at: itemPath().appending("destination-prefix"))
                checkPort(classifier.sourcePort, at: itemPath().appending("source-port"))
                checkPort(classifier.destinationPort, at: itemPath().appending("destination-port"))
                integer(classifier.protocol, at: itemPath().appending("protocol"), in: 0...255, name: "protocol")
                integer(classifier.dscp, at: itemPath().appending("dscp"), in: 0...63, name: "DSCP")
                address(classifier.tunnelEndpoint, at: itemPath().appending("tunnel-endpoint"))
                if let reference = classifier.qosEntryRef, !(0..<Int64(qosCount)).contains(reference) {
                    error(
                        itemPath().appending("qos-entry-ref"),
                        qosCount == 0
                            ? "refers to qos-guarantees entry \(reference) but there is no qos-guarantees entry"
                            : "qos-guarantees entry \(reference) does not exist (0...\(qosCount - 1))")
                }
            }
            for (i, reference) in (flowIdentification.remarking ?? []).enumerated() {
                func itemPath() -> JSONPath { path().appending("flow-identification").appending("remarking").appending(index: i) }
                integer(reference.matchDSCP, at: itemPath().appending("match-dscp"), in: 0...63, name: "DSCP")
                integer(reference.setDSCP, at: itemPath().appending("set-dscp"), in: 0...63, name: "DSCP")
            }
        }

        // 2.9 Overall traffic guarantees
        if profile.overallTrafficGuarantees != nil, profile.conformanceTraffic?.outOfProfileAction == .discard {
            warning(
                path().appending("overall-traffic-guarantees"),
                "should be absent when out-of-profile traffic is discarded (RFC 7297 §3.7)")
        }

        // 2.11 Activation means
        for (i, means) in (profile.activationMeans ?? []).enumerated() {
            func itemPath() -> JSONPath { path().appending("activation-means").appending(index: i) }
            if means.mechanism.rawValue.isEmpty { error(itemPath().appending("mechanism"), "mechanism must not be empty") }
            nodeRef(means.customerNode, at: itemPath().appending("customer-node"), known: known)
        }

        // 2.12 Invocation means
        if let invocation = profile.invocationMeans {
            negotiable(invocation.type, at: path().appending("invocation-means").appending("type"))
        }

        // 2.13 Notifications
        for (i, notification) in (profile.notifications ?? []).enumerated() {
            func itemPath() -> JSONPath { path().appending("notifications").appending(index: i) }
            if notification.events.isEmpty { error(itemPath().appending("events"), "list at least one event") }
            if notification.method.rawValue.isEmpty { error(itemPath().appending("method"), "method must not be empty") }
            negotiable(notification.intervalSeconds, at: itemPath().appending("interval-seconds"), positive: true, valueName: "interval")
        }
    }

    /// A scope entry's customer node and direction, unique in a profile.
    struct ScopeKey: Hashable {
        let customerNode: String
        let direction: CPDDirection
    }

    /// A capacity entry's customer node and link, unique in a profile.
    struct CapacityKey: Hashable {
        let customerNode: String
        let linkIdentifier: String?
    }

    /// A QoS entry's ends and statistic, unique in a profile.
    struct QoSKey: Hashable {
        let from: String
        let to: String
        let statistic: String?
    }

    static let nonNegative: ClosedRange<CPNPDecimal> = CPNPDecimal(0)...CPNPDecimal(Int64.max)

    mutating func checkLocalization(_ localization: CPDLocalization, at path: @autoclosure () -> JSONPath) {
        if localization.isEmpty {
            error(path(), "localization needs at least one of site-id, address, latitude, longitude, country")
        }
        if let latitude = localization.latitude, !(CPNPDecimal(-90)...CPNPDecimal(90)).contains(latitude) {
            error(path().appending("latitude"), "latitude \(Self.text(latitude)) is outside -90...90")
        }
        if let longitude = localization.longitude, !(CPNPDecimal(-180)...CPNPDecimal(180)).contains(longitude) {
            error(path().appending("longitude"), "longitude \(Self.text(longitude)) is outside -180...180")
        }
        if (localization.latitude == nil) != (localization.longitude == nil) {
            error(path().appending(localization.latitude == nil ? "latitude" : "longitude"), "latitude and longitude go together")
        }
        if let country = localization.country, !(country.utf8.count == 2 && country.utf8.allSatisfy { $0 >= 0x41 && $0 <= 0x5A }) {
            error(path().appending("country"), "\"\(country)\" is not an ISO 3166-1 alpha-2 code")
        }
    }

    mutating func checkPort(_ port: CPDPortSpec?, at path: @autoclosure () -> JSONPath) {
        guard let port else { return }
        let (lower, upper) = port.bounds
        if !(0...65535).contains(lower) || !(0...65535).contains(upper) {
            error(path(), "port is outside 0...65535")
        } else if upper < lower {
            error(path(), "port range \(lower)-\(upper) is empty")
        }
    }

    mutating func checkQoS(_ qosGuarantees: CPDQoSGuarantees, at path: @autoclosure () -> JSONPath, known: Set<String>) {
        var keys = Set<QoSKey>()
        for (i, entry) in qosGuarantees.entries.enumerated() {
            func entryPath() -> JSONPath { path().appending("entries").appending(index: i) }
            nodeRef(entry.from, at: entryPath().appending("from"), known: known, wildcard: true)
            nodeRef(entry.to, at: entryPath().appending("to"), known: known, wildcard: true)
            if !keys.insert(QoSKey(from: entry.from, to: entry.to, statistic: entry.statistic?.rawValue)).inserted {
                error(entryPath(), "duplicate QoS entry for \(entry.from) → \(entry.to)" + (entry.statistic.map { " (\($0.rawValue))" } ?? ""))
            }
            switch qosGuarantees.kind {
            case .qualitative:
                var forbidden: [String] = []
                if entry.statistic != nil { forbidden.append("statistic") }
                if entry.percentile != nil { forbidden.append("percentile") }
                if entry.measurementIntervalSeconds != nil { forbidden.append("measurement-interval-seconds") }
                forbidden += entry.metrics.map(\.key)
                for key in forbidden {
                    error(entryPath().appending(key), "not allowed in qualitative QoS guarantees (RFC 7297 §3.3)")
                }
                if entry.metaQoSClass == nil {
                    error(entryPath().appending("meta-qos-class"), "required in qualitative QoS guarantees")
                } else if entry.metaQoSClass!.isEmpty {
                    error(entryPath().appending("meta-qos-class"), "must not be empty")
                }
            case .quantitative:
                if entry.metaQoSClass != nil {
                    error(entryPath().appending("meta-qos-class"), "not allowed in quantitative QoS guarantees (RFC 7297 §3.3)")
                }
                if entry.statistic == nil {
                    error(entryPath().appending("statistic"), "required in quantitative QoS guarantees")
                }
                if entry.metrics.isEmpty {
                    error(
                        entryPath(), "a quantitative entry needs at least one of one-way-delay-ms, delay-variation-ms, loss-percent, throughput-mbps")
                }
                if entry.statistic == .percentile {
                    if let percentile = entry.percentile {
                        if !(CPNPDecimal(0) < percentile && percentile < CPNPDecimal(100)) {
                            error(entryPath().appending("percentile"), "percentile \(Self.text(percentile)) must be in (0, 100)")
                        }
                    } else {
                        error(entryPath().appending("percentile"), "required when statistic is \"percentile\"")
                    }
                } else if entry.percentile != nil {
                    error(entryPath().appending("percentile"), "only allowed when statistic is \"percentile\"")
                }
                if let interval = entry.measurementIntervalSeconds, interval <= 0 {
                    error(entryPath().appending("measurement-interval-seconds"), "must be greater than 0")
                }
                negotiable(entry.oneWayDelayMs, at: entryPath().appending("one-way-delay-ms"), allowed: Self.nonNegative, valueName: "delay")
                negotiable(
                    entry.delayVariationMs, at: entryPath().appending("delay-variation-ms"), allowed: Self.nonNegative, valueName: "delay variation")
                negotiable(entry.lossPercent, at: entryPath().appending("loss-percent"), allowed: 0...100, valueName: "loss")
                negotiable(entry.throughputMbps, at: entryPath().appending("throughput-mbps"), allowed: Self.nonNegative, valueName: "throughput")
            }
        }
    }
}
