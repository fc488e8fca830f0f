/// Optional information elements of a CPP (RFC 7297 §4 `Optional-Information-Element`;
/// RFC 8921 §9.1.10; docs/protocol.md §2.7). Unknown keys are preserved in ``additional``
/// (forward compatibility) and re-encoded after the known ones.
public struct CPDExtensions: Sendable, Hashable, CPDJSONCodable {
    /// Keys this type knows, in encoding order.
    public static let knownKeys = [
        "customer-description", "provider-description", "activation-schedule",
        "service-assurance-metrics",
    ]

    /// `customer-description`.
    public var customerDescription: CPDPartyDescription?
    /// `provider-description`.
    public var providerDescription: CPDPartyDescription?
    /// `activation-schedule`: an RFC 3339 date-time (re-encoded in UTC).
    public var activationSchedule: CPNPTimestamp?
    /// `service-assurance-metrics`.
    public var serviceAssuranceMetrics: [String]?
    /// Members with unknown keys, kept as received.
    public var additional: JSONObject

    public init(
        customerDescription: CPDPartyDescription? = nil, providerDescription: CPDPartyDescription? = nil,
        activationSchedule: CPNPTimestamp? = nil, serviceAssuranceMetrics: [String]? = nil,
        additional: JSONObject = JSONObject()
    ) {
        self.customerDescription = customerDescription
        self.providerDescription = providerDescription
        self.activationSchedule = activationSchedule
        self.serviceAssuranceMetrics = serviceAssuranceMetrics
        self.additional = additional
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        customerDescription = try object.elementIfPresent("customer-description", at: path)
        providerDescription = try object.elementIfPresent("provider-description", at: path)
        activationSchedule = try object.decodeIfPresent("activation-schedule", at: path) { (member, memberPath) throws(CPNPDecodingError) in
            guard let timestamp = CPNPTimestamp(rfc3339: try member.string(at: memberPath(), maxLength: 64)) else {
                throw CPNPDecodingError(.invalidValue, at: memberPath(), "expected an RFC 3339 date-time")
            }
            return timestamp
        }
        serviceAssuranceMetrics = try object.stringsIfPresent("service-assurance-metrics", at: path)
        var extra = JSONObject()
        for (key, value) in object where !Self.knownKeys.contains(key) {
            extra[key] = value
        }
        additional = extra
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("customer-description", customerDescription)
        object.put("provider-description", providerDescription)
        object.put("activation-schedule", activationSchedule?.rfc3339)
        object.put("service-assurance-metrics", serviceAssuranceMetrics)
        for (key, value) in additional where !Self.knownKeys.contains(key) {
            object.put(key, value)
        }
    }
}

/// Customer or Provider Description (RFC 8921 §9.1.10: every member optional).
/// `as-number` (4-octet, RFC 6793) is meaningful for the provider.
public struct CPDPartyDescription: Sendable, Hashable, CPDJSONCodable {
    /// `name`.
    public var name: String?
    /// `email`.
    public var email: String?
    /// `postal-address`.
    public var postalAddress: String?
    /// `telephone-numbers`.
    public var telephoneNumbers: [String]?
    /// `as-number` (0…4294967295).
    public var asNumber: UInt32?

    public init(
        name: String? = nil, email: String? = nil, postalAddress: String? = nil,
        telephoneNumbers: [String]? = nil, asNumber: UInt32? = nil
    ) {
        self.name = name
        self.email = email
        self.postalAddress = postalAddress
        self.telephoneNumbers = telephoneNumbers
        self.asNumber = asNumber
    }

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        let object = try json.object(at: path)
        name = try object.stringIfPresent("name", at: path)
        email = try object.stringIfPresent("email", at: path)
        postalAddress = try object.stringIfPresent("postal-address", at: path, maxLength: CPDLimits.maxText)
        telephoneNumbers = try object.stringsIfPresent("telephone-numbers", at: path)
        asNumber = try object.integerIfPresent("as-number", at: path, in: 0...Int64(UInt32.max)).map { UInt32($0) }
    }

    public var json: JSONValue { objectJSON }

    func members(into object: inout some CPDJSONMembers) {
        object.put("name", name)
        object.put("email", email)
        object.put("postal-address", postalAddress)
        object.put("telephone-numbers", telephoneNumbers)
        object.put("as-number", asNumber.map { Int64($0) })
    }
}
