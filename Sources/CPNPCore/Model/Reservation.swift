/// Capacity held on one link in one direction (RFC 8921 §8.2 "Network Resource Management";
/// docs/configuration.md `policy.links[]`: capacity in an offer is reserved while the offer is
/// valid, committed on ACCEPT, released on expiry, DECLINE, CANCEL or WITHDRAW, adjusted by the
/// delta on UPDATE). The decision computes it, the engine holds it, the store keeps it exactly
/// (decimal text, never floating point) beside its ``ReservationKind`` (``HeldCapacity``).
public struct Reservation: Sendable, Hashable, CustomStringConvertible {
    /// The link (a `policy.links[]` id).
    public var linkID: String
    /// `incoming` = towards the customer node, `outgoing` = from it (RFC 7297 §3.5).
    public var direction: CPDDirection
    /// Mbit/s. Positive in reservations (the store refuses a negative one); signed in a
    /// difference of reservations (an UPDATE's delta).
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

    /// - Parameters:
    ///   - key: the link and direction.
    ///   - mbps: the bandwidth.
    public init(_ key: Key, mbps: CPNPDecimal) {
        self.init(linkID: key.linkID, direction: key.direction, mbps: mbps)
    }

    /// The link and direction the capacity is held on.
    public var key: Key { Key(linkID, direction) }

    /// E.g. `PE-PAR-2:ge-0/0/1 incoming 90 Mbps`.
    public var description: String { "\(linkID) \(direction.rawValue) \(mbps) Mbps" }

    /// Sums `reservations` per link and direction, drops zero sums, and sorts by link then
    /// direction (incoming first): the canonical form the decision returns.
    ///
    /// - Parameter reservations: any list of reservations.
    /// - Returns: one reservation per (link, direction) with a non-zero total.
    public static func aggregate(_ reservations: [Reservation]) -> [Reservation] {
        var sums: [Key: CPNPDecimal] = [:]
        for reservation in reservations { sums[reservation.key, default: 0] += reservation.mbps }
        return sums.filter { !$0.value.isZero }.sorted { $0.key < $1.key }.map { Reservation($0.key, mbps: $0.value) }
    }

    /// A link and a direction: the unit capacity is counted in (RFC 8921 §8.2), e.g. the key of the
    /// running and stored totals and of the capacity limits a commit re-checks.
    public struct Key: Sendable, Hashable, Comparable, CustomStringConvertible {
        /// The link (a `policy.links[]` id).
        public var linkID: String
        public var direction: CPDDirection

        public init(_ linkID: String, _ direction: CPDDirection) {
            self.linkID = linkID
            self.direction = direction
        }

        /// E.g. `PE-PAR-2:ge-0/0/1/incoming`.
        public var description: String { "\(linkID)/\(direction.rawValue)" }

        /// By link, then direction (incoming first).
        public static func < (a: Key, b: Key) -> Bool {
            (a.linkID, a.direction.rawValue) < (b.linkID, b.direction.rawValue)
        }
    }
}

/// Whether capacity is held by an offer still valid, or committed by an agreement (capacity in an
/// offer is reserved while the offer is valid and committed on ACCEPT: docs/configuration.md
/// `policy.links[]`; RFC 8921 §8.2, §12.2). The raw values are the ones stored.
public enum ReservationKind: String, Sendable, Hashable, CaseIterable {
    case offered
    case committed
}

/// The capacity one order holds, by ``ReservationKind``: what the offer being negotiated reserves
/// and what the agreement in force commits (RFC 8921 §8.2; §9.2.9: during an UPDATE an order holds
/// both). What the store keeps per order and what it replaces in one commit.
public struct HeldCapacity: Sendable, Hashable {
    /// Reserved by the offer still valid.
    public var offered: [Reservation]
    /// Committed by the agreement in force.
    public var committed: [Reservation]

    /// - Parameters:
    ///   - offered: reserved by a valid offer.
    ///   - committed: committed by the agreement.
    public init(offered: [Reservation] = [], committed: [Reservation] = []) {
        self.offered = offered
        self.committed = committed
    }

    /// Nothing held (given to a store change: every reservation of the order released).
    public static let empty = HeldCapacity()

    /// Whether the order holds nothing.
    public var isEmpty: Bool { offered.isEmpty && committed.isEmpty }

    /// The reservations of one kind.
    public subscript(kind: ReservationKind) -> [Reservation] {
        get { kind == .offered ? offered : committed }
        set { if kind == .offered { offered = newValue } else { committed = newValue } }
    }

    /// Every reservation with its kind, committed first then offered (the order the store writes them).
    public var byKind: [(kind: ReservationKind, reservation: Reservation)] {
        committed.map { (ReservationKind.committed, $0) } + offered.map { (ReservationKind.offered, $0) }
    }
}
