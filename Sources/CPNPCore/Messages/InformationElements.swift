/// Information elements carried by QUOTATION, OFFER, ACCEPT, ACK, WITHDRAW, UPDATE and ACTIVATE
/// (RFC 8921 §9.1.10; docs/protocol.md §4.1). All members are optional.
public struct InformationElements: Sendable, Hashable {
    public var customerDescription: CustomerDescription?
    public var providerDescription: ProviderDescription?
    public var negotiationOptions: NegotiationOptions?
    /// The price of an offer, filled by the server when the client asked for it.
    public var cost: Cost?

    public init(
        customerDescription: CustomerDescription? = nil,
        providerDescription: ProviderDescription? = nil,
        negotiationOptions: NegotiationOptions? = nil,
        cost: Cost? = nil
    ) {
        self.customerDescription = customerDescription
        self.providerDescription = providerDescription
        self.negotiationOptions = negotiationOptions
        self.cost = cost
    }

    public var isEmpty: Bool {
        customerDescription == nil && providerDescription == nil && negotiationOptions == nil && cost == nil
    }
}

/// Contact information (RFC 8921 §9.1.10.1): `[EMAIL] [POSTAL] [TEL...]`.
public struct ContactInformation: Sendable, Hashable {
    public var email: String?
    public var postalAddress: String?
    public var telephoneNumbers: [String]

    public init(email: String? = nil, postalAddress: String? = nil, telephoneNumbers: [String] = []) {
        self.email = email
        self.postalAddress = postalAddress
        self.telephoneNumbers = telephoneNumbers
    }
}

/// Customer Description IE (RFC 8921 §9.1.10.1).
public struct CustomerDescription: Sendable, Hashable {
    public var name: String?
    public var contact: ContactInformation?
    public init(name: String? = nil, contact: ContactInformation? = nil) {
        self.name = name
        self.contact = contact
    }
}

/// Provider Description IE (RFC 8921 §9.1.10.2); the AS number is 4-octet (RFC 6793).
public struct ProviderDescription: Sendable, Hashable {
    public var name: String?
    public var contact: ContactInformation?
    public var asNumber: UInt32?
    public init(name: String? = nil, contact: ContactInformation? = nil, asNumber: UInt32? = nil) {
        self.name = name
        self.contact = contact
        self.asNumber = asNumber
    }
}

/// Negotiation Options IE (RFC 8921 §9.1.10.3 and §8.8; docs/protocol.md §6, A9 and A24).
public struct NegotiationOptions: Sendable, Hashable {
    /// Absent means permanent.
    public var purpose: Purpose?
    /// End of the test period of a `testing` order.
    public var testPeriodEnd: CPNPTimestamp?
    /// Absent means immediate.
    public var activationType: ActivationType?
    /// For `scheduled` activation: when the agreement becomes active.
    public var activationSchedule: CPNPTimestamp?
    /// True forbids child orders towards other providers (RFC 8921 §8.8).
    public var localOnly: Bool?
    /// Asks the server to price its offer (`"cost": null`, draft-02's COST option).
    public var costRequested: Bool
    /// `provider-chain` (an extension key, docs/protocol.md §4.1): the providers a cascaded request
    /// already passed through, first the customer-facing one (RFC 8921 §8.8). A provider finding
    /// itself here does not order from another one again, so a request never loops.
    public var providerChain: [String]

    public init(
        purpose: Purpose? = nil,
        testPeriodEnd: CPNPTimestamp? = nil,
        activationType: ActivationType? = nil,
        activationSchedule: CPNPTimestamp? = nil,
        localOnly: Bool? = nil,
        costRequested: Bool = false,
        providerChain: [String] = []
    ) {
        self.purpose = purpose
        self.testPeriodEnd = testPeriodEnd
        self.activationType = activationType
        self.activationSchedule = activationSchedule
        self.localOnly = localOnly
        self.costRequested = costRequested
        self.providerChain = providerChain
    }

    /// The purpose with its default applied.
    public var effectivePurpose: Purpose { purpose ?? .permanent }
    /// The activation type with its default applied.
    public var effectiveActivationType: ActivationType { activationType ?? .immediate }
}

/// The cost IE: a decimal amount (never a float), an ISO 4217 currency and a period.
public struct Cost: Sendable, Hashable, CustomStringConvertible {
    public var amount: CPNPDecimal
    public var currency: String
    /// e.g. `once`, `month`, `year`.
    public var period: String?

    public init(amount: CPNPDecimal, currency: String, period: String? = nil) {
        self.amount = amount
        self.currency = currency
        self.period = period
    }

    public var description: String {
        "\(amount.plainString(minimumFractionDigits: Self.minorUnitDigits(currency))) \(currency)" + (period.map { " per \($0)" } ?? "")
    }

    /// The digits after the decimal point of `currency`'s minor unit (ISO 4217): 0 for JPY, 3 for
    /// KWD, 2 for EUR, USD and most others. Amounts are written with them (docs/protocol.md §4.1).
    public static func minorUnitDigits(_ currency: String) -> Int {
        switch currency {
        case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF": 0
        case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND": 3
        case "CLF", "UYW": 4
        default: 2
        }
    }

    /// The amount as written on the wire: at least the currency's minor-unit digits.
    public var amountText: String { amount.plainString(minimumFractionDigits: Self.minorUnitDigits(currency)) }
}
