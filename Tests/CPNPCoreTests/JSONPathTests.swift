// JSONPath is a chain of shared nodes (Sources/CPNPCore/Codec/JSONValue.swift): paths built by
// appending, from an array, or by joining two paths name the same field, compare and hash alike.
import Testing

@testable import CPNPCore

@Suite struct JSONPathTests {
    static let components: [JSONPath.Component] = [.key("cpd"), .key("components"), .index(0), .key("profiles"), .index(12), .key("from")]

    static func appended(_ components: [JSONPath.Component], to base: JSONPath = .root) -> JSONPath {
        components.reduce(base) { path, component in
            switch component {
            case .key(let key): path.appending(key)
            case .index(let index): path.appending(index: index)
            }
        }
    }

    @Test func appendingAndTheArrayInitialiserBuildTheSamePath() {
        let built = Self.appended(Self.components)
        let listed = JSONPath(Self.components)
        #expect(built.components == Self.components)
        #expect(listed.components == Self.components)
        #expect(built == listed)
        #expect(built.hashValue == listed.hashValue)
        #expect(built.count == 6)
        #expect(built.last == .key("from"))
        #expect(built.description == "cpd.components[0].profiles[12].from")
    }

    @Test func theRootIsEmpty() {
        #expect(JSONPath.root.components.isEmpty)
        #expect(JSONPath.root.count == 0)
        #expect(JSONPath.root.last == nil)
        #expect(JSONPath.root.description == "$")
        #expect(JSONPath.root == JSONPath([]))
        #expect(JSONPath.root != JSONPath.root.appending("cpd"))
    }

    @Test func extendingAPathLeavesItAndItsOtherExtensionsAsTheyWere() {
        let base = JSONPath.root.appending("cpd").appending("components")
        let first = base.appending(index: 0)
        let second = base.appending(index: 1)
        #expect(base.description == "cpd.components")
        #expect(first.description == "cpd.components[0]")
        #expect(second.description == "cpd.components[1]")
        #expect(first != second)
        #expect(first != base)
    }

    @Test func pathsThatDifferInOneComponentOrInLengthDiffer() {
        let path = JSONPath(Self.components)
        for i in Self.components.indices {
            var changed = Self.components
            changed[i] =
                switch changed[i] {
                case .key(let key): .key(key + "x")
                case .index(let index): .index(index + 1)
                }
            #expect(JSONPath(changed) != path, "component \(i)")
        }
        #expect(JSONPath(Array(Self.components.dropLast())) != path)
        #expect(JSONPath(Self.components + [.index(0)]) != path)
        // A key and an index never match, even when they read alike.
        #expect(JSONPath([.key("0")]) != JSONPath([.index(0)]))
    }

    @Test func joiningTwoPathsAppendsTheSecondToTheFirst() {
        let base = JSONPath(Array(Self.components.prefix(2)))
        let relative = JSONPath(Array(Self.components.dropFirst(2)))
        let joined = base.appending(contentsOf: relative)
        #expect(joined == JSONPath(Self.components))
        #expect(base.appending(contentsOf: .root) == base)
        #expect(JSONPath.root.appending(contentsOf: relative) == relative)
    }

    @Test func equalPathsAreOneKeyOfADictionary() {
        var labels: [JSONPath: String] = [:]
        labels[JSONPath(Self.components)] = "listed"
        labels[Self.appended(Self.components)] = "built"
        #expect(labels.count == 1)
        #expect(labels[JSONPath(Self.components)] == "built")
    }
}
