import CPNPCore
import Foundation
import Yams

/// Loads a ``ServerConfiguration`` from YAML (the `cpnpd --config FILE` and
/// `cpnpd check-config FILE` formats, documented in `docs/configuration.md`).
///
/// Every problem is collected with its path (`policy.links[2].capacity-mbps: must be a
/// positive number`, `customers[0].source-prefixes[1]: not a CIDR prefix …`, unknown keys with
/// a did-you-mean); loading never stops at the first one. Absent keys take their documented
/// defaults; absent sections are empty (no PE, no link, no customer).
public enum ConfigurationLoader {
    /// The top-level keys.
    public static let topLevelKeys = [
        "listen", "pki", "database", "timers", "provider", "policy", "customers",
        "pricing", "approval", "provisioning", "rate-limits", "limits", "http", "catalog", "upstreams", "cascade",
    ]

    /// Parses and checks a configuration.
    ///
    /// - Parameter yaml: the YAML text (one document).
    /// - Returns: the configuration, or every error found.
    ///   - baseDirectory: where relative `cpd-file` paths of the catalogue are (default: the working directory).
    public static func load(yaml: String, baseDirectory: String? = nil) -> Result<ServerConfiguration, ConfigurationErrors> {
        load(yaml: yaml, reader: YAMLReader(), baseDirectory: baseDirectory)
    }

    /// ``load(yaml:)`` with the reader given (tests inspect the keys it was asked about).
    static func load(yaml: String, reader: YAMLReader, baseDirectory: String? = nil) -> Result<ServerConfiguration, ConfigurationErrors> {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            return .failure(ConfigurationErrors([syntaxError(error)]))
        }
        let config = ConfigurationParser(reader, baseDirectory: baseDirectory).parse(root)
        guard !reader.errors.isEmpty else { return .success(config) }
        // Document order: by line, then in the order found.
        let ordered = reader.errors.enumerated().sorted { first, second in
            (first.element.line ?? .max, first.offset) < (second.element.line ?? .max, second.offset)
        }.map(\.element)
        return .failure(ConfigurationErrors(ordered))
    }

    /// Reads a file and loads it (with the catalogue's `cpd-file`s, the only I/O of this module).
    /// Relative `cpd-file` paths are resolved against the file's directory.
    ///
    /// - Parameter path: the configuration file.
    /// - Returns: the configuration, or every error found (an unreadable file is one error at `$`).
    public static func load(contentsOfFile path: String) -> Result<ServerConfiguration, ConfigurationErrors> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(ConfigurationErrors([ConfigurationError(.syntax, at: .root, "cannot read \(path)")]))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure(ConfigurationErrors([ConfigurationError(.syntax, at: .root, "\(path) is not UTF-8 text")]))
        }
        return load(yaml: text, baseDirectory: (path as NSString).deletingLastPathComponent)
    }

    private static func syntaxError(_ error: any Error) -> ConfigurationError {
        if let yamlError = error as? YamlError {
            switch yamlError {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                .composer(let context, let problem, let mark, _):
                let contextText = context.map { "\($0.text) " } ?? ""
                return ConfigurationError(
                    .syntax, at: .root,
                    "not valid YAML: \(contextText)\(problem) (line \(mark.line), column \(mark.column))",
                    line: mark.line)
            case .reader(let problem, _, _, _):
                return ConfigurationError(.syntax, at: .root, "not valid YAML: \(problem)")
            default:
                break
            }
        }
        return ConfigurationError(.syntax, at: .root, "not valid YAML: \(error)")
    }
}

/// The section-by-section parser; cross-references are checked as soon as their targets are known.
struct ConfigurationParser {
    let reader: YAMLReader
    let baseDirectory: String?

    init(_ reader: YAMLReader, baseDirectory: String? = nil) {
        self.reader = reader
        self.baseDirectory = baseDirectory
    }

    func parse(_ root: Node?) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        guard let document = reader.map(root, at: .root, keys: ConfigurationLoader.topLevelKeys) else { return configuration }
        let listenKeys = ["host", "port", "transport", "rcvbuf", "plain-udp-customer", "reuse-port"]
        if let section = reader.map(document["listen"], at: document.path("listen"), keys: listenKeys) {
            configuration.listen = listen(section)
        }
        if let section = reader.map(document["pki"], at: document.path("pki"), keys: ["directory", "ca", "cert", "key"]) {
            configuration.pki = pki(section)
        }
        if let section = reader.map(document["database"], at: document.path("database"), keys: ["path", "url"]) {
            configuration.database.path = reader.string(section, "path") ?? configuration.database.path
            if let node = section["path"], let problem = DatabaseConfiguration.problem(with: configuration.database.path) {
                reader.invalid(section.path("path"), node, problem)
            }
            configuration.database.url = reader.string(section, "url")
            if let node = section["url"], let url = configuration.database.url, !DatabaseConfiguration.isPostgresURL(url) {
                reader.invalid(section.path("url"), node, "not a PostgreSQL URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
            }
        }
        if let section = reader.map(
            document["http"], at: document.path("http"),
            keys: [
                "enabled", "listen", "operator-token-file", "tls", "operator-identities", "portal-store", "customer-webhooks-to-private-addresses",
            ])
        {
            configuration.http.enabled = reader.bool(section, "enabled") ?? configuration.http.enabled
            if let node = section["listen"], let text = reader.string(section, "listen") {
                if let (host, port) = HTTPConfiguration.address(text) {
                    (configuration.http.host, configuration.http.port) = (host, port)
                } else {
                    reader.invalid(section.path("listen"), node, "must be HOST:PORT, e.g. 127.0.0.1:8922")
                }
            }
            configuration.http.operatorTokenFile = reader.string(section, "operator-token-file") ?? configuration.http.operatorTokenFile
            configuration.http.tls = reader.bool(section, "tls") ?? configuration.http.tls
            configuration.http.operatorIdentities = reader.strings(section, "operator-identities") ?? configuration.http.operatorIdentities
            configuration.http.portalStore = reader.string(section, "portal-store") ?? configuration.http.portalStore
            configuration.http.customerWebhooksToPrivateAddresses =
                reader.bool(section, "customer-webhooks-to-private-addresses")
                ?? configuration.http.customerWebhooksToPrivateAddresses
        }
        if let section = reader.map(
            document["timers"], at: document.path("timers"),
            keys: ["retransmission", "offer-validity", "expected-offer-time", "approval-expected-offer-time", "more-time"])
        {
            configuration.timers = timers(section)
        }
        if let section = reader.map(document["provider"], at: document.path("provider"), keys: ["name", "as-number", "contact"]) {
            configuration.provider = provider(section)
        }
        if let section = reader.map(
            document["policy"], at: document.path("policy"),
            keys: ["activation-types", "network-presence", "links", "qos", "defaults", "counter-offers"])
        {
            configuration.policy = policy(section)
        }
        if let section = reader.map(document["pricing"], at: document.path("pricing"), keys: Self.pricingKeys) {
            configuration.pricing = pricing(section, base: PricingRule())
        }
        configuration.customers = customers(
            document["customers"], at: document.path("customers"),
            policy: configuration.policy, pricing: configuration.pricing)
        if let customerIdentity = configuration.listen.plainUDPCustomer,
            let listen = reader.map(document["listen"], at: document.path("listen"), keys: listenKeys)
        {
            let path = listen.path("plain-udp-customer")
            if configuration.listen.transport != .plainUDP {
                reader.error(.invalidValue, path, listen["plain-udp-customer"], "only allowed with transport: plain-udp")
            } else if configuration.customerProfile(matching: [customerIdentity]) == nil {
                reader.error(
                    .unknownReference, path, listen["plain-udp-customer"],
                    "unknown customer identity \"\(customerIdentity)\" (not in customers)")
            }
        }
        if let section = reader.map(
            document["approval"], at: document.path("approval"),
            keys: ["mode", "rules", "escalate-out-of-resources"])
        {
            configuration.approval = approval(section, customers: configuration.customers)
        }
        if let section = reader.map(
            document["provisioning"], at: document.path("provisioning"),
            keys: ["command", "http-url", "events", "timeout", "retry"])
        {
            configuration.provisioning = provisioning(section)
        }
        if let section = reader.map(
            document["rate-limits"], at: document.path("rate-limits"),
            keys: ["quotations-per-minute", "fails-per-minute"])
        {
            configuration.rateLimits.quotationsPerMinute =
                reader.integer(section, "quotations-per-minute", in: 1...1_000_000)
                ?? configuration.rateLimits.quotationsPerMinute
            configuration.rateLimits.failsPerMinute =
                reader.integer(section, "fails-per-minute", in: 1...1_000_000)
                ?? configuration.rateLimits.failsPerMinute
        }
        if let section = reader.map(
            document["limits"], at: document.path("limits"),
            keys: [
                "max-associations", "association-idle-timeout", "max-datagram-bytes",
                "default-max-open-orders", "max-pending-approvals",
            ])
        {
            configuration.limits = limits(section)
        }
        configuration.catalog = catalog(
            document["catalog"], at: document.path("catalog"), customers: configuration.customers,
            baseDirectory: baseDirectory)
        configuration.upstreams = upstreams(document["upstreams"], at: document.path("upstreams"), baseDirectory: baseDirectory)
        configuration.cascade = cascade(document["cascade"], at: document.path("cascade"))
        if !configuration.upstreams.isEmpty, configuration.database.url != nil, let node = document["upstreams"] {
            reader.invalid(
                document.path("upstreams"), node,
                "child orders are negotiated by one cpnpd with a SQLite database; several cpnpd on PostgreSQL cannot share them yet")
        }
        return configuration
    }

    // MARK: sections

    func listen(_ section: YAMLReader.Map) -> ListenConfiguration {
        var listen = ListenConfiguration()
        listen.host = reader.string(section, "host") ?? listen.host
        if let port = reader.integer(section, "port", in: 0...65535) { listen.port = UInt16(port) }
        listen.transport = reader.enumeration(section, "transport", TransportKind.self) ?? listen.transport
        listen.receiveBufferBytes = reader.size(section, "rcvbuf")
        listen.plainUDPCustomer = reader.string(section, "plain-udp-customer")
        listen.reusePort = reader.bool(section, "reuse-port") ?? false
        if listen.reusePort, listen.transport != .dtls, let node = section["reuse-port"] {
            reader.invalid(section.path("reuse-port"), node, "works with transport dtls only")
        }
        return listen
    }

    func pki(_ section: YAMLReader.Map) -> PKIConfiguration {
        var pki = PKIConfiguration()
        pki.directory = reader.string(section, "directory") ?? pki.directory
        pki.caFile = reader.string(section, "ca") ?? pki.caFile
        pki.certificateFile = reader.string(section, "cert") ?? pki.certificateFile
        pki.keyFile = reader.string(section, "key") ?? pki.keyFile
        return pki
    }

    func timers(_ section: YAMLReader.Map) -> TimerConfiguration {
        var timers = TimerConfiguration()
        if let retransmission = reader.map(
            section["retransmission"], at: section.path("retransmission"),
            keys: ["initial", "max-retries"])
        {
            timers.retransmissionInitial = reader.duration(retransmission, "initial") ?? timers.retransmissionInitial
            timers.retransmissionMaxRetries = reader.integer(retransmission, "max-retries", in: 0...10) ?? timers.retransmissionMaxRetries
        }
        timers.offerValidity = reader.duration(section, "offer-validity") ?? timers.offerValidity
        timers.expectedOfferTime = reader.duration(section, "expected-offer-time") ?? timers.expectedOfferTime
        timers.approvalExpectedOfferTime = reader.duration(section, "approval-expected-offer-time") ?? timers.approvalExpectedOfferTime
        let moreTime = reader.map(
            section["more-time"], at: section.path("more-time"),
            keys: ["request-before", "extension", "max-requests"])
        if let moreTime {
            timers.moreTime.requestBefore = reader.duration(moreTime, "request-before") ?? timers.moreTime.requestBefore
            timers.moreTime.extensionDuration = reader.duration(moreTime, "extension") ?? timers.moreTime.extensionDuration
            timers.moreTime.maximumRequests = reader.integer(moreTime, "max-requests", in: 0...100) ?? timers.moreTime.maximumRequests
        }
        // The request must leave the client time to answer before the expected offer time (§11.2.1).
        if timers.moreTime.maximumRequests > 0, timers.moreTime.requestBefore >= timers.approvalExpectedOfferTime {
            reader.invalid(
                section.path("more-time").appending("request-before"),
                moreTime?["request-before"] ?? section["approval-expected-offer-time"] ?? section.node,
                "must be shorter than timers.approval-expected-offer-time")
        }
        return timers
    }

    func provider(_ section: YAMLReader.Map) -> ProviderDescription {
        var provider = ProviderDescription()
        provider.name = reader.string(section, "name")
        if let node = section["as-number"], let asNumber = reader.integer(node, at: section.path("as-number"), in: 0...Int(UInt32.max)) {
            provider.asNumber = UInt32(asNumber)
        }
        if let contact = reader.map(
            section["contact"], at: section.path("contact"),
            keys: ["email", "postal-address", "telephone-numbers"])
        {
            provider.contact = ContactInformation(
                email: reader.string(contact, "email"),
                postalAddress: reader.string(contact, "postal-address"),
                telephoneNumbers: reader.strings(contact, "telephone-numbers") ?? [])
        }
        return provider
    }

    // MARK: policy

    func policy(_ section: YAMLReader.Map) -> PolicyConfiguration {
        var policy = PolicyConfiguration()
        if let items = reader.list(section["activation-types"], at: section.path("activation-types")) {
            policy.activationTypes = items.compactMap { reader.enumeration($0.node, at: $0.path, ActivationType.self) }
            if items.isEmpty {
                reader.invalid(section.path("activation-types"), section["activation-types"], "must list at least one activation type")
            }
        }

        // Network presence.
        var peFirst: [String: JSONPath] = [:]
        for entry in reader.mapItems(
            section["network-presence"], at: section.path("network-presence"),
            keys: ["pe", "city", "sites", "countries"])
        {
            guard let edgeName = reader.string(entry, "pe", required: true) else { continue }
            if let first = peFirst[edgeName] {
                reader.error(.duplicateIdentifier, entry.path("pe"), entry["pe"], "duplicate PE \"\(edgeName)\" (first at \(first))")
                continue
            }
            peFirst[edgeName] = entry.path("pe")
            var edge = ProviderEdge(id: edgeName)
            edge.city = reader.string(entry, "city")
            edge.sites = reader.strings(entry, "sites") ?? []
            edge.countries = countries(entry, "countries") ?? []
            policy.networkPresence.append(edge)
        }

        // Links.
        var linkFirst: [String: JSONPath] = [:]
        for entry in reader.mapItems(section["links"], at: section.path("links"), keys: ["id", "pe", "capacity-mbps"]) {
            let linkID = reader.string(entry, "id", required: true)
            let edgeName = reader.string(entry, "pe", required: true)
            let capacity = linkCapacity(entry)
            if let linkID {
                if let first = linkFirst[linkID] {
                    reader.error(.duplicateIdentifier, entry.path("id"), entry["id"], "duplicate link \"\(linkID)\" (first at \(first))")
                } else if peFirst[linkID] != nil {
                    reader.invalid(
                        entry.path("id"), entry["id"],
                        "\"\(linkID)\" is already the name of a PE; a link id must differ from PE names")
                } else {
                    linkFirst[linkID] = entry.path("id")
                }
            }
            if let edgeName, peFirst[edgeName] == nil {
                reader.error(.unknownReference, entry.path("pe"), entry["pe"], unknownPE(edgeName, known: Array(peFirst.keys)))
            }
            if let linkID, let edgeName, let capacity, linkFirst[linkID] == entry.path("id") {
                policy.links.append(ProviderLink(id: linkID, pe: edgeName, capacity: capacity))
            }
        }

        if let qosSection = reader.map(
            section["qos"], at: section.path("qos"),
            keys: ["default", "pairs", "availability-percent", "meta-qos-classes"])
        {
            policy.qos = qos(qosSection, knownPEs: peFirst)
        }
        if let defaults = reader.map(
            section["defaults"], at: section.path("defaults"),
            keys: ["bandwidth-mbps", "mtu-bytes", "notification-interval-seconds", "invocation-type"])
        {
            policy.defaults.bandwidthMbps = reader.decimal(defaults, "bandwidth-mbps", .positive) ?? policy.defaults.bandwidthMbps
            policy.defaults.mtuBytes = reader.integer(defaults, "mtu-bytes", in: 68...65535).map(Int64.init) ?? policy.defaults.mtuBytes
            policy.defaults.notificationIntervalSeconds =
                reader.integer(defaults, "notification-interval-seconds", in: 1...86400 * 366).map(Int64.init)
                ?? policy.defaults.notificationIntervalSeconds
            policy.defaults.invocationType =
                reader.enumeration(defaults, "invocation-type", CPDInvocationType.self)
                ?? policy.defaults.invocationType
        }
        if let counterOffers = reader.map(
            section["counter-offers"], at: section.path("counter-offers"),
            keys: ["drop-unserved-sites", "drop-exhausted-sites"])
        {
            policy.counterOffers.dropUnservedSites =
                reader.bool(counterOffers, "drop-unserved-sites")
                ?? policy.counterOffers.dropUnservedSites
            policy.counterOffers.dropExhaustedSites =
                reader.bool(counterOffers, "drop-exhausted-sites")
                ?? policy.counterOffers.dropExhaustedSites
        }
        return policy
    }

    func unknownPE(_ edgeName: String, known: [String]) -> String {
        var message = "unknown PE \"\(edgeName)\" (not in policy.network-presence)"
        if let suggestion = YAMLReader.suggestion(for: edgeName, among: known) { message += "; did you mean \"\(suggestion)\"?" }
        return message
    }

    func linkCapacity(_ entry: YAMLReader.Map) -> LinkCapacity? {
        guard let node = entry["capacity-mbps"] else {
            reader.missing(entry, "capacity-mbps")
            return nil
        }
        let path = entry.path("capacity-mbps")
        if case .mapping = node {
            guard let directions = reader.map(node, at: path, keys: ["incoming", "outgoing"]) else { return nil }
            let incoming = reader.decimal(directions, "incoming", .positive, required: true)
            let outgoing = reader.decimal(directions, "outgoing", .positive, required: true)
            guard let incoming, let outgoing else { return nil }
            return LinkCapacity(incoming: incoming, outgoing: outgoing)
        }
        if case .sequence = node {
            reader.error(.wrongType, path, node, "expected a number or a mapping with incoming and outgoing, found a list")
            return nil
        }
        return reader.decimal(node, at: path, .positive).map { LinkCapacity(symmetric: $0) }
    }

    func qos(_ section: YAMLReader.Map, knownPEs: [String: JSONPath]) -> QoSCapabilities {
        var qos = QoSCapabilities()
        let metricKeys = ["one-way-delay-ms", "delay-variation-ms", "loss-percent"]
        if let defaultSection = reader.map(section["default"], at: section.path("default"), keys: metricKeys) {
            qos.defaultQoS = achievable(defaultSection, base: qos.defaultQoS)
        }
        for pair in reader.mapItems(section["pairs"], at: section.path("pairs"), keys: ["between"] + metricKeys) {
            let values = achievable(pair, base: qos.defaultQoS)
            guard let between = reader.strings(pair, "between") else {
                if pair["between"] == nil { reader.missing(pair, "between") }
                continue
            }
            guard between.count == 2 else {
                reader.invalid(pair.path("between"), pair["between"], "must name exactly two PEs")
                continue
            }
            var known = true
            for (index, edgeName) in between.enumerated() where knownPEs[edgeName] == nil {
                reader.error(
                    .unknownReference, pair.path("between").appending(index: index), pair["between"],
                    unknownPE(edgeName, known: Array(knownPEs.keys)))
                known = false
            }
            if known { qos.pairs.append(QoSPair(first: between[0], second: between[1], qos: values)) }
        }
        qos.availabilityPercent = reader.decimal(section, "availability-percent", .percent) ?? qos.availabilityPercent
        qos.metaQoSClasses = reader.strings(section, "meta-qos-classes") ?? qos.metaQoSClasses
        return qos
    }

    func achievable(_ section: YAMLReader.Map, base: AchievableQoS) -> AchievableQoS {
        var qos = base
        qos.oneWayDelayMs = reader.decimal(section, "one-way-delay-ms", .nonNegative) ?? qos.oneWayDelayMs
        qos.delayVariationMs = reader.decimal(section, "delay-variation-ms", .nonNegative) ?? qos.delayVariationMs
        qos.lossPercent = reader.decimal(section, "loss-percent", .percent) ?? qos.lossPercent
        return qos
    }

    /// ISO 3166-1 alpha-2 codes (two upper-case letters).
    func countries(_ section: YAMLReader.Map, _ key: String) -> [String]? {
        guard let items = reader.list(section[key], at: section.path(key)) else { return nil }
        return items.compactMap { item in
            guard let code = reader.string(item.node, at: item.path) else { return nil }
            guard code.utf8.count == 2, code.utf8.allSatisfy({ (0x41...0x5a).contains($0) }) else {
                reader.invalid(item.path, item.node, "not an ISO 3166-1 alpha-2 country code (e.g. FR)")
                return nil
            }
            return code
        }
    }

    // MARK: customers

    static let pricingKeys = ["currency", "period", "base-fee", "per-mbps", "qos-premiums"]

    func customers(_ node: Node?, at path: JSONPath, policy: PolicyConfiguration, pricing: PricingRule) -> [CustomerProfile] {
        var out: [CustomerProfile] = []
        var first: [String: JSONPath] = [:]
        let knownPEs = policy.networkPresence.map(\.id)
        for entry in reader.mapItems(
            node, at: path,
            keys: [
                "identity", "name", "max-open-orders", "source-prefixes",
                "entitlements", "pricing",
            ])
        {
            let identity = reader.string(entry, "identity", required: true)
            var profile = CustomerProfile(identity: identity ?? "")
            profile.name = reader.string(entry, "name")
            profile.maxOpenOrders = reader.integer(entry, "max-open-orders", in: 0...1_000_000)
            for (prefixNode, prefixPath) in reader.list(entry["source-prefixes"], at: entry.path("source-prefixes")) ?? [] {
                guard let text = reader.string(prefixNode, at: prefixPath) else { continue }
                if let prefix = CPDIPPrefix(text) {
                    profile.sourcePrefixes.append(prefix)
                } else {
                    reader.invalid(prefixPath, prefixNode, "not a CIDR prefix (\(CPDIPPrefix.problem(with: text) ?? text))")
                }
            }
            if let entitlementsSection = reader.map(
                entry["entitlements"], at: entry.path("entitlements"),
                keys: ["max-bandwidth-mbps", "countries", "pes", "testing-orders", "max-test-period"])
            {
                var entitlements = Entitlements()
                entitlements.maxBandwidthMbps = reader.decimal(entitlementsSection, "max-bandwidth-mbps", .positive)
                entitlements.countries = countries(entitlementsSection, "countries")
                if let pes = reader.list(entitlementsSection["pes"], at: entitlementsSection.path("pes")) {
                    entitlements.pes = pes.compactMap { item in
                        guard let edgeName = reader.string(item.node, at: item.path) else { return nil }
                        if !knownPEs.contains(edgeName) {
                            reader.error(.unknownReference, item.path, item.node, unknownPE(edgeName, known: knownPEs))
                        }
                        return edgeName
                    }
                }
                entitlements.testingOrders = reader.bool(entitlementsSection, "testing-orders") ?? entitlements.testingOrders
                entitlements.maxTestPeriod = reader.duration(entitlementsSection, "max-test-period")
                profile.entitlements = entitlements
            }
            if let pricingSection = reader.map(entry["pricing"], at: entry.path("pricing"), keys: Self.pricingKeys) {
                profile.pricing = self.pricing(pricingSection, base: pricing)
            }
            if let identity {
                let key = CustomerProfile.asciiLowercased(identity)
                if let firstPath = first[key] {
                    reader.error(
                        .duplicateIdentifier, entry.path("identity"), entry["identity"],
                        "duplicate customer identity \"\(identity)\" (first at \(firstPath))")
                    continue
                }
                first[key] = entry.path("identity")
                out.append(profile)
            }
        }
        return out
    }

    // MARK: pricing, approval, provisioning, limits

    func pricing(_ section: YAMLReader.Map, base: PricingRule) -> PricingRule {
        var rule = base
        if let currency = reader.string(section, "currency") {
            if currency.utf8.count == 3, currency.utf8.allSatisfy({ (0x41...0x5a).contains($0) }) {
                rule.currency = currency
            } else {
                reader.invalid(section.path("currency"), section["currency"], "not an ISO 4217 currency code (e.g. EUR)")
            }
        }
        rule.period = reader.string(section, "period") ?? rule.period
        rule.baseFee = reader.decimal(section, "base-fee", .nonNegative) ?? rule.baseFee
        rule.perMbps = reader.decimal(section, "per-mbps", .nonNegative) ?? rule.perMbps
        if let premiumsNode = section["qos-premiums"] {
            let path = section.path("qos-premiums")
            if case .mapping(let mapping) = premiumsNode {
                var premiums = rule.qosPremiums
                for (keyNode, valueNode) in mapping {
                    guard let key = reader.scalarText(keyNode, at: path, expected: "a class name") else { continue }
                    if let amount = reader.decimal(valueNode, at: path.appending(key), .nonNegative) { premiums[key] = amount }
                }
                rule.qosPremiums = premiums
            } else {
                reader.error(.wrongType, path, premiumsNode, "expected a mapping of class name to amount")
            }
        }
        return rule
    }

    func approval(_ section: YAMLReader.Map, customers: [CustomerProfile]) -> ApprovalConfiguration {
        var approval = ApprovalConfiguration()
        approval.mode = reader.enumeration(section, "mode", ApprovalMode.self) ?? approval.mode
        approval.escalateOutOfResources = reader.bool(section, "escalate-out-of-resources") ?? approval.escalateOutOfResources
        let ruleKeys = ["above-mbps", "above-total-mbps", "above-amount", "purpose", "customers"]
        for (node, path) in reader.list(section["rules"], at: section.path("rules")) ?? [] {
            if case .scalar(let scalar) = node {
                if scalar.string == "all" {
                    approval.rules.append(.all)
                } else {
                    var message = "unknown rule \"\(scalar.string)\"; write all, or a mapping such as above-mbps: 1000"
                    if let suggestion = YAMLReader.suggestion(for: scalar.string, among: ["all"] + ruleKeys) {
                        message += " (did you mean \"\(suggestion)\"?)"
                    }
                    reader.invalid(path, node, message)
                }
                continue
            }
            guard let rule = reader.map(node, at: path, keys: ruleKeys) else { continue }
            var found = 0
            if let threshold = reader.decimal(rule, "above-mbps", .nonNegative) { approval.rules.append(.aboveMbps(threshold)); found += 1 }
            if let threshold = reader.decimal(rule, "above-total-mbps", .nonNegative) {
                approval.rules.append(.aboveTotalMbps(threshold)); found += 1
            }
            if let threshold = reader.decimal(rule, "above-amount", .nonNegative) {
                approval.rules.append(.aboveAmount(threshold)); found += 1
            }
            if let purpose = reader.enumeration(rule, "purpose", Purpose.self) { approval.rules.append(.purpose(purpose)); found += 1 }
            if let list = reader.list(rule["customers"], at: rule.path("customers")) {
                let known = customers.map(\.identity)
                let ids = list.compactMap { item -> String? in
                    guard let identity = reader.string(item.node, at: item.path) else { return nil }
                    if !known.contains(where: { CustomerProfile.asciiLowercased($0) == CustomerProfile.asciiLowercased(identity) }) {
                        reader.error(
                            .unknownReference, item.path, item.node,
                            "unknown customer identity \"\(identity)\" (not in customers)")
                    }
                    return identity
                }
                approval.rules.append(.customers(ids))
                found += 1
            }
            if found > 1 { reader.invalid(path, node, "a rule has exactly one key; write one list item per rule") }
        }
        return approval
    }

    func provisioning(_ section: YAMLReader.Map) -> ProvisioningConfiguration {
        var provisioning = ProvisioningConfiguration()
        if let command = reader.strings(section, "command") {
            if command.isEmpty {
                reader.invalid(section.path("command"), section["command"], "must list the program and its arguments")
            } else {
                provisioning.command = command
            }
        }
        if let url = reader.string(section, "http-url") {
            if url.hasPrefix("http://") || url.hasPrefix("https://"), url.utf8.count > 8 {
                provisioning.httpURL = url
            } else {
                reader.invalid(section.path("http-url"), section["http-url"], "must be an http:// or https:// URL")
            }
        }
        if let items = reader.list(section["events"], at: section.path("events")) {
            provisioning.events = items.compactMap { reader.enumeration($0.node, at: $0.path, ProvisioningEvent.self) }
        }
        provisioning.timeout = reader.duration(section, "timeout") ?? provisioning.timeout
        if let retry = reader.map(section["retry"], at: section.path("retry"), keys: ["initial", "max"]) {
            provisioning.retryInitialBackoff = reader.duration(retry, "initial") ?? provisioning.retryInitialBackoff
            provisioning.retryMaxBackoff = reader.duration(retry, "max") ?? provisioning.retryMaxBackoff
            if provisioning.retryMaxBackoff < provisioning.retryInitialBackoff {
                reader.invalid(retry.path("max"), retry["max"] ?? retry.node, "must not be shorter than retry.initial")
            }
        }
        return provisioning
    }

    func limits(_ section: YAMLReader.Map) -> LimitConfiguration {
        var limits = LimitConfiguration()
        limits.maxAssociations = reader.integer(section, "max-associations", in: 1...1_000_000) ?? limits.maxAssociations
        limits.associationIdleTimeout = reader.duration(section, "association-idle-timeout") ?? limits.associationIdleTimeout
        limits.maxDatagramBytes = reader.integer(section, "max-datagram-bytes", in: 1024...65507) ?? limits.maxDatagramBytes
        limits.defaultMaxOpenOrders = reader.integer(section, "default-max-open-orders", in: 0...1_000_000) ?? limits.defaultMaxOpenOrders
        limits.maxPendingApprovals = reader.integer(section, "max-pending-approvals", in: 0...1_000_000) ?? limits.maxPendingApprovals
        return limits
    }
}
