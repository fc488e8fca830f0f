public import CPNPCore
import Foundation
import Yams

/// A partner provider this provider may order from what its own network cannot serve (RFC 8921
/// §8.8, cascaded negotiation; docs/design/cascade.md): `upstreams[]` in the configuration.
public struct UpstreamProvider: Sendable, Hashable {
    /// `name`: how logs, the console and `cpnpd admin` name it.
    public var name: String
    /// `address`: HOST[:PORT] of its CPNP server, or a domain with `_cpnp._udp` SRV records.
    public var address: String
    /// `pki.ca`, `pki.cert`, `pki.key`: the CA its server certificate chains to, and this provider's
    /// client certificate and key there (relative to the configuration file's directory).
    public var caFile: String
    public var certificateFile: String
    public var keyFile: String
    /// `serves`: where it has presence.
    public var serves: UpstreamCoverage
    /// `resale.markup-percent`: added to its price in the offer to the customer.
    public var markupPercent: CPNPDecimal
    /// `resale.currency`: the currency its prices must be in (an offer in another is not resold).
    public var currency: String?
    /// `expected-response-time`: how long it has to answer a child QUOTATION.
    public var expectedResponseTime: Duration
    /// `max-open-orders`: child orders open with it at most at once.
    public var maxOpenOrders: Int?
    /// `customer-description`: how this provider describes itself to it (RFC 8921 §9.1.10.1).
    public var customerDescription: CustomerDescription?

    public init(
        name: String, address: String, caFile: String, certificateFile: String, keyFile: String, serves: UpstreamCoverage,
        markupPercent: CPNPDecimal = 0, currency: String? = nil, expectedResponseTime: Duration = .seconds(30), maxOpenOrders: Int? = nil,
        customerDescription: CustomerDescription? = nil
    ) {
        self.name = name
        self.address = address
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serves = serves
        self.markupPercent = markupPercent
        self.currency = currency
        self.expectedResponseTime = expectedResponseTime
        self.maxOpenOrders = maxOpenOrders
        self.customerDescription = customerDescription
    }

    /// Whether it may serve `node`: its site id or country is listed, or it is to be asked about any node.
    public func mayServe(_ node: CPDCustomerNode) -> Bool {
        if serves.ask { return true }
        if let site = node.localization.siteID, serves.sites.contains(site) { return true }
        if let country = node.localization.country, serves.countries.contains(country) { return true }
        return false
    }
}

/// Where an upstream provider has presence: `serves.countries`, `serves.sites`, or `serves.ask`
/// (send it every node the local network cannot serve, and let it answer).
public struct UpstreamCoverage: Sendable, Hashable {
    public var countries: [String]
    public var sites: [String]
    public var ask: Bool

    public init(countries: [String] = [], sites: [String] = [], ask: Bool = false) {
        self.countries = countries
        self.sites = sites
        self.ask = ask
    }
}

/// `cascade`: how child orders are negotiated with the `upstreams` (RFC 8921 §8.8, docs/cascade.md).
public struct CascadeConfiguration: Sendable, Hashable {
    /// When the chosen child offers are accepted.
    public enum AcceptChildren: String, Sendable, Hashable, CaseIterable {
        /// Before the offer to the customer is made (RFC 8921 Figure 7): the offer rests on agreements.
        case beforeOffer = "before-offer"
        /// Once the customer accepted, when the child offers are still valid then.
        case afterAccept = "after-accept"
    }

    /// What a child FAIL (or no answer) leads to.
    public enum OnChildFailure: String, Sendable, Hashable, CaseIterable {
        /// An offer without the sites no upstream serves, when something is left to offer.
        case counterOffer = "counter-offer"
        /// FAIL to the customer.
        case fail
    }

    /// `store`: the child orders' client store (SQLite); nil: `cascade.sqlite` beside the database.
    public var store: String?
    /// `accept-children`; default `before-offer`.
    public var acceptChildren: AcceptChildren = .beforeOffer
    /// `on-child-failure`; default `counter-offer`.
    public var onChildFailure: OnChildFailure = .counterOffer
    /// `provider-id`: this provider's name in the `provider-chain` of child requests; nil: `provider.name`.
    public var providerID: String?

    public init(
        store: String? = nil, acceptChildren: AcceptChildren = .beforeOffer, onChildFailure: OnChildFailure = .counterOffer, providerID: String? = nil
    ) {
        self.store = store
        self.acceptChildren = acceptChildren
        self.onChildFailure = onChildFailure
        self.providerID = providerID
    }
}

extension ServerConfiguration {
    /// This provider's name in a `provider-chain` (RFC 8921 §8.8 loops).
    public var cascadeProviderID: String { cascade.providerID ?? provider.name ?? "cpnpd" }

    /// Where the child orders are stored: `cascade.store`, else `cascade.sqlite` beside the SQLite database.
    public var cascadeStorePath: String {
        if let store = cascade.store { return store }
        guard database.url == nil else { return "./.cpnp/cascade.sqlite" }
        return ((database.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("cascade.sqlite")
    }
}

extension ConfigurationParser {
    /// The `cascade` section.
    func cascade(_ node: Node?, at path: JSONPath) -> CascadeConfiguration {
        var cascade = CascadeConfiguration()
        guard let section = reader.map(node, at: path, keys: ["store", "accept-children", "on-child-failure", "provider-id"]) else {
            return cascade
        }
        cascade.store = reader.string(section, "store")
        cascade.acceptChildren =
            reader.enumeration(section, "accept-children", CascadeConfiguration.AcceptChildren.self)
            ?? cascade.acceptChildren
        cascade.onChildFailure =
            reader.enumeration(section, "on-child-failure", CascadeConfiguration.OnChildFailure.self)
            ?? cascade.onChildFailure
        cascade.providerID = reader.string(section, "provider-id")
        return cascade
    }

    static let upstreamKeys = ["name", "address", "pki", "serves", "resale", "expected-response-time", "max-open-orders", "customer-description"]

    /// The `upstreams` section; files are checked to exist (relative to the configuration file).
    func upstreams(_ node: Node?, at path: JSONPath, baseDirectory: String?) -> [UpstreamProvider] {
        var out: [UpstreamProvider] = []
        var names: Set<String> = []
        for entry in reader.mapItems(node, at: path, keys: Self.upstreamKeys) {
            let name = reader.string(entry, "name", required: true)
            if let name, let node = entry["name"], !names.insert(name).inserted {
                reader.error(.duplicateKey, entry.path("name"), node, "another upstream is named \"\(name)\"")
            }
            let address = reader.string(entry, "address", required: true)
            if let address, let node = entry["address"], !Self.isServerAddress(address) {
                reader.invalid(entry.path("address"), node, "must be HOST[:PORT], [IPv6]:PORT, or a domain with _cpnp._udp SRV records")
            }
            var files: [String: String] = [:]
            if let pki = reader.map(entry["pki"], at: entry.path("pki"), keys: ["ca", "cert", "key"]) {
                for key in ["ca", "cert", "key"] {
                    guard let file = reader.string(pki, key, required: true) else { continue }
                    let resolved = file.hasPrefix("/") || baseDirectory == nil ? file : (baseDirectory! as NSString).appendingPathComponent(file)
                    if !FileManager.default.fileExists(atPath: resolved) { reader.invalid(pki.path(key), pki[key], "cannot read \(resolved)") }
                    files[key] = resolved
                }
            } else {
                reader.missing(entry, "pki")
            }
            var coverage = UpstreamCoverage()
            if let serves = reader.map(entry["serves"], at: entry.path("serves"), keys: ["countries", "sites", "ask"]) {
                coverage.countries = countries(serves, "countries") ?? []
                coverage.sites = reader.strings(serves, "sites") ?? []
                coverage.ask = reader.bool(serves, "ask") ?? false
                if coverage.countries.isEmpty && coverage.sites.isEmpty && !coverage.ask {
                    reader.invalid(entry.path("serves"), serves.node, "name countries, sites, or ask: true")
                }
            } else {
                reader.missing(entry, "serves")
            }
            var markup: CPNPDecimal = 0
            var currency: String?
            if let resale = reader.map(entry["resale"], at: entry.path("resale"), keys: ["markup-percent", "currency"]) {
                markup = reader.decimal(resale, "markup-percent", .nonNegative) ?? 0
                currency = reader.string(resale, "currency")
                if let code = currency, let node = resale["currency"],
                    !(code.utf8.count == 3 && code.utf8.allSatisfy({ (0x41...0x5a).contains($0) }))
                {
                    reader.invalid(resale.path("currency"), node, "an ISO 4217 code, e.g. EUR")
                }
            }
            let expected = reader.duration(entry, "expected-response-time") ?? .seconds(30)
            let maxOpen = reader.integer(entry, "max-open-orders", in: 1...1_000_000)
            var description: CustomerDescription?
            if let customerDescription = reader.map(
                entry["customer-description"], at: entry.path("customer-description"),
                keys: ["name", "email"])
            {
                description = CustomerDescription(
                    name: reader.string(customerDescription, "name"),
                    contact: reader.string(customerDescription, "email").map { ContactInformation(email: $0) })
            }
            guard let name, let address, let caFile = files["ca"], let cert = files["cert"], let key = files["key"] else { continue }
            out.append(
                UpstreamProvider(
                    name: name, address: address, caFile: caFile, certificateFile: cert, keyFile: key, serves: coverage, markupPercent: markup,
                    currency: currency, expectedResponseTime: expected, maxOpenOrders: maxOpen, customerDescription: description))
        }
        return out
    }

    /// HOST, HOST:PORT, [IPv6]:PORT or a bare IPv6 literal; HOST a DNS name or an IPv4 literal.
    static func isServerAddress(_ text: String) -> Bool {
        var host = Substring(text)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let rest = host[host.index(after: close)...]
            if !rest.isEmpty { guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else { return false } }
            return host.count > 2
        }
        if host.filter({ $0 == ":" }).count == 1, let colon = host.lastIndex(of: ":") {
            guard let port = Int(host[host.index(after: colon)...]), (1...65535).contains(port) else { return false }
            host = host[..<colon]
        }
        guard !host.isEmpty, host.count <= 253 else { return false }
        if host.contains(":") { return true }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
