import CPNPCore

extension ServerConfiguration {
    /// The built-in configuration `cpnpd` runs with when started without `--config`: a small
    /// provider network in France and two customers matching the development client
    /// certificates `acme` and `globex`. `Examples/cpnpd.yaml` holds exactly the same content,
    /// documented (a test checks that loading it yields this value).
    ///
    /// - PEs: PE-PAR-1 (Paris, also takes new sites anywhere in FR), PE-PAR-2 (site PARIS-HQ),
    ///   PE-LYS-1 (LYON-DC), PE-MRS-1 (MARSEILLE-BR).
    /// - Links: PE-PAR-1:xe-0/0/0 10000 Mbit/s, PE-PAR-1:ge-0/0/2 1000, PE-PAR-2:ge-0/0/1 1000,
    ///   PE-LYS-1:ge-0/0/3 400 in / 200 out, PE-MRS-1:xe-1/0/0 200.
    /// - `acme`: up to 10000 Mbit/s per attachment, FR, any PE, testing orders (≤ 30 days),
    ///   500.00 EUR + 2.50 EUR/Mbit/s per month.
    /// - `globex`: up to 500 Mbit/s per attachment, FR, not PE-MRS-1, no testing orders,
    ///   800.00 EUR + 3.10 EUR/Mbit/s per month, quantitative QoS premium 250.00.
    /// - Approval: automatic (RFC 8921 §12.2), except orders with a bandwidth above 1000 Mbit/s.
    /// - Catalogue: "L3VPN, 3 sites" (bandwidths to choose) and "Internet access 1 Gbit/s" (acme only).
    public static let demo: ServerConfiguration = {
        func decimal(_ text: String) -> CPNPDecimal { CPNPDecimal(parsing: text)! }
        func prefix(_ text: String) -> CPDIPPrefix { CPDIPPrefix(text)! }
        func template(_ json: String) -> CPD { try! CPD(json: JSONParser.parse(Array(json.utf8)), at: .root) }
        let pricing = PricingRule(
            currency: "EUR", period: "month", baseFee: decimal("1000.00"), perMbps: decimal("4.00"),
            qosPremiums: ["quantitative": decimal("150.00"), "gold": decimal("300.00"), "silver": decimal("120.00")])
        var globexPricing = pricing
        globexPricing.baseFee = decimal("800.00")
        globexPricing.perMbps = decimal("3.10")
        globexPricing.qosPremiums["quantitative"] = decimal("250.00")
        var acmePricing = pricing
        acmePricing.baseFee = decimal("500.00")
        acmePricing.perMbps = decimal("2.50")
        let defaultQoS = AchievableQoS(oneWayDelayMs: 30, delayVariationMs: 8, lossPercent: decimal("0.3"))
        var configuration = ServerConfiguration(
            listen: ListenConfiguration(host: "127.0.0.1", port: 8921, transport: .dtls),
            pki: PKIConfiguration(
                directory: "./.cpnp/pki", caFile: "ca.pem", certificateFile: "server.pem",
                keyFile: "server-key.pem"),
            database: DatabaseConfiguration(path: "./.cpnp/cpnpd.sqlite"),
            timers: TimerConfiguration(
                retransmissionInitial: .seconds(1), retransmissionMaxRetries: 3, offerValidity: .seconds(600),
                expectedOfferTime: .seconds(60), approvalExpectedOfferTime: .seconds(3600)),
            provider: ProviderDescription(
                name: "Provider A (demo)",
                contact: ContactInformation(email: "orders@provider-a.example", telephoneNumbers: ["+33 1 00 00 00 00"]),
                asNumber: 64500),
            policy: PolicyConfiguration(
                activationTypes: [.immediate, .scheduled, .explicit],
                networkPresence: [
                    ProviderEdge(id: "PE-PAR-1", city: "Paris", sites: ["PARIS-DC1"], countries: ["FR"]),
                    ProviderEdge(id: "PE-PAR-2", city: "Paris", sites: ["PARIS-HQ"]),
                    ProviderEdge(id: "PE-LYS-1", city: "Lyon", sites: ["LYON-DC"]),
                    ProviderEdge(id: "PE-MRS-1", city: "Marseille", sites: ["MARSEILLE-BR"]),
                ],
                links: [
                    ProviderLink(id: "PE-PAR-1:xe-0/0/0", pe: "PE-PAR-1", capacity: LinkCapacity(symmetric: 10000)),
                    ProviderLink(id: "PE-PAR-1:ge-0/0/2", pe: "PE-PAR-1", capacity: LinkCapacity(symmetric: 1000)),
                    ProviderLink(id: "PE-PAR-2:ge-0/0/1", pe: "PE-PAR-2", capacity: LinkCapacity(symmetric: 1000)),
                    ProviderLink(id: "PE-LYS-1:ge-0/0/3", pe: "PE-LYS-1", capacity: LinkCapacity(incoming: 400, outgoing: 200)),
                    ProviderLink(id: "PE-MRS-1:xe-1/0/0", pe: "PE-MRS-1", capacity: LinkCapacity(symmetric: 200)),
                ],
                qos: QoSCapabilities(
                    defaultQoS: defaultQoS,
                    pairs: [
                        QoSPair(
                            first: "PE-PAR-1", second: "PE-PAR-2",
                            qos: AchievableQoS(oneWayDelayMs: 2, delayVariationMs: decimal("0.5"), lossPercent: decimal("0.01"))),
                        QoSPair(
                            first: "PE-PAR-1", second: "PE-LYS-1",
                            qos: AchievableQoS(oneWayDelayMs: 12, delayVariationMs: 3, lossPercent: decimal("0.05"))),
                        QoSPair(
                            first: "PE-PAR-2", second: "PE-LYS-1",
                            qos: AchievableQoS(oneWayDelayMs: 12, delayVariationMs: 3, lossPercent: decimal("0.05"))),
                        QoSPair(
                            first: "PE-LYS-1", second: "PE-MRS-1",
                            qos: AchievableQoS(oneWayDelayMs: 9, delayVariationMs: 2, lossPercent: decimal("0.05"))),
                        QoSPair(
                            first: "PE-PAR-2", second: "PE-MRS-1",
                            qos: AchievableQoS(oneWayDelayMs: 18, delayVariationMs: 4, lossPercent: decimal("0.1"))),
                    ],
                    availabilityPercent: decimal("99.95"),
                    metaQoSClasses: ["gold", "silver", "bronze"]),
                defaults: OfferDefaults(
                    bandwidthMbps: 10, mtuBytes: 1500, notificationIntervalSeconds: 300,
                    invocationType: .implicit),
                counterOffers: CounterOfferPolicy(dropUnservedSites: false, dropExhaustedSites: true)),
            customers: [
                CustomerProfile(
                    identity: "acme", name: "ACME Corp", maxOpenOrders: 20,
                    sourcePrefixes: [prefix("127.0.0.0/8"), prefix("::1/128"), prefix("10.0.0.0/8"), prefix("192.0.2.0/24")],
                    entitlements: Entitlements(
                        maxBandwidthMbps: 10000, countries: ["FR"], pes: nil, testingOrders: true,
                        maxTestPeriod: .seconds(30 * 86400)),
                    pricing: acmePricing),
                CustomerProfile(
                    identity: "globex", name: "Globex Corporation", maxOpenOrders: 5,
                    sourcePrefixes: [prefix("127.0.0.0/8"), prefix("::1/128"), prefix("198.51.100.0/24")],
                    entitlements: Entitlements(
                        maxBandwidthMbps: 500, countries: ["FR"], pes: ["PE-PAR-1", "PE-PAR-2", "PE-LYS-1"],
                        testingOrders: false),
                    pricing: globexPricing),
            ],
            pricing: pricing,
            approval: ApprovalConfiguration(mode: .automatic, rules: [.aboveMbps(1000)], escalateOutOfResources: false),
            provisioning: ProvisioningConfiguration(
                command: nil, httpURL: nil, events: ProvisioningEvent.allCases, timeout: .seconds(30),
                retryInitialBackoff: .seconds(5), retryMaxBackoff: .seconds(600)),
            rateLimits: RateLimitConfiguration(quotationsPerMinute: 30, failsPerMinute: 60),
            limits: LimitConfiguration(
                maxAssociations: 1024, associationIdleTimeout: .seconds(600), maxDatagramBytes: 16384,
                defaultMaxOpenOrders: 100, maxPendingApprovals: 1000))
        configuration.catalog = [
            CatalogTemplate(
                id: "l3vpn-3-sites", name: "L3VPN, 3 sites",
                description: "An isolated IP VPN between Paris, Lyon and Marseille. Choose the bandwidth of each site.",
                cpd: template(
                    #"{"components": [{"profiles": [{"customer-nodes": [{"identifier": "CE-PAR-1", "link-identifiers": [], "localization": {"site-id": "PARIS-HQ", "country": "FR"}}, {"identifier": "CE-LYS-1", "link-identifiers": [], "localization": {"site-id": "LYON-DC", "country": "FR"}}, {"identifier": "CE-MRS-1", "link-identifiers": [], "localization": {"site-id": "MARSEILLE-BR", "country": "FR"}}], "scope": [{"customer-node": "CE-PAR-1", "direction": "outgoing", "reachability": "restricted", "model": "hose", "source-prefixes": ["10.1.0.0/16"], "destination-prefixes": ["10.2.0.0/16", "10.3.0.0/16"]}, {"customer-node": "CE-LYS-1", "direction": "outgoing", "reachability": "restricted", "model": "hose", "source-prefixes": ["10.2.0.0/16"], "destination-prefixes": ["10.1.0.0/16", "10.3.0.0/16"]}, {"customer-node": "CE-MRS-1", "direction": "outgoing", "reachability": "restricted", "model": "hose", "source-prefixes": ["10.3.0.0/16"], "destination-prefixes": ["10.1.0.0/16", "10.2.0.0/16"]}], "capacity": [{"customer-node": "CE-PAR-1", "incoming-bandwidth-mbps": {"min": 10, "max": 500}, "outgoing-bandwidth-mbps": {"min": 10, "max": 500}}, {"customer-node": "CE-LYS-1", "incoming-bandwidth-mbps": {"min": 10, "max": 200}, "outgoing-bandwidth-mbps": {"min": 10, "max": 200}}, {"customer-node": "CE-MRS-1", "incoming-bandwidth-mbps": {"min": 10, "max": 200}, "outgoing-bandwidth-mbps": {"min": 10, "max": 200}}], "conformance-traffic": {"enforcement": "policing", "out-of-profile-action": "discard"}, "traffic-isolation": {"isolated": true}}]}]}"#
                ),
                labels: [
                    "components[0].profiles[0].capacity[0].incoming-bandwidth-mbps": "Paris HQ, towards the site (Mbit/s)",
                    "components[0].profiles[0].capacity[0].outgoing-bandwidth-mbps": "Paris HQ, from the site (Mbit/s)",
                    "components[0].profiles[0].capacity[1].incoming-bandwidth-mbps": "Lyon DC, towards the site (Mbit/s)",
                    "components[0].profiles[0].capacity[1].outgoing-bandwidth-mbps": "Lyon DC, from the site (Mbit/s)",
                    "components[0].profiles[0].capacity[2].incoming-bandwidth-mbps": "Marseille branch, towards the site (Mbit/s)",
                    "components[0].profiles[0].capacity[2].outgoing-bandwidth-mbps": "Marseille branch, from the site (Mbit/s)",
                ]),
            CatalogTemplate(
                id: "internet-access-1g", name: "Internet access 1 Gbit/s",
                description: "Global reachability from one site in Paris at 1 Gbit/s each way.", customers: ["acme"],
                cpd: template(
                    #"{"components": [{"profiles": [{"customer-nodes": [{"identifier": "CE-1", "link-identifiers": [], "localization": {"site-id": "PARIS-DC1", "country": "FR"}}], "scope": [{"customer-node": "CE-1", "direction": "outgoing", "reachability": "global", "model": "unspecified-hose", "source-prefixes": ["192.0.2.0/24"]}], "capacity": [{"customer-node": "CE-1", "incoming-bandwidth-mbps": 1000, "outgoing-bandwidth-mbps": 1000}], "conformance-traffic": {"enforcement": "shaping", "out-of-profile-action": "discard"}, "availability": {"availability-percent": {"min": 99.9}, "statistic": "average", "measurement-period": "month"}, "invocation-means": {"type": {"one-of": ["implicit", "explicit"]}}}]}]}"#
                )),
        ]
        return configuration
    }()
}
