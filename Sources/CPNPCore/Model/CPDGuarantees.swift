/// QoS Guarantees (RFC 7297 §3.3): quantitative or qualitative, never both in one CPP.
public struct CPDQoSGuarantees: Sendable, Hashable, CPDJSONCodable {
    /// `kind`.
    public var kind: CPDQoSKind
    /// `entries`: one direction each (from → to).
    public var entries: [CPDQoSEntry]

    public init(kind: CPDQoSKind, entries: [CPDQoSEntry]) {
        self.kind = kind
        self.entries = entries
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        kind = try object.value("kind", at: path)
        entries = try object.elements("entries", at: path, maxCount: CPDLimits.maxEntries)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("kind", kind)
        object.put("entries", entries)
    }
}

/// One directional QoS guarantee between (sets of) customer nodes (RFC 7297 §3.3).
/// Units: milliseconds and percent, as the key names say (docs/protocol.md §2.7).
public struct CPDQoSEntry: Sendable, Hashable, CPDJSONCodable {
    /// The wildcard node `"*"`: any node of the CPD, or provider nodes.
    public static let anyNode = "*"

    /// `from`: a customer node identifier or `"*"`.
    public var from: String
    /// `to`: a customer node identifier or `"*"`.
    public var to: String
    /// `statistic` (quantitative only).
    public var statistic: CPDQoSStatistic?
    /// `percentile` in (0,100); present iff `statistic` is `percentile`.
    public var percentile: CPNPDecimal?
    /// `measurement-interval-seconds` (> 0).
    public var measurementIntervalSeconds: Int64?
    /// `one-way-delay-ms` (N, ≥ 0; RFC 2679).
    public var oneWayDelayMs: Negotiable<CPNPDecimal>?
    /// `delay-variation-ms` (N, ≥ 0; RFC 3393).
    public var delayVariationMs: Negotiable<CPNPDecimal>?
    /// `loss-percent` (N, 0…100; RFC 2680).
    public var lossPercent: Negotiable<CPNPDecimal>?
    /// `throughput-mbps` (N, ≥ 0).
    public var throughputMbps: Negotiable<CPNPDecimal>?
    /// `meta-qos-class` (qualitative only; RFC 5160).
    public var metaQoSClass: String?

    public init(
        from: String, to: String, statistic: CPDQoSStatistic? = nil, percentile: CPNPDecimal? = nil,
        measurementIntervalSeconds: Int64? = nil, oneWayDelayMs: Negotiable<CPNPDecimal>? = nil,
        delayVariationMs: Negotiable<CPNPDecimal>? = nil, lossPercent: Negotiable<CPNPDecimal>? = nil,
        throughputMbps: Negotiable<CPNPDecimal>? = nil, metaQoSClass: String? = nil
    ) {
        self.from = from
        self.to = to
        self.statistic = statistic
        self.percentile = percentile
        self.measurementIntervalSeconds = measurementIntervalSeconds
        self.oneWayDelayMs = oneWayDelayMs
        self.delayVariationMs = delayVariationMs
        self.lossPercent = lossPercent
        self.throughputMbps = throughputMbps
        self.metaQoSClass = metaQoSClass
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        from = try object.string("from", at: path)
        to = try object.string("to", at: path)
        statistic = try object.valueIfPresent("statistic", at: path)
        percentile = try object.decimalIfPresent("percentile", at: path)
        measurementIntervalSeconds = try object.integerIfPresent("measurement-interval-seconds", at: path)
        oneWayDelayMs = try object.negotiableIfPresent("one-way-delay-ms", at: path)
        delayVariationMs = try object.negotiableIfPresent("delay-variation-ms", at: path)
        lossPercent = try object.negotiableIfPresent("loss-percent", at: path)
        throughputMbps = try object.negotiableIfPresent("throughput-mbps", at: path)
        metaQoSClass = try object.stringIfPresent("meta-qos-class", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("from", from)
        object.put("to", to)
        object.put("statistic", statistic)
        object.put("percentile", percentile)
        object.put("measurement-interval-seconds", measurementIntervalSeconds)
        object.put("one-way-delay-ms", oneWayDelayMs)
        object.put("delay-variation-ms", delayVariationMs)
        object.put("loss-percent", lossPercent)
        object.put("throughput-mbps", throughputMbps)
        object.put("meta-qos-class", metaQoSClass)
    }

    /// The quantitative metrics with their keys, in spec order (absent ones omitted).
    var metrics: [(key: String, value: Negotiable<CPNPDecimal>)] {
        var out: [(key: String, value: Negotiable<CPNPDecimal>)] = []
        if let oneWayDelayMs { out.append(("one-way-delay-ms", oneWayDelayMs)) }
        if let delayVariationMs { out.append(("delay-variation-ms", delayVariationMs)) }
        if let lossPercent { out.append(("loss-percent", lossPercent)) }
        if let throughputMbps { out.append(("throughput-mbps", throughputMbps)) }
        return out
    }
}

/// Availability (RFC 7297 §3.4): percentage of time the agreed guarantees apply.
/// A higher offered value is better; comparison still uses the set rule of docs/protocol.md §4.3.
public struct CPDAvailability: Sendable, Hashable, CPDJSONCodable {
    /// `availability-percent` (N, 0…100).
    public var availabilityPercent: Negotiable<CPNPDecimal>
    /// `statistic`.
    public var statistic: CPDAvailabilityStatistic
    /// `measurement-period`: `"month"`, `"year"` or another period name.
    public var measurementPeriod: String?

    public init(
        availabilityPercent: Negotiable<CPNPDecimal>, statistic: CPDAvailabilityStatistic,
        measurementPeriod: String? = nil
    ) {
        self.availabilityPercent = availabilityPercent
        self.statistic = statistic
        self.measurementPeriod = measurementPeriod
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        availabilityPercent = try object.negotiable("availability-percent", at: path)
        statistic = try object.value("statistic", at: path)
        measurementPeriod = try object.stringIfPresent("measurement-period", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("availability-percent", availabilityPercent)
        object.put("statistic", statistic)
        object.put("measurement-period", measurementPeriod)
    }
}

/// Capacity for one customer node, optionally per border link (RFC 7297 §3.5). Mbit/s;
/// incoming = towards the customer node.
public struct CPDCapacityEntry: Sendable, Hashable, CPDJSONCodable {
    /// `customer-node`.
    public var customerNode: String
    /// `link-identifier`.
    public var linkIdentifier: String?
    /// `incoming-bandwidth-mbps` (N, ≥ 0).
    public var incomingBandwidthMbps: Negotiable<CPNPDecimal>?
    /// `outgoing-bandwidth-mbps` (N, ≥ 0).
    public var outgoingBandwidthMbps: Negotiable<CPNPDecimal>?

    public init(
        customerNode: String, linkIdentifier: String? = nil,
        incomingBandwidthMbps: Negotiable<CPNPDecimal>? = nil,
        outgoingBandwidthMbps: Negotiable<CPNPDecimal>? = nil
    ) {
        self.customerNode = customerNode
        self.linkIdentifier = linkIdentifier
        self.incomingBandwidthMbps = incomingBandwidthMbps
        self.outgoingBandwidthMbps = outgoingBandwidthMbps
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        customerNode = try object.string("customer-node", at: path)
        linkIdentifier = try object.stringIfPresent("link-identifier", at: path)
        incomingBandwidthMbps = try object.negotiableIfPresent("incoming-bandwidth-mbps", at: path)
        outgoingBandwidthMbps = try object.negotiableIfPresent("outgoing-bandwidth-mbps", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("customer-node", customerNode)
        object.put("link-identifier", linkIdentifier)
        object.put("incoming-bandwidth-mbps", incomingBandwidthMbps)
        object.put("outgoing-bandwidth-mbps", outgoingBandwidthMbps)
    }
}

/// Traffic Isolation (RFC 7297 §3.8); realisation (IPsec, BGP/MPLS VPN) is the provider's choice.
public struct CPDTrafficIsolation: Sendable, Hashable, CPDJSONCodable {
    /// `isolated`.
    public var isolated: Bool
    /// `encryption-required`.
    public var encryptionRequired: Bool?
    /// `requirements`: additional security / privacy requirements, free text.
    public var requirements: [String]?

    public init(isolated: Bool, encryptionRequired: Bool? = nil, requirements: [String]? = nil) {
        self.isolated = isolated
        self.encryptionRequired = encryptionRequired
        self.requirements = requirements
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        isolated = try object.decode("isolated", at: path) { (member, memberPath) throws(CPNPDecodingError) in try member.bool(at: memberPath()) }
        encryptionRequired = try object.boolIfPresent("encryption-required", at: path)
        requirements = try object.stringsIfPresent("requirements", at: path, maxLength: CPDLimits.maxText)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("isolated", isolated)
        object.put("encryption-required", encryptionRequired)
        object.put("requirements", requirements)
    }
}

/// Conformance Traffic (RFC 7297 §3.6): how in/out-of-profile is decided and what happens to
/// out-of-profile traffic. Required iff capacity is present.
public struct CPDConformanceTraffic: Sendable, Hashable, CPDJSONCodable {
    /// `enforcement`.
    public var enforcement: CPDEnforcement
    /// `out-of-profile-action`.
    public var outOfProfileAction: CPDOutOfProfileAction
    /// `reclassify-to` (e.g. `"LE"`, RFC 3662); only with `reclassify`.
    public var reclassifyTo: String?
    /// `mtu-bytes` (N integer).
    public var mtuBytes: Negotiable<Int64>?

    public init(
        enforcement: CPDEnforcement, outOfProfileAction: CPDOutOfProfileAction,
        reclassifyTo: String? = nil, mtuBytes: Negotiable<Int64>? = nil
    ) {
        self.enforcement = enforcement
        self.outOfProfileAction = outOfProfileAction
        self.reclassifyTo = reclassifyTo
        self.mtuBytes = mtuBytes
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        enforcement = try object.value("enforcement", at: path)
        outOfProfileAction = try object.value("out-of-profile-action", at: path)
        reclassifyTo = try object.stringIfPresent("reclassify-to", at: path)
        mtuBytes = try object.negotiableIfPresent("mtu-bytes", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("enforcement", enforcement)
        object.put("out-of-profile-action", outOfProfileAction)
        object.put("reclassify-to", reclassifyTo)
        object.put("mtu-bytes", mtuBytes)
    }
}
