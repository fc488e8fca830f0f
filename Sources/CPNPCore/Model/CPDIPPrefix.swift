/// An IPv4 or IPv6 address, parsed without Foundation (RFC 7297 §3.2 scope prefixes, §3.9 classifiers).
public struct CPDIPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    /// Parses dotted-quad IPv4 (no leading zeros) or RFC 4291 §2.2 IPv6 text (with `::` and an
    /// optional trailing dotted quad). Zone identifiers are rejected.
    public init?(_ text: String) {
        let utf8 = Array(text.utf8)
        let parsed = utf8.contains(Self.colon) ? Self.parseIPv6(utf8[...]) : Self.parseIPv4(utf8[...])
        guard let parsed else { return nil }
        bytes = parsed
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    static let colon = UInt8(ascii: ":")
    static let dot = UInt8(ascii: ".")

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    static func hexValue(_ byte: UInt8) -> UInt16? {
        switch byte {
        case 0x30...0x39: UInt16(byte - 0x30)
        case 0x41...0x46: UInt16(byte - 0x41 + 10)
        case 0x61...0x66: UInt16(byte - 0x61 + 10)
        default: nil
        }
    }

    /// A decimal number of one to `maximumDigits` digits without a leading zero, or nil.
    static func decimal(_ text: ArraySlice<UInt8>, maximumDigits: Int) -> Int? {
        guard !text.isEmpty, text.count <= maximumDigits, !(text.count > 1 && text.first == 0x30) else { return nil }
        var value = 0
        for byte in text {
            guard isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    /// Dotted-quad IPv4 in UTF-8: four parts of 0…255 without leading zeros.
    static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(4)
        var start = text.startIndex
        while true {
            let end = text[start...].firstIndex(of: dot) ?? text.endIndex
            guard out.count < 4, let value = decimal(text[start..<end], maximumDigits: 3), value <= 255 else { return nil }
            out.append(UInt8(value))
            guard end < text.endIndex else { break }
            start = text.index(after: end)
        }
        return out.count == 4 ? out : nil
    }

    /// RFC 4291 §2.2 IPv6 text in UTF-8.
    static func parseIPv6(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        guard text.count <= 45 else { return nil }
        // Split around `::`, scanning left to right (a third colon starts the second half).
        var halves: [ArraySlice<UInt8>] = []
        var start = text.startIndex
        var position = text.startIndex
        while position < text.endIndex {
            let next = position + 1
            if text[position] == colon, next < text.endIndex, text[next] == colon {
                halves.append(text[start..<position])
                start = next + 1
                position = start
            } else {
                position = next
            }
        }
        halves.append(text[start..<text.endIndex])
        guard halves.count <= 2 else { return nil }
        func groups(_ part: ArraySlice<UInt8>, allowV4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            var itemStart = part.startIndex
            while true {
                let itemEnd = part[itemStart...].firstIndex(of: colon) ?? part.endIndex
                let item = part[itemStart..<itemEnd]
                let isLast = itemEnd == part.endIndex
                if allowV4Tail, isLast, item.contains(dot) {
                    guard let ipv4Bytes = parseIPv4(item) else { return nil }
                    out += ipv4Bytes
                } else {
                    guard !item.isEmpty, item.count <= 4 else { return nil }
                    var group: UInt16 = 0
                    for byte in item {
                        guard let digit = hexValue(byte) else { return nil }
                        group = group << 4 | digit
                    }
                    out.append(UInt8(group >> 8))
                    out.append(UInt8(group & 0xff))
                }
                if isLast { return out }
                itemStart = itemEnd + 1
            }
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
        let utf8 = Array(text.utf8)
        guard let slash = utf8.firstIndex(of: UInt8(ascii: "/")), !utf8[(slash + 1)...].contains(UInt8(ascii: "/")) else {
            return .failure(Problem(message: "\"\(text)\" is not a CIDR prefix (address/length)"))
        }
        let addressText = utf8[..<slash]
        let lengthText = utf8[(slash + 1)...]
        let isV6 = addressText.contains(CPDIPAddress.colon)
        guard let bytes = isV6 ? CPDIPAddress.parseIPv6(addressText) : CPDIPAddress.parseIPv4(addressText) else {
            return .failure(Problem(message: "\"\(String(decoding: addressText, as: UTF8.self))\" is not a valid IPv\(isV6 ? 6 : 4) address"))
        }
        let maximumLength = bytes.count * 8
        guard let length = CPDIPAddress.decimal(lengthText, maximumDigits: 3), length <= maximumLength else {
            return .failure(Problem(message: "prefix length \"\(String(decoding: lengthText, as: UTF8.self))\" is not in 0...\(maximumLength)"))
        }
        for bit in length..<maximumLength where bytes[bit / 8] & (0x80 >> UInt8(bit % 8)) != 0 {
            return .failure(Problem(message: "\"\(text)\" has host bits set beyond /\(length)"))
        }
        return .success(CPDIPPrefix(address: CPDIPAddress(bytes: bytes), length: length))
    }

    public var description: String { "\(address)/\(length)" }
}
