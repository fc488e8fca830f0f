// The agreement both order state machines reach (RFC 8921 §8.11, §9.2.4) and its activation status (§9.2.11).

/// How an agreement is currently switched (RFC 8921 §9.2.11).
public enum ActivationStatus: Sendable, Hashable, CustomStringConvertible {
    case inactive
    case active
    case scheduled(CPNPTimestamp)

    public var description: String {
        switch self {
        case .inactive: "inactive"
        case .active: "active"
        case .scheduled(let time): "scheduled at \(time.rfc3339)"
        }
    }
}

/// A reached agreement: the accepted CPD and what identifies it (RFC 8921 §8.11, §9.2.4).
public struct Agreement: Sendable, Hashable {
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var nonce: Nonce
    public var acceptedCPD: CPD
    /// The offer's information elements (cost, negotiation options).
    public var informationElements: InformationElements?
    public var activationType: ActivationType
    public var purpose: Purpose
    public var testPeriodEnd: CPNPTimestamp?
    public var activationSchedule: CPNPTimestamp?
    public var activation: ActivationStatus
    public var agreedAt: CPNPTimestamp

    /// The negotiated options: the offer's, falling back on the request's.
    static func make(
        offer: OfferMessage, requestOptions: NegotiationOptions?, agreedAt: CPNPTimestamp
    ) -> Agreement {
        let offerOptions = offer.informationElements?.negotiationOptions
        let type = offerOptions?.activationType ?? requestOptions?.activationType ?? .immediate
        let purpose = offerOptions?.purpose ?? requestOptions?.purpose ?? .permanent
        let schedule = offerOptions?.activationSchedule ?? requestOptions?.activationSchedule
        var status = ActivationStatus.inactive
        switch type {
        case .immediate: status = .active
        case .scheduled: status = schedule.map { $0 <= agreedAt ? .active : .scheduled($0) } ?? .active
        case .explicit: status = .inactive
        }
        return Agreement(
            customerOrderID: offer.customerOrderID, providerOrderID: offer.providerOrderID, nonce: offer.nonce,
            acceptedCPD: offer.offeredCPD, informationElements: offer.informationElements,
            activationType: type, purpose: purpose,
            testPeriodEnd: purpose == .testing ? (offerOptions?.testPeriodEnd ?? requestOptions?.testPeriodEnd) : nil,
            activationSchedule: schedule, activation: status, agreedAt: agreedAt)
    }
}
