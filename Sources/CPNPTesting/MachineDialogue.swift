// A client order machine and a server order machine of the protocol core joined in memory, for the
// state-machine and storage tests: one call per arrow of the RFC's flow figures.
public import CPNPCore

/// Messages sent by one machine wait in flight until the test hands them to the other
/// (``deliverToServer()``, ``deliverToClient()``); the server's order is created by the first
/// QUOTATION it receives, as an engine would (RFC 8921 §8.2). Local commands and decisions run with
/// ``clientDo(_:)`` and ``serverDo(_:)``. Everything sent and reported is recorded.
public struct MachineDialogue {
    public var client: ClientOrderStateMachine
    public var server: ServerOrderStateMachine?
    /// The id the server gives the order.
    public let providerOrderID: ProviderOrderID
    /// Each side's view of the session.
    public let clientSession: CPNPSession
    public let serverSession: CPNPSession
    public var rng: SplitMix64
    public var now: CPNPTimestamp
    /// Messages in flight, oldest first.
    public var toServer: [CPNPMessage] = []
    public var toClient: [CPNPMessage] = []
    public var clientEvents: [ClientOrderStateMachine.Event] = []
    public var serverEvents: [ServerOrderStateMachine.Event] = []
    /// Every message, in the order it was sent, as "C>S QUOTATION" / "S>C OFFER".
    public var trace: [String] = []
    /// Every message each side sent, in order.
    public var sentByClient: [CPNPMessage] = []
    public var sentByServer: [CPNPMessage] = []
    /// What each side's last step returned (for building store changes).
    public var clientActions: [ClientOrderStateMachine.Action] = []
    public var serverActions: [ServerOrderStateMachine.Action] = []

    public init(
        customerOrderID: CustomerOrderID, providerOrderID: ProviderOrderID, clientSession: CPNPSession, serverSession: CPNPSession,
        start: CPNPTimestamp, seed: UInt64 = 42
    ) {
        client = ClientOrderStateMachine(customerOrderID: customerOrderID)
        self.providerOrderID = providerOrderID
        self.clientSession = clientSession
        self.serverSession = serverSession
        rng = SplitMix64(seed: seed)
        now = start
    }

    /// The server's order (after the first QUOTATION was delivered).
    public var serverMachine: ServerOrderStateMachine { server! }

    /// Records what the client's step returned: its messages go in flight, its reports are kept.
    public mutating func recordClient(_ actions: [ClientOrderStateMachine.Action]) {
        clientActions = actions
        for action in actions {
            switch action {
            case .send(let message):
                toServer.append(message)
                sentByClient.append(message)
                trace.append("C>S \(message.method)")
            case .report(let event): clientEvents.append(event)
            default: break
            }
        }
    }

    /// Records what the server's step returned.
    public mutating func recordServer(_ actions: [ServerOrderStateMachine.Action]) {
        serverActions = actions
        for action in actions {
            switch action {
            case .send(let message, _):
                toClient.append(message)
                sentByServer.append(message)
                trace.append("S>C \(message.method)")
            case .report(let event): serverEvents.append(event)
            default: break
            }
        }
    }

    /// Delivers the oldest message in flight to the server (creating the order for a QUOTATION).
    @discardableResult
    public mutating func deliverToServer() -> [ServerOrderStateMachine.Action] {
        let message = toServer.removeFirst()
        let actions: [ServerOrderStateMachine.Action]
        if server == nil, case .quotation(let quotation) = message {
            let created: ServerOrderStateMachine
            (created, actions) = ServerOrderStateMachine.quotationReceived(
                quotation, session: serverSession, providerOrderID: providerOrderID, now: now, using: &rng)
            server = created
        } else {
            actions = server!.messageReceived(message, session: serverSession, now: now, using: &rng)
        }
        recordServer(actions)
        return actions
    }

    /// Delivers the oldest message in flight to the client.
    @discardableResult
    public mutating func deliverToClient() -> [ClientOrderStateMachine.Action] {
        let message = toClient.removeFirst()
        let actions = client.messageReceived(message, session: clientSession, now: now)
        recordClient(actions)
        return actions
    }

    /// Runs a decision of the server (acknowledge, offer, confirm …) on its order.
    public mutating func serverDo(
        _ body: (inout ServerOrderStateMachine, inout SplitMix64, CPNPTimestamp) throws(OrderCommandError) -> [ServerOrderStateMachine.Action]
    ) throws {
        var machine = server!
        let actions = try body(&machine, &rng, now)
        server = machine
        recordServer(actions)
    }

    /// Runs a command of the client (quote, accept, withdraw …).
    public mutating func clientDo(
        _ body: (inout ClientOrderStateMachine, inout SplitMix64, CPNPTimestamp) throws(OrderCommandError) -> [ClientOrderStateMachine.Action]
    ) throws {
        let actions = try body(&client, &rng, now)
        recordClient(actions)
    }
}
