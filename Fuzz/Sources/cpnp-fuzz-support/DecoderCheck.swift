import CPNPCore

/// What the decoder fuzz target checks for one input (docs/fuzzing.md).
public enum DecoderFuzzCheck {
    /// The invariant violations for `bytes`; empty when all hold. Rejecting the input is fine:
    /// the checks are that nothing crashes, that whatever decodes re-encodes to a message that
    /// decodes to the same value, and that both encoders are stable.
    public static func problems(_ bytes: [UInt8]) -> [String] {
        var problems: [String] = []
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes, limits: .datagram)
        } catch {
            _ = error.description
            if (try? CPNPCodec.decode(bytes)) != nil { problems.append("CPNPCodec.decode accepts what JSONParser.parse rejects") }
            return problems
        }
        // JSON level: serialize, parse again, same value.
        let serialized = JSONSerializer.serialize(json)
        do {
            let again = try JSONParser.parse(serialized, limits: .stream)
            if again != json { problems.append("JSON round trip changed the value: \(String(decoding: serialized, as: UTF8.self))") }
        } catch {
            problems.append("serialized JSON does not parse: \(error)")
        }
        _ = CPNPCodec.correlation(of: json)
        let message: CPNPMessage
        do {
            message = try CPNPCodec.decode(json: json)
        } catch {
            _ = error.description
            return problems
        }
        if (try? CPNPCodec.decode(bytes)) != message { problems.append("decode(bytes) differs from decode(json: parse(bytes))") }
        _ = message.validationIssues().map(\.description)
        // Message level: encode, decode (the canonical form may be longer than a datagram), same message.
        let encoded = CPNPCodec.encode(message)
        do {
            let again = try CPNPCodec.decode(encoded, limits: .stream)
            if again != message {
                problems.append("decode(encode(m)) != m: \(String(decoding: encoded, as: UTF8.self))")
            } else if CPNPCodec.encode(again) != encoded {
                problems.append("encode is not stable: \(String(decoding: encoded, as: UTF8.self))")
            }
        } catch {
            problems.append("re-encoded message does not decode: \(error): \(String(decoding: encoded, as: UTF8.self))")
        }
        return problems
    }
}

extension DecoderFuzzCheck {
    /// Which decoder branch `bytes` ends in: `decoded QUOTATION` … `decoded ACTIVATE` (the
    /// METHOD_CODE's name, RFC 8921 §9.1), or `rejected malformed-json` … (the
    /// ``CPNPDecodingError/Code`` raw value). The regression tests check that their inputs reach
    /// every branch; `cpnp-fuzz-decoder --branches` prints it per input.
    public static func branch(_ bytes: [UInt8]) -> String {
        do throws(CPNPDecodingError) {
            let message = try CPNPCodec.decode(bytes, limits: .datagram)
            return "decoded \(message.method.name)"
        } catch {
            return "rejected \(error.code.rawValue)"
        }
    }
}
