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
        let object = try json.object(at: path)
        identifier = try object.string("identifier", at: path)
        linkIdentifiers = try object.strings("link-identifiers", at: path)
        localization = try object.element("localization", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("identifier", identifier)
        object.put("link-identifiers", linkIdentifiers)
        object.put("localization", localization)
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

    public init(
        siteID: String? = nil, address: String? = nil, latitude: CPNPDecimal? = nil,
        longitude: CPNPDecimal? = nil, country: String? = nil
    ) {
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
        let object = try json.object(at: path)
        siteID = try object.stringIfPresent("site-id", at: path)
        address = try object.stringIfPresent("address", at: path, maxLength: CPDLimits.maxText)
        latitude = try object.decimalIfPresent("latitude", at: path)
        longitude = try object.decimalIfPresent("longitude", at: path)
        country = try object.stringIfPresent("country", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("site-id", siteID)
        object.put("address", address)
        object.put("latitude", latitude)
        object.put("longitude", longitude)
        object.put("country", country)
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

    public init(
        customerNode: String, direction: CPDDirection, reachability: Negotiable<CPDReachability>,
        sourcePrefixes: [String]? = nil, destinationPrefixes: [String]? = nil,
        multicastSources: [String]? = nil, model: CPDScopeModel? = nil,
        ingressPoints: [String]? = nil, egressPoints: [String]? = nil
    ) {
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
        let object = try json.object(at: path)
        customerNode = try object.string("customer-node", at: path)
        direction = try object.value("direction", at: path)
        reachability = try object.negotiable("reachability", at: path)
        sourcePrefixes = try object.stringsIfPresent("source-prefixes", at: path)
        destinationPrefixes = try object.stringsIfPresent("destination-prefixes", at: path)
        multicastSources = try object.stringsIfPresent("multicast-sources", at: path)
        model = try object.valueIfPresent("model", at: path)
        ingressPoints = try object.stringsIfPresent("ingress-points", at: path)
        egressPoints = try object.stringsIfPresent("egress-points", at: path)
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("customer-node", customerNode)
        object.put("direction", direction)
        object.put("reachability", reachability)
        object.put("source-prefixes", sourcePrefixes)
        object.put("destination-prefixes", destinationPrefixes)
        object.put("multicast-sources", multicastSources)
        object.put("model", model)
        object.put("ingress-points", ingressPoints)
        object.put("egress-points", egressPoints)
    }
}
