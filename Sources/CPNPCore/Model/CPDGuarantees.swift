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
        let o = try json.object(at: path)
        kind = try o.value("kind", at: path)
        entries = try o.elements("entries", at: path, maxCount: CPDLimits.maxEntries)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("kind", kind)
        o.put("entries", entries)
        return .object(o)
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

    public init(from: String, to: String, statistic: CPDQoSStatistic? = nil, percentile: CPNPDecimal? = nil,
                measurementIntervalSeconds: Int64? = nil, oneWayDelayMs: Negotiable<CPNPDecimal>? = nil,
                delayVariationMs: Negotiable<CPNPDecimal>? = nil, lossPercent: Negotiable<CPNPDecimal>? = nil,
                throughputMbps: Negotiable<CPNPDecimal>? = nil, metaQoSClass: String? = nil) {
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
        let o = try json.object(at: path)
        from = try o.string("from", at: path)
        to = try o.string("to", at: path)
        statistic = try o.valueIfPresent("statistic", at: path)
        percentile = try o.decimalIfPresent("percentile", at: path)
        measurementIntervalSeconds = try o.integerIfPresent("measurement-interval-seconds", at: path)
        oneWayDelayMs = try o.negotiableIfPresent("one-way-delay-ms", at: path)
        delayVariationMs = try o.negotiableIfPresent("delay-variation-ms", at: path)
        lossPercent = try o.negotiableIfPresent("loss-percent", at: path)
        throughputMbps = try o.negotiableIfPresent("throughput-mbps", at: path)
        metaQoSClass = try o.stringIfPresent("meta-qos-class", at: path)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("from", from)
        o.put("to", to)
        o.put("statistic", statistic)
        o.put("percentile", percentile)
        o.put("measurement-interval-seconds", measurementIntervalSeconds)
        o.put("one-way-delay-ms", oneWayDelayMs)
        o.put("delay-variation-ms", delayVariationMs)
        o.put("loss-percent", lossPercent)
        o.put("throughput-mbps", throughputMbps)
        o.put("meta-qos-class", metaQoSClass)
        return .object(o)
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

    public init(availabilityPercent: Negotiable<CPNPDecimal>, statistic: CPDAvailabilityStatistic,
                measurementPeriod: String? = nil) {
        self.availabilityPercent = availabilityPercent
        self.statistic = statistic
        self.measurementPeriod = measurementPeriod
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let o = try json.object(at: path)
        availabilityPercent = try o.negotiable("availability-percent", at: path)
        statistic = try o.value("statistic", at: path)
        measurementPeriod = try o.stringIfPresent("measurement-period", at: path)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("availability-percent", availabilityPercent)
        o.put("statistic", statistic)
        o.put("measurement-period", measurementPeriod)
        return .object(o)
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

    public init(customerNode: String, linkIdentifier: String? = nil,
                incomingBandwidthMbps: Negotiable<CPNPDecimal>? = nil,
                outgoingBandwidthMbps: Negotiable<CPNPDecimal>? = nil) {
        self.customerNode = customerNode
        self.linkIdentifier = linkIdentifier
        self.incomingBandwidthMbps = incomingBandwidthMbps
        self.outgoingBandwidthMbps = outgoingBandwidthMbps
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let o = try json.object(at: path)
        customerNode = try o.string("customer-node", at: path)
        linkIdentifier = try o.stringIfPresent("link-identifier", at: path)
        incomingBandwidthMbps = try o.negotiableIfPresent("incoming-bandwidth-mbps", at: path)
        outgoingBandwidthMbps = try o.negotiableIfPresent("outgoing-bandwidth-mbps", at: path)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("customer-node", customerNode)
        o.put("link-identifier", linkIdentifier)
        o.put("incoming-bandwidth-mbps", incomingBandwidthMbps)
        o.put("outgoing-bandwidth-mbps", outgoingBandwidthMbps)
        return .object(o)
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
        let o = try json.object(at: path)
        isolated = try o.decode("isolated", at: path) { (v, p) throws(CPNPDecodingError) in try v.bool(at: p) }
        encryptionRequired = try o.boolIfPresent("encryption-required", at: path)
        requirements = try o.stringsIfPresent("requirements", at: path, maxLength: CPDLimits.maxText)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("isolated", isolated)
        o.put("encryption-required", encryptionRequired)
        o.put("requirements", requirements)
        return .object(o)
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

    public init(enforcement: CPDEnforcement, outOfProfileAction: CPDOutOfProfileAction,
                reclassifyTo: String? = nil, mtuBytes: Negotiable<Int64>? = nil) {
        self.enforcement = enforcement
        self.outOfProfileAction = outOfProfileAction
        self.reclassifyTo = reclassifyTo
        self.mtuBytes = mtuBytes
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let o = try json.object(at: path)
        enforcement = try o.value("enforcement", at: path)
        outOfProfileAction = try o.value("out-of-profile-action", at: path)
        reclassifyTo = try o.stringIfPresent("reclassify-to", at: path)
        mtuBytes = try o.negotiableIfPresent("mtu-bytes", at: path)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("enforcement", enforcement)
        o.put("out-of-profile-action", outOfProfileAction)
        o.put("reclassify-to", reclassifyTo)
        o.put("mtu-bytes", mtuBytes)
        return .object(o)
    }
}
