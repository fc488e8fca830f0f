import Synchronization

/// A Connectivity Provisioning Document: one or more components, each made of CPPs
/// (RFC 7297 §4, Figure 6; RFC 8921 §9.1.9, Figure 10; docs/protocol.md §2.7).
///
/// JSON: `{"components":[{"profiles":[CPP, …]}, …]}`. The empty CPD `{"components": []}` is what
/// an ACK carries after DECLINE or WITHDRAW (RFC 8921 §9.2.6).
public struct ConnectivityProvisioningDocument: Sendable, Hashable, CPDJSONCodable {
    public var components: [ConnectivityProvisioningComponent] {
        didSet { memo = Memo() }
    }

    /// What is derived from this value once and shared by its copies: its compact JSON and its
    /// hash. A change to `components` starts a new one, so copies sharing a memo are equal.
    private var memo = Memo()

    public init(components: [ConnectivityProvisioningComponent]) {
        self.components = components
    }

    /// The CPD's compact JSON bytes (docs/protocol.md §2.3), encoded once per value: an OFFER, the
    /// ACK of its ACCEPT and the stored document reuse them.
    public var compactJSON: [UInt8] {
        if let bytes = memo.state.withLock({ $0.compactJSON }) { return bytes }
        // Written straight from the model, without a tree (CPDJSONCodable).
        var writer = JSONWriter(capacity: 4_096)
        write(into: &writer)
        let bytes = writer.bytes
        memo.state.withLock { $0.compactJSON = bytes }
        return bytes
    }

    /// ``validate(at:)`` at a message's `cpd` member, checked once per value: the ACK of an ACCEPT
    /// carries the CPD its OFFER did, and a receiver that recognised it (``CPNPCodec/parse(_:limits:documents:)``)
    /// holds a copy of the value it checked then.
    var issuesInMessage: [CPDValidationIssue] {
        if let issues = memo.state.withLock({ $0.issuesInMessage }) { return issues }
        let issues = validate(at: JSONPath.root.appending(CPNPCodec.Key.cpd))
        memo.state.withLock { $0.issuesInMessage = issues }
        return issues
    }

    /// Paths (from the CPD root) of the negotiable fields that are not fixed, in document order;
    /// found once per value.
    public var looseFields: [JSONPath] {
        if let paths = memo.state.withLock({ $0.looseFields }) { return paths }
        let paths = findLooseFields()
        memo.state.withLock { $0.looseFields = paths }
        return paths
    }

    /// The reference a store names this CPD by (``CPDReferences``: the prefix and `digest` of its
    /// compact JSON), derived once per value and shared by its copies. The store gives the digest
    /// (SHA-256); a store looks its documents up by reference, not by comparing CPDs.
    public func reference(digest: ([UInt8]) -> String) -> String {
        if let reference = memo.state.withLock({ $0.reference }) { return reference }
        let reference = CPDReferences.prefix + digest(compactJSON)
        memo.state.withLock { $0.reference = reference }
        return reference
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.memo === rhs.memo || lhs.components == rhs.components
    }

    public func hash(into hasher: inout Hasher) {
        if let contentHash = memo.state.withLock({ $0.contentHash }) {
            hasher.combine(contentHash)
            return
        }
        var contentHasher = Hasher()
        contentHasher.combine(components)
        let contentHash = contentHasher.finalize()
        memo.state.withLock { $0.contentHash = contentHash }
        hasher.combine(contentHash)
    }

    final class Memo: Sendable {
        struct State {
            var compactJSON: [UInt8]?
            var contentHash: Int?
            /// ``validate(at:)`` at a message's `cpd` member.
            var issuesInMessage: [CPDValidationIssue]?
            /// ``looseFields``.
            var looseFields: [JSONPath]?
            /// ``reference(digest:)``.
            var reference: String?
        }
        let state = Mutex(State())
    }

    /// The empty CPD `{"components": []}` (RFC 8921 §9.2.6).
    public static let empty = ConnectivityProvisioningDocument(components: [])

    /// Whether this is the empty CPD.
    public var isEmpty: Bool { components.isEmpty }

    /// Decodes a CPD; `path` names the `cpd` attribute (e.g. `JSONPath.root.appending("cpd")`).
    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        components = try object.elements("components", at: path, maxCount: CPDLimits.maxComponents)
    }

    /// Deterministic JSON form.
    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("components", components)
    }
}

/// Short name of ``ConnectivityProvisioningDocument`` (RFC 8921 "CPD").
public typealias CPD = ConnectivityProvisioningDocument

/// One component of a CPD: a list of CPPs (RFC 7297 §4).
public struct ConnectivityProvisioningComponent: Sendable, Hashable, CPDJSONCodable {
    public var profiles: [ConnectivityProvisioningProfile]

    public init(profiles: [ConnectivityProvisioningProfile]) {
        self.profiles = profiles
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        profiles = try object.elements("profiles", at: path, maxCount: CPDLimits.maxProfiles)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("profiles", profiles)
    }
}

/// A Connectivity Provisioning Profile: the 13 clauses of RFC 7297 §3 plus optional information
/// elements (RFC 7297 §4). Only `customer-nodes` and `scope` are mandatory in JSON; the meaning
/// of absent clauses is in docs/protocol.md §2.7.
public struct ConnectivityProvisioningProfile: Sendable, Hashable, CPDJSONCodable {
    /// Customer Nodes Map (RFC 7297 §3.1), key `customer-nodes`.
    public var customerNodes: [CPDCustomerNode]
    /// Scope (RFC 7297 §3.2), key `scope`.
    public var scope: [CPDScopeEntry]
    /// QoS Guarantees (RFC 7297 §3.3), key `qos-guarantees`; absent = no guarantee.
    public var qosGuarantees: CPDQoSGuarantees?
    /// Availability (RFC 7297 §3.4), key `availability`.
    public var availability: CPDAvailability?
    /// Capacity (RFC 7297 §3.5), key `capacity`; absent = no quantitative limit.
    public var capacity: [CPDCapacityEntry]?
    /// Traffic Isolation (RFC 7297 §3.8), key `traffic-isolation`.
    public var trafficIsolation: CPDTrafficIsolation?
    /// Conformance Traffic (RFC 7297 §3.6), key `conformance-traffic`; required iff capacity is present.
    public var conformanceTraffic: CPDConformanceTraffic?
    /// Flow Identification (RFC 7297 §3.9), key `flow-identification`; absent = all traffic.
    public var flowIdentification: CPDFlowIdentification?
    /// Overall Traffic Guarantees (RFC 7297 §3.7), key `overall-traffic-guarantees`; absent = best effort.
    public var overallTrafficGuarantees: CPDOverallTrafficGuarantees?
    /// Routing and Forwarding (RFC 7297 §3.10), key `routing-and-forwarding`.
    public var routingAndForwarding: CPDRoutingAndForwarding?
    /// Activation Means (RFC 7297 §3.11), key `activation-means`.
    public var activationMeans: [CPDActivationMeans]?
    /// Invocation Means (RFC 7297 §3.12), key `invocation-means`; absent = implicit.
    public var invocationMeans: CPDInvocationMeans?
    /// Notifications (RFC 7297 §3.13), key `notifications`.
    public var notifications: [CPDNotification]?
    /// Optional information elements (RFC 7297 §4, RFC 8921 §9.1.10), key `extensions`.
    public var extensions: CPDExtensions?

    public init(
        customerNodes: [CPDCustomerNode],
        scope: [CPDScopeEntry],
        qosGuarantees: CPDQoSGuarantees? = nil,
        availability: CPDAvailability? = nil,
        capacity: [CPDCapacityEntry]? = nil,
        trafficIsolation: CPDTrafficIsolation? = nil,
        conformanceTraffic: CPDConformanceTraffic? = nil,
        flowIdentification: CPDFlowIdentification? = nil,
        overallTrafficGuarantees: CPDOverallTrafficGuarantees? = nil,
        routingAndForwarding: CPDRoutingAndForwarding? = nil,
        activationMeans: [CPDActivationMeans]? = nil,
        invocationMeans: CPDInvocationMeans? = nil,
        notifications: [CPDNotification]? = nil,
        extensions: CPDExtensions? = nil
    ) {
        self.customerNodes = customerNodes
        self.scope = scope
        self.qosGuarantees = qosGuarantees
        self.availability = availability
        self.capacity = capacity
        self.trafficIsolation = trafficIsolation
        self.conformanceTraffic = conformanceTraffic
        self.flowIdentification = flowIdentification
        self.overallTrafficGuarantees = overallTrafficGuarantees
        self.routingAndForwarding = routingAndForwarding
        self.activationMeans = activationMeans
        self.invocationMeans = invocationMeans
        self.notifications = notifications
        self.extensions = extensions
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        customerNodes = try object.elements("customer-nodes", at: path, maxCount: CPDLimits.maxEntries)
        scope = try object.elements("scope", at: path, maxCount: CPDLimits.maxEntries)
        qosGuarantees = try object.elementIfPresent("qos-guarantees", at: path)
        availability = try object.elementIfPresent("availability", at: path)
        capacity = try object.elementsIfPresent("capacity", at: path, maxCount: CPDLimits.maxEntries)
        trafficIsolation = try object.elementIfPresent("traffic-isolation", at: path)
        conformanceTraffic = try object.elementIfPresent("conformance-traffic", at: path)
        flowIdentification = try object.elementIfPresent("flow-identification", at: path)
        overallTrafficGuarantees = try object.elementIfPresent("overall-traffic-guarantees", at: path)
        routingAndForwarding = try object.elementIfPresent("routing-and-forwarding", at: path)
        activationMeans = try object.elementsIfPresent("activation-means", at: path, maxCount: CPDLimits.maxEntries)
        invocationMeans = try object.elementIfPresent("invocation-means", at: path)
        notifications = try object.elementsIfPresent("notifications", at: path, maxCount: CPDLimits.maxEntries)
        extensions = try object.elementIfPresent("extensions", at: path)
    }

    /// Keys in RBNF order (RFC 7297 Figure 6), absent clauses omitted.
    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("customer-nodes", customerNodes)
        object.put("scope", scope)
        object.put("qos-guarantees", qosGuarantees)
        object.put("availability", availability)
        object.put("capacity", capacity)
        object.put("traffic-isolation", trafficIsolation)
        object.put("conformance-traffic", conformanceTraffic)
        object.put("flow-identification", flowIdentification)
        object.put("overall-traffic-guarantees", overallTrafficGuarantees)
        object.put("routing-and-forwarding", routingAndForwarding)
        object.put("activation-means", activationMeans)
        object.put("invocation-means", invocationMeans)
        object.put("notifications", notifications)
        object.put("extensions", extensions)
    }
}
