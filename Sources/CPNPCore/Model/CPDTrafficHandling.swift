/// Flow Identification (RFC 7297 §3.9): classifiers and DSCP re-marking.
public struct CPDFlowIdentification: Sendable, Hashable, CPDJSONCodable {
    /// `classifiers`.
    public var classifiers: [CPDFlowClassifier]
    /// `remarking`: DSCP re-marking rules; absent = provider's local policy.
    public var remarking: [CPDRemarkingRule]?

    public init(classifiers: [CPDFlowClassifier], remarking: [CPDRemarkingRule]? = nil) {
        self.classifiers = classifiers
        self.remarking = remarking
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        classifiers = try object.elements("classifiers", at: path, maxCount: CPDLimits.maxEntries)
        remarking = try object.elementsIfPresent("remarking", at: path, maxCount: CPDLimits.maxEntries)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("classifiers", classifiers)
        object.put("remarking", remarking)
    }
}

/// One flow classifier (RFC 7297 §3.9; RFC 2475 multi-field classifier).
public struct CPDFlowClassifier: Sendable, Hashable, CPDJSONCodable {
    /// `applies-to`: `"all-links"` or a list of link identifiers.
    public var appliesTo: CPDLinkSelection
    /// `source-prefix` (CIDR).
    public var sourcePrefix: String?
    /// `source-port`.
    public var sourcePort: CPDPortSpec?
    /// `destination-prefix` (CIDR).
    public var destinationPrefix: String?
    /// `destination-port`.
    public var destinationPort: CPDPortSpec?
    /// `protocol` (IP protocol number 0…255).
    public var `protocol`: Int64?
    /// `dscp` (0…63).
    public var dscp: Int64?
    /// `tunnel-endpoint` (IP address of the tail-end tunnel endpoint).
    public var tunnelEndpoint: String?
    /// `elastic`.
    public var elastic: Bool?
    /// `qos-entry-ref`: index into `qos-guarantees.entries`.
    public var qosEntryRef: Int64?

    public init(
        appliesTo: CPDLinkSelection, sourcePrefix: String? = nil, sourcePort: CPDPortSpec? = nil,
        destinationPrefix: String? = nil, destinationPort: CPDPortSpec? = nil, protocol: Int64? = nil,
        dscp: Int64? = nil, tunnelEndpoint: String? = nil, elastic: Bool? = nil, qosEntryRef: Int64? = nil
    ) {
        self.appliesTo = appliesTo
        self.sourcePrefix = sourcePrefix
        self.sourcePort = sourcePort
        self.destinationPrefix = destinationPrefix
        self.destinationPort = destinationPort
        self.protocol = `protocol`
        self.dscp = dscp
        self.tunnelEndpoint = tunnelEndpoint
        self.elastic = elastic
        self.qosEntryRef = qosEntryRef
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        appliesTo = try object.decode("applies-to", at: path) { (member, memberPath) throws(CPNPDecodingError) in
            try CPDLinkSelection(json: member, at: memberPath())
        }
        sourcePrefix = try object.stringIfPresent("source-prefix", at: path)
        sourcePort = try object.decodeIfPresent("source-port", at: path) { (member, memberPath) throws(CPNPDecodingError) in
            try CPDPortSpec(json: member, at: memberPath())
        }
        destinationPrefix = try object.stringIfPresent("destination-prefix", at: path)
        destinationPort = try object.decodeIfPresent("destination-port", at: path) { (member, memberPath) throws(CPNPDecodingError) in
            try CPDPortSpec(json: member, at: memberPath())
        }
        `protocol` = try object.integerIfPresent("protocol", at: path)
        dscp = try object.integerIfPresent("dscp", at: path)
        tunnelEndpoint = try object.stringIfPresent("tunnel-endpoint", at: path)
        elastic = try object.boolIfPresent("elastic", at: path)
        qosEntryRef = try object.integerIfPresent("qos-entry-ref", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("applies-to", appliesTo.json)
        object.put("source-prefix", sourcePrefix)
        object.put("source-port", sourcePort?.json)
        object.put("destination-prefix", destinationPrefix)
        object.put("destination-port", destinationPort?.json)
        object.put("protocol", `protocol`)
        object.put("dscp", dscp)
        object.put("tunnel-endpoint", tunnelEndpoint)
        object.put("elastic", elastic)
        object.put("qos-entry-ref", qosEntryRef)
    }
}

/// A DSCP re-marking rule (RFC 7297 §3.9).
public struct CPDRemarkingRule: Sendable, Hashable, CPDJSONCodable {
    /// `at`.
    public var at: CPDRemarkingPoint
    /// `match-dscp` (0…63).
    public var matchDSCP: Int64
    /// `set-dscp` (0…63).
    public var setDSCP: Int64

    public init(at: CPDRemarkingPoint, matchDSCP: Int64, setDSCP: Int64) {
        self.at = at
        self.matchDSCP = matchDSCP
        self.setDSCP = setDSCP
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        at = try object.value("at", at: path)
        matchDSCP = try object.integer("match-dscp", at: path)
        setDSCP = try object.integer("set-dscp", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("at", at)
        object.put("match-dscp", matchDSCP)
        object.put("set-dscp", setDSCP)
    }
}

/// Overall Traffic Guarantees (RFC 7297 §3.7): qualitative only; for traffic without capacity /
/// conformance or re-classed out-of-profile traffic.
public struct CPDOverallTrafficGuarantees: Sendable, Hashable, CPDJSONCodable {
    /// `delay`.
    public var delay: CPDQualitativeLevel?
    /// `loss`.
    public var loss: CPDQualitativeLevel?
    /// `throughput`.
    public var throughput: CPDQualitativeLevel?

    public init(
        delay: CPDQualitativeLevel? = nil, loss: CPDQualitativeLevel? = nil,
        throughput: CPDQualitativeLevel? = nil
    ) {
        self.delay = delay
        self.loss = loss
        self.throughput = throughput
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        delay = try object.valueIfPresent("delay", at: path)
        loss = try object.valueIfPresent("loss", at: path)
        throughput = try object.valueIfPresent("throughput", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("delay", delay)
        object.put("loss", loss)
        object.put("throughput", throughput)
    }
}

/// Routing and Forwarding (RFC 7297 §3.10): outsourced routing actions and forwarding behaviour.
public struct CPDRoutingAndForwarding: Sendable, Hashable, CPDJSONCodable {
    /// `avoid`: nodes, networks or link types to avoid (e.g. `"satellite"`).
    public var avoid: [String]?
    /// `traverse-functions`: intermediate functions to traverse (e.g. firewall).
    public var traverseFunctions: [String]?
    /// `geo-restrictions`: ISO country / region codes.
    public var geoRestrictions: [String]?
    /// `backup-path-required`.
    public var backupPathRequired: Bool?
    /// `logical-topology` (MT-OSPF / M-ISIS topology name).
    public var logicalTopology: String?
    /// `forwarding-behavior` (PDB, e.g. `"EF-PDB"`; RFC 3086).
    public var forwardingBehavior: String?

    public init(
        avoid: [String]? = nil, traverseFunctions: [String]? = nil, geoRestrictions: [String]? = nil,
        backupPathRequired: Bool? = nil, logicalTopology: String? = nil, forwardingBehavior: String? = nil
    ) {
        self.avoid = avoid
        self.traverseFunctions = traverseFunctions
        self.geoRestrictions = geoRestrictions
        self.backupPathRequired = backupPathRequired
        self.logicalTopology = logicalTopology
        self.forwardingBehavior = forwardingBehavior
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        avoid = try object.stringsIfPresent("avoid", at: path)
        traverseFunctions = try object.stringsIfPresent("traverse-functions", at: path)
        geoRestrictions = try object.stringsIfPresent("geo-restrictions", at: path)
        backupPathRequired = try object.boolIfPresent("backup-path-required", at: path)
        logicalTopology = try object.stringIfPresent("logical-topology", at: path)
        forwardingBehavior = try object.stringIfPresent("forwarding-behavior", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("avoid", avoid)
        object.put("traverse-functions", traverseFunctions)
        object.put("geo-restrictions", geoRestrictions)
        object.put("backup-path-required", backupPathRequired)
        object.put("logical-topology", logicalTopology)
        object.put("forwarding-behavior", forwardingBehavior)
    }
}

/// One activation action (RFC 7297 §3.11): IGP instance, BGP session, PIM, CPNP ACTIVATE…
public struct CPDActivationMeans: Sendable, Hashable, CPDJSONCodable {
    /// `mechanism`.
    public var mechanism: CPDActivationMechanism
    /// `customer-node` it applies to; absent = all nodes.
    public var customerNode: String?
    /// `parameters`: mechanism-specific string parameters (e.g. `customer-as`); encoded with sorted keys.
    public var parameters: [String: String]?

    public init(mechanism: CPDActivationMechanism, customerNode: String? = nil, parameters: [String: String]? = nil) {
        self.mechanism = mechanism
        self.customerNode = customerNode
        self.parameters = parameters
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        mechanism = CPDActivationMechanism(rawValue: try object.string("mechanism", at: path))
        customerNode = try object.stringIfPresent("customer-node", at: path)
        parameters = try object.decodeIfPresent("parameters", at: path) { (member, memberPath) throws(CPNPDecodingError) in
            let parametersObject = try member.object(at: memberPath())
            guard parametersObject.count <= CPDLimits.maxListItems else {
                throw CPNPDecodingError(
                    .outOfRange, at: memberPath(), "object has \(parametersObject.count) members, at most \(CPDLimits.maxListItems) allowed")
            }
            var out: [String: String] = [:]
            for (name, value) in parametersObject {
                guard name.unicodeScalars.count <= CPDLimits.maxShortString else {
                    throw CPNPDecodingError(.stringTooLong, at: memberPath(), "parameter name longer than \(CPDLimits.maxShortString) characters")
                }
                out[name] = try value.string(at: memberPath().appending(name), maxLength: CPDLimits.maxText)
            }
            return out
        }
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("mechanism", mechanism.rawValue)
        object.put("customer-node", customerNode)
        object.put("parameters", parametersJSON)
    }

    var parametersJSON: JSONValue? {
        parameters.map { .object(JSONObject($0.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })) }
    }
}

/// Invocation Means (RFC 7297 §3.12): implicit (capacity-conditioned) or explicit (RSVP, IGMP…).
public struct CPDInvocationMeans: Sendable, Hashable, CPDJSONCodable {
    /// `type` (N).
    public var type: Negotiable<CPDInvocationType>
    /// `protocols`: e.g. `"RSVP"`, `"RSVP-TE"`, `"IGMP"`, `"MLD"`.
    public var protocols: [String]?

    public init(type: Negotiable<CPDInvocationType>, protocols: [String]? = nil) {
        self.type = type
        self.protocols = protocols
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        type = try object.negotiable("type", at: path)
        protocols = try object.stringsIfPresent("protocols", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("type", type)
        object.put("protocols", protocols)
    }
}

/// A notification procedure for critical events (RFC 7297 §3.13).
public struct CPDNotification: Sendable, Hashable, CPDJSONCodable {
    /// `events`.
    public var events: [String]
    /// `method`.
    public var method: CPDNotificationMethod
    /// `destination`.
    public var destination: String?
    /// `interval-seconds` (N integer, > 0).
    public var intervalSeconds: Negotiable<Int64>?
    /// `data-model`.
    public var dataModel: String?

    public init(
        events: [String], method: CPDNotificationMethod, destination: String? = nil,
        intervalSeconds: Negotiable<Int64>? = nil, dataModel: String? = nil
    ) {
        self.events = events
        self.method = method
        self.destination = destination
        self.intervalSeconds = intervalSeconds
        self.dataModel = dataModel
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        events = try object.strings("events", at: path)
        method = CPDNotificationMethod(rawValue: try object.string("method", at: path))
        destination = try object.stringIfPresent("destination", at: path, maxLength: CPDLimits.maxText)
        intervalSeconds = try object.negotiableIfPresent("interval-seconds", at: path)
        dataModel = try object.stringIfPresent("data-model", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("events", events)
        object.put("method", method.rawValue)
        object.put("destination", destination)
        object.put("interval-seconds", intervalSeconds)
        object.put("data-model", dataModel)
    }
}
