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
        func text(_ value: JSONValue?) -> String { value.map { JSONSerializer.serializeString($0) } ?? "nothing" }
        switch kind {
        case .missing, .notSatisfied:
            return "\(path): requested \(text(requested)), offered \(text(offered))"
        case .extraNode:
            var identifierText = ""
            if case .object(let object)? = offered, case .string(let name)? = object["identifier"] { identifierText = " \"\(name)\"" }
            return "\(path): offered customer node\(identifierText) was not requested"
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
        var comparator = CPDComparator()
        comparator.compare(requested: requested, offered: self, at: base)
        return CPDComparison(gaps: comparator.gaps)
    }

    /// Same as `offered.comparison(against: requested)`.
    public static func compare(
        offered: ConnectivityProvisioningDocument, requested: ConnectivityProvisioningDocument,
        at base: JSONPath = .root
    ) -> CPDComparison {
        offered.comparison(against: requested, at: base)
    }

    /// Whether this offered CPD fully satisfies `requested`.
    public func satisfies(_ requested: ConnectivityProvisioningDocument) -> Bool {
        comparison(against: requested).satisfies
    }
}

/// Paths are autoclosures and local functions: a path is built only for a gap, so comparing an offer
/// that satisfies its request allocates none (as `CPDValidator`, Sources/CPNPCore/Model/CPDValidation.swift).
struct CPDComparator {
    var gaps: [CPDGap] = []

    mutating func missing(_ path: @autoclosure () -> JSONPath, _ requested: JSONValue) {
        gaps.append(CPDGap(path: path(), kind: .missing, requested: requested, offered: nil))
    }

    mutating func notSatisfied(_ path: @autoclosure () -> JSONPath, _ requested: JSONValue, _ offered: JSONValue) {
        gaps.append(CPDGap(path: path(), kind: .notSatisfied, requested: requested, offered: offered))
    }

    // MARK: leaves

    /// A negotiable leaf: absent in the request → nothing; absent in the offer → gap unless `"any"`.
    mutating func leaf<V>(_ requested: Negotiable<V>?, _ offered: Negotiable<V>?, at path: @autoclosure () -> JSONPath) {
        guard let requested else { return }
        guard let offered else {
            if case .any = requested { return }
            missing(path(), requested.json)
            return
        }
        if !offered.satisfies(requested) { notSatisfied(path(), requested.json, offered.json) }
    }

    /// A non-negotiable leaf: equality.
    mutating func exact(_ requested: JSONValue?, _ offered: JSONValue?, at path: @autoclosure () -> JSONPath) {
        guard let requested else { return }
        guard let offered else { return missing(path(), requested) }
        if requested != offered { notSatisfied(path(), requested, offered) }
    }

    mutating func exact<V: NegotiableValue>(_ requested: V?, _ offered: V?, at path: @autoclosure () -> JSONPath) {
        exact(requested?.negotiableJSON, offered?.negotiableJSON, at: path())
    }

    /// A list of strings compared as a set; `canonical` maps equivalent spellings together.
    mutating func stringSet(
        _ requested: [String]?, _ offered: [String]?, at path: @autoclosure () -> JSONPath, canonical: (String) -> String = { $0 }
    ) {
        guard let requested else { return }
        guard let offered else { return missing(path(), .array(requested.map(JSONValue.string))) }
        // The same list, as an offer usually repeats it: nothing to map, nothing to build.
        if requested == offered { return }
        if Set(requested.map(canonical)) != Set(offered.map(canonical)) {
            notSatisfied(path(), .array(requested.map(JSONValue.string)), .array(offered.map(JSONValue.string)))
        }
    }

    mutating func prefixSet(_ requested: [String]?, _ offered: [String]?, at path: @autoclosure () -> JSONPath) {
        stringSet(requested, offered, at: path()) { CPDIPPrefix($0)?.description ?? $0 }
    }

    /// Field-by-field comparison of non-negotiable JSON: objects by the requested keys, arrays of
    /// objects by position, other arrays as sets, scalars by equality.
    mutating func generic(_ requested: JSONValue, _ offered: JSONValue?, at path: @autoclosure () -> JSONPath) {
        guard let offered else { return missing(path(), requested) }
        switch (requested, offered) {
        case (.object(let requestedObject), .object(let offeredObject)):
            for (key, requestedValue) in requestedObject { generic(requestedValue, offeredObject[key], at: path().appending(key)) }
        case (.array(let requestedArray), .array(let offeredArray)):
            if requestedArray.contains(where: { if case .object = $0 { true } else { false } }) {
                for (i, requestedValue) in requestedArray.enumerated() {
                    generic(requestedValue, i < offeredArray.count ? offeredArray[i] : nil, at: path().appending(index: i))
                }
            } else if Set(requestedArray) != Set(offeredArray) {
                notSatisfied(path(), requested, offered)
            }
        default:
            if requested != offered { notSatisfied(path(), requested, offered) }
        }
    }

    mutating func generic(_ requested: JSONValue?, _ offered: JSONValue?, at path: @autoclosure () -> JSONPath) {
        guard let requested else { return }
        generic(requested, offered, at: path())
    }

    // MARK: structure

    mutating func compare(requested: CPD, offered: CPD, at base: JSONPath) {
        func componentsPath() -> JSONPath { base.appending("components") }
        if requested.components.count != offered.components.count {
            gaps.append(
                CPDGap(
                    path: componentsPath(), kind: .structureMismatch,
                    requested: .number(CPNPDecimal(Int64(requested.components.count))),
                    offered: .number(CPNPDecimal(Int64(offered.components.count)))))
        }
        for (componentIndex, (requestedComponent, offeredComponent)) in zip(requested.components, offered.components).enumerated() {
            func profilesPath() -> JSONPath { componentsPath().appending(index: componentIndex).appending("profiles") }
            if requestedComponent.profiles.count != offeredComponent.profiles.count {
                gaps.append(
                    CPDGap(
                        path: profilesPath(), kind: .structureMismatch,
                        requested: .number(CPNPDecimal(Int64(requestedComponent.profiles.count))),
                        offered: .number(CPNPDecimal(Int64(offeredComponent.profiles.count)))))
            }
            for (profileIndex, (requestedProfile, offeredProfile)) in zip(requestedComponent.profiles, offeredComponent.profiles).enumerated() {
                compare(requested: requestedProfile, offered: offeredProfile, at: profilesPath().appending(index: profileIndex))
            }
        }
    }

    mutating func compare(requested: ConnectivityProvisioningProfile, offered: ConnectivityProvisioningProfile, at path: @autoclosure () -> JSONPath)
    {
        // Customer nodes, by identifier.
        func nodesPath() -> JSONPath { path().appending("customer-nodes") }
        for (i, requestedNode) in requested.customerNodes.enumerated() {
            func nodePath() -> JSONPath { nodesPath().appending(index: i) }
            guard let offeredNode = offered.customerNodes.first(where: { $0.identifier == requestedNode.identifier }) else {
                missing(nodePath(), requestedNode.json)
                continue
            }
            if !requestedNode.linkIdentifiers.isEmpty {
                stringSet(requestedNode.linkIdentifiers, offeredNode.linkIdentifiers, at: nodePath().appending("link-identifiers"))
            }
            generic(requestedNode.localization.json, offeredNode.localization.json, at: nodePath().appending("localization"))
        }
        let requestedIDs = Set(requested.customerNodes.map(\.identifier))
        for (j, offeredNode) in offered.customerNodes.enumerated() where !requestedIDs.contains(offeredNode.identifier) {
            gaps.append(CPDGap(path: nodesPath().appending(index: j), kind: .extraNode, requested: nil, offered: offeredNode.json))
        }

        // Scope, by customer-node + direction.
        func scopePath() -> JSONPath { path().appending("scope") }
        for (i, requestedEntry) in requested.scope.enumerated() {
            func entryPath() -> JSONPath { scopePath().appending(index: i) }
            guard
                let offeredEntry = offered.scope.first(where: {
                    $0.customerNode == requestedEntry.customerNode && $0.direction == requestedEntry.direction
                })
            else {
                missing(entryPath(), requestedEntry.json)
                continue
            }
            leaf(requestedEntry.reachability, offeredEntry.reachability, at: entryPath().appending("reachability"))
            prefixSet(requestedEntry.sourcePrefixes, offeredEntry.sourcePrefixes, at: entryPath().appending("source-prefixes"))
            prefixSet(requestedEntry.destinationPrefixes, offeredEntry.destinationPrefixes, at: entryPath().appending("destination-prefixes"))
            stringSet(requestedEntry.multicastSources, offeredEntry.multicastSources, at: entryPath().appending("multicast-sources")) {
                CPDIPAddress($0)?.description ?? $0
            }
            exact(requestedEntry.model, offeredEntry.model, at: entryPath().appending("model"))
            stringSet(requestedEntry.ingressPoints, offeredEntry.ingressPoints, at: entryPath().appending("ingress-points"))
            stringSet(requestedEntry.egressPoints, offeredEntry.egressPoints, at: entryPath().appending("egress-points"))
        }

        // QoS guarantees, entries by from + to + statistic.
        if let requestedQoS = requested.qosGuarantees {
            func qosPath() -> JSONPath { path().appending("qos-guarantees") }
            if let offeredQoS = offered.qosGuarantees {
                exact(requestedQoS.kind, offeredQoS.kind, at: qosPath().appending("kind"))
                for (i, requestedEntry) in requestedQoS.entries.enumerated() {
                    func entryPath() -> JSONPath { qosPath().appending("entries").appending(index: i) }
                    guard
                        let offeredEntry = offeredQoS.entries.first(where: {
                            $0.from == requestedEntry.from && $0.to == requestedEntry.to && $0.statistic == requestedEntry.statistic
                        })
                    else {
                        missing(entryPath(), requestedEntry.json)
                        continue
                    }
                    exact(
                        requestedEntry.percentile.map(JSONValue.number), offeredEntry.percentile.map(JSONValue.number),
                        at: entryPath().appending("percentile"))
                    exact(
                        requestedEntry.measurementIntervalSeconds, offeredEntry.measurementIntervalSeconds,
                        at: entryPath().appending("measurement-interval-seconds"))
                    leaf(requestedEntry.oneWayDelayMs, offeredEntry.oneWayDelayMs, at: entryPath().appending("one-way-delay-ms"))
                    leaf(requestedEntry.delayVariationMs, offeredEntry.delayVariationMs, at: entryPath().appending("delay-variation-ms"))
                    leaf(requestedEntry.lossPercent, offeredEntry.lossPercent, at: entryPath().appending("loss-percent"))
                    leaf(requestedEntry.throughputMbps, offeredEntry.throughputMbps, at: entryPath().appending("throughput-mbps"))
                    exact(requestedEntry.metaQoSClass, offeredEntry.metaQoSClass, at: entryPath().appending("meta-qos-class"))
                }
            } else {
                missing(qosPath(), requestedQoS.json)
            }
        }

        // Availability.
        if let requestedAvailability = requested.availability {
            func availabilityPath() -> JSONPath { path().appending("availability") }
            if let offeredAvailability = offered.availability {
                leaf(
                    requestedAvailability.availabilityPercent, offeredAvailability.availabilityPercent,
                    at: availabilityPath().appending("availability-percent"))
                exact(requestedAvailability.statistic, offeredAvailability.statistic, at: availabilityPath().appending("statistic"))
                exact(
                    requestedAvailability.measurementPeriod, offeredAvailability.measurementPeriod,
                    at: availabilityPath().appending("measurement-period"))
            } else {
                missing(availabilityPath(), requestedAvailability.json)
            }
        }

        // Capacity, by customer-node (+ link-identifier).
        if let requestedCapacity = requested.capacity {
            func capacityPath() -> JSONPath { path().appending("capacity") }
            if let offeredCapacity = offered.capacity {
                for (i, requestedEntry) in requestedCapacity.enumerated() {
                    func entryPath() -> JSONPath { capacityPath().appending(index: i) }
                    guard let offeredEntry = Self.matchCapacity(requestedEntry, in: offeredCapacity) else {
                        missing(entryPath(), requestedEntry.json)
                        continue
                    }
                    leaf(
                        requestedEntry.incomingBandwidthMbps, offeredEntry.incomingBandwidthMbps, at: entryPath().appending("incoming-bandwidth-mbps")
                    )
                    leaf(
                        requestedEntry.outgoingBandwidthMbps, offeredEntry.outgoingBandwidthMbps, at: entryPath().appending("outgoing-bandwidth-mbps")
                    )
                }
            } else {
                missing(capacityPath(), .array(requestedCapacity.map(\.json)))
            }
        }

        // Traffic isolation.
        generic(requested.trafficIsolation?.json, offered.trafficIsolation?.json, at: path().appending("traffic-isolation"))

        // Conformance traffic.
        if let requestedConformance = requested.conformanceTraffic {
            func conformancePath() -> JSONPath { path().appending("conformance-traffic") }
            if let offeredConformance = offered.conformanceTraffic {
                exact(requestedConformance.enforcement, offeredConformance.enforcement, at: conformancePath().appending("enforcement"))
                exact(
                    requestedConformance.outOfProfileAction, offeredConformance.outOfProfileAction,
                    at: conformancePath().appending("out-of-profile-action"))
                exact(requestedConformance.reclassifyTo, offeredConformance.reclassifyTo, at: conformancePath().appending("reclassify-to"))
                leaf(requestedConformance.mtuBytes, offeredConformance.mtuBytes, at: conformancePath().appending("mtu-bytes"))
            } else {
                missing(conformancePath(), requestedConformance.json)
            }
        }

        generic(requested.flowIdentification?.json, offered.flowIdentification?.json, at: path().appending("flow-identification"))
        generic(requested.overallTrafficGuarantees?.json, offered.overallTrafficGuarantees?.json, at: path().appending("overall-traffic-guarantees"))
        generic(requested.routingAndForwarding?.json, offered.routingAndForwarding?.json, at: path().appending("routing-and-forwarding"))

        // Activation means, by customer-node (+ mechanism).
        if let requestedMeans = requested.activationMeans {
            func meansPath() -> JSONPath { path().appending("activation-means") }
            if let offeredMeans = offered.activationMeans {
                for (i, requestedEntry) in requestedMeans.enumerated() {
                    func entryPath() -> JSONPath { meansPath().appending(index: i) }
                    let sameNode = offeredMeans.filter { $0.customerNode == requestedEntry.customerNode }
                    guard let offeredEntry = sameNode.first(where: { $0.mechanism == requestedEntry.mechanism }) ?? sameNode.first else {
                        missing(entryPath(), requestedEntry.json)
                        continue
                    }
                    exact(
                        .string(requestedEntry.mechanism.rawValue), .string(offeredEntry.mechanism.rawValue), at: entryPath().appending("mechanism"))
                    generic(requestedEntry.parametersJSON, offeredEntry.parametersJSON, at: entryPath().appending("parameters"))
                }
            } else {
                missing(meansPath(), .array(requestedMeans.map(\.json)))
            }
        }

        // Invocation means.
        if let requestedInvocation = requested.invocationMeans {
            func invocationPath() -> JSONPath { path().appending("invocation-means") }
            if let offeredInvocation = offered.invocationMeans {
                leaf(requestedInvocation.type, offeredInvocation.type, at: invocationPath().appending("type"))
                stringSet(requestedInvocation.protocols, offeredInvocation.protocols, at: invocationPath().appending("protocols"))
            } else {
                missing(invocationPath(), requestedInvocation.json)
            }
        }

        // Notifications, by position.
        if let requestedNotifications = requested.notifications {
            func notificationsPath() -> JSONPath { path().appending("notifications") }
            if let offeredNotifications = offered.notifications {
                for (i, requestedEntry) in requestedNotifications.enumerated() {
                    func entryPath() -> JSONPath { notificationsPath().appending(index: i) }
                    guard i < offeredNotifications.count else {
                        missing(entryPath(), requestedEntry.json)
                        continue
                    }
                    let offeredEntry = offeredNotifications[i]
                    stringSet(requestedEntry.events, offeredEntry.events, at: entryPath().appending("events"))
                    exact(.string(requestedEntry.method.rawValue), .string(offeredEntry.method.rawValue), at: entryPath().appending("method"))
                    exact(requestedEntry.destination, offeredEntry.destination, at: entryPath().appending("destination"))
                    leaf(requestedEntry.intervalSeconds, offeredEntry.intervalSeconds, at: entryPath().appending("interval-seconds"))
                    exact(requestedEntry.dataModel, offeredEntry.dataModel, at: entryPath().appending("data-model"))
                }
            } else {
                missing(notificationsPath(), .array(requestedNotifications.map(\.json)))
            }
        }

        generic(requested.extensions?.json, offered.extensions?.json, at: path().appending("extensions"))
    }

    /// Exact customer-node + link-identifier match; a request without link falls back to the only
    /// offered entry of that node.
    static func matchCapacity(_ requested: CPDCapacityEntry, in offered: [CPDCapacityEntry]) -> CPDCapacityEntry? {
        if let exact = offered.first(where: { $0.customerNode == requested.customerNode && $0.linkIdentifier == requested.linkIdentifier }) {
            return exact
        }
        guard requested.linkIdentifier == nil else { return nil }
        let sameNode = offered.filter { $0.customerNode == requested.customerNode }
        return sameNode.count == 1 ? sameNode[0] : nil
    }
}
