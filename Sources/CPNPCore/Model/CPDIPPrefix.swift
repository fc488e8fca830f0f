/// An IPv4 or IPv6 address, parsed without Foundation (RFC 7297 §3.2 scope prefixes, §3.9 classifiers).
public struct CPDIPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    /// Parses dotted-quad IPv4 (no leading zeros) or RFC 4291 §2.2 IPv6 text (with `::` and an
    /// optional trailing dotted quad). Zone identifiers are rejected.
    public init?(_ text: String) {
        if text.contains(":") {
            guard let parsed = Self.parseIPv6(Substring(text)) else { return nil }
            bytes = parsed
        } else {
            guard let parsed = Self.parseIPv4(Substring(text)) else { return nil }
            bytes = parsed
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

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

    /// Canonical text: dotted quad, or lowercase hex groups without `::` compression.
    public var description: String {
        if isIPv4 { return bytes.map { String($0) }.joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }

    /// Whether this is a multicast address (224.0.0.0/4 or ff00::/8).
    public var isMulticast: Bool { isIPv4 ? bytes[0] >> 4 == 0xE : bytes[0] == 0xFF }
}

/// A CIDR prefix `address/length` (IPv4 0…32, IPv6 0…128), host bits zero.
public struct CPDIPPrefix: Sendable, Hashable, CustomStringConvertible {
    public let address: CPDIPAddress
    public let length: Int

    /// Why `text` is not a valid CIDR prefix, or nil when it is.
    public static func problem(with text: String) -> String? {
        switch parse(text) {
        case .success: nil
        case .failure(let failure): failure.message
        }
    }

    /// Parses a prefix, or nil.
    public init?(_ text: String) {
        guard case .success(let prefix) = Self.parse(text) else { return nil }
        self = prefix
    }

    private init(address: CPDIPAddress, length: Int) {
        self.address = address
        self.length = length
    }

    struct Problem: Error {
        var message: String
    }

    static func parse(_ text: String) -> Result<CPDIPPrefix, Problem> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .failure(Problem(message: "\"\(text)\" is not a CIDR prefix (address/length)")) }
        let addressText = parts[0]
        let lengthText = parts[1]
        let isV6 = addressText.contains(":")
        guard let bytes = isV6 ? CPDIPAddress.parseIPv6(addressText) : CPDIPAddress.parseIPv4(addressText) else {
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
        return .success(CPDIPPrefix(address: CPDIPAddress(bytes: bytes), length: length))
    }

    public var description: String { "\(address)/\(length)" }
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
