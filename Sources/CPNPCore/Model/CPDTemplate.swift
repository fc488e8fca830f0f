/// A negotiable field a CPD leaves loose, which a customer may fill in: a service catalogue
/// template's open value (RFC 8921 §8.7: a request may mix fixed and loosely defined values).
public struct CPDOpenField: Sendable, Hashable {
    /// Where the field is, from the CPD root (e.g. `components[0].profiles[0].capacity[0].incoming-bandwidth-mbps`).
    public var path: JSONPath
    /// The loose value as written in the document: `{"min":…,"max":…}`, `"any"` or `{"one-of":[…]}`.
    public var constraint: JSONValue
    /// Whether the field holds a number (ranges are meaningful).
    public var isNumber: Bool
    /// The values of a `one-of` constraint, as text (empty otherwise).
    public var choices: [String]

    public init(path: JSONPath, constraint: JSONValue, isNumber: Bool, choices: [String]) {
        self.path = path
        self.constraint = constraint
        self.isNumber = isNumber
        self.choices = choices
    }

    /// The constraint in words: `80 to 100`, `at least 80`, `any value`, `one of gold, silver`.
    public var constraintDescription: String {
        switch constraint {
        case .string("any"): return "any value"
        case .object(let object):
            if !choices.isEmpty { return "one of " + choices.joined(separator: ", ") }
            let low = object["min"].map { JSONSerializer.serializeString($0) }
            let high = object["max"].map { JSONSerializer.serializeString($0) }
            switch (low, high) {
            case (let lower?, let upper?): return "\(lower) to \(upper)"
            case (let lower?, nil): return "at least \(lower)"
            case (nil, let upper?): return "at most \(upper)"
            case (nil, nil): return JSONSerializer.serializeString(constraint)
            }
        default: return JSONSerializer.serializeString(constraint)
        }
    }
}

private struct OpenFieldCollector: NegotiableVisitor {
    var fields: [CPDOpenField] = []
    mutating func visit<V: NegotiableValue>(_ value: inout Negotiable<V>, at path: JSONPath) {
        guard !value.isFixed else { return }
        var choices: [String] = []
        if case .oneOf(let values) = value {
            choices = values.map { choice in
                if case .string(let text) = choice.negotiableJSON { return text }
                return JSONSerializer.serializeString(choice.negotiableJSON)
            }
        }
        fields.append(CPDOpenField(path: path, constraint: value.json, isNumber: V.admitsRange, choices: choices))
    }
}

private struct OpenFieldFiller: NegotiableVisitor {
    var values: [JSONPath: String]
    var problem: CPNPDecodingError?
    mutating func visit<V: NegotiableValue>(_ value: inout Negotiable<V>, at path: JSONPath) {
        guard problem == nil, !value.isFixed, let text = values.removeValue(forKey: path) else { return }
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty else { return }
        let json: JSONValue
        if V.admitsRange {
            guard let number = CPNPDecimal(parsing: trimmed) else {
                problem = CPNPDecodingError(.invalidValue, at: path, "\(trimmed) is not a number")
                return
            }
            json = .number(number)
        } else {
            json = .string(String(trimmed))
        }
        let filled: V
        do {
            filled = try V(negotiableJSON: json, at: path)
        } catch {
            problem = error
            return
        }
        guard value.admits(filled) else {
            let allowed = OpenFieldCollector.describe(value)
            problem = CPNPDecodingError(.invalidValue, at: path, "\(trimmed) is outside what the template allows (\(allowed))")
            return
        }
        value = .fixed(filled)
    }
}

extension OpenFieldCollector {
    static func describe<V: NegotiableValue>(_ value: Negotiable<V>) -> String {
        var collector = OpenFieldCollector()
        var copy = value
        collector.visit(&copy, at: .root)
        return collector.fields.first?.constraintDescription ?? "a fixed value"
    }
}

extension String {
    fileprivate var trimmingWhitespace: Substring {
        var trimmed = Substring(self)
        while let first = trimmed.first, first.isWhitespace { trimmed = trimmed.dropFirst() }
        while let last = trimmed.last, last.isWhitespace { trimmed = trimmed.dropLast() }
        return trimmed
    }
}

extension ConnectivityProvisioningDocument {
    /// The loose negotiable fields, in document order: what a customer may fill in when the CPD is a
    /// catalogue template (RFC 8921 §8.7).
    public var openFields: [CPDOpenField] {
        var copy = self
        var collector = OpenFieldCollector()
        copy.visitNegotiables(&collector, at: .root)
        return collector.fields
    }

    /// A copy where each open field named in `values` (by its path) takes the value typed there. A
    /// blank value leaves the field as the template has it (the provider chooses, §8.7).
    ///
    /// - Throws: ``CPNPDecodingError`` naming the field when a value is not of the field's type, is
    ///   outside the template's constraint, or names no open field.
    public func filling(_ values: [JSONPath: String]) throws(CPNPDecodingError) -> ConnectivityProvisioningDocument {
        var copy = self
        var filler = OpenFieldFiller(values: values)
        copy.visitNegotiables(&filler, at: .root)
        if let problem = filler.problem { throw problem }
        if let unknown = filler.values.keys.sorted(by: { $0.description < $1.description }).first {
            throw CPNPDecodingError(.invalidValue, at: unknown, "the template leaves no value open here")
        }
        return copy
    }
}
