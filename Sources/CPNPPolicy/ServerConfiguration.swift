public import CPNPCore

/// The whole configuration of `cpnpd`, the provider's CPNP server, as typed values.
///
/// It covers the transport and storage settings the daemon needs and, above all, the
/// *policy* the decision engine applies: the inputs RFC 8921 §8.2 lists for the CPNP server
/// (customer profiles, network topology and resources, business guidelines such as pricing,
/// provisioning hand-off) and the operating modes of §12.2 (fully automated or administrative
/// validation).
///
/// Load one from YAML with ``ConfigurationLoader/load(yaml:)``; ``demo`` is the built-in
/// configuration `cpnpd` uses when started without `--config` (the same content as
/// `Examples/cpnpd.yaml`). Keys are documented in `docs/configuration.md`.
public struct ServerConfiguration: Sendable, Hashable {
    /// `listen`: where and how the server accepts CPNP associations (RFC 8921 §8.1).
    public var listen: ListenConfiguration
    /// `pki`: certificates for mutual authentication (RFC 8921 §13).
    public var pki: PKIConfiguration
    /// `database`: the durable order store.
    public var database: DatabaseConfiguration
    /// `timers`: protocol timers (RFC 8921 §11.4, §9.2.2, §9.2.3).
    public var timers: TimerConfiguration
    /// `provider`: the Provider Description sent in offers (RFC 8921 §9.1.10.2).
    public var provider: ProviderDescription
    /// `policy`: network presence, resources and QoS the decision engine works with (RFC 8921 §8.2).
    public var policy: PolicyConfiguration
    /// `customers`: customer profiles keyed by certificate identity (RFC 8921 §8.2 "Customer Profiles").
    public var customers: [CustomerProfile]
    /// `pricing`: the default price list (RFC 8921 §8.2 "guidelines ... pricing"); a customer
    /// profile may override it.
    public var pricing: PricingRule
    /// `approval`: fully automated or administrative validation (RFC 8921 §12.2).
    public var approval: ApprovalConfiguration
    /// `provisioning`: hand-off of agreed orders to the Network Provisioning Manager (RFC 8921 §8.2).
    public var provisioning: ProvisioningConfiguration
    /// `rate-limits`: per-client protections (RFC 8921 §13).
    public var rateLimits: RateLimitConfiguration
    /// `limits`: resource caps of the daemon.
    public var limits: LimitConfiguration
    /// `http`: the daemon's HTTP server (health, readiness, metrics; docs/console.md).
    public var http = HTTPConfiguration()
    /// `catalog`: the service catalogue of the customer portal and `cpnp catalog`; default empty.
    public var catalog: [CatalogTemplate] = []
    /// `upstreams`: partner providers for cascaded negotiation (RFC 8921 §8.8); default none.
    public var upstreams: [UpstreamProvider] = []
    /// `cascade`: how child orders are negotiated with the upstreams (RFC 8921 §8.8).
    public var cascade = CascadeConfiguration()

    /// Creates a configuration; every section defaults to its documented default (an empty
    /// network and no customer: nothing can be ordered).
    ///
    /// - Parameters:
    ///   - listen: `listen` section.
    ///   - pki: `pki` section.
    ///   - database: `database` section.
    ///   - timers: `timers` section.
    ///   - provider: `provider` section.
    ///   - policy: `policy` section.
    ///   - customers: `customers` section.
    ///   - pricing: `pricing` section.
    ///   - approval: `approval` section.
    ///   - provisioning: `provisioning` section.
    ///   - rateLimits: `rate-limits` section.
    ///   - limits: `limits` section.
    public init(
        listen: ListenConfiguration = .init(),
        pki: PKIConfiguration = .init(),
        database: DatabaseConfiguration = .init(),
        timers: TimerConfiguration = .init(),
        provider: ProviderDescription = .init(),
        policy: PolicyConfiguration = .init(),
        customers: [CustomerProfile] = [],
        pricing: PricingRule = .init(),
        approval: ApprovalConfiguration = .init(),
        provisioning: ProvisioningConfiguration = .init(),
        rateLimits: RateLimitConfiguration = .init(),
        limits: LimitConfiguration = .init()
    ) {
        self.listen = listen
        self.pki = pki
        self.database = database
        self.timers = timers
        self.provider = provider
        self.policy = policy
        self.customers = customers
        self.pricing = pricing
        self.approval = approval
        self.provisioning = provisioning
        self.rateLimits = rateLimits
        self.limits = limits
    }

    /// The customer profile whose `identity` equals one of the names of the client's
    /// certificate (its subject CN and its DNS subject alternative names), compared without
    /// regard to ASCII case (RFC 8921 §13: mutual authentication; RFC 6125 names).
    ///
    /// - Parameter identities: the CN and DNS SANs of the authenticated client certificate.
    /// - Returns: the first matching profile in configuration order, or nil (→ FAIL 3).
    ///
    /// A certificate whose names match two different profiles matches none (fail closed): it could
    /// otherwise act on either customer's orders depending on the order of the profiles (§13).
    public func customerProfile(matching identities: [String]) -> CustomerProfile? {
        let matching = customers.filter { $0.matches(identities: identities) }
        guard let first = matching.first, matching.allSatisfy({ $0.identity == first.identity }) else { return nil }
        return first
    }

    /// The resource inventory of ``policy`` minus `reservations` (RFC 8921 §8.2 "Check whether
    /// network capacity is available").
    ///
    /// - Parameter reservations: capacity currently held by valid offers and agreements.
    /// - Returns: the free capacity per link and direction.
    public func inventory(reservations: [Reservation] = []) -> InventoryView {
        InventoryView(links: policy.links, reservations: reservations)
    }
}

// MARK: - Listen, PKI, database, timers

/// The secured transport `cpnpd` listens on (RFC 8921 §8.1; docs/protocol.md §2.1).
public enum TransportKind: String, Sendable, Hashable, CaseIterable {
    /// UDP secured by DTLS 1.2 (the default, RFC 8921 §8.1).
    case dtls
    /// TLS over TCP, length-prefixed (large documents).
    case tls
    /// Plain UDP: labs and tests only, never authenticated.
    case plainUDP = "plain-udp"
}

/// `listen`: the server's endpoint.
public struct ListenConfiguration: Sendable, Hashable {
    /// `host`: address to bind, default `127.0.0.1`.
    public var host: String
    /// `port`: default 8921 (this project's default port; RFC 8921 assigns none).
    public var port: UInt16
    /// `transport`: `dtls` (default), `tls` or `plain-udp`.
    public var transport: TransportKind
    /// `rcvbuf`: socket receive buffer size in bytes; nil = the operating system's default.
    public var receiveBufferBytes: Int?
    /// `reuse-port`: listen with SO_REUSEPORT, so that several `cpnpd` on one host and one database
    /// share the port (DTLS only; docs/deployment.md). Default false: a second process on the port
    /// is an error.
    public var reusePort = false
    /// `plain-udp-customer`: with `transport: plain-udp` only, the customer every (unauthenticated)
    /// client is taken for, still subject to its `source-prefixes`. Labs and benchmarks only: plain
    /// UDP carries no identity (RFC 8921 §13 requires DTLS or TLS).
    public var plainUDPCustomer: String?

    /// - Parameters:
    ///   - host: address to bind.
    ///   - port: port to bind.
    ///   - transport: transport kind.
    ///   - receiveBufferBytes: `SO_RCVBUF` in bytes, or nil.
    public init(
        host: String = "127.0.0.1", port: UInt16 = 8921, transport: TransportKind = .dtls,
        receiveBufferBytes: Int? = nil
    ) {
        self.host = host
        self.port = port
        self.transport = transport
        self.receiveBufferBytes = receiveBufferBytes
    }
}

/// `pki`: where the server's certificate, key and the CA that signs client certificates live
/// (RFC 8921 §13: client and server are mutually authenticated).
public struct PKIConfiguration: Sendable, Hashable {
    /// `directory`: default `./.cpnp/pki`.
    public var directory: String
    /// `ca`: CA certificate file (PEM) that client certificates must chain to; default `ca.pem`.
    public var caFile: String
    /// `cert`: the server certificate (PEM); default `server.pem`.
    public var certificateFile: String
    /// `key`: the server private key (PEM); default `server-key.pem`.
    public var keyFile: String

    /// - Parameters:
    ///   - directory: the PKI directory.
    ///   - caFile: CA file name (relative to `directory` unless absolute).
    ///   - certificateFile: certificate file name.
    ///   - keyFile: key file name.
    public init(
        directory: String = "./.cpnp/pki", caFile: String = "ca.pem", certificateFile: String = "server.pem",
        keyFile: String = "server-key.pem"
    ) {
        self.directory = directory
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// ``caFile`` resolved against ``directory``.
    public var caPath: String { resolve(caFile) }
    /// ``certificateFile`` resolved against ``directory``.
    public var certificatePath: String { resolve(certificateFile) }
    /// ``keyFile`` resolved against ``directory``.
    public var keyPath: String { resolve(keyFile) }

    private func resolve(_ file: String) -> String {
        if file.hasPrefix("/") { return file }
        return directory.hasSuffix("/") ? directory + file : directory + "/" + file
    }
}

/// `database`: the order store: a SQLite file (the embedded default) or a PostgreSQL database that
/// several `cpnpd` share (docs/deployment.md).
public struct DatabaseConfiguration: Sendable, Hashable {
    /// `path`: the SQLite file; default `./.cpnp/cpnpd.sqlite`. Not used when `url` is set.
    public var path: String
    /// `url`: a PostgreSQL database, `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]`.
    public var url: String?

    /// - Parameters:
    ///   - path: the SQLite file.
    ///   - url: a PostgreSQL URL, which takes precedence over `path`.
    public init(path: String = "./.cpnp/cpnpd.sqlite", url: String? = nil) {
        self.path = path
        self.url = url
    }

    /// Where the orders are: the URL when one is set, else the file's path.
    public var location: String { url ?? path }

    /// Whether `text` names a PostgreSQL database (its scheme), valid or not.
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Sets the location given on a command line (`--database`): a PostgreSQL URL or a file's path.
    /// Returns why it cannot be either, or nil.
    public mutating func set(commandLine text: String) -> String? {
        if Self.isPostgresURL(text) {
            url = text
            return nil
        }
        if let problem = Self.problem(with: text) { return problem }
        path = text
        url = nil
        return nil
    }

    /// Why `path` cannot be the SQLite file, or nil. A URL names a database server: taken as a path
    /// it would create a file in a folder named after the scheme.
    public static func problem(with path: String) -> String? {
        if path.isEmpty { return "must not be empty" }
        guard let schemeEnd = path.firstRange(of: "://") else { return nil }
        let scheme = path[..<schemeEnd.lowerBound]
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else { return nil }
        if isPostgresURL(path) {
            return "\"\(scheme)://…\" is a URL, not a file: give a PostgreSQL database as database.url (or --database)"
        }
        return "\"\(scheme)://…\" is a URL of no database this cpnpd speaks to: give a SQLite file's path, or a postgres:// URL"
    }
}

/// `timers`: protocol timers of the server.
public struct TimerConfiguration: Sendable, Hashable {
    /// `retransmission.initial`: first RETRANS_TIMER, doubling at each retry (RFC 8921 §11.4); default 1 s.
    public var retransmissionInitial: Duration
    /// `retransmission.max-retries`: retransmissions after the first send (RFC 8921 §11.4); default 3.
    public var retransmissionMaxRetries: Int
    /// `offer-validity`: how long an OFFER stays valid, i.e. VALIDITY_OFFER_TIME − now
    /// (RFC 8921 §9.2.3); default 10 minutes. Capacity is reserved for that long.
    public var offerValidity: Duration
    /// `expected-offer-time`: EXPECTED_OFFER_TIME − now announced in PROCESSING (RFC 8921 §9.2.2);
    /// default 60 s. An OFFER made at once announces no later time than the customer's EXPECTED_RESPONSE_TIME.
    public var expectedOfferTime: Duration
    /// `approval-expected-offer-time`: the EXPECTED_OFFER_TIME announced while an order waits for
    /// an operator (RFC 8921 §12.2 administrative validation); default 1 hour.
    public var approvalExpectedOfferTime: Duration
    /// `more-time`: requests for more time while an order waits for an operator (RFC 8921 §9.2.2,
    /// §11.2.1).
    public var moreTime: MoreTimeConfiguration

    /// - Parameters:
    ///   - retransmissionInitial: first retransmission interval.
    ///   - retransmissionMaxRetries: number of retransmissions.
    ///   - offerValidity: offer validity.
    ///   - expectedOfferTime: expected offer time for automatic decisions.
    ///   - approvalExpectedOfferTime: expected offer time while waiting for an operator.
    ///   - moreTime: requests for more time while waiting for an operator.
    public init(
        retransmissionInitial: Duration = .seconds(1), retransmissionMaxRetries: Int = 3,
        offerValidity: Duration = .seconds(600), expectedOfferTime: Duration = .seconds(60),
        approvalExpectedOfferTime: Duration = .seconds(3600), moreTime: MoreTimeConfiguration = .init()
    ) {
        self.retransmissionInitial = retransmissionInitial
        self.retransmissionMaxRetries = retransmissionMaxRetries
        self.offerValidity = offerValidity
        self.expectedOfferTime = expectedOfferTime
        self.approvalExpectedOfferTime = approvalExpectedOfferTime
        self.moreTime = moreTime
    }

    /// The core's retransmission policy built from these timers (RFC 8921 §11.4).
    public var retransmissionPolicy: RetransmissionPolicy {
        RetransmissionPolicy(initialInterval: retransmissionInitial, maximumRetries: retransmissionMaxRetries)
    }
}

/// `timers.more-time`: while an order waits for an operator, the server asks the client for more
/// time (PROCESSING with a new EXPECTED_OFFER_TIME) before the expected offer time elapses; the
/// client grants it (ACK) or refuses it (FAIL 7) (RFC 8921 §9.2.2, §11.2.1, Figures 11 and 12).
public struct MoreTimeConfiguration: Sendable, Hashable {
    /// `request-before`: how long before the expected offer time to ask; default 5 minutes. Must be
    /// shorter than `approval-expected-offer-time`.
    public var requestBefore: Duration
    /// `extension`: new EXPECTED_OFFER_TIME = the one in force + this; default 1 hour.
    public var extensionDuration: Duration
    /// `max-requests`: requests per negotiation at most; default 3; 0 never asks.
    public var maximumRequests: Int

    /// - Parameters:
    ///   - requestBefore: lead time before the expected offer time.
    ///   - extensionDuration: extension asked for.
    ///   - maximumRequests: requests per negotiation at most.
    public init(requestBefore: Duration = .seconds(300), extensionDuration: Duration = .seconds(3600), maximumRequests: Int = 3) {
        self.requestBefore = requestBefore
        self.extensionDuration = extensionDuration
        self.maximumRequests = maximumRequests
    }
}

// MARK: - Policy: presence, links, QoS

/// `policy`: what the provider can deliver and where (RFC 8921 §8.2 "Network Topology",
/// "Network Resource Management").
public struct PolicyConfiguration: Sendable, Hashable {
    /// `activation-types`: activation types the provider supports; another one gets FAIL 8
    /// (RFC 8921 §9.2.10 "Unsupported Activation Type"). Default: all three.
    public var activationTypes: [ActivationType]
    /// `network-presence`: the provider edges (PEs) and the sites and countries they serve.
    /// A customer node nowhere served gets FAIL 6 (RFC 8921 §9.2.10 "Network Presence Error").
    public var networkPresence: [ProviderEdge]
    /// `links`: border links with their capacity: the resource inventory.
    public var links: [ProviderLink]
    /// `qos`: the QoS and availability the network achieves (RFC 7297 §3.3, §3.4).
    public var qos: QoSCapabilities
    /// `defaults`: values the provider picks for `"any"` (RFC 8921 §8.7: offers are concrete).
    public var defaults: OfferDefaults
    /// `counter-offers`: when partial offers drop sites rather than fail (RFC 8921 §7 step 2).
    public var counterOffers: CounterOfferPolicy

    /// - Parameters:
    ///   - activationTypes: supported activation types.
    ///   - networkPresence: the PEs.
    ///   - links: the border links.
    ///   - qos: achievable QoS.
    ///   - defaults: values for `"any"`.
    ///   - counterOffers: partial-offer policy.
    public init(
        activationTypes: [ActivationType] = ActivationType.allCases, networkPresence: [ProviderEdge] = [],
        links: [ProviderLink] = [], qos: QoSCapabilities = .init(), defaults: OfferDefaults = .init(),
        counterOffers: CounterOfferPolicy = .init()
    ) {
        self.activationTypes = activationTypes
        self.networkPresence = networkPresence
        self.links = links
        self.qos = qos
        self.defaults = defaults
        self.counterOffers = counterOffers
    }

    /// The PE named `id`, if any.
    ///
    /// - Parameter id: a PE identifier.
    public func edge(_ identifier: String) -> ProviderEdge? { networkPresence.first { $0.id == identifier } }

    /// The link named `id`, if any.
    ///
    /// - Parameter id: a link identifier (e.g. `PE-PAR-2:ge-0/0/1`).
    public func link(_ identifier: String) -> ProviderLink? { links.first { $0.id == identifier } }

    /// The links of PE `pe`, in configuration order.
    ///
    /// - Parameter pe: a PE identifier.
    public func links(at edge: String) -> [ProviderLink] { links.filter { $0.pe == edge } }
}

/// One provider edge router and the customer sites and countries it serves (RFC 7297 §3.1:
/// the provider node a customer node attaches to "may be derived from location").
public struct ProviderEdge: Sendable, Hashable {
    /// `pe`: identifier, as customers write it in `link-identifiers` (e.g. `PE-PAR-1`).
    public var id: String
    /// `city`: informative.
    public var city: String?
    /// `sites`: site identifiers (`localization.site-id`) attached to this PE.
    public var sites: [String]
    /// `countries`: ISO 3166-1 alpha-2 codes where this PE also takes new sites (a node whose
    /// `site-id` no PE lists is served by the PEs of its `country`).
    public var countries: [String]

    /// - Parameters:
    ///   - id: PE identifier.
    ///   - city: informative city.
    ///   - sites: site identifiers served.
    ///   - countries: countries served.
    public init(id: String, city: String? = nil, sites: [String] = [], countries: [String] = []) {
        self.id = id
        self.city = city
        self.sites = sites
        self.countries = countries
    }
}

/// Capacity of a link per direction, in Mbit/s. `incoming` is towards the customer node and
/// `outgoing` from it, the convention of CPD capacity entries (RFC 7297 §3.5; docs/protocol.md §2.7).
public struct LinkCapacity: Sendable, Hashable {
    /// Towards the customer node.
    public var incoming: CPNPDecimal
    /// From the customer node.
    public var outgoing: CPNPDecimal

    /// - Parameters:
    ///   - incoming: Mbit/s towards the customer.
    ///   - outgoing: Mbit/s from the customer.
    public init(incoming: CPNPDecimal, outgoing: CPNPDecimal) {
        self.incoming = incoming
        self.outgoing = outgoing
    }

    /// The same capacity in both directions.
    ///
    /// - Parameter mbps: Mbit/s each way.
    public init(symmetric mbps: CPNPDecimal) {
        self.init(incoming: mbps, outgoing: mbps)
    }

    /// Capacity in `direction`.
    public subscript(direction: CPDDirection) -> CPNPDecimal {
        get { direction == .incoming ? incoming : outgoing }
        set { if direction == .incoming { incoming = newValue } else { outgoing = newValue } }
    }
}

/// A border link of a PE, the unit of capacity reservation (RFC 7297 §3.5 "per border link").
public struct ProviderLink: Sendable, Hashable {
    /// `id`: the link identifier customers use (e.g. `PE-PAR-2:ge-0/0/1`).
    public var id: String
    /// `pe`: the PE the link belongs to.
    public var pe: String
    /// `capacity-mbps`: a number (both directions) or `{incoming, outgoing}`.
    public var capacity: LinkCapacity

    /// - Parameters:
    ///   - id: link identifier.
    ///   - pe: owning PE.
    ///   - capacity: capacity per direction.
    public init(id: String, pe: String, capacity: LinkCapacity) {
        self.id = id
        self.pe = pe
        self.capacity = capacity
    }
}

/// Quantitative performance the network achieves between two points (RFC 7297 §3.3:
/// one-way delay RFC 2679, delay variation RFC 3393, loss RFC 2680). Milliseconds and percent.
public struct AchievableQoS: Sendable, Hashable {
    /// `one-way-delay-ms`.
    public var oneWayDelayMs: CPNPDecimal
    /// `delay-variation-ms`.
    public var delayVariationMs: CPNPDecimal
    /// `loss-percent`.
    public var lossPercent: CPNPDecimal

    /// - Parameters:
    ///   - oneWayDelayMs: achievable one-way delay.
    ///   - delayVariationMs: achievable jitter.
    ///   - lossPercent: achievable loss.
    public init(oneWayDelayMs: CPNPDecimal, delayVariationMs: CPNPDecimal, lossPercent: CPNPDecimal) {
        self.oneWayDelayMs = oneWayDelayMs
        self.delayVariationMs = delayVariationMs
        self.lossPercent = lossPercent
    }
}

/// Achievable QoS between two PEs (symmetric).
public struct QoSPair: Sendable, Hashable {
    /// `between[0]`.
    public var first: String
    /// `between[1]` (may equal ``first``: traffic staying on one PE).
    public var second: String
    /// The values; keys absent in the file take the `default` ones.
    public var qos: AchievableQoS

    /// - Parameters:
    ///   - first: one PE.
    ///   - second: the other PE.
    ///   - qos: achievable values between them.
    public init(first: String, second: String, qos: AchievableQoS) {
        self.first = first
        self.second = second
        self.qos = qos
    }
}

/// `policy.qos`: what the provider can promise (RFC 7297 §3.3 QoS guarantees, §3.4 availability).
public struct QoSCapabilities: Sendable, Hashable {
    /// `default`: values for any pair without an entry, and for the wildcard `"*"`.
    public var defaultQoS: AchievableQoS
    /// `pairs`: values per PE pair.
    public var pairs: [QoSPair]
    /// `availability-percent`: the availability the provider promises (RFC 7297 §3.4).
    public var availabilityPercent: CPNPDecimal
    /// `meta-qos-classes`: qualitative classes offered (RFC 5160), preferred first.
    public var metaQoSClasses: [String]

    /// - Parameters:
    ///   - defaultQoS: default values.
    ///   - pairs: per-pair values.
    ///   - availabilityPercent: availability.
    ///   - metaQoSClasses: qualitative classes.
    public init(
        defaultQoS: AchievableQoS = AchievableQoS(oneWayDelayMs: 50, delayVariationMs: 10, lossPercent: 1),
        pairs: [QoSPair] = [], availabilityPercent: CPNPDecimal = 99,
        metaQoSClasses: [String] = []
    ) {
        self.defaultQoS = defaultQoS
        self.pairs = pairs
        self.availabilityPercent = availabilityPercent
        self.metaQoSClasses = metaQoSClasses
    }

    /// The achievable QoS between PEs `oneEdge` and `otherEdge` (order irrelevant); the default when either
    /// is nil (the wildcard node) or no pair matches.
    ///
    /// - Parameters:
    ///   - oneEdge: one PE, or nil for "any".
    ///   - otherEdge: the other PE, or nil for "any".
    public func achievable(between oneEdge: String?, and otherEdge: String?) -> AchievableQoS {
        guard let oneEdge, let otherEdge else { return defaultQoS }
        return pairs.first { ($0.first == oneEdge && $0.second == otherEdge) || ($0.first == otherEdge && $0.second == oneEdge) }?.qos
            ?? defaultQoS
    }
}

/// `policy.defaults`: what the provider offers for a requested `"any"` (RFC 8921 §8.7).
public struct OfferDefaults: Sendable, Hashable {
    /// `bandwidth-mbps`: bandwidth offered for `"any"` (also `throughput-mbps`); default 10.
    public var bandwidthMbps: CPNPDecimal
    /// `mtu-bytes`: MTU offered for `"any"`; default 1500.
    public var mtuBytes: Int64
    /// `notification-interval-seconds`: notification interval for `"any"`; default 300.
    public var notificationIntervalSeconds: Int64
    /// `invocation-type`: invocation type for `"any"` (RFC 7297 §3.12); default `implicit`.
    public var invocationType: CPDInvocationType

    /// - Parameters:
    ///   - bandwidthMbps: bandwidth for `"any"`.
    ///   - mtuBytes: MTU for `"any"`.
    ///   - notificationIntervalSeconds: interval for `"any"`.
    ///   - invocationType: invocation type for `"any"`.
    public init(
        bandwidthMbps: CPNPDecimal = 10, mtuBytes: Int64 = 1500, notificationIntervalSeconds: Int64 = 300,
        invocationType: CPDInvocationType = .implicit
    ) {
        self.bandwidthMbps = bandwidthMbps
        self.mtuBytes = mtuBytes
        self.notificationIntervalSeconds = notificationIntervalSeconds
        self.invocationType = invocationType
    }
}

/// `policy.counter-offers`: how the engine builds partial offers (RFC 8921 §7 step 2,
/// §8.7 "accommodate all or a subset of the clauses").
public struct CounterOfferPolicy: Sendable, Hashable {
    /// `drop-unserved-sites`: when true, customer nodes outside the network presence are left
    /// out of the offer (a partial offer on a subset of sites) as long as every profile keeps a
    /// node; when false (default) such a request gets FAIL 6 naming the node.
    public var dropUnservedSites: Bool
    /// `drop-exhausted-sites`: when true (default), a customer node for which no capacity is
    /// free is left out of the offer while other nodes can be served; when false the request
    /// gets FAIL 5.
    public var dropExhaustedSites: Bool

    /// - Parameters:
    ///   - dropUnservedSites: partial offer instead of FAIL 6.
    ///   - dropExhaustedSites: partial offer instead of FAIL 5.
    public init(dropUnservedSites: Bool = false, dropExhaustedSites: Bool = true) {
        self.dropUnservedSites = dropUnservedSites
        self.dropExhaustedSites = dropExhaustedSites
    }
}

// MARK: - Customers

/// What a customer may order (RFC 8921 §8.2 "Check whether a Customer is entitled to initiate
/// a provisioning quotation request").
public struct Entitlements: Sendable, Hashable {
    /// `max-bandwidth-mbps`: the largest incoming or outgoing bandwidth of any one capacity entry
    /// (one attachment, one direction) of an order; nil = no limit. A request above it gets a
    /// counter-offer capped at the limit, not a FAIL.
    public var maxBandwidthMbps: CPNPDecimal?
    /// `countries`: countries where customer nodes may be; nil = any (FAIL 4 otherwise).
    public var countries: [String]?
    /// `pes`: PEs the customer may attach to; nil = any (FAIL 4 otherwise).
    public var pes: [String]?
    /// `testing-orders`: whether orders with purpose `testing` are allowed (RFC 8921 §9.1.10.3); default true.
    public var testingOrders: Bool
    /// `max-test-period`: the longest test period (test-period-end − now); nil = no limit.
    public var maxTestPeriod: Duration?

    /// - Parameters:
    ///   - maxBandwidthMbps: per-attachment bandwidth cap.
    ///   - countries: allowed countries.
    ///   - pes: allowed PEs.
    ///   - testingOrders: testing orders allowed.
    ///   - maxTestPeriod: longest test period.
    public init(
        maxBandwidthMbps: CPNPDecimal? = nil, countries: [String]? = nil, pes: [String]? = nil,
        testingOrders: Bool = true, maxTestPeriod: Duration? = nil
    ) {
        self.maxBandwidthMbps = maxBandwidthMbps
        self.countries = countries
        self.pes = pes
        self.testingOrders = testingOrders
        self.maxTestPeriod = maxTestPeriod
    }
}

/// A customer profile, selected by the identity of the client certificate (RFC 8921 §8.2
/// "Customer Profiles", §13 mutual authentication and access control lists).
public struct CustomerProfile: Sendable, Hashable {
    /// `identity`: matched against the client certificate's CN and DNS SANs (ASCII case-insensitive).
    public var identity: String
    /// `name`: display name.
    public var name: String?
    /// `max-open-orders`: cap on orders not yet ended; nil = `limits.default-max-open-orders`.
    public var maxOpenOrders: Int?
    /// `source-prefixes`: access filter; the client's IP address must be inside one of them
    /// (empty = any address). RFC 8921 §13.
    public var sourcePrefixes: [CPDIPPrefix]
    /// `entitlements`.
    public var entitlements: Entitlements
    /// `pricing`: this customer's price list (keys absent in the file take the top-level
    /// `pricing` values); nil = the top-level price list.
    public var pricing: PricingRule?

    /// - Parameters:
    ///   - identity: certificate identity.
    ///   - name: display name.
    ///   - maxOpenOrders: open order cap.
    ///   - sourcePrefixes: access filter.
    ///   - entitlements: entitlements.
    ///   - pricing: price list override.
    public init(
        identity: String, name: String? = nil, maxOpenOrders: Int? = nil, sourcePrefixes: [CPDIPPrefix] = [],
        entitlements: Entitlements = .init(), pricing: PricingRule? = nil
    ) {
        self.identity = identity
        self.name = name
        self.maxOpenOrders = maxOpenOrders
        self.sourcePrefixes = sourcePrefixes
        self.entitlements = entitlements
        self.pricing = pricing
    }

    /// Whether one of `identities` (certificate CN / DNS SANs) is this profile's identity.
    ///
    /// - Parameter identities: names from the client certificate.
    public func matches(identities: [String]) -> Bool {
        let mine = Self.asciiLowercased(identity)
        return identities.contains { Self.asciiLowercased($0) == mine }
    }

    /// Whether the source-prefix access filter admits `address` (an IPv4 or IPv6 address,
    /// optionally bracketed or with a zone; IPv4-mapped IPv6 matches IPv4 prefixes).
    ///
    /// - Parameter address: the client's IP address.
    /// - Returns: true when the filter is empty or a prefix contains the address.
    public func admits(address: String) -> Bool {
        if sourcePrefixes.isEmpty { return true }
        guard let clientAddress = IPMatching.parseAddress(address) else { return false }
        return sourcePrefixes.contains { IPMatching.prefix($0, contains: clientAddress) }
    }

    static func asciiLowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { (0x41...0x5a).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}

// MARK: - Pricing, approval, provisioning, limits

/// A price list (RFC 8921 §8.2 "pricing"; the cost IE of docs/protocol.md §4.1). Amounts are
/// exact decimals.
///
/// amount = `base-fee` + `per-mbps` × (sum of every offered incoming and outgoing bandwidth)
/// + the `qos-premiums` of the classes the offer contains (once each).
public struct PricingRule: Sendable, Hashable {
    /// `currency`: ISO 4217 code; default `EUR`.
    public var currency: String
    /// `period`: billing period written in the cost IE (`month`, `year`, `once`…); default `month`.
    public var period: String?
    /// `base-fee`: per order; default 0.
    public var baseFee: CPNPDecimal
    /// `per-mbps`: per Mbit/s of offered bandwidth, each direction counted; default 0.
    public var perMbps: CPNPDecimal
    /// `qos-premiums`: class name → premium. Names are meta-QoS classes (qualitative
    /// guarantees, RFC 5160) or `quantitative` (any quantitative guarantee).
    public var qosPremiums: [String: CPNPDecimal]

    /// - Parameters:
    ///   - currency: ISO 4217 code.
    ///   - period: billing period.
    ///   - baseFee: fee per order.
    ///   - perMbps: price per Mbit/s.
    ///   - qosPremiums: premiums per QoS class.
    public init(
        currency: String = "EUR", period: String? = "month", baseFee: CPNPDecimal = 0,
        perMbps: CPNPDecimal = 0, qosPremiums: [String: CPNPDecimal] = [:]
    ) {
        self.currency = currency
        self.period = period
        self.baseFee = baseFee
        self.perMbps = perMbps
        self.qosPremiums = qosPremiums
    }

    /// The QoS premium key for quantitative guarantees.
    public static let quantitativePremium = "quantitative"

    /// The price of `cpd` (exact decimal arithmetic).
    ///
    /// - Parameter cpd: an offered (concrete) CPD; loose bandwidths count with their preferred value.
    /// - Returns: the cost IE, rounded to the currency's minor unit.
    public func cost(for cpd: CPD) -> Cost {
        var amount = baseFee + perMbps * OfferMetrics.totalBandwidth(cpd)
        for cls in OfferMetrics.qosClasses(cpd) {
            if let premium = qosPremiums[cls] { amount += premium }
        }
        return Cost(amount: amount.rounded(fractionDigits: Cost.minorUnitDigits(currency)), currency: currency, period: period)
    }
}

/// `approval.mode` (RFC 8921 §12.2).
public enum ApprovalMode: String, Sendable, Hashable, CaseIterable {
    /// Fully automated: orders within the guidelines get an offer at once; those matching an
    /// approval rule are escalated to an operator.
    case automatic
    /// Administrative validation of every order.
    case manual
}

/// A rule that escalates an order to an operator (RFC 8921 §12.2).
public enum ApprovalRule: Sendable, Hashable, CustomStringConvertible {
    /// `all`: every order.
    case all
    /// `above-mbps: N`: an offered bandwidth (one capacity entry, one direction) above N Mbit/s.
    case aboveMbps(CPNPDecimal)
    /// `above-total-mbps: N`: the sum of every offered bandwidth above N Mbit/s.
    case aboveTotalMbps(CPNPDecimal)
    /// `above-amount: X`: the offer's price above X (in the price list's currency).
    case aboveAmount(CPNPDecimal)
    /// `purpose: testing|permanent`: orders of that purpose.
    case purpose(Purpose)
    /// `customers: [identity…]`: orders of these customers.
    case customers([String])

    /// The rule as written in YAML, e.g. `above-mbps: 1000`.
    public var description: String {
        switch self {
        case .all: "all"
        case .aboveMbps(let threshold): "above-mbps: \(threshold)"
        case .aboveTotalMbps(let threshold): "above-total-mbps: \(threshold)"
        case .aboveAmount(let threshold): "above-amount: \(threshold)"
        case .purpose(let purpose): "purpose: \(purpose.rawValue)"
        case .customers(let identities): "customers: [\(identities.joined(separator: ", "))]"
        }
    }
}

/// `approval` (RFC 8921 §12.2).
public struct ApprovalConfiguration: Sendable, Hashable {
    /// `mode`: default `automatic`.
    public var mode: ApprovalMode
    /// `rules`: in automatic mode, orders matching any rule wait for an operator.
    public var rules: [ApprovalRule]
    /// `escalate-out-of-resources`: when true, a request that would get FAIL 5 is escalated to
    /// an operator instead (who may add capacity: PROCESSING subcode 1); default false.
    public var escalateOutOfResources: Bool

    /// - Parameters:
    ///   - mode: approval mode.
    ///   - rules: escalation rules.
    ///   - escalateOutOfResources: escalate instead of FAIL 5.
    public init(mode: ApprovalMode = .automatic, rules: [ApprovalRule] = [], escalateOutOfResources: Bool = false) {
        self.mode = mode
        self.rules = rules
        self.escalateOutOfResources = escalateOutOfResources
    }
}

/// Events handed to the Network Provisioning Manager (RFC 8921 §8.2).
public enum ProvisioningEvent: String, Sendable, Hashable, CaseIterable {
    /// An order reached Completed (ACK to ACCEPT sent).
    case agreed
    /// A Completed order was updated (new agreement).
    case updated
    /// The service was activated (immediately, at its schedule, or by ACTIVATE).
    case activated
    /// The service was deactivated (ACTIVATE with 0).
    case deactivated
    /// The agreement was withdrawn.
    case withdrawn
    /// A testing order reached its test-period end.
    case expired
}

/// `provisioning`: the hook that hands orders to the Network Provisioning Manager (RFC 8921 §8.2).
public struct ProvisioningConfiguration: Sendable, Hashable {
    /// `command`: argv of a program run with the order JSON on stdin; nil = none.
    public var command: [String]?
    /// `http-url`: URL the order JSON is POSTed to; nil = none.
    public var httpURL: String?
    /// `events`: which events are handed off; default all.
    public var events: [ProvisioningEvent]
    /// `timeout`: per attempt; default 30 s.
    public var timeout: Duration
    /// `retry.initial`: first back-off after a failed attempt, doubling; default 5 s.
    public var retryInitialBackoff: Duration
    /// `retry.max`: back-off ceiling; default 10 minutes.
    public var retryMaxBackoff: Duration

    /// - Parameters:
    ///   - command: argv to run.
    ///   - httpURL: URL to POST to.
    ///   - events: events handed off.
    ///   - timeout: per-attempt timeout.
    ///   - retryInitialBackoff: first back-off.
    ///   - retryMaxBackoff: back-off ceiling.
    public init(
        command: [String]? = nil, httpURL: String? = nil, events: [ProvisioningEvent] = ProvisioningEvent.allCases,
        timeout: Duration = .seconds(30), retryInitialBackoff: Duration = .seconds(5),
        retryMaxBackoff: Duration = .seconds(600)
    ) {
        self.command = command
        self.httpURL = httpURL
        self.events = events
        self.timeout = timeout
        self.retryInitialBackoff = retryInitialBackoff
        self.retryMaxBackoff = retryMaxBackoff
    }

    /// Whether any hook is configured.
    public var isEnabled: Bool { command != nil || httpURL != nil }

    /// The back-off before attempt `attempt + 1` (attempt 0 = the first failure):
    /// initial × 2^attempt, capped at the maximum.
    ///
    /// - Parameter attempt: failed attempts so far minus one.
    public func backoff(afterFailedAttempts attempt: Int) -> Duration {
        let backoff = retryInitialBackoff * (1 << min(max(attempt, 0), 30))
        return backoff < retryMaxBackoff ? backoff : retryMaxBackoff
    }
}

/// `rate-limits`: per-client limits (RFC 8921 §13: defend the server against denial of service).
public struct RateLimitConfiguration: Sendable, Hashable {
    /// `quotations-per-minute`: new QUOTATIONs per client identity per minute; default 30.
    public var quotationsPerMinute: Int
    /// `fails-per-minute`: FAIL answers sent to one client per minute (beyond: silent discard); default 60.
    public var failsPerMinute: Int

    /// - Parameters:
    ///   - quotationsPerMinute: QUOTATION limit.
    ///   - failsPerMinute: FAIL limit.
    public init(quotationsPerMinute: Int = 30, failsPerMinute: Int = 60) {
        self.quotationsPerMinute = quotationsPerMinute
        self.failsPerMinute = failsPerMinute
    }
}

/// `limits`: caps on the daemon's resources.
public struct LimitConfiguration: Sendable, Hashable {
    /// `max-associations`: concurrent DTLS/TLS associations; default 1024.
    public var maxAssociations: Int
    /// `association-idle-timeout`: idle associations are closed after this; default 10 minutes.
    public var associationIdleTimeout: Duration
    /// `max-datagram-bytes`: largest CPNP message over UDP (docs/protocol.md §2.1); default 16384.
    public var maxDatagramBytes: Int
    /// `default-max-open-orders`: open order cap of profiles without `max-open-orders`; default 100.
    public var defaultMaxOpenOrders: Int
    /// `max-pending-approvals`: orders waiting for an operator at once; default 1000.
    public var maxPendingApprovals: Int

    /// - Parameters:
    ///   - maxAssociations: association cap.
    ///   - associationIdleTimeout: idle timeout.
    ///   - maxDatagramBytes: datagram size limit.
    ///   - defaultMaxOpenOrders: default open-order cap.
    ///   - maxPendingApprovals: pending approval cap.
    public init(
        maxAssociations: Int = 1024, associationIdleTimeout: Duration = .seconds(600),
        maxDatagramBytes: Int = 16384, defaultMaxOpenOrders: Int = 100, maxPendingApprovals: Int = 1000
    ) {
        self.maxAssociations = maxAssociations
        self.associationIdleTimeout = associationIdleTimeout
        self.maxDatagramBytes = maxDatagramBytes
        self.defaultMaxOpenOrders = defaultMaxOpenOrders
        self.maxPendingApprovals = maxPendingApprovals
    }
}

/// `http`: the HTTP server of `cpnpd` (docs/console.md). `/healthz` and `/readyz` are open; every
/// other path needs the operator's bearer token.
public struct HTTPConfiguration: Sendable, Hashable {
    /// `enabled`: default true (`--no-http` turns it off).
    public var enabled = true
    /// `listen`: `HOST:PORT`; default `127.0.0.1:8922` (`--http`).
    public var host = "127.0.0.1"
    public var port: UInt16 = 8922
    /// `operator-token-file`: the operators' bearer token, one line; default `operator.token` in the
    /// PKI directory, which the development PKI makes. Relative paths are resolved against the PKI directory.
    public var operatorTokenFile = "operator.token"
    /// `tls`: serve HTTPS with the PKI's server certificate; default false.
    public var tls = false
    /// `operator-identities`: over HTTPS, client certificates (signed by the PKI's CA) whose CN or
    /// DNS-ID is one of these have the operator role; default `[operator]`, which the development PKI makes.
    public var operatorIdentities = ["operator"]
    /// `portal-store`: the directory of the customer portal's client order stores (one SQLite file
    /// per customer); default `./.cpnp/portal`.
    public var portalStore = "./.cpnp/portal"
    /// `customer-webhooks-to-private-addresses`: whether customers' webhook URLs may name loopback or
    /// private addresses (operators' always may); default false.
    public var customerWebhooksToPrivateAddresses = false

    public init() {}

    /// Whether `host` is a loopback address (where the server may listen without authentication).
    public var isLoopback: Bool {
        let lowercased = host.lowercased()
        return lowercased == "localhost" || lowercased == "::1" || lowercased.hasPrefix("127.")
    }

    /// Parses `HOST:PORT` (`[v6]:PORT` too); nil when malformed.
    public static func address(_ text: String) -> (host: String, port: UInt16)? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = Substring(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { return nil }
        return (String(host), port)
    }
}
