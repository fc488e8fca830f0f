import CPNPCore
import Foundation
import Testing
@testable import CPNPPolicy

/// Paths of the repository's files.
enum Repo {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let exampleConfiguration = root.appendingPathComponent("Examples/cpnpd.yaml").path
}

/// Loads YAML that must be valid.
func loadValid(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> ServerConfiguration {
    switch ConfigurationLoader.load(yaml: yaml) {
    case .success(let c): return c
    case .failure(let e):
        Issue.record("unexpected errors:\n\(e)", sourceLocation: sourceLocation)
        throw e
    }
}

/// The errors of YAML that must be invalid, as `path: message` strings.
func errors(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
    errorList(yaml, sourceLocation: sourceLocation).map(\.description)
}

func errorList(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigurationError] {
    switch ConfigurationLoader.load(yaml: yaml) {
    case .success:
        Issue.record("expected errors, the configuration loaded", sourceLocation: sourceLocation)
        return []
    case .failure(let e): return e.errors
    }
}

func dec(_ s: String) -> CPNPDecimal { CPNPDecimal(parsing: s)! }

@Suite("Configuration loading")
struct ConfigurationTests {
    @Test func exampleFileEqualsTheDemo() throws {
        let loaded = ConfigurationLoader.load(contentsOfFile: Repo.exampleConfiguration)
        let c = try loaded.get()
        let demo = ServerConfiguration.demo
        // Section by section first, so that a difference is easy to find.
        #expect(c.listen == demo.listen)
        #expect(c.pki == demo.pki)
        #expect(c.database == demo.database)
        #expect(c.timers == demo.timers)
        #expect(c.provider == demo.provider)
        #expect(c.policy.networkPresence == demo.policy.networkPresence)
        #expect(c.policy.links == demo.policy.links)
        #expect(c.policy.qos == demo.policy.qos)
        #expect(c.policy == demo.policy)
        #expect(c.customers == demo.customers)
        #expect(c.pricing == demo.pricing)
        #expect(c.approval == demo.approval)
        #expect(c.provisioning == demo.provisioning)
        #expect(c.rateLimits == demo.rateLimits)
        #expect(c.limits == demo.limits)
        #expect(c.catalog == demo.catalog)
        #expect(c == demo)
    }

    /// A database URL is named as the error it is, instead of becoming a file in a folder `postgres:`.
    @Test func aDatabaseURLIsAnErrorNamingThePath() {
        let found = errors("database:\n  path: postgres://cpnp:secret@db.example:5432/cpnp\n")
        #expect(
            found.count == 1 && found[0].hasPrefix("database.path:")
                && found[0].contains("is a URL, not a file: give a PostgreSQL database as database.url"), "\(found)")
        let other = errors("database:\n  url: mysql://cpnp@db.example/cpnp\n")
        #expect(other.count == 1 && other[0].hasPrefix("database.url:") && other[0].contains("not a PostgreSQL URL"), "\(other)")
        #expect(DatabaseConfiguration.problem(with: "./.cpnp/cpnpd.sqlite") == nil)
        #expect(DatabaseConfiguration.problem(with: "/var/lib/cpnp/orders:2026.sqlite") == nil)
        #expect(DatabaseConfiguration.problem(with: "file:///var/lib/cpnp.sqlite") != nil)
    }

    @Test func theHTTPSection() throws {
        let c = try ConfigurationLoader.load(yaml: "http:\n  listen: \"[::1]:9000\"\n  operator-token-file: /etc/cpnp/token\n  tls: true\n").get()
        #expect(c.http.host == "::1" && c.http.port == 9000 && c.http.isLoopback && c.http.tls && c.http.enabled)
        #expect(c.http.operatorTokenFile == "/etc/cpnp/token")
        #expect(c.http.operatorIdentities == ["operator"])
        let named = try ConfigurationLoader.load(yaml: "http:\n  operator-identities: [noc-1, noc-2.example]\n").get()
        #expect(named.http.operatorIdentities == ["noc-1", "noc-2.example"])
        #expect(ServerConfiguration.demo.http == HTTPConfiguration())
        #expect(HTTPConfiguration().host == "127.0.0.1" && HTTPConfiguration().port == 8922)
        let found = errors("http:\n  listen: 8922\n  enable: false\n")
        #expect(found.contains { $0.hasPrefix("http.listen:") && $0.contains("HOST:PORT") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("http.enable:") }, "\(found)")
        var beyond = HTTPConfiguration()
        beyond.host = "0.0.0.0"
        #expect(!beyond.isLoopback)
        #expect(HTTPConfiguration.address("nonsense") == nil && HTTPConfiguration.address(":80") == nil)
    }

    @Test func aPostgreSQLURLSelectsTheSharedStore() throws {
        let c = try ConfigurationLoader.load(yaml: "database:\n  url: postgres://cpnp:secret@db.example:5432/cpnp?sslmode=require\n").get()
        #expect(c.database.url == "postgres://cpnp:secret@db.example:5432/cpnp?sslmode=require")
        #expect(c.database.location == c.database.url)
        var d = DatabaseConfiguration()
        #expect(d.set(commandLine: "postgresql://u@h/db") == nil && d.url == "postgresql://u@h/db")
        #expect(d.set(commandLine: "./orders.sqlite") == nil && d.url == nil && d.location == "./orders.sqlite")
        #expect(d.set(commandLine: "redis://h") != nil)
    }

    @Test func everyKeyIsDocumented() throws {
        let reader = YAMLReader()
        let yaml = try String(contentsOfFile: Repo.exampleConfiguration, encoding: .utf8)
        _ = try ConfigurationLoader.load(yaml: yaml, reader: reader).get()
        let doc = try String(contentsOfFile: Repo.root.appendingPathComponent("docs/configuration.md").path, encoding: .utf8)
        #expect(reader.allowedKeys.count > 80)
        for key in reader.allowedKeys.sorted() {
            #expect(doc.contains("`\(key)") || doc.contains(".\(key)`") || doc.contains("`\(key):"), "\(key) is not documented")
        }
        // The example exercises every section.
        #expect(Set(ConfigurationLoader.topLevelKeys).isSubset(of: reader.allowedKeys))
    }

    @Test func demoContent() {
        let d = ServerConfiguration.demo
        #expect(d.listen.host == "127.0.0.1" && d.listen.port == 8921 && d.listen.transport == .dtls)
        #expect(d.pki.directory == "./.cpnp/pki")
        #expect(d.pki.caPath == "./.cpnp/pki/ca.pem")
        #expect(d.database.path == "./.cpnp/cpnpd.sqlite")
        #expect(d.timers.retransmissionPolicy == RetransmissionPolicy(initialInterval: .seconds(1), maximumRetries: 3))
        #expect(d.timers.offerValidity == .seconds(600) && d.timers.expectedOfferTime == .seconds(60))
        #expect(d.policy.networkPresence.map(\.id) == ["PE-PAR-1", "PE-PAR-2", "PE-LYS-1", "PE-MRS-1"])
        #expect(d.policy.links.allSatisfy { d.policy.edge($0.pe) != nil })
        #expect(d.customerProfile(matching: ["acme"])?.name == "ACME Corp")
        #expect(d.customerProfile(matching: ["client.example", "GLOBEX"])?.identity == "globex")
        #expect(d.customerProfile(matching: ["initech"]) == nil)
        #expect(d.approval.mode == .automatic && d.approval.rules == [.aboveMbps(1000)])
        #expect(d.customers[0].pricing != d.customers[1].pricing)
        #expect(d.customers[0].entitlements != d.customers[1].entitlements)
    }

    @Test func emptyDocumentGivesDefaults() throws {
        #expect(try loadValid("") == ServerConfiguration())
        #expect(try loadValid("# nothing\n") == ServerConfiguration())
        #expect(try loadValid("listen:\n") == ServerConfiguration())
        let d = ServerConfiguration()
        #expect(d.listen == ListenConfiguration(host: "127.0.0.1", port: 8921, transport: .dtls, receiveBufferBytes: nil))
        #expect(
            d.pki
                == PKIConfiguration(
                    directory: "./.cpnp/pki", caFile: "ca.pem", certificateFile: "server.pem",
                    keyFile: "server-key.pem"))
        #expect(d.timers.approvalExpectedOfferTime == .seconds(3600))
        #expect(d.timers.moreTime == MoreTimeConfiguration(requestBefore: .seconds(300), extensionDuration: .seconds(3600), maximumRequests: 3))
        #expect(d.customers.isEmpty && d.policy.links.isEmpty)
    }

    @Test func valuesAreParsed() throws {
        let c = try loadValid(
            """
            listen: {host: "::1", port: 0, transport: plain-udp, rcvbuf: 256KiB}
            pki: {directory: /etc/cpnp, ca: /opt/ca.pem, cert: s.pem, key: s.key}
            timers:
              retransmission: {initial: 500ms, max-retries: 5}
              offer-validity: 1h30m
              expected-offer-time: 90
              approval-expected-offer-time: 2d
              more-time: {request-before: 10m, extension: 2h, max-requests: 0}
            provisioning:
              command: [/bin/provision, --json]
              http-url: https://npm.example/orders
              events: [agreed, withdrawn]
              retry: {initial: 1s, max: 1m}
            rate-limits: {quotations-per-minute: 5, fails-per-minute: 7}
            limits: {max-associations: 10, association-idle-timeout: 30s, max-datagram-bytes: 9000}
            pricing: {currency: USD, period: year, base-fee: "0.10", per-mbps: 0.1}
            """)
        #expect(c.listen == ListenConfiguration(host: "::1", port: 0, transport: .plainUDP, receiveBufferBytes: 262144))
        #expect(c.pki.caPath == "/opt/ca.pem" && c.pki.keyPath == "/etc/cpnp/s.key")
        #expect(c.timers.retransmissionInitial == .milliseconds(500) && c.timers.retransmissionMaxRetries == 5)
        #expect(c.timers.offerValidity == .seconds(5400))
        #expect(c.timers.expectedOfferTime == .seconds(90))
        #expect(c.timers.approvalExpectedOfferTime == .seconds(172_800))
        #expect(c.timers.moreTime == MoreTimeConfiguration(requestBefore: .seconds(600), extensionDuration: .seconds(7200), maximumRequests: 0))
        #expect(c.provisioning.command == ["/bin/provision", "--json"])
        #expect(c.provisioning.httpURL == "https://npm.example/orders")
        #expect(c.provisioning.events == [.agreed, .withdrawn])
        #expect(c.provisioning.backoff(afterFailedAttempts: 0) == .seconds(1))
        #expect(c.provisioning.backoff(afterFailedAttempts: 3) == .seconds(8))
        #expect(c.provisioning.backoff(afterFailedAttempts: 40) == .seconds(60))
        #expect(c.rateLimits == RateLimitConfiguration(quotationsPerMinute: 5, failsPerMinute: 7))
        #expect(c.limits.maxAssociations == 10 && c.limits.associationIdleTimeout == .seconds(30))
        // Exact decimals, never through a binary float.
        #expect(c.pricing.baseFee == dec("0.1") && c.pricing.perMbps.description == "0.1")
        #expect(c.pricing.currency == "USD" && c.pricing.period == "year")
    }

    @Test func customerPricingOverridesKeyByKey() throws {
        let c = try loadValid(
            """
            pricing: {currency: EUR, base-fee: 100, per-mbps: 2, qos-premiums: {gold: 10, silver: 5}}
            customers:
              - identity: a
                pricing: {per-mbps: 1.5, qos-premiums: {gold: 20}}
              - identity: b
            """)
        #expect(
            c.customers[0].pricing
                == PricingRule(
                    currency: "EUR", period: "month", baseFee: 100, perMbps: dec("1.5"),
                    qosPremiums: ["gold": 20, "silver": 5]))
        #expect(c.customers[1].pricing == nil)
        #expect(DecisionEngine(configuration: c).pricing(for: c.customers[1]) == c.pricing)
    }

    @Test func linkCapacityForms() throws {
        let c = try loadValid(
            """
            policy:
              network-presence: [{pe: P1, sites: [S1], countries: [FR, DE]}]
              links:
                - {id: "P1:a", pe: P1, capacity-mbps: 100}
                - {id: "P1:b", pe: P1, capacity-mbps: {incoming: 1000, outgoing: 12.5}}
              qos:
                default: {one-way-delay-ms: 20}
                pairs: [{between: [P1, P1], loss-percent: 0}]
            """)
        #expect(c.policy.links[0].capacity == LinkCapacity(symmetric: 100))
        #expect(c.policy.links[1].capacity == LinkCapacity(incoming: 1000, outgoing: dec("12.5")))
        #expect(c.policy.networkPresence[0].countries == ["FR", "DE"])
        // Missing default metrics keep the built-in default; pair metrics fall back to the file's default.
        #expect(c.policy.qos.defaultQoS == AchievableQoS(oneWayDelayMs: 20, delayVariationMs: 10, lossPercent: 1))
        #expect(
            c.policy.qos.pairs == [
                QoSPair(
                    first: "P1", second: "P1",
                    qos: AchievableQoS(oneWayDelayMs: 20, delayVariationMs: 10, lossPercent: 0))
            ])
    }

    @Test func approvalRules() throws {
        let c = try loadValid(
            """
            customers: [{identity: acme}]
            approval:
              mode: manual
              rules:
                - all
                - above-mbps: 1000
                - above-total-mbps: 2500
                - above-amount: "10000.00"
                - purpose: testing
                - customers: [ACME]
              escalate-out-of-resources: true
            """)
        #expect(
            c.approval
                == ApprovalConfiguration(
                    mode: .manual,
                    rules: [.all, .aboveMbps(1000), .aboveTotalMbps(2500), .aboveAmount(10000), .purpose(.testing), .customers(["ACME"])],
                    escalateOutOfResources: true))
    }

    // MARK: errors, one kind at a time, with their exact paths

    @Test func syntaxError() {
        let e = errorList("listen:\n  port: [1, 2\n")
        #expect(e.count == 1)
        #expect(e.first?.code == .syntax)
        #expect(e.first?.path == .root)
        #expect(e.first?.description.hasPrefix("$: not valid YAML") == true)
        #expect(e.first?.line != nil)
    }

    @Test func topLevelMustBeAMapping() {
        #expect(errors("- a\n- b\n") == ["$: expected a mapping, found a list"])
    }

    @Test func unknownKeysWithDidYouMean() {
        #expect(errors("lisen: {}\n") == [#"lisen: unknown key (did you mean "listen"?)"#])
        #expect(errors("colour: blue\n") == ["colour: unknown key"])
        #expect(errors("listen: {prot: 1}\n") == [#"listen.prot: unknown key (did you mean "port"?)"#])
    }

    @Test func unknownKeyAndMissingKeyPaths() {
        let e = errorList(
            """
            policy:
              network-presence: [{pe: P}]
              links:
                - id: L
                  pe: P
                  capacity-mpbs: 10
            """)
        #expect(
            Set(e.map(\.description)) == [
                #"policy.links[0].capacity-mpbs: unknown key (did you mean "capacity-mbps"?)"#,
                "policy.links[0].capacity-mbps: missing required key",
            ])
        #expect(Set(e.map(\.code)) == [.unknownKey, .missingKey])
    }

    @Test func wrongTypes() {
        #expect(errors("listen: [1]\n") == ["listen: expected a mapping, found a list"])
        #expect(errors("customers: {identity: a}\n") == ["customers: expected a list, found a mapping"])
        #expect(errors("listen: {host: {a: 1}}\n") == ["listen.host: expected a string, found a mapping"])
        #expect(errors("listen: {port: http}\n") == ["listen.port: must be an integer between 0 and 65535"])
        #expect(errors("listen: {port: 70000}\n") == ["listen.port: must be an integer between 0 and 65535"])
        #expect(
            errors("policy: {counter-offers: {drop-unserved-sites: maybe}}\n")
                == ["policy.counter-offers.drop-unserved-sites: expected true or false"])
        #expect(errors("policy: {links: [null]}\n") == ["policy.links[0]: expected a mapping, found nothing"])
    }

    @Test func invalidValues() {
        #expect(
            errors("listen: {transport: dtsl}\n")
                == [#"listen.transport: must be one of "dtls", "tls", "plain-udp" (did you mean "dtls"?)"#])
        #expect(errors("listen: {host: \"\"}\n") == ["listen.host: must not be empty"])
        #expect(errors("listen: {rcvbuf: lots}\n") == ["listen.rcvbuf: must be a positive size in bytes (e.g. 262144 or 256KiB)"])
        #expect(
            errors("timers: {offer-validity: 10 minutes}\n")
                == ["timers.offer-validity: not a positive duration (e.g. 500ms, 30s, 10m, 1h, 1d)"])
        #expect(
            errors("timers: {offer-validity: 0s}\n")
                == ["timers.offer-validity: not a positive duration (e.g. 500ms, 30s, 10m, 1h, 1d)"])
        // Requests for more time (RFC 8921 §11.2.1) must come before the expected offer time.
        let early = errorList("timers:\n  approval-expected-offer-time: 10m\n  more-time:\n    request-before: 10m\n")
        #expect(early.map(\.description) == ["timers.more-time.request-before: must be shorter than timers.approval-expected-offer-time"])
        #expect(early.first?.line == 4)
        #expect(
            errors("timers: {approval-expected-offer-time: 2m}\n")
                == ["timers.more-time.request-before: must be shorter than timers.approval-expected-offer-time"])
        #expect(
            (try? ConfigurationLoader.load(yaml: "timers: {approval-expected-offer-time: 2m, more-time: {max-requests: 0}}\n").get())?
                .timers.moreTime.maximumRequests == 0)
        #expect(
            errors("timers: {more-time: {max-requests: -1, extension: forever, request-befor: 1m}}\n") == [
                #"timers.more-time.request-befor: unknown key (did you mean "request-before"?)"#,
                "timers.more-time.extension: not a positive duration (e.g. 500ms, 30s, 10m, 1h, 1d)",
                "timers.more-time.max-requests: must be an integer between 0 and 100",
            ])
        #expect(errors("pricing: {currency: euro}\n") == ["pricing.currency: not an ISO 4217 currency code (e.g. EUR)"])
        #expect(errors("pricing: {per-mbps: -1}\n") == ["pricing.per-mbps: must be a number ≥ 0"])
        #expect(errors("pricing:\n  base-fee: 1,5\n") == ["pricing.base-fee: must be a number ≥ 0"])
        #expect(
            errors("policy: {qos: {availability-percent: 100.5}}\n")
                == ["policy.qos.availability-percent: must be a number between 0 and 100"])
        #expect(
            errors("policy: {network-presence: [{pe: P, countries: [France]}]}\n")
                == ["policy.network-presence[0].countries[0]: not an ISO 3166-1 alpha-2 country code (e.g. FR)"])
        #expect(errors("policy: {activation-types: []}\n") == ["policy.activation-types: must list at least one activation type"])
        #expect(errors("provisioning: {http-url: ftp://x}\n") == ["provisioning.http-url: must be an http:// or https:// URL"])
        #expect(errors("provisioning: {command: []}\n") == ["provisioning.command: must list the program and its arguments"])
        #expect(
            errors("provisioning: {retry: {initial: 1m, max: 1s}}\n")
                == ["provisioning.retry.max: must not be shorter than retry.initial"])
        #expect(
            errors("approval: {rules: [everything]}\n")
                == [#"approval.rules[0]: unknown rule "everything"; write all, or a mapping such as above-mbps: 1000"#])
        #expect(
            errors("approval: {rules: [{above-mbps: 1, purpose: testing}]}\n")
                == ["approval.rules[0]: a rule has exactly one key; write one list item per rule"])
    }

    @Test func positiveCapacity() {
        let yaml = """
            policy:
              network-presence: [{pe: P}]
              links:
                - {id: a, pe: P, capacity-mbps: 100}
                - {id: b, pe: P, capacity-mbps: 200}
                - {id: c, pe: P, capacity-mbps: 0}
                - {id: d, pe: P, capacity-mbps: {incoming: -5, outgoing: 10}}
                - {id: e, pe: P, capacity-mbps: lots}
            """
        #expect(
            errors(yaml) == [
                "policy.links[2].capacity-mbps: must be a positive number",
                "policy.links[3].capacity-mbps.incoming: must be a positive number",
                "policy.links[4].capacity-mbps: must be a positive number",
            ])
    }

    @Test func cidrPrefixes() {
        let e = errors(
            """
            customers:
              - identity: acme
                source-prefixes: [10.0.0.0/8, 10.0.0.1/33, 192.0.2.1/24, banana, "2001:db8::/32"]
            """)
        #expect(
            e == [
                #"customers[0].source-prefixes[1]: not a CIDR prefix (prefix length "33" is not in 0...32)"#,
                #"customers[0].source-prefixes[2]: not a CIDR prefix ("192.0.2.1/24" has host bits set beyond /24)"#,
                #"customers[0].source-prefixes[3]: not a CIDR prefix ("banana" is not a CIDR prefix (address/length))"#,
            ])
    }

    @Test func duplicates() {
        #expect(errors("listen: {port: 1, port: 2}\n") == ["listen.port: duplicate key"])
        #expect(
            errors(
                """
                policy:
                  network-presence: [{pe: P}, {pe: P}]
                  links:
                    - {id: L, pe: P, capacity-mbps: 1}
                    - {id: L, pe: P, capacity-mbps: 1}
                    - {id: P, pe: P, capacity-mbps: 1}
                customers: [{identity: acme}, {identity: ACME}]
                """) == [
                    "policy.network-presence[1].pe: duplicate PE \"P\" (first at policy.network-presence[0].pe)",
                    "policy.links[1].id: duplicate link \"L\" (first at policy.links[0].id)",
                    "policy.links[2].id: \"P\" is already the name of a PE; a link id must differ from PE names",
                    "customers[1].identity: duplicate customer identity \"ACME\" (first at customers[0].identity)",
                ])
    }

    @Test func unknownReferences() {
        let e = errorList(
            """
            policy:
              network-presence: [{pe: PE-PAR-1}]
              links: [{id: L, pe: PE-PAR-2, capacity-mbps: 1}]
              qos: {pairs: [{between: [PE-PAR-1, PE-LYS-1]}, {between: [PE-PAR-1]}]}
            customers:
              - identity: acme
                entitlements: {pes: [PE-MRS-1]}
            approval: {rules: [{customers: [initech]}]}
            """)
        #expect(
            e.map(\.description) == [
                #"policy.links[0].pe: unknown PE "PE-PAR-2" (not in policy.network-presence); did you mean "PE-PAR-1"?"#,
                #"policy.qos.pairs[0].between[1]: unknown PE "PE-LYS-1" (not in policy.network-presence)"#,
                "policy.qos.pairs[1].between: must name exactly two PEs",
                #"customers[0].entitlements.pes[0]: unknown PE "PE-MRS-1" (not in policy.network-presence)"#,
                #"approval.rules[0].customers[0]: unknown customer identity "initech" (not in customers)"#,
            ])
        #expect(e.map(\.code) == [.unknownReference, .unknownReference, .invalidValue, .unknownReference, .unknownReference])
    }

    @Test func everyErrorIsCollectedInDocumentOrder() {
        let yaml = """
            lisen:
              port: 1
            listen:
              port: 70000
              transport: dtsl
            policy:
              network-presence:
                - pe: PE-A
              links:
                - id: L1
                  pe: PE-A
                  capacity-mbps: 100
                - id: L2
                  pe: PE-B
                  capacity-mbps: 100
                - id: L3
                  pe: PE-A
                  capacity-mbps: 0
            customers:
              - identity: acme
                source-prefixes: [10.0.0.0/8, 10.0.0.1/33]
                entitlements: {testing-orders: sometimes}
            """
        let e = errorList(yaml)
        #expect(
            e.map(\.description) == [
                #"lisen: unknown key (did you mean "listen"?)"#,
                "listen.port: must be an integer between 0 and 65535",
                #"listen.transport: must be one of "dtls", "tls", "plain-udp" (did you mean "dtls"?)"#,
                #"policy.links[1].pe: unknown PE "PE-B" (not in policy.network-presence); did you mean "PE-A"?"#,
                "policy.links[2].capacity-mbps: must be a positive number",
                #"customers[0].source-prefixes[1]: not a CIDR prefix (prefix length "33" is not in 0...32)"#,
                "customers[0].entitlements.testing-orders: expected true or false",
            ])
        #expect(e.map(\.line) == [1, 4, 5, 14, 18, 21, 22])
        let all = ConfigurationErrors(e)
        #expect(all.description.hasPrefix(#"line 1: lisen: unknown key"#))
        #expect(all.description.split(separator: "\n").count == 7)
    }

    @Test func durationsAndSuggestions() {
        #expect(Duration(text: "1h30m") == .seconds(5400))
        #expect(Duration(text: "250ms") == .milliseconds(250))
        #expect(Duration(text: "45") == .seconds(45))
        #expect(Duration(text: "1.5h") == nil)
        #expect(Duration(text: "h") == nil)
        #expect(Duration(text: "10 m") == nil)
        #expect(YAMLReader.suggestion(for: "capacity-mpbs", among: ["id", "pe", "capacity-mbps"]) == "capacity-mbps")
        #expect(YAMLReader.suggestion(for: "xyz", among: ["id", "pe"]) == nil)
        #expect(YAMLReader.distance(Array("ab".utf8), Array("ba".utf8)) == 1)
    }

    @Test func unreadableFile() {
        guard case .failure(let e) = ConfigurationLoader.load(contentsOfFile: "/nonexistent/cpnpd.yaml") else {
            Issue.record("expected a failure")
            return
        }
        #expect(e.errors.map(\.description) == ["$: cannot read /nonexistent/cpnpd.yaml"])
    }
}
