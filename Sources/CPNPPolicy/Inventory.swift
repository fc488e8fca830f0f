public import CPNPCore

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
        var capacities: [String: LinkCapacity] = [:]
        for link in links { capacities[link.id] = link.capacity }
        self.init(capacity: capacities, reservations: reservations)
    }

    /// Free Mbit/s on `linkID` in `direction`: capacity − reserved, at least 0; 0 for an unknown link.
    ///
    /// - Parameters:
    ///   - linkID: a link id.
    ///   - direction: the direction.
    public func free(_ linkID: String, _ direction: CPDDirection) -> CPNPDecimal {
        guard let linkCapacity = capacity[linkID] else { return 0 }
        let free = linkCapacity[direction] - (reserved[linkID]?[direction] ?? 0)
        return free.isNegative ? 0 : free
    }

    /// This inventory with `reservations` added (used for new offers).
    ///
    /// - Parameter reservations: capacity to hold.
    public func reserving(_ reservations: [Reservation]) -> InventoryView {
        var copy = self
        for reservation in reservations {
            var current = copy.reserved[reservation.linkID] ?? LinkCapacity(symmetric: 0)
            current[reservation.direction] += reservation.mbps
            if current[reservation.direction].isNegative { current[reservation.direction] = 0 }
            copy.reserved[reservation.linkID] = current
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
        for component in cpd.components {
            for profile in component.profiles {
                for entry in profile.capacity ?? [] {
                    if let mbps = entry.incomingBandwidthMbps?.preferredValue { out.append(mbps) }
                    if let mbps = entry.outgoingBandwidthMbps?.preferredValue { out.append(mbps) }
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
        var classes = Set<String>()
        for component in cpd.components {
            for profile in component.profiles {
                guard let guarantees = profile.qosGuarantees, !guarantees.entries.isEmpty else { continue }
                switch guarantees.kind {
                case .quantitative: classes.insert(PricingRule.quantitativePremium)
                case .qualitative: for entry in guarantees.entries { if let qosClass = entry.metaQoSClass { classes.insert(qosClass) } }
                }
            }
        }
        return classes.sorted()
    }
}

/// CIDR containment for the source-prefix access filters (RFC 8921 §13).
enum IPMatching {
    /// Parses an address as a client endpoint may be written: `192.0.2.1`, `2001:db8::1`,
    /// `[2001:db8::1]`, `fe80::1%eth0`. IPv4-mapped IPv6 addresses become IPv4.
    static func parseAddress(_ text: String) -> CPDIPAddress? {
        var trimmed = Substring(text)
        if trimmed.hasPrefix("["), trimmed.hasSuffix("]") { trimmed = trimmed.dropFirst().dropLast() }
        if let zoneStart = trimmed.firstIndex(of: "%") { trimmed = trimmed[..<zoneStart] }
        guard let address = CPDIPAddress(String(trimmed)) else { return nil }
        if !address.isIPv4, address.bytes[0..<10].allSatisfy({ $0 == 0 }), address.bytes[10] == 0xff, address.bytes[11] == 0xff {
            return CPDIPAddress("\(address.bytes[12]).\(address.bytes[13]).\(address.bytes[14]).\(address.bytes[15])")
        }
        return address
    }

    /// Whether `address` is inside `prefix` (same family only).
    static func prefix(_ prefix: CPDIPPrefix, contains address: CPDIPAddress) -> Bool {
        let prefixBytes = prefix.address.bytes
        let addressBytes = address.bytes
        guard prefixBytes.count == addressBytes.count else { return false }
        var bits = prefix.length
        var i = 0
        while bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xff : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if prefixBytes[i] & mask != addressBytes[i] & mask { return false }
            bits -= 8
            i += 1
        }
        return true
    }
}
