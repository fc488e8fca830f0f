/// The eleven CPNP messages (RFC 8921 §9.2) with exactly the attributes of docs/protocol.md §3.
/// Every message starts with VERSION (always 1), METHOD_CODE, SEQUENCE_NUMBER, TRANSACTION_ID and
/// CUSTOMER_ORDER_IDENTIFIER.

/// QUOTATION (code 1, C→S): starts a Provisioning Quotation Order (RFC 8921 §9.2.1).
public struct QuotationMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var expectedResponseTime: CPNPTimestamp?
    public var requestedCPD: CPD
    public var informationElements: InformationElements?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        expectedResponseTime: CPNPTimestamp? = nil, requestedCPD: CPD, informationElements: InformationElements? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.expectedResponseTime = expectedResponseTime
        self.requestedCPD = requestedCPD
        self.informationElements = informationElements
    }
}

/// PROCESSING (code 2, S→C and C→S): the order or offer is being processed; from the server,
/// a new expected-offer-time asks for more time (RFC 8921 §9.2.2).
public struct ProcessingMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var expectedOfferTime: CPNPTimestamp?
    public var processingSubcode: ProcessingSubcode?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID, expectedOfferTime: CPNPTimestamp? = nil, processingSubcode: ProcessingSubcode? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.expectedOfferTime = expectedOfferTime
        self.processingSubcode = processingSubcode
    }
}

/// OFFER (code 3, S→C): a full or partial answer to a QUOTATION or UPDATE (RFC 8921 §9.2.3).
public struct OfferMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var nonce: Nonce
    public var validityOfferTime: CPNPTimestamp
    public var offeredCPD: CPD
    public var informationElements: InformationElements?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID, nonce: Nonce, validityOfferTime: CPNPTimestamp, offeredCPD: CPD,
        informationElements: InformationElements? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.nonce = nonce
        self.validityOfferTime = validityOfferTime
        self.offeredCPD = offeredCPD
        self.informationElements = informationElements
    }
}

/// ACCEPT (code 4, C→S): calls for agreement on an offer; fields copied from the OFFER (RFC 8921 §9.2.4).
public struct AcceptMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var nonce: Nonce
    public var acceptedCPD: CPD
    public var informationElements: InformationElements?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID, nonce: Nonce, acceptedCPD: CPD, informationElements: InformationElements? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.nonce = nonce
        self.acceptedCPD = acceptedCPD
        self.informationElements = informationElements
    }
}

/// DECLINE (code 5, C→S): rejects an offer, with optional reasons (RFC 8921 §9.2.5).
public struct DeclineMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var nonce: Nonce
    public var reasons: [DeclineReason]

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID, nonce: Nonce, reasons: [DeclineReason] = []
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.nonce = nonce
        self.reasons = reasons
    }
}

/// ACK (code 6): from the server, closes a transaction and carries the CPD as stored; from the
/// client, grants more time with an expected-response-time (RFC 8921 §9.2.6).
public struct AckMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var expectedResponseTime: CPNPTimestamp?
    public var cpd: CPD?
    public var informationElements: InformationElements?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID, expectedResponseTime: CPNPTimestamp? = nil, cpd: CPD? = nil,
        informationElements: InformationElements? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.expectedResponseTime = expectedResponseTime
        self.cpd = cpd
        self.informationElements = informationElements
    }
}

/// CANCEL (code 7, C→S): cancels an order before agreement; no provider id, no nonce (RFC 8921 §9.2.7).
public struct CancelMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var cpd: CPD?

    public init(sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID, cpd: CPD? = nil) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.cpd = cpd
    }
}

/// WITHDRAW (code 8, C→S): removes an agreement (RFC 8921 §9.2.8).
public struct WithdrawMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var nonce: Nonce
    public var acceptedCPD: CPD?
    public var informationElements: InformationElements?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID, nonce: Nonce, acceptedCPD: CPD? = nil, informationElements: InformationElements? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.nonce = nonce
        self.acceptedCPD = acceptedCPD
        self.informationElements = informationElements
    }
}

/// UPDATE (code 9, C→S): asks to modify a completed agreement (RFC 8921 §9.2.9).
public struct UpdateMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var nonce: Nonce
    public var expectedResponseTime: CPNPTimestamp
    public var requestedCPD: CPD
    public var informationElements: InformationElements?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID, nonce: Nonce, expectedResponseTime: CPNPTimestamp, requestedCPD: CPD,
        informationElements: InformationElements? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.nonce = nonce
        self.expectedResponseTime = expectedResponseTime
        self.requestedCPD = requestedCPD
        self.informationElements = informationElements
    }
}

/// FAIL (code 10, S→C and C→S): terminates a transaction with a status code (RFC 8921 §9.2.10).
public struct FailMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    /// Absent when no order exists (docs/protocol.md §3.10).
    public var providerOrderID: ProviderOrderID?
    public var statusCode: FailStatusCode
    /// Extension: which check failed (≤ 256 characters, never secrets).
    public var diagnostic: String?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID?, statusCode: FailStatusCode, diagnostic: String? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.statusCode = statusCode
        self.diagnostic = diagnostic.map { FailMessage.clampDiagnostic($0) }
    }

    /// Truncates a diagnostic to 256 characters and strips control characters.
    public static func clampDiagnostic(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f }.prefix(256)))
    }
}

/// ACTIVATE (code 11, C→S): switches an explicitly activated agreement on or off (RFC 8921 §9.2.11).
public struct ActivateMessage: Sendable, Hashable {
    public var sequenceNumber: SequenceNumber
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID
    public var nonce: Nonce
    public var activationSchedule: ActivationSchedule
    public var informationElements: InformationElements?

    public init(
        sequenceNumber: SequenceNumber, transactionID: TransactionID, customerOrderID: CustomerOrderID,
        providerOrderID: ProviderOrderID, nonce: Nonce, activationSchedule: ActivationSchedule,
        informationElements: InformationElements? = nil
    ) {
        self.sequenceNumber = sequenceNumber
        self.transactionID = transactionID
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.nonce = nonce
        self.activationSchedule = activationSchedule
        self.informationElements = informationElements
    }
}

/// Any CPNP message (RFC 8921 §9.2).
public enum CPNPMessage: Sendable, Hashable {
    case quotation(QuotationMessage)
    case processing(ProcessingMessage)
    case offer(OfferMessage)
    case accept(AcceptMessage)
    case decline(DeclineMessage)
    case ack(AckMessage)
    case cancel(CancelMessage)
    case withdraw(WithdrawMessage)
    case update(UpdateMessage)
    case fail(FailMessage)
    case activate(ActivateMessage)

    /// VERSION: always 1 (RFC 8921 §9.2).
    public static let version = 1

    public var method: MethodCode {
        switch self {
        case .quotation: .quotation
        case .processing: .processing
        case .offer: .offer
        case .accept: .accept
        case .decline: .decline
        case .ack: .ack
        case .cancel: .cancel
        case .withdraw: .withdraw
        case .update: .update
        case .fail: .fail
        case .activate: .activate
        }
    }

    /// The CPD the message carries at `cpd`, if any (docs/protocol.md §3).
    var carriedCPD: CPD? {
        switch self {
        case .quotation(let m): m.requestedCPD
        case .offer(let m): m.offeredCPD
        case .accept(let m): m.acceptedCPD
        case .ack(let m): m.cpd
        case .cancel(let m): m.cpd
        case .withdraw(let m): m.acceptedCPD
        case .update(let m): m.requestedCPD
        case .processing, .decline, .fail, .activate: nil
        }
    }

    public var sequenceNumber: SequenceNumber {
        switch self {
        case .quotation(let m): m.sequenceNumber
        case .processing(let m): m.sequenceNumber
        case .offer(let m): m.sequenceNumber
        case .accept(let m): m.sequenceNumber
        case .decline(let m): m.sequenceNumber
        case .ack(let m): m.sequenceNumber
        case .cancel(let m): m.sequenceNumber
        case .withdraw(let m): m.sequenceNumber
        case .update(let m): m.sequenceNumber
        case .fail(let m): m.sequenceNumber
        case .activate(let m): m.sequenceNumber
        }
    }

    public var transactionID: TransactionID {
        switch self {
        case .quotation(let m): m.transactionID
        case .processing(let m): m.transactionID
        case .offer(let m): m.transactionID
        case .accept(let m): m.transactionID
        case .decline(let m): m.transactionID
        case .ack(let m): m.transactionID
        case .cancel(let m): m.transactionID
        case .withdraw(let m): m.transactionID
        case .update(let m): m.transactionID
        case .fail(let m): m.transactionID
        case .activate(let m): m.transactionID
        }
    }

    public var customerOrderID: CustomerOrderID {
        switch self {
        case .quotation(let m): m.customerOrderID
        case .processing(let m): m.customerOrderID
        case .offer(let m): m.customerOrderID
        case .accept(let m): m.customerOrderID
        case .decline(let m): m.customerOrderID
        case .ack(let m): m.customerOrderID
        case .cancel(let m): m.customerOrderID
        case .withdraw(let m): m.customerOrderID
        case .update(let m): m.customerOrderID
        case .fail(let m): m.customerOrderID
        case .activate(let m): m.customerOrderID
        }
    }

    /// PROVIDER_ORDER_IDENTIFIER when the message carries one.
    public var providerOrderID: ProviderOrderID? {
        switch self {
        case .quotation, .cancel: nil
        case .processing(let m): m.providerOrderID
        case .offer(let m): m.providerOrderID
        case .accept(let m): m.providerOrderID
        case .decline(let m): m.providerOrderID
        case .ack(let m): m.providerOrderID
        case .withdraw(let m): m.providerOrderID
        case .update(let m): m.providerOrderID
        case .fail(let m): m.providerOrderID
        case .activate(let m): m.providerOrderID
        }
    }

    /// NONCE when the message carries one.
    public var nonce: Nonce? {
        switch self {
        case .offer(let m): m.nonce
        case .accept(let m): m.nonce
        case .decline(let m): m.nonce
        case .withdraw(let m): m.nonce
        case .update(let m): m.nonce
        case .activate(let m): m.nonce
        case .quotation, .processing, .ack, .cancel, .fail: nil
        }
    }

    /// The message with another sequence number (the engine never needs this; tests do).
    public func withSequenceNumber(_ n: SequenceNumber) -> CPNPMessage {
        switch self {
        case .quotation(var m): m.sequenceNumber = n; return .quotation(m)
        case .processing(var m): m.sequenceNumber = n; return .processing(m)
        case .offer(var m): m.sequenceNumber = n; return .offer(m)
        case .accept(var m): m.sequenceNumber = n; return .accept(m)
        case .decline(var m): m.sequenceNumber = n; return .decline(m)
        case .ack(var m): m.sequenceNumber = n; return .ack(m)
        case .cancel(var m): m.sequenceNumber = n; return .cancel(m)
        case .withdraw(var m): m.sequenceNumber = n; return .withdraw(m)
        case .update(var m): m.sequenceNumber = n; return .update(m)
        case .fail(var m): m.sequenceNumber = n; return .fail(m)
        case .activate(var m): m.sequenceNumber = n; return .activate(m)
        }
    }
}
