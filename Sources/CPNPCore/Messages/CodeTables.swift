/// METHOD_CODE values (RFC 8921 §9.2, Table 1).
public enum MethodCode: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case quotation = 1
    case processing = 2
    case offer = 3
    case accept = 4
    case decline = 5
    case ack = 6
    case cancel = 7
    case withdraw = 8
    case update = 9
    case fail = 10
    case activate = 11

    /// The RFC's upper-case method name, e.g. `QUOTATION`.
    public var name: String {
        switch self {
        case .quotation: "QUOTATION"
        case .processing: "PROCESSING"
        case .offer: "OFFER"
        case .accept: "ACCEPT"
        case .decline: "DECLINE"
        case .ack: "ACK"
        case .cancel: "CANCEL"
        case .withdraw: "WITHDRAW"
        case .update: "UPDATE"
        case .fail: "FAIL"
        case .activate: "ACTIVATE"
        }
    }

    public var description: String { name }
}

/// FAIL STATUS_CODE values (RFC 8921 §9.2.10, Table 4).
public enum FailStatusCode: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case messageValidationError = 1
    case authenticationRequired = 2
    case authorizationFailed = 3
    case administrativelyProhibited = 4
    case outOfResources = 5
    case networkPresenceError = 6
    case moreTimeRejected = 7
    case unsupportedActivationType = 8

    public var description: String {
        switch self {
        case .messageValidationError: "Message Validation Error"
        case .authenticationRequired: "Authentication Required"
        case .authorizationFailed: "Authorization Failed"
        case .administrativelyProhibited: "Administratively Prohibited"
        case .outOfResources: "Out of Resources"
        case .networkPresenceError: "Network Presence Error"
        case .moreTimeRejected: "More Time Rejected"
        case .unsupportedActivationType: "Unsupported Activation Type"
        }
    }
}

/// PROCESSING_SUBCODE values: why the server needs more time (RFC 8921 §9.2.2, Table 2).
public enum ProcessingSubcode: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case upgradeOfLocalResources = 1
    case requestExternalResources = 2

    public var description: String {
        switch self {
        case .upgradeOfLocalResources: "Upgrade of local resources"
        case .requestExternalResources: "Request external resources"
        }
    }
}

/// DECLINE reasons (RFC 8921 §9.2.5, Table 3).
public enum DeclineReason: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case unacceptableGap = 1
    case conflictWithAnotherOffer = 2
    case activationTypeMismatch = 3

    public var description: String {
        switch self {
        case .unacceptableGap: "Unacceptable gap between the request and the offer"
        case .conflictWithAnotherOffer: "Conflict with another offer from another server"
        case .activationTypeMismatch: "Activation type mismatch"
        }
    }
}

/// How an agreed order is switched on (RFC 8921 §9.1.10.3 prose; docs/protocol.md §4.1).
/// The RFC's "permanent" activation type is `explicit` here.
public enum ActivationType: String, Sendable, Hashable, CaseIterable {
    /// Active as soon as the agreement is reached (the default).
    case immediate
    /// Active at the `activation-schedule` time of the negotiation options.
    case scheduled
    /// Switched on and off only by ACTIVATE messages.
    case explicit
}

/// The purpose of an order (RFC 8921 §9.1.10.3).
public enum Purpose: String, Sendable, Hashable, CaseIterable {
    case permanent
    /// Ends at `test-period-end` unless an UPDATE makes it permanent.
    case testing
}

/// ACTIVATION_SCHEDULE (RFC 8921 §9.2.11; docs/protocol.md §6, A8).
public enum ActivationSchedule: Sendable, Hashable, CustomStringConvertible {
    /// `null`: activate now.
    case now
    /// `0`: deactivate.
    case deactivate
    /// An RFC 3339 time: activate then.
    case at(CPNPTimestamp)

    public var description: String {
        switch self {
        case .now: "now"
        case .deactivate: "deactivate"
        case .at(let time): "at \(time.rfc3339)"
        }
    }
}
