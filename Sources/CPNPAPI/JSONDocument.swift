public import CPNPCore
import Foundation

/// A JSON value in the REST API's generated types (the `CPD` and `AnyJSON` schemas of
/// Sources/CPNPHTTP/openapi.yaml, served by cpnpd and by `cpnp serve`): numbers stay exact decimals
/// both ways, as on the CPNP wire.
public struct JSONDocument: Codable, Hashable, Sendable {
    public var value: JSONValue

    public init(_ value: JSONValue) { self.value = value }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: Key.self) {
            var out = JSONObject()
            for key in object.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
                out[key.stringValue] = try object.decode(JSONDocument.self, forKey: key).value
            }
            value = .object(out)
        } else if var array = try? decoder.unkeyedContainer() {
            var out: [JSONValue] = []
            while !array.isAtEnd { out.append(try array.decode(JSONDocument.self).value) }
            value = .array(out)
        } else {
            let single = try decoder.singleValueContainer()
            if single.decodeNil() {
                value = .null
            } else if let bool = try? single.decode(Bool.self) {
                value = .bool(bool)
            } else if let string = try? single.decode(String.self) {
                value = .string(string)
            } else {
                let number = try single.decode(Decimal.self)
                guard let exact = CPNPDecimal(parsing: "\(number)") else {
                    throw DecodingError.dataCorruptedError(in: single, debugDescription: "\(number) is not a decimal number")
                }
                value = .number(exact)
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch value {
        case .object(let object):
            var container = encoder.container(keyedBy: Key.self)
            for (key, member) in object { try container.encode(JSONDocument(member), forKey: Key(stringValue: key)) }
        case .array(let items):
            var container = encoder.unkeyedContainer()
            for item in items { try container.encode(JSONDocument(item)) }
        case .string(let string):
            var container = encoder.singleValueContainer()
            try container.encode(string)
        case .bool(let bool):
            var container = encoder.singleValueContainer()
            try container.encode(bool)
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .number(let number):
            var container = encoder.singleValueContainer()
            guard let decimal = Decimal(string: number.description, locale: Locale(identifier: "en_US_POSIX")) else {
                throw EncodingError.invalidValue(number.description, .init(codingPath: encoder.codingPath, debugDescription: "not a decimal"))
            }
            try container.encode(decimal)
        }
    }
}
