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
            case (.object(let object)?, .key(let member)): node = object[member]
            case (.array(let array)?, .index(let index)): node = array.indices.contains(index) ? array[index] : nil
            default: node = nil
            }
        }
        if case .object(let entry)? = node {
            if case .string(let nodeName)? = entry["customer-node"] {
                if case .string(let direction)? = entry["direction"] { return "\(nodeName) \(direction) \(what)" }
                return "\(nodeName) \(what)"
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
        for entry in reader.mapItems(node, at: path, keys: Self.catalogKeys) {
            let templateID = reader.string(entry, "id", required: true)
            if let templateID, let node = entry["id"] {
                if !templateID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                    reader.invalid(entry.path("id"), node, "use letters, digits, \"-\", \"_\" and \".\" only (it appears in URLs)")
                } else if !seen.insert(templateID).inserted {
                    reader.error(.duplicateKey, entry.path("id"), node, "another template has the id \"\(templateID)\"")
                }
            }
            let name = reader.string(entry, "name", required: true)
            var visibleTo: [String]?
            if let list = reader.list(entry["customers"], at: entry.path("customers")) {
                visibleTo = list.compactMap { item in
                    guard let identity = reader.string(item.node, at: item.path) else { return nil }
                    if !customers.contains(where: { $0.matches(identities: [identity]) }) {
                        reader.error(.unknownReference, item.path, item.node, "unknown customer identity \"\(identity)\" (not in customers)")
                    }
                    return identity
                }
            }
            let cpd = templateDocument(entry, baseDirectory: baseDirectory)
            var labels: [String: String] = [:]
            if let labelsNode = entry["labels"] {
                if case .mapping(let pairs) = labelsNode {
                    let open = Set((cpd?.openFields ?? []).map(\.path.description))
                    for (keyNode, valueNode) in pairs {
                        guard case .scalar(let key) = keyNode,
                            let caption = reader.string(valueNode, at: entry.path("labels").appending(key.string))
                        else { continue }
                        if cpd != nil, !open.contains(key.string) {
                            reader.invalid(
                                entry.path("labels").appending(key.string), keyNode,
                                "not a loose value of the template's CPD (open fields: \(open.sorted().joined(separator: ", ")))")
                        }
                        labels[key.string] = caption
                    }
                } else {
                    reader.error(.wrongType, entry.path("labels"), labelsNode, "expected a mapping of field paths to captions")
                }
            }
            guard let templateID, let name, let cpd else { continue }
            out.append(
                CatalogTemplate(
                    id: templateID, name: name, description: reader.string(entry, "description"), customers: visibleTo,
                    cpd: cpd, labels: labels))
        }
        return out
    }

    private func templateDocument(_ entry: YAMLReader.Map, baseDirectory: String?) -> CPD? {
        let json: JSONValue
        let base: JSONPath
        switch (entry["cpd"], entry["cpd-file"]) {
        case (nil, nil):
            reader.error(.missingKey, entry.path("cpd"), entry.node, "missing required key (cpd, or cpd-file)")
            return nil
        case (_?, _?):
            reader.invalid(entry.path("cpd-file"), entry["cpd-file"], "give cpd or cpd-file, not both")
            return nil
        case (let inline?, nil):
            base = entry.path("cpd")
            guard let converted = YAMLReader.json(inline) else {
                reader.invalid(base, inline, "not a JSON-compatible document (mappings with string keys, lists and scalars only)")
                return nil
            }
            json = converted
        case (nil, let fileNode?):
            base = entry.path("cpd-file")
            guard let file = reader.string(fileNode, at: base) else { return nil }
            let resolved = file.hasPrefix("/") || baseDirectory == nil ? file : (baseDirectory! as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: resolved) else {
                reader.invalid(base, fileNode, "cannot read \(resolved)")
                return nil
            }
            do {
                json = try JSONParser.parse(Array(data), limits: .stream)
            } catch {
                reader.invalid(base, fileNode, "\(resolved): \(error)")
                return nil
            }
        }
        let cpd: CPD
        do {
            cpd = try CPD(json: json, at: .root)
        } catch {
            reader.invalid(
                JSONPath(base.components + error.path.components), entry["cpd"] ?? entry["cpd-file"],
                "\(error.reason) (\(error.code.rawValue))")
            return nil
        }
        let problems = cpd.validate(at: .root).filter { $0.severity == .error }
        for problem in problems {
            reader.invalid(JSONPath(base.components + problem.path.components), entry["cpd"] ?? entry["cpd-file"], problem.message)
        }
        return problems.isEmpty ? cpd : nil
    }
}

extension YAMLReader {
    /// A YAML node as JSON: plain scalars `null`, `true`/`false` and numbers are typed, every
    /// quoted scalar is a string. Nil for non-string keys or values JSON cannot hold.
    static func json(_ node: Node) -> JSONValue? {
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain || scalar.style == .any else { return .string(scalar.string) }
            if isNull(node) { return .null }
            switch scalar.string {
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if let number = CPNPDecimal(parsing: scalar.string) { return .number(number) }
            return .string(scalar.string)
        case .sequence(let items):
            var out: [JSONValue] = []
            for item in items {
                guard let converted = json(item) else { return nil }
                out.append(converted)
            }
            return .array(out)
        case .mapping(let pairs):
            var object = JSONObject()
            for (keyNode, valueNode) in pairs {
                guard case .scalar(let key) = keyNode, let converted = json(valueNode) else { return nil }
                object[key.string] = converted
            }
            return .object(object)
        }
    }
}
