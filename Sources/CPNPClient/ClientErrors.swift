public import CPNPCore
public import CPNPTransport

/// Why a client operation did not reach the outcome the caller asked for (RFC 8921 §10.1, §11.1).
/// Each case carries what a user needs to act on it.
public enum CPNPClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No order with this customer order id in the store.
    case unknownOrder(CustomerOrderID)
    /// The command is not allowed in the order's state (the machine is unchanged).
    case command(OrderCommandError)
    /// The server answered FAIL (RFC 8921 §9.2.10).
    case failed(FailStatusCode, diagnostic: String?)
    /// The negotiation ended otherwise (cancelled, declined, expired, no response).
    case negotiationEnded(ClientOrderStateMachine.NegotiationEnd)
    /// A request went unanswered after every retransmission (RFC 8921 §11.4).
    case noResponse(MethodCode)
    /// A WITHDRAW went unanswered after every retry: the administrator alarm of RFC 8921 §11.1.2.
    /// The engine keeps repeating it every withdrawal interval while it runs.
    case withdrawalUnconfirmed(CustomerOrderID)
    /// The transport could not reach the server (handshake refused, certificate not trusted, …).
    case transport(CPNPTransportError)
    /// The answer did not arrive before the local safety deadline.
    case timedOut(String)
    /// An invalid argument (address, file, option).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .unknownOrder(let customerOrderID): "no order \(customerOrderID) in the client store"
        case .command(let error): error.message
        case .failed(let code, let diagnostic): "the server refused: FAIL \(code.rawValue) \(code)" + (diagnostic.map { " (\($0))" } ?? "")
        case .negotiationEnded(let end): ClientOutcomeText.describe(end)
        case .noResponse(let method): "no answer from the server to \(method) after every retransmission"
        case .withdrawalUnconfirmed(let customerOrderID):
            "ALARM: the withdrawal of \(customerOrderID) is unconfirmed: WITHDRAW unanswered after every retry; the provider may still hold the agreement (RFC 8921 §11.1.2)"
        case .transport(let error): "transport: \(error)"
        case .timedOut(let what): "timed out waiting for \(what)"
        case .invalidArgument(let detail): detail
        }
    }
}

/// Human-readable outcomes, shared by the library's errors and the CLI.
public enum ClientOutcomeText {
    public static func describe(_ end: ClientOrderStateMachine.NegotiationEnd) -> String {
        switch end {
        case .failed(let code, let diagnostic):
            "the server refused: FAIL \(code.rawValue) \(code)" + (diagnostic.map { " (\($0))" } ?? "")
        case .cancelledByClient: "cancelled by the client"
        case .declinedByClient(let reasons):
            "declined by the client" + (reasons.isEmpty ? "" : " (" + reasons.map { "\($0.rawValue) \($0)" }.joined(separator: ", ") + ")")
        case .expectedResponseTimeElapsed: "no offer before the expected response time: the order was cancelled"
        case .expectedOfferTimeElapsed: "no offer before the expected offer time: the order was cancelled"
        case .offerExpired: "the offer expired before it was accepted"
        case .noResponse: "the server did not answer: the order was cancelled"
        case .offerTimeRefused: "the server asked for more time than allowed: the order was cancelled"
        }
    }
}
