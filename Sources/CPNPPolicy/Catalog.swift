public import CPNPCore
import Foundation
import Yams

/// One entry of the provider's service catalogue (`catalog` in the configuration;
/// docs/console.md): a named CPD a customer can request a quote from in the portal (RFC 8921 §6,
/// deployment model 2). Its loose values (§8.7) are the ones the customer may fill in.
public struct CatalogTemplate: Sendable, Hashable {
    /// `id`: the template's name in URLs and in `cpnp catalog` (letters, digits, `-`, `_`, `.`).
    public var id: String
    /// `name`: the title customers see, e.g. "L3VPN, 3 sites".
    public var name: String
    /// `description`: one paragraph for customers.
    public var description: String?
    /// `customers`: the identities that see the template; nil: every customer.
    public var customers: [String]?
    /// `cpd` (inline) or `cpd-file` (a JSON file): the Connectivity Provisioning Document requested.
    public var cpd: CPD
    /// `labels`: a caption per open field, keyed by the field's path (`components[0].…`).
    public var labels: [String: String]

    public init(id: String, name: String, description: String? = nil, customers: [String]? = nil, cpd: CPD, labels: [String: String] = [:]) {
        self.id = id
        self.name = name
        self.description = description
        self.customers = customers
        self.cpd = cpd
        self.labels = labels
    }

    /// Whether the customer with profile identity `identity` sees this template.
    public func isOffered(to identity: String) -> Bool {
        guard let customers else { return true }
        return customers.contains { CustomerProfile.asciiLowercased($0) == CustomerProfile.asciiLowercased(identity) }
    }

    /// The caption of an open field: its label, else words made from its path and the CPD
    /// (e.g. "CE-PAR-1 incoming bandwidth (Mbit/s)").
    public func label(for field: CPDOpenField) -> String {
        if let label = labels[field.path.description] { return label }
        return Self.caption(for: field.path, in: cpd)
    }

    static func caption(for path: JSONPath, in cpd: CPD) -> String {
        guard case .key(let key)? = path.components.last else { return path.description }
        let words: [String: String] = [
            "incoming-bandwidth-mbps": "incoming bandwidth (Mbit/s)", "outgoing-bandwidth-mbps": "outgoing bandwidth (Mbit/s)",
            "one-way-delay-ms": "one-way delay (ms)", "delay-variation-ms": "delay variation (ms)", "loss-percent": "loss (%)",
            "throughput-mbps": "throughput (Mbit/s)", "availability-percent": "availability (%)", "mtu-bytes": "MTU (bytes)",
            "interval-seconds": "notification interval (s)", "reachability": "reachability", "type": "invocation type",
        ]
        let what = words[key] ?? key
        // The entry the field belongs to names its node(s).
        let json = cpd.json
        var node: JSONValue? = json
        for component in path.components.dropLast() {
            switch (node, component) {
            case (.object(let o)?, .key(let k)): node = o[k]
            case (.array(let a)?, .index(let i)): node = a.indices.contains(i) ? a[i] : nil
            default: node = nil
            }
        }
        if case .object(let entry)? = node {
            if case .string(let n)? = entry["customer-node"] {
                if case .string(let d)? = entry["direction"] { return "\(n) \(d) \(what)" }
                return "\(n) \(what)"
            }
            if case .string(let from)? = entry["from"], case .string(let to)? = entry["to"] { return "\(from) → \(to) \(what)" }
        }
        return what
    }
}

extension ConfigurationParser {
    static let catalogKeys = ["id", "name", "description", "customers", "cpd", "cpd-file", "labels"]

    /// The `catalog` section: each template's CPD is decoded and validated as a QUOTATION's would
    /// be, and its errors are named by their path inside the template (`catalog[0].cpd.components[0]…`).
    func catalog(_ node: Node?, at path: JSONPath, customers: [CustomerProfile], baseDirectory: String?) -> [CatalogTemplate] {
        var out: [CatalogTemplate] = []
        var seen: Set<String> = []
        for m in r.mapItems(node, at: path, keys: Self.catalogKeys) {
            let id = r.string(m, "id", required: true)
            if let id, let node = m["id"] {
                if !id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                    r.invalid(m.path("id"), node, "use letters, digits, \"-\", \"_\" and \".\" only (it appears in URLs)")
                } else if !seen.insert(id).inserted {
                    r.error(.duplicateKey, m.path("id"), node, "another template has the id \"\(id)\"")
                }
            }
            let name = r.string(m, "name", required: true)
            var visibleTo: [String]?
            if let list = r.list(m["customers"], at: m.path("customers")) {
                visibleTo = list.compactMap { item in
                    guard let identity = r.string(item.node, at: item.path) else { return nil }
                    if !customers.contains(where: { $0.matches(identities: [identity]) }) {
                        r.error(.unknownReference, item.path, item.node, "unknown customer identity \"\(identity)\" (not in customers)")
                    }
                    return identity
                }
            }
            let cpd = templateDocument(m, baseDirectory: baseDirectory)
            var labels: [String: String] = [:]
            if let l = m["labels"] {
                if case .mapping(let pairs) = l {
                    let open = Set((cpd?.openFields ?? []).map(\.path.description))
                    for (k, v) in pairs {
                        guard case .scalar(let key) = k, let caption = r.string(v, at: m.path("labels").appending(key.string)) else { continue }
                        if cpd != nil, !open.contains(key.string) {
                            r.invalid(m.path("labels").appending(key.string), k, "not a loose value of the template's CPD (open fields: \(open.sorted().joined(separator: ", ")))")
                        }
                        labels[key.string] = caption
                    }
                } else {
                    r.error(.wrongType, m.path("labels"), l, "expected a mapping of field paths to captions")
                }
            }
            guard let id, let name, let cpd else { continue }
            out.append(CatalogTemplate(id: id, name: name, description: r.string(m, "description"), customers: visibleTo, cpd: cpd, labels: labels))
        }
        return out
    }

    private func templateDocument(_ m: YAMLReader.Map, baseDirectory: String?) -> CPD? {
        let json: JSONValue
        let base: JSONPath
        switch (m["cpd"], m["cpd-file"]) {
        case (nil, nil):
            r.error(.missingKey, m.path("cpd"), m.node, "missing required key (cpd, or cpd-file)")
            return nil
        case (_?, _?):
            r.invalid(m.path("cpd-file"), m["cpd-file"], "give cpd or cpd-file, not both")
            return nil
        case (let inline?, nil):
            base = m.path("cpd")
            guard let j = YAMLReader.json(inline) else {
                r.invalid(base, inline, "not a JSON-compatible document (mappings with string keys, lists and scalars only)")
                return nil
            }
            json = j
        case (nil, let fileNode?):
            base = m.path("cpd-file")
            guard let file = r.string(fileNode, at: base) else { return nil }
            let resolved = file.hasPrefix("/") || baseDirectory == nil ? file : (baseDirectory! as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: resolved) else {
                r.invalid(base, fileNode, "cannot read \(resolved)")
                return nil
            }
            do {
                json = try JSONParser.parse(Array(data), limits: .stream)
            } catch {
                r.invalid(base, fileNode, "\(resolved): \(error)")
                return nil
            }
        }
        let cpd: CPD
        do {
            cpd = try CPD(json: json, at: .root)
        } catch {
            r.invalid(JSONPath(base.components + error.path.components), m["cpd"] ?? m["cpd-file"], "\(error.reason) (\(error.code.rawValue))")
            return nil
        }
        let problems = cpd.validate(at: .root).filter { $0.severity == .error }
        for p in problems {
            r.invalid(JSONPath(base.components + p.path.components), m["cpd"] ?? m["cpd-file"], p.message)
        }
        return problems.isEmpty ? cpd : nil
    }
}

extension YAMLReader {
    /// A YAML node as JSON: plain scalars `null`, `true`/`false` and numbers are typed, every
    /// quoted scalar is a string. Nil for non-string keys or values JSON cannot hold.
    static func json(_ node: Node) -> JSONValue? {
        switch node {
        case .scalar(let s):
            guard s.style == .plain || s.style == .any else { return .string(s.string) }
            if isNull(node) { return .null }
            switch s.string {
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if let number = CPNPDecimal(parsing: s.string) { return .number(number) }
            return .string(s.string)
        case .sequence(let items):
            var out: [JSONValue] = []
            for item in items {
                guard let j = json(item) else { return nil }
                out.append(j)
            }
            return .array(out)
        case .mapping(let pairs):
            var object = JSONObject()
            for (k, v) in pairs {
                guard case .scalar(let key) = k, let j = json(v) else { return nil }
                object[key.string] = j
            }
            return .object(object)
        }
    }
}
