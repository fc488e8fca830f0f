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
public indirect enum CPNPMessage: Sendable, Hashable {
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
        case .quotation(let message): message.requestedCPD
        case .offer(let message): message.offeredCPD
        case .accept(let message): message.acceptedCPD
        case .ack(let message): message.cpd
        case .cancel(let message): message.cpd
        case .withdraw(let message): message.acceptedCPD
        case .update(let message): message.requestedCPD
        case .processing, .decline, .fail, .activate: nil
        }
    }

    public var sequenceNumber: SequenceNumber {
        switch self {
        case .quotation(let message): message.sequenceNumber
        case .processing(let message): message.sequenceNumber
        case .offer(let message): message.sequenceNumber
        case .accept(let message): message.sequenceNumber
        case .decline(let message): message.sequenceNumber
        case .ack(let message): message.sequenceNumber
        case .cancel(let message): message.sequenceNumber
        case .withdraw(let message): message.sequenceNumber
        case .update(let message): message.sequenceNumber
        case .fail(let message): message.sequenceNumber
        case .activate(let message): message.sequenceNumber
        }
    }

    public var transactionID: TransactionID {
        switch self {
        case .quotation(let message): message.transactionID
        case .processing(let message): message.transactionID
        case .offer(let message): message.transactionID
        case .accept(let message): message.transactionID
        case .decline(let message): message.transactionID
        case .ack(let message): message.transactionID
        case .cancel(let message): message.transactionID
        case .withdraw(let message): message.transactionID
        case .update(let message): message.transactionID
        case .fail(let message): message.transactionID
        case .activate(let message): message.transactionID
        }
    }

    public var customerOrderID: CustomerOrderID {
        switch self {
        case .quotation(let message): message.customerOrderID
        case .processing(let message): message.customerOrderID
        case .offer(let message): message.customerOrderID
        case .accept(let message): message.customerOrderID
        case .decline(let message): message.customerOrderID
        case .ack(let message): message.customerOrderID
        case .cancel(let message): message.customerOrderID
        case .withdraw(let message): message.customerOrderID
        case .update(let message): message.customerOrderID
        case .fail(let message): message.customerOrderID
        case .activate(let message): message.customerOrderID
        }
    }

    /// PROVIDER_ORDER_IDENTIFIER when the message carries one.
    public var providerOrderID: ProviderOrderID? {
        switch self {
        case .quotation, .cancel: nil
        case .processing(let message): message.providerOrderID
        case .offer(let message): message.providerOrderID
        case .accept(let message): message.providerOrderID
        case .decline(let message): message.providerOrderID
        case .ack(let message): message.providerOrderID
        case .withdraw(let message): message.providerOrderID
        case .update(let message): message.providerOrderID
        case .fail(let message): message.providerOrderID
        case .activate(let message): message.providerOrderID
        }
    }

    /// NONCE when the message carries one.
    public var nonce: Nonce? {
        switch self {
        case .offer(let message): message.nonce
        case .accept(let message): message.nonce
        case .decline(let message): message.nonce
        case .withdraw(let message): message.nonce
        case .update(let message): message.nonce
        case .activate(let message): message.nonce
        case .quotation, .processing, .ack, .cancel, .fail: nil
        }
    }

    /// The message with another sequence number (the engine never needs this; tests do).
    public func withSequenceNumber(_ sequenceNumber: SequenceNumber) -> CPNPMessage {
        switch self {
        case .quotation(var message): message.sequenceNumber = sequenceNumber; return .quotation(message)
        case .processing(var message): message.sequenceNumber = sequenceNumber; return .processing(message)
        case .offer(var message): message.sequenceNumber = sequenceNumber; return .offer(message)
        case .accept(var message): message.sequenceNumber = sequenceNumber; return .accept(message)
        case .decline(var message): message.sequenceNumber = sequenceNumber; return .decline(message)
        case .ack(var message): message.sequenceNumber = sequenceNumber; return .ack(message)
        case .cancel(var message): message.sequenceNumber = sequenceNumber; return .cancel(message)
        case .withdraw(var message): message.sequenceNumber = sequenceNumber; return .withdraw(message)
        case .update(var message): message.sequenceNumber = sequenceNumber; return .update(message)
        case .fail(var message): message.sequenceNumber = sequenceNumber; return .fail(message)
        case .activate(var message): message.sequenceNumber = sequenceNumber; return .activate(message)
        }
    }
}
