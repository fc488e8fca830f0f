/// A Customer Node (e.g. a CE) to attach (RFC 7297 §3.1; RBNF `IDENTIFIER LINK_IDENTIFIER LOCALIZATION`).
public struct CPDCustomerNode: Sendable, Hashable, CPDJSONCodable {
    /// `identifier`: unique within the CPD, referenced by other clauses.
    public var identifier: String
    /// `link-identifiers`: border links or provider nodes (multi-homing allowed); `[]` in a request
    /// means the provider chooses.
    public var linkIdentifiers: [String]
    /// `localization`.
    public var localization: CPDLocalization

    public init(identifier: String, linkIdentifiers: [String] = [], localization: CPDLocalization) {
        self.identifier = identifier
        self.linkIdentifiers = linkIdentifiers
        self.localization = localization
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let o = try json.object(at: path)
        identifier = try o.string("identifier", at: path)
        linkIdentifiers = try o.strings("link-identifiers", at: path)
        localization = try o.element("localization", at: path)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("identifier", identifier)
        o.put("link-identifiers", linkIdentifiers)
        o.put("localization", localization)
        return .object(o)
    }
}

/// Where a customer node is (RFC 7297 §3.1: site identifier, geolocation). At least one member.
public struct CPDLocalization: Sendable, Hashable, CPDJSONCodable {
    /// `site-id` (managed VPN Site_identifier).
    public var siteID: String?
    /// `address`: postal address, free text.
    public var address: String?
    /// `latitude` in degrees (-90…90).
    public var latitude: CPNPDecimal?
    /// `longitude` in degrees (-180…180).
    public var longitude: CPNPDecimal?
    /// `country`: ISO 3166-1 alpha-2 code.
    public var country: String?

    public init(siteID: String? = nil, address: String? = nil, latitude: CPNPDecimal? = nil,
                longitude: CPNPDecimal? = nil, country: String? = nil) {
        self.siteID = siteID
        self.address = address
        self.latitude = latitude
        self.longitude = longitude
        self.country = country
    }

    /// True when no member is given (invalid, see validation).
    public var isEmpty: Bool {
        siteID == nil && address == nil && latitude == nil && longitude == nil && country == nil
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let o = try json.object(at: path)
        siteID = try o.stringIfPresent("site-id", at: path)
        address = try o.stringIfPresent("address", at: path, maxLength: CPDLimits.maxText)
        latitude = try o.decimalIfPresent("latitude", at: path)
        longitude = try o.decimalIfPresent("longitude", at: path)
        country = try o.stringIfPresent("country", at: path)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("site-id", siteID)
        o.put("address", address)
        o.put("latitude", latitude)
        o.put("longitude", longitude)
        o.put("country", country)
        return .object(o)
    }
}

/// One unidirectional reachability statement for a customer node (RFC 7297 §3.2).
public struct CPDScopeEntry: Sendable, Hashable, CPDJSONCodable {
    /// `customer-node`: an identifier from `customer-nodes`.
    public var customerNode: String
    /// `direction`.
    public var direction: CPDDirection
    /// `reachability` (N).
    public var reachability: Negotiable<CPDReachability>
    /// `source-prefixes` (CIDR): the site (outgoing) or the allowed sources (incoming).
    public var sourcePrefixes: [String]?
    /// `destination-prefixes` (CIDR, unicast and/or multicast); restricted reachability only.
    public var destinationPrefixes: [String]?
    /// `multicast-sources` (IP addresses, SSM).
    public var multicastSources: [String]?
    /// `model`: pipe (1:1), hose (1:N), unspecified hose (1:any).
    public var model: CPDScopeModel?
    /// `ingress-points`: node identifiers or prefixes.
    public var ingressPoints: [String]?
    /// `egress-points`: node identifiers or prefixes.
    public var egressPoints: [String]?

    public init(customerNode: String, direction: CPDDirection, reachability: Negotiable<CPDReachability>,
                sourcePrefixes: [String]? = nil, destinationPrefixes: [String]? = nil,
                multicastSources: [String]? = nil, model: CPDScopeModel? = nil,
                ingressPoints: [String]? = nil, egressPoints: [String]? = nil) {
        self.customerNode = customerNode
        self.direction = direction
        self.reachability = reachability
        self.sourcePrefixes = sourcePrefixes
        self.destinationPrefixes = destinationPrefixes
        self.multicastSources = multicastSources
        self.model = model
        self.ingressPoints = ingressPoints
        self.egressPoints = egressPoints
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let o = try json.object(at: path)
        customerNode = try o.string("customer-node", at: path)
        direction = try o.value("direction", at: path)
        reachability = try o.negotiable("reachability", at: path)
        sourcePrefixes = try o.stringsIfPresent("source-prefixes", at: path)
        destinationPrefixes = try o.stringsIfPresent("destination-prefixes", at: path)
        multicastSources = try o.stringsIfPresent("multicast-sources", at: path)
        model = try o.valueIfPresent("model", at: path)
        ingressPoints = try o.stringsIfPresent("ingress-points", at: path)
        egressPoints = try o.stringsIfPresent("egress-points", at: path)
    }

    public var json: JSONValue {
        var o = JSONObject()
        o.put("customer-node", customerNode)
        o.put("direction", direction)
        o.put("reachability", reachability)
        o.put("source-prefixes", sourcePrefixes)
        o.put("destination-prefixes", destinationPrefixes)
        o.put("multicast-sources", multicastSources)
        o.put("model", model)
        o.put("ingress-points", ingressPoints)
        o.put("egress-points", egressPoints)
        return .object(o)
    }
}
