// The IP address and prefix parsers against the Substring-based implementation they replaced (kept
// here as the reference): the same verdict, the same bytes and the same problem text for ASCII input.
import CPNPTesting
import Testing
@testable import CPNPCore

/// The previous parsers, unchanged but for their names.
enum ReferenceIPParser {
    struct Problem: Error {
        var message: String
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            if part.count > 1 && part.first == "0" { return nil }
            guard let value = Int(part), value <= 255 else { return nil }
            out.append(UInt8(value))
        }
        return out
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.count <= 45 else { return nil }
        let halves = text.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring, allowV4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt8] = []
            for (i, item) in items.enumerated() {
                if allowV4Tail && i == items.count - 1 && item.contains(".") {
                    guard let ipv4Bytes = parseIPv4(item) else { return nil }
                    out += ipv4Bytes
                    continue
                }
                guard !item.isEmpty, item.count <= 4, let group = UInt16(item, radix: 16),
                    item.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) || ($0 >= 0x61 && $0 <= 0x66) })
                else { return nil }
                out.append(UInt8(group >> 8))
                out.append(UInt8(group & 0xff))
            }
            return out
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowV4Tail: true), all.count == 16 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowV4Tail: false), let tail = groups(halves[1], allowV4Tail: true),
            head.count + tail.count <= 14
        else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    static func parsePrefix(_ text: String) -> Result<(bytes: [UInt8], length: Int), Problem> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .failure(Problem(message: "\"\(text)\" is not a CIDR prefix (address/length)")) }
        let addressText = parts[0]
        let lengthText = parts[1]
        let isV6 = addressText.contains(":")
        guard let bytes = isV6 ? parseIPv6(addressText) : parseIPv4(addressText) else {
            return .failure(Problem(message: "\"\(addressText)\" is not a valid IPv\(isV6 ? 6 : 4) address"))
        }
        let maximumLength = bytes.count * 8
        guard !lengthText.isEmpty, lengthText.count <= 3, lengthText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            !(lengthText.count > 1 && lengthText.first == "0"), let length = Int(lengthText), length <= maximumLength
        else {
            return .failure(Problem(message: "prefix length \"\(lengthText)\" is not in 0...\(maximumLength)"))
        }
        for bit in length..<maximumLength where bytes[bit / 8] & (0x80 >> UInt8(bit % 8)) != 0 {
            return .failure(Problem(message: "\"\(text)\" has host bits set beyond /\(length)"))
        }
        return .success((bytes, length))
    }

}

extension Substring {
    /// Splits around `::` (used once at most in IPv6 text).
    fileprivate func components(separatedByDoubleColon: Void) -> [Substring] {
        var out: [Substring] = []
        var start = startIndex
        var position = startIndex
        while position < endIndex {
            let next = index(after: position)
            if self[position] == ":" && next < endIndex && self[next] == ":" {
                out.append(self[start..<position])
                start = index(after: next)
                position = start
            } else {
                position = next
            }
        }
        out.append(self[start..<endIndex])
        return out
    }
}

@Suite struct IPPrefixParserTests {
    static let alphabet = Array("0123456789abcdefABCDEFgx:./ ")
    static let seeds = ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32", "::ffff:192.0.2.1/128", "::/0", "1:2:3:4:5:6:7:8/128", "0.0.0.0/0"]

    /// A seed mutated a few times, or random text from the alphabet.
    static func candidate(using generator: inout SplitMix64) -> String {
        if Bool.random(using: &generator) {
            return String((0..<Int.random(in: 0...20, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
        }
        var characters = Array(seeds.randomElement(using: &generator)!)
        for _ in 0..<Int.random(in: 0...3, using: &generator) {
            let index = Int.random(in: 0...characters.count, using: &generator)
            switch Int.random(in: 0..<3, using: &generator) {
            case 0 where index < characters.count: characters.remove(at: index)
            case 1: characters.insert(alphabet.randomElement(using: &generator)!, at: index)
            default: if index < characters.count { characters[index] = alphabet.randomElement(using: &generator)! }
            }
        }
        return String(characters)
    }

    @Test func theByteParsersAgreeWithTheReference() async {
        // Off the pool (``computeOffThePool(_:)``); the issues are recorded here, on the test's task.
        let (valid, disagreements) = await computeOffThePool {
            var generator = SplitMix64(seed: 8921)
            var valid = 0
            var disagreements: [String] = []
            for _ in 0..<20_000 {
                let text = Self.candidate(using: &generator)
                let reference = ReferenceIPParser.parsePrefix(text)
                switch (CPDIPPrefix.parse(text), reference) {
                case (.success(let prefix), .success(let expected)):
                    valid += 1
                    if prefix.address.bytes != expected.bytes || prefix.length != expected.length { disagreements.append("\(text): prefixes differ") }
                case (.failure(let problem), .failure(let expected)):
                    if problem.message != expected.message { disagreements.append("\(text): \(problem.message) ≠ \(expected.message)") }
                default:
                    disagreements.append("\(text): the parsers disagree")
                }
                let addressText = String(text.prefix { $0 != "/" })
                let expectedAddress =
                    addressText.contains(":")
                    ? ReferenceIPParser.parseIPv6(Substring(addressText)) : ReferenceIPParser.parseIPv4(Substring(addressText))
                if CPDIPAddress(addressText)?.bytes != expectedAddress { disagreements.append("\(addressText): addresses differ") }
            }
            return (valid, disagreements)
        }
        for disagreement in disagreements.prefix(5) { Issue.record(Comment(rawValue: disagreement)) }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements")
        // The mutations keep enough inputs valid for the comparison to mean something.
        #expect(valid > 1_000)
    }
}
