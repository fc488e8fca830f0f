/// A closed set of string values in a CPD (docs/protocol.md §2.7). Encoded as the raw string;
/// ordered by raw value only so that it can be a ``NegotiableValue`` (ranges are not allowed).
public protocol CPDEnumeration: NegotiableValue, RawRepresentable<String>, CaseIterable {}

extension CPDEnumeration {
    public static var admitsRange: Bool { false }

    public init(negotiableJSON json: JSONValue, at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) {
        let text = try json.string(at: path(), maxLength: CPDLimits.maxShortString)
        guard let value = Self(rawValue: text) else {
            let allowed = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw CPNPDecodingError(.invalidValue, at: path(), "expected one of \(allowed)")
        }
        self = value
    }

    public var negotiableJSON: JSONValue { .string(rawValue) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Direction of a scope entry (RFC 7297 §3.2): `outgoing` = traffic leaving the customer node.
public enum CPDDirection: String, CPDEnumeration {
    case outgoing
    case incoming
}

/// Global or restricted reachability (RFC 7297 §3.2).
public enum CPDReachability: String, CPDEnumeration {
    case global
    case restricted
}

/// Scope model (RFC 7297 §3.2): "1:1" pipe, "1:N" hose, "1:any" unspecified hose.
public enum CPDScopeModel: String, CPDEnumeration {
    case pipe
    case hose
    case unspecifiedHose = "unspecified-hose"
}

/// Quantitative or qualitative QoS guarantees, never both in one CPP (RFC 7297 §3.3).
public enum CPDQoSKind: String, CPDEnumeration {
    case quantitative
    case qualitative
}

/// How a quantitative QoS value is expressed (RFC 7297 §3.3).
public enum CPDQoSStatistic: String, CPDEnumeration {
    case average
    case maximum
    case percentile
}

/// How availability is expressed (RFC 7297 §3.4).
public enum CPDAvailabilityStatistic: String, CPDEnumeration {
    case average
    case maximum
}

/// Traffic conformance enforcement (RFC 7297 §3.6).
public enum CPDEnforcement: String, CPDEnumeration {
    case policing
    case shaping
}

/// Treatment of out-of-profile traffic (RFC 7297 §3.6).
public enum CPDOutOfProfileAction: String, CPDEnumeration {
    case discard
    case reclassify
}

/// A qualitative level for overall traffic guarantees (RFC 7297 §3.7).
public enum CPDQualitativeLevel: String, CPDEnumeration {
    case low
    case medium
    case high
}

/// Where DSCP re-marking applies (RFC 7297 §3.9).
public enum CPDRemarkingPoint: String, CPDEnumeration {
    case ingress
    case egress
}

/// Implicit or explicit invocation (RFC 7297 §3.12).
public enum CPDInvocationType: String, CPDEnumeration {
    case implicit
    case explicit
}

/// An activation mechanism (RFC 7297 §3.11; RFC 8921 ACTIVATE). Open set: unknown names are kept.
public struct CPDActivationMechanism: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }

    public static let `static`: Self = "static"
    public static let igp: Self = "igp"
    public static let bgp: Self = "bgp"
    public static let mpBGP: Self = "mp-bgp"
    public static let pim: Self = "pim"
    /// Explicit activation by the CPNP ACTIVATE message (RFC 8921 §9.2.11).
    public static let cpnpActivate: Self = "cpnp-activate"
}

/// A notification channel (RFC 7297 §3.13). Open set: unknown names are kept.
public struct CPDNotificationMethod: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }

    public static let snmp: Self = "snmp"
    public static let syslog: Self = "syslog"
    public static let netconf: Self = "netconf"
    public static let cpnp: Self = "cpnp"
    public static let phone: Self = "phone"
}

/// A transport port or port range of a flow classifier (RFC 7297 §3.9): `443` or `"1024-65535"`.
public enum CPDPortSpec: Sendable, Hashable {
    case single(Int64)
    case range(low: Int64, high: Int64)

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        switch json {
        case .number:
            self = .single(try json.integer(at: path, in: Int64.min...Int64.max))
        case .string(let text):
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let low = Self.parseDigits(parts[0]), let high = Self.parseDigits(parts[1]) else {
                throw CPNPDecodingError(.invalidValue, at: path, "expected a port number or a \"low-high\" port range")
            }
            self = .range(low: low, high: high)
        default:
            throw JSONValue.wrongType("a port number or a \"low-high\" string", json, path)
        }
    }

    private static func parseDigits(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.count <= 9, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text)
    }

    public var json: JSONValue {
        switch self {
        case .single(let port): .number(CPNPDecimal(port))
        case .range(let low, let high): .string("\(low)-\(high)")
        }
    }

    /// Lowest and highest port.
    public var bounds: (low: Int64, high: Int64) {
        switch self {
        case .single(let port): (port, port)
        case .range(let low, let high): (low, high)
        }
    }
}

/// Which border links a classifier applies to (RFC 7297 §3.9: per link, group of links or all).
public enum CPDLinkSelection: Sendable, Hashable {
    /// `"all-links"`.
    case allLinks
    /// A list of link identifiers.
    case links([String])

    public init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError) {
        switch json {
        case .string("all-links"):
            self = .allLinks
        case .array:
            self = .links(try json.strings(at: path, maxLength: CPDLimits.maxShortString))
        case .string:
            throw CPNPDecodingError(.invalidValue, at: path, "expected \"all-links\" or an array of link identifiers")
        default:
            throw JSONValue.wrongType("\"all-links\" or an array of link identifiers", json, path)
        }
    }

    public var json: JSONValue {
        switch self {
        case .allLinks: .string("all-links")
        case .links(let links): .array(links.map(JSONValue.string))
        }
    }
}
