/// A parsed JSON document (RFC 8259) as CPNP carries it (docs/protocol.md §2.2).
///
/// Numbers keep their exact decimal value (``CPNPDecimal``); objects keep the order of
/// their keys so that encoding is deterministic, but compare equal regardless of order.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(CPNPDecimal)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object with unique keys, in insertion order.
///
/// Equality and hashing ignore key order (two objects with the same members are equal). The
/// members are kept in one array, found by a scan while the object is small (most CPNP objects
/// have a handful of keys) and through a key index once it is large, so building, reading and
/// writing an object hashes no key until it is large.
public struct JSONObject: Sendable, Hashable, Sequence {
    /// One member: a key and its value.
    struct Member: Sendable {
        var key: String
        var value: JSONValue
    }

    private(set) var members: [Member] = []
    /// Position of each key, kept once the object has more than ``indexThreshold`` members.
    private var index: [String: Int]?
    private static let indexThreshold = 16

    public init() {}

    /// Builds an object from pairs; a later duplicate key replaces the earlier value.
    public init(_ pairs: [(String, JSONValue)]) {
        members.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }

    /// The keys, in insertion order.
    public var keys: [String] { members.map(\.key) }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        return members.firstIndex { $0.key == key }
    }

    public subscript(key: String) -> JSONValue? {
        get { position(of: key).map { members[$0].value } }
        set {
            if let position = position(of: key) {
                if let newValue {
                    members[position].value = newValue
                } else {
                    members.remove(at: position)
                    rebuildIndex()
                }
            } else if let newValue {
                members.append(Member(key: key, value: newValue))
                if index != nil {
                    index![key] = members.count - 1
                } else if members.count > Self.indexThreshold {
                    rebuildIndex()
                }
            }
        }
    }

    private mutating func rebuildIndex() {
        guard members.count > Self.indexThreshold else {
            index = nil
            return
        }
        var positions: [String: Int] = [:]
        positions.reserveCapacity(members.count)
        for (position, member) in members.enumerated() { positions[member.key] = position }
        index = positions
    }

    public func makeIterator() -> some IteratorProtocol<(key: String, value: JSONValue)> {
        var iterator = members.makeIterator()
        return AnyIterator<(key: String, value: JSONValue)> {
            iterator.next().map { (key: $0.key, value: $0.value) }
        }
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for (position, member) in lhs.members.enumerated() {
            // Same order (the usual case): no lookup.
            let other = rhs.members[position]
            if other.key == member.key {
                if other.value != member.value { return false }
            } else if rhs[member.key] != member.value {
                return false
            }
        }
        return true
    }

    /// Independent of member order, as ``==`` is.
    public func hash(into hasher: inout Hasher) {
        var combined = 0
        for member in members {
            var memberHasher = Hasher()
            memberHasher.combine(member.key)
            memberHasher.combine(member.value)
            combined ^= memberHasher.finalize()
        }
        hasher.combine(members.count)
        hasher.combine(combined)
    }
}

/// A location inside a decoded message, used to name the offending field in errors
/// (e.g. `cpd.components[0].profiles[1].qos-guarantees.entries[0].from`).
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    public enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    public var components: [Component]

    public init(_ components: [Component] = []) { self.components = components }

    public static let root = JSONPath()

    /// The path extended by an object key.
    public func appending(_ key: String) -> JSONPath { appending(component: .key(key)) }
    /// The path extended by an array index.
    public func appending(index: Int) -> JSONPath { appending(component: .index(index)) }

    /// One allocation, sized for a few more components (paths grow as a decoder descends).
    private func appending(component: Component) -> JSONPath {
        var extended: [Component] = []
        extended.reserveCapacity(components.count + 4)
        extended.append(contentsOf: components)
        extended.append(component)
        return JSONPath(extended)
    }

    public var description: String {
        var out = ""
        for component in components {
            switch component {
            case .key(let key):
                if !out.isEmpty { out += "." }
                out += key
            case .index(let index):
                out += "[\(index)]"
            }
        }
        return out.isEmpty ? "$" : out
    }
}
