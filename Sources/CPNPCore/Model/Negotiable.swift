/// A value type that may appear in a negotiable (**N**) CPD field (docs/protocol.md §4.2).
///
/// Numbers (``CPNPDecimal``, `Int64`) admit ranges; enumerations and strings only admit
/// fixed values, `"any"` and one-of sets.
public protocol NegotiableValue: Sendable, Hashable, Comparable {
    /// Whether `{"min":…,"max":…}` is meaningful for this type (true for numbers only).
    static var admitsRange: Bool { get }
    /// Decodes one bare value (never `"any"`, which ``Negotiable`` handles); `path` is built only for an error.
    init(negotiableJSON json: JSONValue, at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError)
    /// The bare JSON form of the value.
    var negotiableJSON: JSONValue { get }
}

extension CPNPDecimal: NegotiableValue {
    public static var admitsRange: Bool { true }
    public init(negotiableJSON json: JSONValue, at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) {
        self = try json.decimal(at: path())
    }
    public var negotiableJSON: JSONValue { .number(self) }
}

extension Int64: NegotiableValue {
    public static var admitsRange: Bool { true }
    public init(negotiableJSON json: JSONValue, at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) {
        self = try json.integer(at: path(), in: Int64.min...Int64.max)
    }
    public var negotiableJSON: JSONValue { .number(CPNPDecimal(self)) }
}

extension String: NegotiableValue {
    public static var admitsRange: Bool { false }
    public init(negotiableJSON json: JSONValue, at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) {
        self = try json.string(at: path(), maxLength: CPDLimits.maxShortString)
    }
    public var negotiableJSON: JSONValue { .string(self) }
}

/// A negotiable CPD field: strictly or loosely defined value (RFC 8921 §2, §8.7; docs/protocol.md §4.2).
///
/// JSON forms: bare value (fixed), `{"min":x,"max":y}` (closed range, one bound may be omitted),
/// `"any"` (no constraint), `{"one-of":[…]}` (a non-empty set).
public enum Negotiable<Value: NegotiableValue>: Sendable, Hashable {
    /// Exactly this value.
    case fixed(Value)
    /// Closed interval; a missing bound is unbounded (but not both).
    case range(min: Value?, max: Value?)
    /// No constraint: the offerer chooses.
    case any
    /// Any of the listed values (non-empty).
    case oneOf([Value])

    /// True for `.fixed` (RFC 8921 §8.7 "concrete" values).
    public var isFixed: Bool {
        if case .fixed = self { return true }
        return false
    }

    /// The fixed value, if any.
    public var fixedValue: Value? {
        if case .fixed(let fixed) = self { return fixed }
        return nil
    }

    /// A value a provider would naturally pick: fixed → the value, range → max if present else min,
    /// one-of → the first, `"any"` → nil (the offerer must choose).
    public var preferredValue: Value? {
        switch self {
        case .fixed(let fixed): fixed
        case .range(let lower, let upper): upper ?? lower
        case .oneOf(let values): values.first
        case .any: nil
        }
    }

    /// Whether `value` is admitted (belongs to S(self), docs/protocol.md §4.3).
    public func admits(_ value: Value) -> Bool {
        switch self {
        case .fixed(let fixed): return fixed == value
        case .any: return true
        case .oneOf(let values): return values.contains(value)
        case .range(let lower, let upper):
            if let lower, value < lower { return false }
            if let upper, upper < value { return false }
            return true
        }
    }

    /// Problems with the form itself (empty range, min > max, empty one-of, range of an enumeration).
    public var internalProblems: [String] {
        switch self {
        case .fixed, .any: return []
        case .oneOf(let values): return values.isEmpty ? ["\"one-of\" must list at least one value"] : []
        case .range(let lower, let upper):
            var out: [String] = []
            if !Value.admitsRange { out.append("a range is not allowed for this field; use a value, \"any\" or \"one-of\"") }
            if lower == nil && upper == nil { out.append("a range needs \"min\" or \"max\" (write \"any\" for no constraint)") }
            if let lower, let upper, upper < lower { out.append("\"min\" is greater than \"max\"") }
            return out
        }
    }

    /// Whether this form is well formed (``internalProblems`` is empty).
    public var isWellFormed: Bool { internalProblems.isEmpty }

    /// Whether this **offered** value satisfies the **requested** one: S(offered) ⊆ S(requested)
    /// (docs/protocol.md §4.3). Exact comparisons; an ill-formed offered value satisfies nothing
    /// but `"any"`.
    public func satisfies(_ requested: Negotiable<Value>) -> Bool {
        if case .any = requested { return true }
        guard isWellFormed else { return false }
        switch self {
        case .any:
            return false
        case .fixed(let fixed):
            return requested.admits(fixed)
        case .oneOf(let values):
            return values.allSatisfy { requested.admits($0) }
        case .range(let lower, let upper):
            switch requested {
            case .any:
                return true
            case .fixed(let fixed):
                return lower == fixed && upper == fixed
            case .oneOf(let values):
                // A continuous interval is only a subset of a finite set when it is a single point.
                guard let lower, let upper, lower == upper else { return false }
                return values.contains(lower)
            case .range(let requestedLower, let requestedUpper):
                if let requestedLower {
                    guard let lower, !(lower < requestedLower) else { return false }
                }
                if let requestedUpper {
                    guard let upper, !(requestedUpper < upper) else { return false }
                }
                return true
            }
        }
    }

    /// Every concrete value written in this form (fixed value, bounds, one-of members).
    public var mentionedValues: [Value] {
        switch self {
        case .fixed(let fixed): [fixed]
        case .any: []
        case .oneOf(let values): values
        case .range(let lower, let upper): [lower, upper].compactMap { $0 }
        }
    }

    /// Decodes any of the four JSON forms. `{}`, an object with neither `min`/`max` nor `one-of`,
    /// `one-of` mixed with bounds, an empty `one-of` and ranges of enumerations are rejected.
    public init(json: JSONValue, at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) {
        switch json {
        case .string("any"):
            self = .any
        case .object(let object):
            let oneOf = object["one-of"]
            let min = object["min"]
            let max = object["max"]
            if let oneOf {
                guard min == nil && max == nil else {
                    throw CPNPDecodingError(.invalidValue, at: path(), "\"one-of\" cannot be combined with \"min\"/\"max\"")
                }
                func oneOfPath() -> JSONPath { path().appending("one-of") }
                let items = try oneOf.array(at: oneOfPath(), maxCount: CPDLimits.maxOneOf)
                guard !items.isEmpty else {
                    throw CPNPDecodingError(.invalidValue, at: oneOfPath(), "\"one-of\" must list at least one value")
                }
                var values: [Value] = []
                values.reserveCapacity(items.count)
                for (i, item) in items.enumerated() {
                    if case .string("any") = item {
                        throw CPNPDecodingError(.invalidValue, at: oneOfPath().appending(index: i), "\"any\" is not a value")
                    }
                    values.append(try Value(negotiableJSON: item, at: oneOfPath().appending(index: i)))
                }
                self = .oneOf(values)
            } else if min != nil || max != nil {
                guard Value.admitsRange else {
                    throw CPNPDecodingError(
                        .invalidValue, at: path(), "a range is not allowed for this field; use a value, \"any\" or {\"one-of\": […]}")
                }
                var lower: Value?
                var upper: Value?
                if let min { lower = try Value(negotiableJSON: min, at: path().appending("min")) }
                if let max { upper = try Value(negotiableJSON: max, at: path().appending("max")) }
                self = .range(min: lower, max: upper)
            } else {
                throw CPNPDecodingError(
                    .invalidValue, at: path(), "a negotiable object needs \"min\", \"max\" or \"one-of\" (write \"any\" for no constraint)")
            }
        default:
            do {
                self = .fixed(try Value(negotiableJSON: json, at: path()))
            } catch {
                guard error.code == .wrongType else { throw error }
                let kind = Value.admitsRange ? "a number, \"any\", {\"min\"/\"max\"} or {\"one-of\"}" : "a value, \"any\" or {\"one-of\"}"
                throw CPNPDecodingError(.wrongType, at: path(), "expected \(kind), found \(json.typeName)")
            }
        }
    }

    /// ``json`` written straight to bytes.
    func write(into writer: inout JSONWriter) {
        switch self {
        case .fixed(let fixed):
            writer.scalar(fixed.negotiableJSON)
        case .any:
            writer.string("any")
        case .oneOf(let values):
            writer.beginObject()
            writer.key("one-of")
            writer.beginArray()
            for value in values { writer.scalar(value.negotiableJSON) }
            writer.endArray()
            writer.endObject()
        case .range(let lower, let upper):
            writer.beginObject()
            if let lower {
                writer.key("min")
                writer.scalar(lower.negotiableJSON)
            }
            if let upper {
                writer.key("max")
                writer.scalar(upper.negotiableJSON)
            }
            writer.endObject()
        }
    }

    /// The JSON form (bounds in the order `min`, `max`).
    public var json: JSONValue {
        switch self {
        case .fixed(let fixed):
            return fixed.negotiableJSON
        case .any:
            return .string("any")
        case .oneOf(let values):
            return .object(JSONObject([("one-of", .array(values.map(\.negotiableJSON)))]))
        case .range(let lower, let upper):
            var object = JSONObject()
            if let lower { object["min"] = lower.negotiableJSON }
            if let upper { object["max"] = upper.negotiableJSON }
            return .object(object)
        }
    }
}

extension Negotiable: ExpressibleByIntegerLiteral where Value: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Value.IntegerLiteralType) { self = .fixed(Value(integerLiteral: value)) }
}
