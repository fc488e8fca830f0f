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
                append(newKey: key, newValue)
            }
        }
    }

    /// Appends a member whose key is not in the object: the parser, which checked it when it read
    /// the key, stores the value without looking for the key a second time.
    mutating func append(newKey key: String, _ value: JSONValue) {
        members.append(Member(key: key, value: value))
        if index != nil {
            index![key] = members.count - 1
        } else if members.count > Self.indexThreshold {
            rebuildIndex()
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
///
/// Decoders and validators extend a path at every field they descend into, and almost never report
/// it: a path is a chain of shared nodes, so extending one is one small allocation whatever its depth,
/// and the components are listed only when asked for.
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    public enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    /// The last component, linked to the path it extends.
    final class Node: Sendable {
        let parent: Node?
        let component: Component
        let count: Int

        init(parent: Node?, component: Component) {
            self.parent = parent
            self.component = component
            self.count = (parent?.count ?? 0) + 1
        }
    }

    private let tail: Node?

    private init(tail: Node?) { self.tail = tail }

    public init(_ components: [Component] = []) {
        var tail: Node?
        for component in components { tail = Node(parent: tail, component: component) }
        self.tail = tail
    }

    public static let root = JSONPath()

    /// From the root to the named value.
    public var components: [Component] {
        guard let tail else { return [] }
        var out = [Component](repeating: .index(0), count: tail.count)
        var node: Node? = tail
        while let current = node {
            out[current.count - 1] = current.component
            node = current.parent
        }
        return out
    }

    /// The last component (the field's own key or index); nil at the root.
    public var last: Component? { tail?.component }

    /// The number of components.
    public var count: Int { tail?.count ?? 0 }

    /// The path extended by an object key.
    public func appending(_ key: String) -> JSONPath { JSONPath(tail: Node(parent: tail, component: .key(key))) }
    /// The path extended by an array index.
    public func appending(index: Int) -> JSONPath { JSONPath(tail: Node(parent: tail, component: .index(index))) }

    /// This path followed by `other` (a path relative to the value this path names).
    public func appending(contentsOf other: JSONPath) -> JSONPath {
        var tail = self.tail
        for component in other.components { tail = Node(parent: tail, component: component) }
        return JSONPath(tail: tail)
    }

    public static func == (lhs: JSONPath, rhs: JSONPath) -> Bool {
        var left = lhs.tail
        var right = rhs.tail
        while let l = left, let r = right {
            if l === r { return true }
            guard l.count == r.count, l.component == r.component else { return false }
            left = l.parent
            right = r.parent
        }
        return left == nil && right == nil
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(components)
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
