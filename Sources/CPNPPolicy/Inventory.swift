public import CPNPCore

/// Capacity held on one link in one direction (RFC 8921 §8.2 "Network Resource Management";
/// docs/configuration.md `policy.links[]`: capacity in an offer is reserved while the offer is
/// valid, committed on ACCEPT, released on expiry, DECLINE, CANCEL or WITHDRAW, adjusted by the
/// delta on UPDATE).
public struct Reservation: Sendable, Hashable, CustomStringConvertible {
    /// The link (``ProviderLink/id``).
    public var linkID: String
    /// `incoming` = towards the customer node, `outgoing` = from it (RFC 7297 §3.5).
    public var direction: CPDDirection
    /// Mbit/s. Positive in reservations; signed in the result of
    /// ``DecisionEngine/reservationsDelta(old:new:)``.
    public var mbps: CPNPDecimal

    /// - Parameters:
    ///   - linkID: the link.
    ///   - direction: the direction.
    ///   - mbps: the bandwidth.
    public init(linkID: String, direction: CPDDirection, mbps: CPNPDecimal) {
        self.linkID = linkID
        self.direction = direction
        self.mbps = mbps
    }

    /// E.g. `PE-PAR-2:ge-0/0/1 incoming 90 Mbps`.
    public var description: String { "\(linkID) \(direction.rawValue) \(mbps) Mbps" }

    /// Sums `reservations` per link and direction, drops zero sums, and sorts by link then
    /// direction (incoming first): the canonical form the engine returns.
    ///
    /// - Parameter reservations: any list of reservations.
    /// - Returns: one reservation per (link, direction) with a non-zero total.
    public static func aggregate(_ reservations: [Reservation]) -> [Reservation] {
        var sums: [Key: CPNPDecimal] = [:]
        for r in reservations { sums[Key(r.linkID, r.direction), default: 0] += r.mbps }
        return sums.filter { !$0.value.isZero }
            .map { Reservation(linkID: $0.key.link, direction: $0.key.direction, mbps: $0.value) }
            .sorted { ($0.linkID, $0.direction == .incoming ? 0 : 1) < ($1.linkID, $1.direction == .incoming ? 0 : 1) }
    }

    struct Key: Hashable {
        var link: String
        var direction: CPDDirection
        init(_ link: String, _ direction: CPDDirection) {
            self.link = link
            self.direction = direction
        }
    }
}

/// The free capacity of every link and direction, given the current reservations: what the
/// decision engine may offer (RFC 8921 §8.2 "Check whether network capacity is available").
/// The engine never offers more than ``free(_:_:)``.
public struct InventoryView: Sendable, Hashable {
    /// Capacity per link id.
    public private(set) var capacity: [String: LinkCapacity]
    /// Reserved per link id (never negative).
    public private(set) var reserved: [String: LinkCapacity]

    /// - Parameters:
    ///   - capacity: total capacity per link id.
    ///   - reservations: capacity already held.
    public init(capacity: [String: LinkCapacity], reservations: [Reservation] = []) {
        self.capacity = capacity
        self.reserved = [:]
        self = reserving(reservations)
    }

    /// - Parameters:
    ///   - links: the configured links.
    ///   - reservations: capacity already held.
    public init(links: [ProviderLink], reservations: [Reservation] = []) {
        var c: [String: LinkCapacity] = [:]
        for l in links { c[l.id] = l.capacity }
        self.init(capacity: c, reservations: reservations)
    }

    /// Free Mbit/s on `linkID` in `direction`: capacity − reserved, at least 0; 0 for an unknown link.
    ///
    /// - Parameters:
    ///   - linkID: a link id.
    ///   - direction: the direction.
    public func free(_ linkID: String, _ direction: CPDDirection) -> CPNPDecimal {
        guard let cap = capacity[linkID] else { return 0 }
        let f = cap[direction] - (reserved[linkID]?[direction] ?? 0)
        return f.isNegative ? 0 : f
    }

    /// This inventory with `reservations` added (used for new offers).
    ///
    /// - Parameter reservations: capacity to hold.
    public func reserving(_ reservations: [Reservation]) -> InventoryView {
        var copy = self
        for r in reservations {
            var cur = copy.reserved[r.linkID] ?? LinkCapacity(symmetric: 0)
            cur[r.direction] += r.mbps
            if cur[r.direction].isNegative { cur[r.direction] = 0 }
            copy.reserved[r.linkID] = cur
        }
        return copy
    }

    /// This inventory with `reservations` given back (never below zero). For an UPDATE, pass
    /// the order's current reservations so that it can keep its own capacity.
    ///
    /// - Parameter reservations: capacity to release.
    public func releasing(_ reservations: [Reservation]) -> InventoryView {
        reserving(reservations.map { Reservation(linkID: $0.linkID, direction: $0.direction, mbps: -$0.mbps) })
    }

    /// Whether `reservations` (summed per link and direction) fit in the free capacity.
    ///
    /// - Parameter reservations: candidate reservations.
    public func fits(_ reservations: [Reservation]) -> Bool {
        Reservation.aggregate(reservations).allSatisfy { !(free($0.linkID, $0.direction) < $0.mbps) }
    }
}

// MARK: - Helpers shared by pricing and approval

/// Measures of an offered CPD used by pricing and approval rules.
enum OfferMetrics {
    /// Every offered bandwidth value (incoming and outgoing of every capacity entry).
    static func bandwidths(_ cpd: CPD) -> [CPNPDecimal] {
        var out: [CPNPDecimal] = []
        for c in cpd.components {
            for p in c.profiles {
                for e in p.capacity ?? [] {
                    if let v = e.incomingBandwidthMbps?.preferredValue { out.append(v) }
                    if let v = e.outgoingBandwidthMbps?.preferredValue { out.append(v) }
                }
            }
        }
        return out
    }

    /// Sum of ``bandwidths(_:)``.
    static func totalBandwidth(_ cpd: CPD) -> CPNPDecimal {
        bandwidths(cpd).reduce(CPNPDecimal(0), +)
    }

    /// Largest of ``bandwidths(_:)`` (0 when none).
    static func largestBandwidth(_ cpd: CPD) -> CPNPDecimal {
        bandwidths(cpd).max() ?? 0
    }

    /// QoS classes in the offer, sorted: meta-QoS classes of qualitative guarantees and
    /// `quantitative` when a quantitative guarantee is present.
    static func qosClasses(_ cpd: CPD) -> [String] {
        var s = Set<String>()
        for c in cpd.components {
            for p in c.profiles {
                guard let q = p.qosGuarantees, !q.entries.isEmpty else { continue }
                switch q.kind {
                case .quantitative: s.insert(PricingRule.quantitativePremium)
                case .qualitative: for e in q.entries { if let m = e.metaQoSClass { s.insert(m) } }
                }
            }
        }
        return s.sorted()
    }
}

/// CIDR containment for the source-prefix access filters (RFC 8921 §13).
enum IPMatching {
    /// Parses an address as a client endpoint may be written: `192.0.2.1`, `2001:db8::1`,
    /// `[2001:db8::1]`, `fe80::1%eth0`. IPv4-mapped IPv6 addresses become IPv4.
    static func parseAddress(_ text: String) -> CPDIPAddress? {
        var t = Substring(text)
        if t.hasPrefix("["), t.hasSuffix("]") { t = t.dropFirst().dropLast() }
        if let pct = t.firstIndex(of: "%") { t = t[..<pct] }
        guard let a = CPDIPAddress(String(t)) else { return nil }
        if !a.isIPv4, a.bytes[0..<10].allSatisfy({ $0 == 0 }), a.bytes[10] == 0xff, a.bytes[11] == 0xff {
            return CPDIPAddress("\(a.bytes[12]).\(a.bytes[13]).\(a.bytes[14]).\(a.bytes[15])")
        }
        return a
    }

    /// Whether `address` is inside `prefix` (same family only).
    static func prefix(_ prefix: CPDIPPrefix, contains address: CPDIPAddress) -> Bool {
        let p = prefix.address.bytes
        let a = address.bytes
        guard p.count == a.count else { return false }
        var bits = prefix.length
        var i = 0
        while bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xff : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if p[i] & mask != a[i] & mask { return false }
            bits -= 8
            i += 1
        }
        return true
    }
}
