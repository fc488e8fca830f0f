// Durations as people write them in the configuration and on the command line.

extension Duration {
    /// A duration written `500ms`, `30s`, `10m`, `1h`, `2d`, a combination such as `1h30m`, or a
    /// plain number of seconds (docs/configuration.md); nil for anything else (fractions, spaces,
    /// unknown units, more than 12 digits in one amount).
    public init?(text: String) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        if bytes.allSatisfy({ (0x30...0x39).contains($0) }) {
            guard bytes.count <= 12, let seconds = Int64(text) else { return nil }
            self = .seconds(seconds)
            return
        }
        var total = Duration.zero
        var position = 0
        while position < bytes.count {
            var amount: Int64 = 0
            let start = position
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) {
                guard position - start < 12 else { return nil }
                amount = amount * 10 + Int64(bytes[position] - 0x30)
                position += 1
            }
            guard position > start else { return nil }
            let unitStart = position
            while position < bytes.count, !(0x30...0x39).contains(bytes[position]) { position += 1 }
            switch String(decoding: bytes[unitStart..<position], as: UTF8.self) {
            case "ms": total += .milliseconds(amount)
            case "s": total += .seconds(amount)
            case "m": total += .seconds(amount * 60)
            case "h": total += .seconds(amount * 3600)
            case "d": total += .seconds(amount * 86400)
            default: return nil
            }
        }
        self = total
    }
}
