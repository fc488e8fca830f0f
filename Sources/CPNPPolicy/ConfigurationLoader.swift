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
    public static let topLevelKeys = ["listen", "pki", "database", "timers", "provider", "policy", "customers",
                                      "pricing", "approval", "provisioning", "rate-limits", "limits", "http", "catalog", "upstreams", "cascade"]

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
        let ordered = reader.errors.enumerated().sorted { a, b in
            (a.element.line ?? .max, a.offset) < (b.element.line ?? .max, b.offset)
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
        if let y = error as? YamlError {
            switch y {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                 .composer(let context, let problem, let mark, _):
                let ctx = context.map { "\($0.text) " } ?? ""
                return ConfigurationError(.syntax, at: .root, "not valid YAML: \(ctx)\(problem) (line \(mark.line), column \(mark.column))",
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
    let r: YAMLReader
    let baseDirectory: String?

    init(_ reader: YAMLReader, baseDirectory: String? = nil) {
        self.r = reader
        self.baseDirectory = baseDirectory
    }

    func parse(_ root: Node?) -> ServerConfiguration {
        var c = ServerConfiguration()
        guard let m = r.map(root, at: .root, keys: ConfigurationLoader.topLevelKeys) else { return c }
        let listenKeys = ["host", "port", "transport", "rcvbuf", "plain-udp-customer", "reuse-port"]
        if let s = r.map(m["listen"], at: m.path("listen"), keys: listenKeys) {
            c.listen = listen(s)
        }
        if let s = r.map(m["pki"], at: m.path("pki"), keys: ["directory", "ca", "cert", "key"]) {
            c.pki = pki(s)
        }
        if let s = r.map(m["database"], at: m.path("database"), keys: ["path", "url"]) {
            c.database.path = r.string(s, "path") ?? c.database.path
            if let node = s["path"], let problem = DatabaseConfiguration.problem(with: c.database.path) {
                r.invalid(s.path("path"), node, problem)
            }
            c.database.url = r.string(s, "url")
            if let node = s["url"], let url = c.database.url, !DatabaseConfiguration.isPostgresURL(url) {
                r.invalid(s.path("url"), node, "not a PostgreSQL URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
            }
        }
        if let s = r.map(m["http"], at: m.path("http"), keys: ["enabled", "listen", "operator-token-file", "tls", "operator-identities", "portal-store", "customer-webhooks-to-private-addresses"]) {
            c.http.enabled = r.bool(s, "enabled") ?? c.http.enabled
            if let node = s["listen"], let text = r.string(s, "listen") {
                if let (host, port) = HTTPConfiguration.address(text) {
                    (c.http.host, c.http.port) = (host, port)
                } else {
                    r.invalid(s.path("listen"), node, "must be HOST:PORT, e.g. 127.0.0.1:8922")
                }
            }
            c.http.operatorTokenFile = r.string(s, "operator-token-file") ?? c.http.operatorTokenFile
            c.http.tls = r.bool(s, "tls") ?? c.http.tls
            c.http.operatorIdentities = r.strings(s, "operator-identities") ?? c.http.operatorIdentities
            c.http.portalStore = r.string(s, "portal-store") ?? c.http.portalStore
            c.http.customerWebhooksToPrivateAddresses = r.bool(s, "customer-webhooks-to-private-addresses") ?? c.http.customerWebhooksToPrivateAddresses
        }
        if let s = r.map(m["timers"], at: m.path("timers"),
                         keys: ["retransmission", "offer-validity", "expected-offer-time", "approval-expected-offer-time", "more-time"]) {
            c.timers = timers(s)
        }
        if let s = r.map(m["provider"], at: m.path("provider"), keys: ["name", "as-number", "contact"]) {
            c.provider = provider(s)
        }
        if let s = r.map(m["policy"], at: m.path("policy"),
                         keys: ["activation-types", "network-presence", "links", "qos", "defaults", "counter-offers"]) {
            c.policy = policy(s)
        }
        if let s = r.map(m["pricing"], at: m.path("pricing"), keys: Self.pricingKeys) {
            c.pricing = pricing(s, base: PricingRule())
        }
        c.customers = customers(m["customers"], at: m.path("customers"), policy: c.policy, pricing: c.pricing)
        if let id = c.listen.plainUDPCustomer, let listen = r.map(m["listen"], at: m.path("listen"), keys: listenKeys) {
            let path = listen.path("plain-udp-customer")
            if c.listen.transport != .plainUDP {
                r.error(.invalidValue, path, listen["plain-udp-customer"], "only allowed with transport: plain-udp")
            } else if c.customerProfile(matching: [id]) == nil {
                r.error(.unknownReference, path, listen["plain-udp-customer"], "unknown customer identity \"\(id)\" (not in customers)")
            }
        }
        if let s = r.map(m["approval"], at: m.path("approval"), keys: ["mode", "rules", "escalate-out-of-resources"]) {
            c.approval = approval(s, customers: c.customers)
        }
        if let s = r.map(m["provisioning"], at: m.path("provisioning"),
                         keys: ["command", "http-url", "events", "timeout", "retry"]) {
            c.provisioning = provisioning(s)
        }
        if let s = r.map(m["rate-limits"], at: m.path("rate-limits"), keys: ["quotations-per-minute", "fails-per-minute"]) {
            c.rateLimits.quotationsPerMinute = r.integer(s, "quotations-per-minute", in: 1...1_000_000) ?? c.rateLimits.quotationsPerMinute
            c.rateLimits.failsPerMinute = r.integer(s, "fails-per-minute", in: 1...1_000_000) ?? c.rateLimits.failsPerMinute
        }
        if let s = r.map(m["limits"], at: m.path("limits"),
                         keys: ["max-associations", "association-idle-timeout", "max-datagram-bytes",
                                "default-max-open-orders", "max-pending-approvals"]) {
            c.limits = limits(s)
        }
        c.catalog = catalog(m["catalog"], at: m.path("catalog"), customers: c.customers, baseDirectory: baseDirectory)
        c.upstreams = upstreams(m["upstreams"], at: m.path("upstreams"), baseDirectory: baseDirectory)
        c.cascade = cascade(m["cascade"], at: m.path("cascade"))
        if !c.upstreams.isEmpty, c.database.url != nil, let node = m["upstreams"] {
            r.invalid(m.path("upstreams"), node, "child orders are negotiated by one cpnpd with a SQLite database; several cpnpd on PostgreSQL cannot share them yet")
        }
        return c
    }

    // MARK: sections

    func listen(_ m: YAMLReader.Map) -> ListenConfiguration {
        var l = ListenConfiguration()
        l.host = r.string(m, "host") ?? l.host
        if let p = r.integer(m, "port", in: 0...65535) { l.port = UInt16(p) }
        l.transport = r.enumeration(m, "transport", TransportKind.self) ?? l.transport
        l.receiveBufferBytes = r.size(m, "rcvbuf")
        l.plainUDPCustomer = r.string(m, "plain-udp-customer")
        l.reusePort = r.bool(m, "reuse-port") ?? false
        if l.reusePort, l.transport != .dtls, let node = m["reuse-port"] {
            r.invalid(m.path("reuse-port"), node, "works with transport dtls only")
        }
        return l
    }

    func pki(_ m: YAMLReader.Map) -> PKIConfiguration {
        var p = PKIConfiguration()
        p.directory = r.string(m, "directory") ?? p.directory
        p.caFile = r.string(m, "ca") ?? p.caFile
        p.certificateFile = r.string(m, "cert") ?? p.certificateFile
        p.keyFile = r.string(m, "key") ?? p.keyFile
        return p
    }

    func timers(_ m: YAMLReader.Map) -> TimerConfiguration {
        var t = TimerConfiguration()
        if let rt = r.map(m["retransmission"], at: m.path("retransmission"), keys: ["initial", "max-retries"]) {
            t.retransmissionInitial = r.duration(rt, "initial") ?? t.retransmissionInitial
            t.retransmissionMaxRetries = r.integer(rt, "max-retries", in: 0...10) ?? t.retransmissionMaxRetries
        }
        t.offerValidity = r.duration(m, "offer-validity") ?? t.offerValidity
        t.expectedOfferTime = r.duration(m, "expected-offer-time") ?? t.expectedOfferTime
        t.approvalExpectedOfferTime = r.duration(m, "approval-expected-offer-time") ?? t.approvalExpectedOfferTime
        let mt = r.map(m["more-time"], at: m.path("more-time"), keys: ["request-before", "extension", "max-requests"])
        if let mt {
            t.moreTime.requestBefore = r.duration(mt, "request-before") ?? t.moreTime.requestBefore
            t.moreTime.extensionDuration = r.duration(mt, "extension") ?? t.moreTime.extensionDuration
            t.moreTime.maximumRequests = r.integer(mt, "max-requests", in: 0...100) ?? t.moreTime.maximumRequests
        }
        // The request must leave the client time to answer before the expected offer time (§11.2.1).
        if t.moreTime.maximumRequests > 0, t.moreTime.requestBefore >= t.approvalExpectedOfferTime {
            r.invalid(m.path("more-time").appending("request-before"), mt?["request-before"] ?? m["approval-expected-offer-time"] ?? m.node,
                      "must be shorter than timers.approval-expected-offer-time")
        }
        return t
    }

    func provider(_ m: YAMLReader.Map) -> ProviderDescription {
        var p = ProviderDescription()
        p.name = r.string(m, "name")
        if let n = m["as-number"], let v = r.integer(n, at: m.path("as-number"), in: 0...Int(UInt32.max)) {
            p.asNumber = UInt32(v)
        }
        if let c = r.map(m["contact"], at: m.path("contact"), keys: ["email", "postal-address", "telephone-numbers"]) {
            p.contact = ContactInformation(email: r.string(c, "email"), postalAddress: r.string(c, "postal-address"),
                                           telephoneNumbers: r.strings(c, "telephone-numbers") ?? [])
        }
        return p
    }

    // MARK: policy

    func policy(_ m: YAMLReader.Map) -> PolicyConfiguration {
        var p = PolicyConfiguration()
        if let items = r.list(m["activation-types"], at: m.path("activation-types")) {
            p.activationTypes = items.compactMap { r.enumeration($0.node, at: $0.path, ActivationType.self) }
            if items.isEmpty { r.invalid(m.path("activation-types"), m["activation-types"], "must list at least one activation type") }
        }

        // Network presence.
        var peFirst: [String: JSONPath] = [:]
        for e in r.mapItems(m["network-presence"], at: m.path("network-presence"), keys: ["pe", "city", "sites", "countries"]) {
            guard let id = r.string(e, "pe", required: true) else { continue }
            if let first = peFirst[id] {
                r.error(.duplicateIdentifier, e.path("pe"), e["pe"], "duplicate PE \"\(id)\" (first at \(first))")
                continue
            }
            peFirst[id] = e.path("pe")
            var pe = ProviderEdge(id: id)
            pe.city = r.string(e, "city")
            pe.sites = r.strings(e, "sites") ?? []
            pe.countries = countries(e, "countries") ?? []
            p.networkPresence.append(pe)
        }

        // Links.
        var linkFirst: [String: JSONPath] = [:]
        for e in r.mapItems(m["links"], at: m.path("links"), keys: ["id", "pe", "capacity-mbps"]) {
            let id = r.string(e, "id", required: true)
            let pe = r.string(e, "pe", required: true)
            let capacity = linkCapacity(e)
            if let id {
                if let first = linkFirst[id] {
                    r.error(.duplicateIdentifier, e.path("id"), e["id"], "duplicate link \"\(id)\" (first at \(first))")
                } else if peFirst[id] != nil {
                    r.invalid(e.path("id"), e["id"], "\"\(id)\" is already the name of a PE; a link id must differ from PE names")
                } else {
                    linkFirst[id] = e.path("id")
                }
            }
            if let pe, peFirst[pe] == nil {
                r.error(.unknownReference, e.path("pe"), e["pe"], unknownPE(pe, known: Array(peFirst.keys)))
            }
            if let id, let pe, let capacity, linkFirst[id] == e.path("id") {
                p.links.append(ProviderLink(id: id, pe: pe, capacity: capacity))
            }
        }

        if let q = r.map(m["qos"], at: m.path("qos"), keys: ["default", "pairs", "availability-percent", "meta-qos-classes"]) {
            p.qos = qos(q, knownPEs: peFirst)
        }
        if let d = r.map(m["defaults"], at: m.path("defaults"),
                         keys: ["bandwidth-mbps", "mtu-bytes", "notification-interval-seconds", "invocation-type"]) {
            p.defaults.bandwidthMbps = r.decimal(d, "bandwidth-mbps", .positive) ?? p.defaults.bandwidthMbps
            p.defaults.mtuBytes = r.integer(d, "mtu-bytes", in: 68...65535).map(Int64.init) ?? p.defaults.mtuBytes
            p.defaults.notificationIntervalSeconds =
                r.integer(d, "notification-interval-seconds", in: 1...86400 * 366).map(Int64.init) ?? p.defaults.notificationIntervalSeconds
            p.defaults.invocationType = r.enumeration(d, "invocation-type", CPDInvocationType.self) ?? p.defaults.invocationType
        }
        if let d = r.map(m["counter-offers"], at: m.path("counter-offers"), keys: ["drop-unserved-sites", "drop-exhausted-sites"]) {
            p.counterOffers.dropUnservedSites = r.bool(d, "drop-unserved-sites") ?? p.counterOffers.dropUnservedSites
            p.counterOffers.dropExhaustedSites = r.bool(d, "drop-exhausted-sites") ?? p.counterOffers.dropExhaustedSites
        }
        return p
    }

    func unknownPE(_ pe: String, known: [String]) -> String {
        var message = "unknown PE \"\(pe)\" (not in policy.network-presence)"
        if let s = YAMLReader.suggestion(for: pe, among: known) { message += "; did you mean \"\(s)\"?" }
        return message
    }

    func linkCapacity(_ e: YAMLReader.Map) -> LinkCapacity? {
        guard let n = e["capacity-mbps"] else {
            r.missing(e, "capacity-mbps")
            return nil
        }
        let path = e.path("capacity-mbps")
        if case .mapping = n {
            guard let cm = r.map(n, at: path, keys: ["incoming", "outgoing"]) else { return nil }
            let i = r.decimal(cm, "incoming", .positive, required: true)
            let o = r.decimal(cm, "outgoing", .positive, required: true)
            guard let i, let o else { return nil }
            return LinkCapacity(incoming: i, outgoing: o)
        }
        if case .sequence = n {
            r.error(.wrongType, path, n, "expected a number or a mapping with incoming and outgoing, found a list")
            return nil
        }
        return r.decimal(n, at: path, .positive).map { LinkCapacity(symmetric: $0) }
    }

    func qos(_ m: YAMLReader.Map, knownPEs: [String: JSONPath]) -> QoSCapabilities {
        var q = QoSCapabilities()
        let metricKeys = ["one-way-delay-ms", "delay-variation-ms", "loss-percent"]
        if let d = r.map(m["default"], at: m.path("default"), keys: metricKeys) {
            q.defaultQoS = achievable(d, base: q.defaultQoS)
        }
        for e in r.mapItems(m["pairs"], at: m.path("pairs"), keys: ["between"] + metricKeys) {
            let values = achievable(e, base: q.defaultQoS)
            guard let between = r.strings(e, "between") else {
                if e["between"] == nil { r.missing(e, "between") }
                continue
            }
            guard between.count == 2 else {
                r.invalid(e.path("between"), e["between"], "must name exactly two PEs")
                continue
            }
            var ok = true
            for (i, pe) in between.enumerated() where knownPEs[pe] == nil {
                r.error(.unknownReference, e.path("between").appending(index: i), e["between"], unknownPE(pe, known: Array(knownPEs.keys)))
                ok = false
            }
            if ok { q.pairs.append(QoSPair(first: between[0], second: between[1], qos: values)) }
        }
        q.availabilityPercent = r.decimal(m, "availability-percent", .percent) ?? q.availabilityPercent
        q.metaQoSClasses = r.strings(m, "meta-qos-classes") ?? q.metaQoSClasses
        return q
    }

    func achievable(_ m: YAMLReader.Map, base: AchievableQoS) -> AchievableQoS {
        var a = base
        a.oneWayDelayMs = r.decimal(m, "one-way-delay-ms", .nonNegative) ?? a.oneWayDelayMs
        a.delayVariationMs = r.decimal(m, "delay-variation-ms", .nonNegative) ?? a.delayVariationMs
        a.lossPercent = r.decimal(m, "loss-percent", .percent) ?? a.lossPercent
        return a
    }

    /// ISO 3166-1 alpha-2 codes (two upper-case letters).
    func countries(_ m: YAMLReader.Map, _ key: String) -> [String]? {
        guard let items = r.list(m[key], at: m.path(key)) else { return nil }
        return items.compactMap { item in
            guard let s = r.string(item.node, at: item.path) else { return nil }
            guard s.utf8.count == 2, s.utf8.allSatisfy({ (0x41...0x5a).contains($0) }) else {
                r.invalid(item.path, item.node, "not an ISO 3166-1 alpha-2 country code (e.g. FR)")
                return nil
            }
            return s
        }
    }

    // MARK: customers

    static let pricingKeys = ["currency", "period", "base-fee", "per-mbps", "qos-premiums"]

    func customers(_ node: Node?, at path: JSONPath, policy: PolicyConfiguration, pricing: PricingRule) -> [CustomerProfile] {
        var out: [CustomerProfile] = []
        var first: [String: JSONPath] = [:]
        let knownPEs = policy.networkPresence.map(\.id)
        for m in r.mapItems(node, at: path, keys: ["identity", "name", "max-open-orders", "source-prefixes",
                                                     "entitlements", "pricing"]) {
            let identity = r.string(m, "identity", required: true)
            var profile = CustomerProfile(identity: identity ?? "")
            profile.name = r.string(m, "name")
            profile.maxOpenOrders = r.integer(m, "max-open-orders", in: 0...1_000_000)
            for (pn, pp) in r.list(m["source-prefixes"], at: m.path("source-prefixes")) ?? [] {
                guard let s = r.string(pn, at: pp) else { continue }
                if let prefix = CPDIPPrefix(s) {
                    profile.sourcePrefixes.append(prefix)
                } else {
                    r.invalid(pp, pn, "not a CIDR prefix (\(CPDIPPrefix.problem(with: s) ?? s))")
                }
            }
            if let e = r.map(m["entitlements"], at: m.path("entitlements"),
                             keys: ["max-bandwidth-mbps", "countries", "pes", "testing-orders", "max-test-period"]) {
                var ent = Entitlements()
                ent.maxBandwidthMbps = r.decimal(e, "max-bandwidth-mbps", .positive)
                ent.countries = countries(e, "countries")
                if let pes = r.list(e["pes"], at: e.path("pes")) {
                    ent.pes = pes.compactMap { item in
                        guard let pe = r.string(item.node, at: item.path) else { return nil }
                        if !knownPEs.contains(pe) {
                            r.error(.unknownReference, item.path, item.node, unknownPE(pe, known: knownPEs))
                        }
                        return pe
                    }
                }
                ent.testingOrders = r.bool(e, "testing-orders") ?? ent.testingOrders
                ent.maxTestPeriod = r.duration(e, "max-test-period")
                profile.entitlements = ent
            }
            if let pm = r.map(m["pricing"], at: m.path("pricing"), keys: Self.pricingKeys) {
                profile.pricing = self.pricing(pm, base: pricing)
            }
            if let identity {
                let key = CustomerProfile.asciiLowercased(identity)
                if let f = first[key] {
                    r.error(.duplicateIdentifier, m.path("identity"), m["identity"],
                            "duplicate customer identity \"\(identity)\" (first at \(f))")
                    continue
                }
                first[key] = m.path("identity")
                out.append(profile)
            }
        }
        return out
    }

    // MARK: pricing, approval, provisioning, limits

    func pricing(_ m: YAMLReader.Map, base: PricingRule) -> PricingRule {
        var p = base
        if let cur = r.string(m, "currency") {
            if cur.utf8.count == 3, cur.utf8.allSatisfy({ (0x41...0x5a).contains($0) }) {
                p.currency = cur
            } else {
                r.invalid(m.path("currency"), m["currency"], "not an ISO 4217 currency code (e.g. EUR)")
            }
        }
        p.period = r.string(m, "period") ?? p.period
        p.baseFee = r.decimal(m, "base-fee", .nonNegative) ?? p.baseFee
        p.perMbps = r.decimal(m, "per-mbps", .nonNegative) ?? p.perMbps
        if let pm = m["qos-premiums"] {
            let path = m.path("qos-premiums")
            if case .mapping(let mapping) = pm {
                var premiums = p.qosPremiums
                for (k, v) in mapping {
                    guard let key = r.scalarText(k, at: path, expected: "a class name") else { continue }
                    if let d = r.decimal(v, at: path.appending(key), .nonNegative) { premiums[key] = d }
                }
                p.qosPremiums = premiums
            } else {
                r.error(.wrongType, path, pm, "expected a mapping of class name to amount")
            }
        }
        return p
    }

    func approval(_ m: YAMLReader.Map, customers: [CustomerProfile]) -> ApprovalConfiguration {
        var a = ApprovalConfiguration()
        a.mode = r.enumeration(m, "mode", ApprovalMode.self) ?? a.mode
        a.escalateOutOfResources = r.bool(m, "escalate-out-of-resources") ?? a.escalateOutOfResources
        let ruleKeys = ["above-mbps", "above-total-mbps", "above-amount", "purpose", "customers"]
        for (node, path) in r.list(m["rules"], at: m.path("rules")) ?? [] {
            if case .scalar(let s) = node {
                if s.string == "all" {
                    a.rules.append(.all)
                } else {
                    var message = "unknown rule \"\(s.string)\"; write all, or a mapping such as above-mbps: 1000"
                    if let sug = YAMLReader.suggestion(for: s.string, among: ["all"] + ruleKeys) { message += " (did you mean \"\(sug)\"?)" }
                    r.invalid(path, node, message)
                }
                continue
            }
            guard let rm = r.map(node, at: path, keys: ruleKeys) else { continue }
            var found = 0
            if let n = r.decimal(rm, "above-mbps", .nonNegative) { a.rules.append(.aboveMbps(n)); found += 1 }
            if let n = r.decimal(rm, "above-total-mbps", .nonNegative) { a.rules.append(.aboveTotalMbps(n)); found += 1 }
            if let n = r.decimal(rm, "above-amount", .nonNegative) { a.rules.append(.aboveAmount(n)); found += 1 }
            if let p = r.enumeration(rm, "purpose", Purpose.self) { a.rules.append(.purpose(p)); found += 1 }
            if let list = r.list(rm["customers"], at: rm.path("customers")) {
                let known = customers.map(\.identity)
                let ids = list.compactMap { item -> String? in
                    guard let id = r.string(item.node, at: item.path) else { return nil }
                    if !known.contains(where: { CustomerProfile.asciiLowercased($0) == CustomerProfile.asciiLowercased(id) }) {
                        r.error(.unknownReference, item.path, item.node, "unknown customer identity \"\(id)\" (not in customers)")
                    }
                    return id
                }
                a.rules.append(.customers(ids))
                found += 1
            }
            if found > 1 { r.invalid(path, node, "a rule has exactly one key; write one list item per rule") }
        }
        return a
    }

    func provisioning(_ m: YAMLReader.Map) -> ProvisioningConfiguration {
        var p = ProvisioningConfiguration()
        if let cmd = r.strings(m, "command") {
            if cmd.isEmpty { r.invalid(m.path("command"), m["command"], "must list the program and its arguments") } else { p.command = cmd }
        }
        if let url = r.string(m, "http-url") {
            if url.hasPrefix("http://") || url.hasPrefix("https://"), url.utf8.count > 8 {
                p.httpURL = url
            } else {
                r.invalid(m.path("http-url"), m["http-url"], "must be an http:// or https:// URL")
            }
        }
        if let items = r.list(m["events"], at: m.path("events")) {
            p.events = items.compactMap { r.enumeration($0.node, at: $0.path, ProvisioningEvent.self) }
        }
        p.timeout = r.duration(m, "timeout") ?? p.timeout
        if let rt = r.map(m["retry"], at: m.path("retry"), keys: ["initial", "max"]) {
            p.retryInitialBackoff = r.duration(rt, "initial") ?? p.retryInitialBackoff
            p.retryMaxBackoff = r.duration(rt, "max") ?? p.retryMaxBackoff
            if p.retryMaxBackoff < p.retryInitialBackoff {
                r.invalid(rt.path("max"), rt["max"] ?? rt.node, "must not be shorter than retry.initial")
            }
        }
        return p
    }

    func limits(_ m: YAMLReader.Map) -> LimitConfiguration {
        var l = LimitConfiguration()
        l.maxAssociations = r.integer(m, "max-associations", in: 1...1_000_000) ?? l.maxAssociations
        l.associationIdleTimeout = r.duration(m, "association-idle-timeout") ?? l.associationIdleTimeout
        l.maxDatagramBytes = r.integer(m, "max-datagram-bytes", in: 1024...65507) ?? l.maxDatagramBytes
        l.defaultMaxOpenOrders = r.integer(m, "default-max-open-orders", in: 0...1_000_000) ?? l.defaultMaxOpenOrders
        l.maxPendingApprovals = r.integer(m, "max-pending-approvals", in: 0...1_000_000) ?? l.maxPendingApprovals
        return l
    }
}
