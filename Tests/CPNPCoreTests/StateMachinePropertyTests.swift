// Property-based tests of the two order state machines (RFC 8921 §8.11, §10, §11;
// docs/protocol.md §3, §5.1 and §6, A1–A28). A client machine and a server machine are joined by
// ``InMemoryNetwork``; random sequences of abstract events (local commands, provider decisions,
// deliveries, losses, duplicates, reorderings, timer firings, forged injections) drive them, and
// invariants are checked after every machine call. At the end of a random run the network
// delivers everything and both sides finish what they started, and the two sides must agree (or the
// client must have been told they may not).
//
// No defect is tolerated: every interleaving must end with both sides in agreement, or with the
// client application told that the outcome is uncertain (a request unanswered after every retry, a
// refused CANCEL or WITHDRAW, an unconfirmed withdrawal). Fixed here, each once tolerated:
// - a CANCEL from AcceptSent crossing the ACK of the ACCEPT (the client now lets the ACCEPT's answer
//   decide and withdraws an agreement it did not want; an ACCEPT unanswered after every retry is
//   followed by CANCEL and WITHDRAW, so no agreement survives on the server alone);
// - a new UPDATE or WITHDRAW dropping the pending CANCEL of a cancelled UPDATE (refused until answered);
// - a replay of a transaction refused with a FAIL opening it later (refused transactions are kept);
// - a FAIL inside the live transaction taking a sequence number without persisting it, so that a
//   forged message ended the client's negotiation (the message is recorded, the FAIL is its cached,
//   persisted answer, and the real message with the same number is then a duplicate);
// - a test-period end during an UPDATE dropped (the agreement ends with the negotiation);
// - a test-period end while a WITHDRAW awaited its confirmation leaving PROCESSING cached (ACK now).
import CPNPTesting
import Testing
import PropertyBased
@testable import CPNPCore

// MARK: - Fixtures

private enum SMPFixtures {
    static func cpd(node id: String, bandwidth: String) -> CPD {
        let text = """
            {"components":[{"profiles":[{"customer-nodes":[{"identifier":"\(id)","link-identifiers":[],"localization":{"site-id":"S-\(id)"}}],
            "scope":[{"customer-node":"\(id)","direction":"outgoing","reachability":"global"}],
            "capacity":[{"customer-node":"\(id)","incoming-bandwidth-mbps":\(bandwidth),"outgoing-bandwidth-mbps":\(bandwidth)}],
            "conformance-traffic":{"enforcement":"policing","out-of-profile-action":"discard"}}]}]}
            """
        return try! CPD(json: JSONParser.parse(Array(text.utf8)), at: .root)
    }

    static let requested = cpd(node: "CE-1", bandwidth: #"{"min":80,"max":100}"#)
    static let offered = cpd(node: "CE-1", bandwidth: "90")
    static let counterOffer = cpd(node: "CE-1", bandwidth: "75")
    static let updateRequested = cpd(node: "CE-1", bandwidth: "200")
    static let updateOffered = cpd(node: "CE-1", bandwidth: "180")

    /// Information elements chosen by `selector`: none, explicit activation, testing purpose, a cost.
    static func ies(_ selector: Int, now: CPNPTimestamp) -> InformationElements? {
        switch selector % 5 {
        case 1: InformationElements(negotiationOptions: NegotiationOptions(activationType: .explicit))
        case 2: InformationElements(negotiationOptions: NegotiationOptions(purpose: .testing, testPeriodEnd: now.adding(.seconds(120))))
        case 3: InformationElements(cost: Cost(amount: CPNPDecimal("1250.00")!, currency: "EUR", period: "month"))
        case 4: InformationElements(negotiationOptions: NegotiationOptions(activationType: .scheduled, activationSchedule: now.adding(.seconds(30))))
        default: nil
        }
    }
}

// MARK: - Forged messages

/// Field-level rewrites of a message, for forged injections.
private enum SMPForge {
    static func nonce(_ m: CPNPMessage, _ n: Nonce) -> CPNPMessage {
        switch m {
        case .offer(var x): x.nonce = n; return .offer(x)
        case .accept(var x): x.nonce = n; return .accept(x)
        case .decline(var x): x.nonce = n; return .decline(x)
        case .withdraw(var x): x.nonce = n; return .withdraw(x)
        case .update(var x): x.nonce = n; return .update(x)
        case .activate(var x): x.nonce = n; return .activate(x)
        default: return m
        }
    }

    static func providerOrderID(_ m: CPNPMessage, _ p: ProviderOrderID) -> CPNPMessage {
        switch m {
        case .processing(var x): x.providerOrderID = p; return .processing(x)
        case .offer(var x): x.providerOrderID = p; return .offer(x)
        case .accept(var x): x.providerOrderID = p; return .accept(x)
        case .decline(var x): x.providerOrderID = p; return .decline(x)
        case .ack(var x): x.providerOrderID = p; return .ack(x)
        case .withdraw(var x): x.providerOrderID = p; return .withdraw(x)
        case .update(var x): x.providerOrderID = p; return .update(x)
        case .fail(var x): x.providerOrderID = p; return .fail(x)
        case .activate(var x): x.providerOrderID = p; return .activate(x)
        case .quotation, .cancel: return m
        }
    }

    static func transactionID(_ m: CPNPMessage, _ t: TransactionID) -> CPNPMessage {
        switch m {
        case .quotation(var x): x.transactionID = t; return .quotation(x)
        case .processing(var x): x.transactionID = t; return .processing(x)
        case .offer(var x): x.transactionID = t; return .offer(x)
        case .accept(var x): x.transactionID = t; return .accept(x)
        case .decline(var x): x.transactionID = t; return .decline(x)
        case .ack(var x): x.transactionID = t; return .ack(x)
        case .cancel(var x): x.transactionID = t; return .cancel(x)
        case .withdraw(var x): x.transactionID = t; return .withdraw(x)
        case .update(var x): x.transactionID = t; return .update(x)
        case .fail(var x): x.transactionID = t; return .fail(x)
        case .activate(var x): x.transactionID = t; return .activate(x)
        }
    }

    static func customerOrderID(_ m: CPNPMessage, _ c: CustomerOrderID) -> CPNPMessage {
        switch m {
        case .quotation(var x): x.customerOrderID = c; return .quotation(x)
        case .processing(var x): x.customerOrderID = c; return .processing(x)
        case .offer(var x): x.customerOrderID = c; return .offer(x)
        case .accept(var x): x.customerOrderID = c; return .accept(x)
        case .decline(var x): x.customerOrderID = c; return .decline(x)
        case .ack(var x): x.customerOrderID = c; return .ack(x)
        case .cancel(var x): x.customerOrderID = c; return .cancel(x)
        case .withdraw(var x): x.customerOrderID = c; return .withdraw(x)
        case .update(var x): x.customerOrderID = c; return .update(x)
        case .fail(var x): x.customerOrderID = c; return .fail(x)
        case .activate(var x): x.customerOrderID = c; return .activate(x)
        }
    }

    /// UPDATE, WITHDRAW and ACTIVATE open a new transaction: a new transaction id is legitimate for them.
    static func opensTransaction(_ m: CPNPMessage) -> Bool {
        switch m {
        case .update, .withdraw, .activate: true
        default: false
        }
    }
}

// MARK: - Abstract events

/// One abstract event of a random run. `a` and `b` (0…999) parametrise it (which packet, which
/// command, which deadline…) and are interpreted modulo what is available when it runs, so that
/// every step is meaningful in every state and shrinking keeps sequences valid.
struct SMPStep: Sendable, CustomStringConvertible {
    enum Kind: String, Sendable, CaseIterable {
        /// Deliver packet `a` after `b` ms of latency (timers due meanwhile fire first).
        case deliver
        case drop, duplicate, reorder
        /// Advance the clock to the earliest armed timer and fire it.
        case fireNextTimer
        /// Let up to 10 s pass, firing due timers in order.
        case advance
        /// Fire a timer that is not armed (a firing racing its cancellation).
        case spuriousTimer
        /// A client command that makes sense in the client's state (or waiting).
        case clientAct
        /// Any client command, allowed or not (checks refusals change nothing).
        case clientAny
        /// A provider decision that makes sense in the server's state (or waiting).
        case serverAct
        case serverAny
        /// A forged message handed to the server: replay, wrong nonce / provider id / transaction
        /// id / customer id, stale sequence number, foreign 4-tuple.
        case injectServer
        /// The same towards the client.
        case injectClient
    }

    var kind: Kind
    var a: Int
    var b: Int
    var description: String { "\(kind.rawValue)(\(a),\(b))" }

    /// Weighted kind tables (100 entries each).
    static let mixed: [Kind] = table([
        (.deliver, 30), (.drop, 3), (.duplicate, 4), (.reorder, 3), (.fireNextTimer, 7), (.advance, 2),
        (.spuriousTimer, 2), (.clientAct, 17), (.clientAny, 2), (.serverAct, 17), (.serverAny, 2),
        (.injectServer, 7), (.injectClient, 4),
    ])
    static let hostile: [Kind] = table([
        (.deliver, 25), (.drop, 2), (.duplicate, 3), (.reorder, 2), (.fireNextTimer, 5), (.advance, 1),
        (.spuriousTimer, 1), (.clientAct, 14), (.clientAny, 1), (.serverAct, 14), (.serverAny, 1),
        (.injectServer, 23), (.injectClient, 8),
    ])

    private static func table(_ weights: [(Kind, Int)]) -> [Kind] {
        let t = weights.flatMap { Array(repeating: $0.0, count: $0.1) }
        precondition(t.count == 100)
        return t
    }

    /// Random steps drawn from a kind table.
    static func generator(_ table: [Kind], count: ClosedRange<Int>) -> Generator<[SMPStep], some SendableSequenceType> {
        zip(Gen.int(in: 0...99), Gen.int(in: 0...999), Gen.int(in: 0...999))
            .map { t in SMPStep(kind: table[t.0], a: t.1, b: t.2) }
            .array(of: count)
    }
}

// MARK: - Invariant checker

/// Checks the invariants of every machine call recorded by an ``InMemoryNetwork``, and the joint
/// invariants of both machines after each step. Violations and notable observations are collected
/// as text.
struct SMPChecker {
    /// The part of a client machine that must be durable (everything but retry counters and the
    /// cached-answer rate-limit timestamp).
    struct ClientView: Hashable {
        var state: ClientOrderStateMachine.State
        var providerOrderID: ProviderOrderID?
        var agreement: Agreement?
        var requestedCPD: CPD?
        var offer: OfferMessage?
        var transactionID: TransactionID?
        var kind: ClientOrderStateMachine.TransactionKind?
        /// The incoming number only: the outgoing counter is compared separately.
        var lastIncoming: SequenceNumber?
        var pending: CPNPMessage?
        var expectedResponseTime: CPNPTimestamp?
        var expectedOfferTime: CPNPTimestamp?
        var pendingTimeDecision: CPNPTimestamp?
        var lastEnd: ClientOrderStateMachine.NegotiationEnd?

        init(_ c: ClientOrderStateMachine) {
            state = c.state
            providerOrderID = c.providerOrderID
            agreement = c.agreement
            requestedCPD = c.requestedCPD
            offer = c.offer
            transactionID = c.transaction?.id
            kind = c.transaction?.kind
            lastIncoming = c.transaction?.sequence.lastIncoming
            pending = c.transaction?.pending?.message
            expectedResponseTime = c.expectedResponseTime
            expectedOfferTime = c.expectedOfferTime
            pendingTimeDecision = c.pendingTimeDecision
            lastEnd = c.lastEnd
        }
    }

    struct ServerView: Hashable {
        var state: ServerOrderStateMachine.State
        var agreement: Agreement?
        var withdrawnAgreement: Agreement?
        var offer: OfferMessage?
        var requestedCPD: CPD
        var transactionID: TransactionID
        var session: CPNPSession
        /// The incoming number only: the outgoing counter is compared separately.
        var lastIncoming: SequenceNumber?
        var pending: CPNPMessage?
        var isUpdate: Bool
        var withdrawalPending: Bool
        var expectedOfferTime: CPNPTimestamp?
        var requestedOfferTime: CPNPTimestamp?

        init(_ s: ServerOrderStateMachine) {
            state = s.state
            agreement = s.agreement
            withdrawnAgreement = s.withdrawnAgreement
            offer = s.offer
            requestedCPD = s.requestedCPD
            transactionID = s.transaction.id
            session = s.transaction.session
            lastIncoming = s.transaction.sequence.lastIncoming
            pending = s.transaction.pending?.message
            isUpdate = s.isUpdate
            withdrawalPending = s.withdrawalPending
            expectedOfferTime = s.expectedOfferTime
            requestedOfferTime = s.requestedOfferTime
        }
    }

    private struct SequenceKey: Hashable {
        var fromClient: Bool
        var transactionID: TransactionID
    }

    private struct SequenceHistory {
        var highest: SequenceNumber
        var bySequence: [SequenceNumber: CPNPMessage]
    }

    /// Invariant violations, each with the offending call.
    var violations: [String] = []
    /// Behaviours worth reporting that the properties tolerate, keyed by a short label.
    var observations: [String: Int] = [:]
    /// States visited (coverage of the generators).
    var clientStates: Set<ClientOrderStateMachine.State> = []
    var serverStates: Set<ServerOrderStateMachine.State> = []
    var callsChecked = 0

    private var sequences: [SequenceKey: SequenceHistory] = [:]
    /// Every transaction id the server order has had.
    private var serverTransactions: Set<TransactionID> = []
    /// Every message the client sent.
    private var clientSent: Set<CPNPMessage> = []
    /// The transactions whose opening UPDATE, WITHDRAW or ACTIVATE the server refused with a FAIL.
    private var serverRefusedTransactions: Set<TransactionID> = []
    /// What the client application was last told about the order's outcome ("agreementReached",
    /// "negotiationEnded.noResponse", "cancellationConfirmed", …).
    private(set) var lastClientOutcome: String?
    /// Since the client last learnt it was in sync (agreementReached, withdrawalConfirmed): it was
    /// told the outcome is uncertain (no response, a refused CANCEL or WITHDRAW, an unconfirmed
    /// withdrawal, an unanswered request) …
    private(set) var toldUncertain = false
    private struct OfferKey: Hashable {
        var providerOrderID: ProviderOrderID
        var nonce: Nonce
        var cpd: CPD
    }
    /// Every (provider order id, nonce, offered CPD) the server put in an OFFER.
    private var offers: Set<OfferKey> = []
    /// How often each event was reported, as "client.agreementReached" etc. (generator coverage).
    var reports: [String: Int] = [:]

    private mutating func fail(_ what: String, _ context: @autoclosure () -> String) {
        if violations.count < 20 { violations.append("\(what)\n    during: \(context())") }
    }

    private mutating func note(_ what: String) { observations[what, default: 0] += 1 }

    /// Checks the calls recorded since the last check, then the joint invariants.
    mutating func check(_ net: inout InMemoryNetwork) {
        for call in net.takeCalls() {
            callsChecked += 1
            switch call {
            case .client(let c): check(c)
            case .server(let s): check(s)
            }
        }
        checkJoint(net)
    }

    // MARK: Client calls

    private mutating func check(_ c: InMemoryNetwork.ClientCall) {
        let ctx = { "client \(c.before.state.rawValue) ← \(c.trigger) → \(c.after.state.rawValue) \(InMemoryNetwork.describe(c.actions))" }
        clientStates.insert(c.after.state)
        for case .report(let e) in c.actions {
            let update = c.before.transaction?.kind == .update ? " (update)" : ""
            var detail = ""
            if case .negotiationEnded(let end) = e { detail = "." + InMemoryNetwork.caseName(end) }
            reports["client.\(InMemoryNetwork.caseName(e))\(detail)\(update)", default: 0] += 1
            switch e {
            case .processing, .moreTimeRequested, .offerReceived, .activationConfirmed, .activationRefused: break
            default:
                lastClientOutcome = InMemoryNetwork.caseName(e) + detail
                switch e {
                case .agreementReached, .withdrawalConfirmed:
                    toldUncertain = false
                case .negotiationEnded(.noResponse), .cancellationRefused, .withdrawalRefused, .withdrawalUnconfirmed, .requestUnanswered:
                    toldUncertain = true
                default:
                    break
                }
            }
        }
        if let e = c.error {
            // A refused command changes nothing.
            if c.before != c.after { fail("client command threw \(e) but changed the machine", ctx()) }
            return
        }
        switch c.trigger {
        case .message, .timer:
            if c.actions.isEmpty { fail("client: a received message or timer produced no action at all", ctx()) }
        case .command:
            break
        }
        // Cancelled is terminal.
        if c.before.state == .cancelled && c.after.state != .cancelled {
            fail("client left Cancelled", ctx())
        }
        checkCompleted(client: c.after, ctx())
        // lastIncoming never decreases within a transaction.
        if let tb = c.before.transaction, let ta = c.after.transaction, tb.id == ta.id,
            let b = tb.sequence.lastIncoming, (ta.sequence.lastIncoming ?? 0) < b || ta.sequence.lastIncoming == nil
        {
            fail("client lastIncoming decreased from \(b) to \(String(describing: ta.sequence.lastIncoming))", ctx())
        }
        if let tb = c.before.transaction, let ta = c.after.transaction, tb.id == ta.id, ta.sequence.nextOutgoing < tb.sequence.nextOutgoing {
            fail("client nextOutgoing decreased", ctx())
        }
        // Durability: persist before send when the machine changed.
        let persists = c.actions.enumerated().compactMap { i, a -> (Int, ClientOrderStateMachine.State, ClientOrderStateMachine.State)? in
            if case .persist(let f, let t, _) = a { (i, f, t) } else { nil }
        }
        let firstSend = c.actions.firstIndex { if case .send = $0 { true } else { false } }
        checkDurability(
            stateChanged: c.before.state != c.after.state, viewChanged: ClientView(c.before) != ClientView(c.after),
            counterChanged: c.before.transaction?.sequence.nextOutgoing != c.after.transaction?.sequence.nextOutgoing,
            firstPersist: persists.first?.0, firstSend: firstSend, side: "client", ctx())
        if let first = persists.first, let last = persists.last {
            if first.1 != c.before.state || last.2 != c.after.state {
                fail(
                    "client persist chain \(first.1.rawValue)→…→\(last.2.rawValue) does not match \(c.before.state.rawValue)→\(c.after.state.rawValue)",
                    ctx())
            }
        }
        // Sends.
        let retransmissionTimer: Bool = {
            // Unless it gives up (a state change, e.g. a CANCEL after the last retry).
            if case .timer(.client(let t)) = c.trigger { return (t == .retransmission || t == .withdrawalRetry) && c.before.state == c.after.state }
            return false
        }()
        for a in c.actions {
            guard case .send(let m) = a else { continue }
            checkCodec(m, ctx())
            clientSent.insert(m)
            if m.customerOrderID != c.after.customerOrderID { fail("client sent a message with another customer order id", ctx()) }
            trackSequence(m, fromClient: true, mustBeRepeat: retransmissionTimer, ctx())
        }
        // Forged messages change nothing and are answered only with a discard or a cached answer.
        if case .message(let m, injected: true) = c.trigger {
            if ClientView(c.before) != ClientView(c.after) {
                fail("client changed on a forged message", ctx())
            }
            for a in c.actions {
                switch a {
                case .discard: break
                case .send(let x) where x == c.before.transaction?.cache?.answer && m == c.before.transaction?.cache?.incoming: break
                default: fail("client answered a forged message with \(a)", ctx())
                }
            }
        }
    }

    private mutating func checkCompleted(client c: ClientOrderStateMachine, _ ctx: @autoclosure () -> String) {
        guard c.state == .completed else { return }
        guard let ag = c.agreement else { return fail("client Completed without an agreement", ctx()) }
        if ag.acceptedCPD.isEmpty { fail("client agreement with an empty accepted CPD", ctx()) }
        if !offers.contains(Self.offerKey(ag.providerOrderID, ag.nonce, ag.acceptedCPD)) {
            fail("client agreement (nonce \(ag.nonce), CPD) matches no OFFER the server sent", ctx())
        }
    }

    // MARK: Server calls

    private mutating func check(_ s: InMemoryNetwork.ServerCall) {
        let ctx = { "server \(s.before?.state.rawValue ?? "none") ← \(s.trigger) → \(s.after.state.rawValue) \(InMemoryNetwork.describe(s.actions))" }
        serverStates.insert(s.after.state)
        for case .report(let e) in s.actions { reports["server.\(InMemoryNetwork.caseName(e))", default: 0] += 1 }
        // Record offers first: an agreement must match one of them.
        for a in s.actions {
            if case .send(.offer(let o), _) = a { offers.insert(Self.offerKey(o.providerOrderID, o.nonce, o.offeredCPD)) }
        }
        if let e = s.error {
            if s.before != s.after { fail("server command threw \(e) but changed the machine", ctx()) }
            return
        }
        // A delayed duplicate or a replay of an UPDATE / WITHDRAW / ACTIVATE of an earlier
        // transaction (closed, or refused with a FAIL) must never open that transaction again: an
        // UPDATE would start a phantom renegotiation, an ACTIVATE apply an old command again, a
        // WITHDRAW withdraw after the client was told it was refused (§11.3).
        if let b = s.before, case .message(let m, let injected) = s.trigger, SMPForge.opensTransaction(m),
            b.transaction.id != s.after.transaction.id, s.after.transaction.id == m.transactionID,
            clientSent.contains(m), serverTransactions.contains(m.transactionID) || serverRefusedTransactions.contains(m.transactionID)
        {
            let again = serverTransactions.contains(m.transactionID)
            fail(
                "server opened a\(again ? " closed" : " refused") transaction again on a\(injected ? " replayed" : " delayed duplicate") \(m.method)",
                ctx())
        }
        serverTransactions.insert(s.after.transaction.id)
        if let b = s.before, case .message(let m, _) = s.trigger, SMPForge.opensTransaction(m), m.transactionID != b.transaction.id,
            m.transactionID != s.after.transaction.id,
            s.actions.contains(where: { if case .send(.fail(let f), _) = $0 { f.transactionID == m.transactionID } else { false } })
        {
            serverRefusedTransactions.insert(m.transactionID)
        }
        switch s.trigger {
        case .message, .timer:
            if s.actions.isEmpty { fail("server: a received message or timer produced no action at all", ctx()) }
        case .command:
            break
        }
        if s.before?.state == .cancelled && s.after.state != .cancelled {
            fail("server left Cancelled", ctx())
        }
        checkCompleted(server: s.after, ctx())
        if let b = s.before, b.transaction.id == s.after.transaction.id {
            if let li = b.transaction.sequence.lastIncoming,
                (s.after.transaction.sequence.lastIncoming ?? 0) < li || s.after.transaction.sequence.lastIncoming == nil
            {
                fail("server lastIncoming decreased from \(li) to \(String(describing: s.after.transaction.sequence.lastIncoming))", ctx())
            }
            if s.after.transaction.sequence.nextOutgoing < b.transaction.sequence.nextOutgoing { fail("server nextOutgoing decreased", ctx()) }
        }
        let persists = s.actions.enumerated().compactMap { i, a -> (Int, ServerOrderStateMachine.State, ServerOrderStateMachine.State)? in
            if case .persist(let f, let t, _) = a { (i, f, t) } else { nil }
        }
        let firstSend = s.actions.firstIndex { if case .send = $0 { true } else { false } }
        let viewChanged = s.before.map { ServerView($0) != ServerView(s.after) } ?? true
        checkDurability(
            stateChanged: s.before?.state != s.after.state, viewChanged: viewChanged,
            counterChanged: s.before?.transaction.sequence.nextOutgoing != s.after.transaction.sequence.nextOutgoing,
            firstPersist: persists.first?.0, firstSend: firstSend, side: "server", ctx())
        if let first = persists.first, let last = persists.last {
            if first.1 != (s.before?.state ?? .pqoReceived) || last.2 != s.after.state {
                fail("server persist chain \(first.1.rawValue)→…→\(last.2.rawValue) does not match the transition", ctx())
            }
        }
        let retransmissionTimer: Bool = {
            if case .timer(.server(.retransmission)) = s.trigger { return s.before?.state == s.after.state }
            return false
        }()
        for a in s.actions {
            guard case .send(let m, _) = a else { continue }
            checkCodec(m, ctx())
            // A FAIL that took no number from the counters answers a message outside the live
            // transaction and session (another transaction id or 4-tuple: random sequence number, by
            // design). Inside them every FAIL takes the next number and is persisted.
            if case .fail = m, let b = s.before, b.transaction.sequence.nextOutgoing == s.after.transaction.sequence.nextOutgoing,
                m != b.transaction.cache?.answer
            {
                if m.transactionID == b.transaction.id, case .send(_, let to) = a, to == b.transaction.session {
                    fail("FAIL with a random sequence number sent inside the order's live transaction and session", ctx())
                }
                continue
            }
            trackSequence(m, fromClient: false, mustBeRepeat: retransmissionTimer, ctx())
        }
        if case .message(let m, injected: true) = s.trigger, let b = s.before {
            // Only a FAIL inside the live transaction records the message it answers (its number
            // becomes the incoming one, the FAIL its cached answer), and, during a negotiation, ends
            // the negotiation as the FAIL ends it for the client (§9.2.10); nothing else may change.
            let answeredInTransaction = s.actions.contains {
                if case .send(.fail(let f), let to) = $0 { f.transactionID == b.transaction.id && to == b.transaction.session } else { false }
            }
            let negotiating: Set<ServerOrderStateMachine.State> = [.pqoReceived, .awaitingProcessing, .offerProposed, .processingReceived]
            var before = ServerView(b)
            if answeredInTransaction { before.lastIncoming = s.after.transaction.sequence.lastIncoming }
            // A testing agreement whose test period ended while its update was negotiated ends with
            // the negotiation (§9.1.10.3; ServerOrderStateMachine.endNegotiation).
            let testPeriodEnded =
                s.actions.contains { if case .report(.testPeriodEnded(let ag)) = $0 { ag == b.agreement } else { false } }
                && b.agreement?.purpose == .testing && b.agreement?.testPeriodEnd != nil && s.after.agreement == nil
            if answeredInTransaction && negotiating.contains(b.state) {
                if (s.after.agreement != b.agreement && !testPeriodEnded) || s.after.offer != nil || s.after.isUpdate
                    || (s.after.state != .cancelled && s.after.state != .completed)
                {
                    fail("server: a FAIL answering a forged message did not end the negotiation cleanly", ctx())
                }
            } else if before != ServerView(s.after) {
                fail("server changed on a forged message", ctx())
            }
            // Only a FAIL inside the live transaction may take an outgoing number.
            let failsInLiveTransaction = s.actions.count {
                if case .send(.fail(let f), _) = $0 { f.transactionID == b.transaction.id } else { false }
            }
            let advance = s.after.transaction.sequence.nextOutgoing &- b.transaction.sequence.nextOutgoing
            if b.transaction.id == s.after.transaction.id && Int(advance) > failsInLiveTransaction {
                fail("server outgoing counter advanced by \(advance) on a forged message", ctx())
            }
            for a in s.actions {
                switch a {
                case .discard, .send(.fail, _): break
                // The FAIL recorded as the message's answer, or a refused transaction, is persisted
                // first; a FAIL during a negotiation ends it (timers, release of what it held).
                case .persist, .cancelTimer, .report(.negotiationEnded), .report(.testPeriodEnded), .sendToChildProvider(.cancel):
                    if !s.actions.contains(where: { if case .send(.fail, _) = $0 { true } else { false } }) {
                        fail("server answered a forged message with \(a)", ctx())
                    }
                case .send(let x, _) where x == b.transaction.cache?.answer && m == b.transaction.cache?.incoming: break
                default: fail("server answered a forged message with \(a)", ctx())
                }
            }
        }
    }

    private mutating func checkCompleted(server s: ServerOrderStateMachine, _ ctx: @autoclosure () -> String) {
        guard s.state == .completed else { return }
        guard let ag = s.agreement else { return fail("server Completed without an agreement", ctx()) }
        if ag.acceptedCPD.isEmpty { fail("server agreement with an empty accepted CPD", ctx()) }
        if !offers.contains(Self.offerKey(ag.providerOrderID, ag.nonce, ag.acceptedCPD)) {
            fail("server agreement matches no OFFER it sent", ctx())
        }
    }

    // MARK: Shared checks

    /// A state change is persisted; a send is preceded by a persist whenever the call changed the
    /// machine. A call whose only change is the outgoing counter (a FAIL answering an invalid
    /// message inside the live transaction takes the next number, by design) is tolerated and noted.
    private mutating func checkDurability(
        stateChanged: Bool, viewChanged: Bool, counterChanged: Bool, firstPersist: Int?, firstSend: Int?, side: String,
        _ ctx: @autoclosure () -> String
    ) {
        if stateChanged && firstPersist == nil { fail("state changed without a persist action", ctx()) }
        guard let s = firstSend else { return }
        if stateChanged || viewChanged {
            guard let p = firstPersist, p < s else { return fail("send before persist although the machine changed", ctx()) }
        } else if counterChanged && !(firstPersist.map { $0 < s } ?? false) {
            fail("\(side): outgoing sequence counter advanced by a send without a persist", ctx())
        }
    }

    private mutating func checkCodec(_ m: CPNPMessage, _ ctx: @autoclosure () -> String) {
        let bytes = CPNPCodec.encode(m)
        do {
            let back = try CPNPCodec.decode(bytes)
            if back != m { fail("\(m.method) does not survive encode/decode: \(String(decoding: bytes, as: UTF8.self))", ctx()) }
        } catch {
            fail("\(m.method) sent but does not decode (\(error)): \(String(decoding: bytes, as: UTF8.self))", ctx())
        }
    }

    /// Within one transaction a side's new messages carry strictly increasing numbers, and a
    /// number seen before is only ever reused by the very same message (a retransmission or a
    /// cached answer). Retransmission timers may only repeat earlier messages.
    private mutating func trackSequence(_ m: CPNPMessage, fromClient: Bool, mustBeRepeat: Bool, _ ctx: @autoclosure () -> String) {
        let key = SequenceKey(fromClient: fromClient, transactionID: m.transactionID)
        let side = fromClient ? "client" : "server"
        guard var h = sequences[key] else {
            if mustBeRepeat { fail("\(side) retransmission timer sent a message never sent before", ctx()) }
            sequences[key] = SequenceHistory(highest: m.sequenceNumber, bySequence: [m.sequenceNumber: m])
            return
        }
        if let earlier = h.bySequence[m.sequenceNumber] {
            if earlier != m {
                fail("\(side) reused sequence number \(m.sequenceNumber) for a different message (\(earlier.method) then \(m.method))", ctx())
            }
            return
        }
        if mustBeRepeat { fail("\(side) retransmission with a new sequence number", ctx()) }
        if m.sequenceNumber <= h.highest {
            fail("\(side) new \(m.method) with sequence number \(m.sequenceNumber) ≤ \(h.highest) already used in this transaction", ctx())
        }
        h.highest = max(h.highest, m.sequenceNumber)
        h.bySequence[m.sequenceNumber] = m
        sequences[key] = h
    }

    /// Agreements of both sides after the same negotiation (same nonce) are equal, except for
    /// when each side recorded it (`agreedAt`) and its live activation status.
    private mutating func checkJoint(_ net: InMemoryNetwork) {
        guard net.client.state == .completed, let s = net.server, s.state == .completed,
            let ca = net.client.agreement, let sa = s.agreement
        else { return }
        if ca.nonce == sa.nonce {
            if !Self.sameAgreement(ca, sa) { fail("client and server agreements differ after the same negotiation", "\(ca)\n    vs \(sa)") }
        } else {
            note("both Completed with agreements from different negotiations (an UPDATE completed on one side only)")
        }
    }

    /// Once nothing is in flight, no timer is armed and nobody has anything left to decide, both
    /// sides are in a final state (Completed or Cancelled) and agree — the same agreement, or both
    /// Cancelled — unless the client application was told, since it last learnt it was in sync,
    /// that the outcome is uncertain (`.noResponse`, a refused CANCEL / WITHDRAW, an unconfirmed
    /// withdrawal, an unanswered request). Known defects (file header) are noted instead of
    /// failed: a CANCEL from AcceptSent racing the agreement, a negotiation ended by a FAIL
    /// answering a forged message, a testing agreement outliving its test period.
    mutating func checkSettled(_ net: InMemoryNetwork) {
        let c = net.client
        guard let s = net.server else {
            // Nothing reached the server: the client never quoted, or cancelled.
            if c.state != .cancelled && c.state != .created { fail("settled with the client \(c.state.rawValue) and no server order", "end of run") }
            return
        }
        let told = lastClientOutcome ?? "nothing"
        let ctx = "end of run: client \(c.state.rawValue) told \(told), server \(s.state.rawValue)"
        // A testing agreement never outlives its test period, even when it ended during an UPDATE.
        func expiredTesting(_ ag: Agreement?) -> Bool {
            guard let ag, ag.purpose == .testing, let end = ag.testPeriodEnd else { return false }
            return end <= net.now
        }
        if c.state == .completed && expiredTesting(c.agreement) { fail("client testing agreement outlived its test period", ctx) }
        if s.state == .completed && expiredTesting(s.agreement) { fail("server testing agreement outlived its test period", ctx) }
        func toldOrKnown(_ situation: String) -> Bool {
            if toldUncertain { note("settled: \(situation); the client was told the outcome is uncertain"); return true }
            return false
        }
        switch (c.state, s.state) {
        case (.cancelled, .cancelled):
            break
        case (.completed, .completed):
            guard let ca = c.agreement, let sa = s.agreement, ca.nonce != sa.nonce else { break }
            if !toldOrKnown("an UPDATE agreed by the server only") {
                fail("both Completed with different agreements and the client was not told", ctx)
            }
        case (.cancelled, .completed):
            if !toldOrKnown("server Completed, client Cancelled") {
                fail("the server holds an agreement the client considers cancelled, and the client was not told", ctx)
            }
        case (.completed, .cancelled):
            if !toldOrKnown("client Completed, server Cancelled") { fail("the client holds an agreement the server dropped", ctx) }
        default:
            fail("settled in a state pair that is neither consistent nor final", ctx)
        }
    }

    static func sameAgreement(_ x: Agreement, _ y: Agreement) -> Bool {
        var x = x
        x.agreedAt = y.agreedAt
        x.activation = y.activation
        return x == y
    }

    private static func offerKey(_ p: ProviderOrderID, _ n: Nonce, _ cpd: CPD) -> OfferKey {
        OfferKey(providerOrderID: p, nonce: n, cpd: cpd)
    }
}

// MARK: - Random runner

/// Interprets ``SMPStep``s on an ``InMemoryNetwork`` and checks invariants after each.
struct SMPRunner {
    var net: InMemoryNetwork
    var checker = SMPChecker()
    /// Randomness of the forgeries (not the machines').
    private var forgeRNG: SplitMix64

    init(seed: UInt64) {
        net = InMemoryNetwork(seed: seed)
        forgeRNG = SplitMix64(seed: seed ^ 0x5eed_f0f9)
    }

    mutating func run(_ steps: [SMPStep]) {
        for step in steps {
            net.trace.append("— \(step)")
            apply(step)
            checker.check(&net)
            // Stop at the first violation so that the end of the trace shows it.
            if !checker.violations.isEmpty { return }
        }
    }

    /// Ends a run: the network delivers everything in order, timers fire, the customer accepts
    /// and grants, the provider acknowledges, offers and confirms, until nothing is left to do;
    /// then the end-of-run consistency is checked.
    mutating func settle(maximumSteps: Int = 2_000) {
        guard checker.violations.isEmpty else { return }
        net.trace.append("— settle")
        for _ in 0..<maximumSteps {
            if !settlingDecision() {
                if !net.inFlight.isEmpty {
                    net.deliver(at: 0, advancingBy: .milliseconds(10))
                } else if !net.fireNextTimer() {
                    checker.check(&net)
                    checker.checkSettled(net)
                    return
                }
            }
            checker.check(&net)
            if !checker.violations.isEmpty { return }
        }
        checker.violations.append("did not settle within \(maximumSteps) steps")
    }

    private mutating func settlingDecision() -> Bool {
        let c = net.client
        if c.pendingTimeDecision != nil { clientCommand(.grantTime, 0); return true }
        if (c.state == .offerReceived || c.state == .offerProcessing), let o = c.offer, net.now < o.validityOfferTime {
            clientCommand(.accept, 0)
            return true
        }
        guard let s = net.server else { return false }
        switch s.state {
        case .pqoReceived: serverCommand(.acknowledge, 0)
        case .awaitingProcessing: serverCommand(.offer, 60)
        case .acceptReceived: serverCommand(.confirm, 0)
        case .completed where s.withdrawalPending: serverCommand(.confirmWithdrawal, 0)
        default: return false
        }
        return true
    }

    private mutating func apply(_ s: SMPStep) {
        switch s.kind {
        case .deliver: net.deliver(at: s.a, advancingBy: .milliseconds(s.b % 400))
        case .drop: net.drop(at: s.a)
        case .duplicate: net.duplicate(at: s.a)
        case .reorder: net.swap(s.a, s.b)
        case .fireNextTimer: net.fireNextTimer()
        case .advance: net.advance(by: .milliseconds(s.a * 10))
        case .spuriousTimer: spuriousTimer(s.a)
        case .clientAct: clientAct(s.a, s.b)
        case .clientAny: clientCommand(ClientCommand.allCases[s.a % ClientCommand.allCases.count], s.b)
        case .serverAct: serverAct(s.a, s.b)
        case .serverAny: serverCommand(ServerCommand.allCases[s.a % ServerCommand.allCases.count], s.b)
        case .injectServer: injectServer(s.a, s.b)
        case .injectClient: injectClient(s.a, s.b)
        }
    }

    // MARK: Timers

    private mutating func spuriousTimer(_ a: Int) {
        let all: [InMemoryNetwork.TimerID] =
            ClientOrderStateMachine.Timer.allCases.map { .client($0) }
            + [.retransmission, .offerValidity, .expectedOfferTime, .testPeriodEnd, .scheduledActivation].map { .server($0) }
        let unarmed = all.filter { t in
            switch t {
            case .client(let c): net.clientTimers[c] == nil
            case .server(let x): net.serverTimers[x] == nil
            }
        }
        guard !unarmed.isEmpty else { return }
        net.fire(unarmed[a % unarmed.count])
    }

    // MARK: Client

    enum ClientCommand: String, CaseIterable {
        case wait, quote, cancel, offerProcessing, accept, decline, withdraw, update, activate, grantTime, refuseTime
    }

    private mutating func clientAct(_ a: Int, _ b: Int) {
        let c = net.client
        let options: [ClientCommand]
        if c.pendingTimeDecision != nil {
            options = [.grantTime, .grantTime, .refuseTime, .wait]
        } else {
            switch c.state {
            case .created: options = [.quote, .quote, .quote, .cancel]
            case .awaitingProcessing: options = [.quote]
            case .pqoSent, .serverProcessing, .acceptSent: options = Array(repeating: .wait, count: 19) + [.cancel]
            case .offerReceived: options = [.offerProcessing, .offerProcessing, .accept, .accept, .accept, .decline, .cancel]
            case .offerProcessing: options = [.accept, .accept, .accept, .accept, .decline, .cancel]
            case .completed:
                options =
                    c.agreement?.activationType == .explicit
                    ? [.wait, .withdraw, .update, .update, .activate, .activate] : [.wait, .wait, .withdraw, .update, .update]
            case .cancelled: options = [.wait]
            }
        }
        let cmd = options[a % options.count]
        // Waiting lets the network make progress instead.
        if cmd == .wait { net.deliver(at: 0, advancingBy: .milliseconds(b % 400)) } else { clientCommand(cmd, b) }
    }

    private mutating func clientCommand(_ cmd: ClientCommand, _ b: Int) {
        let session = net.clientSession
        switch cmd {
        case .wait: return
        case .quote:
            _ = try? net.client("quote") { c, now, rng throws(OrderCommandError) in
                try c.quote(
                    requestedCPD: SMPFixtures.requested, informationElements: SMPFixtures.ies(b / 7, now: now),
                    expectedResponseTime: b % 3 == 0 ? nil : now.adding(.seconds(Int64(10 + b % 110))), session: session, now: now, using: &rng)
            }
        case .cancel:
            _ = try? net.client("cancel") { c, now, _ throws(OrderCommandError) in try c.cancel(now: now) }
        case .offerProcessing:
            _ = try? net.client("offerProcessingStarted") { c, now, _ throws(OrderCommandError) in try c.offerProcessingStarted(now: now) }
        case .accept:
            _ = try? net.client("accept") { c, now, _ throws(OrderCommandError) in try c.accept(now: now) }
        case .decline:
            _ = try? net.client("decline") { c, now, _ throws(OrderCommandError) in
                try c.decline(reasons: b % 2 == 0 ? [] : [.unacceptableGap], now: now)
            }
        case .withdraw:
            _ = try? net.client("withdraw") { c, now, rng throws(OrderCommandError) in try c.withdraw(session: session, now: now, using: &rng) }
        case .update:
            _ = try? net.client("update") { c, now, rng throws(OrderCommandError) in
                try c.update(
                    requestedCPD: SMPFixtures.updateRequested, informationElements: SMPFixtures.ies(b / 7, now: now),
                    expectedResponseTime: now.adding(.seconds(Int64(10 + b % 110))), session: session, now: now, using: &rng)
            }
        case .activate:
            _ = try? net.client("activate") { c, now, rng throws(OrderCommandError) in
                let schedule: ActivationSchedule =
                    switch b % 3 {
                    case 0: .now
                    case 1: .deactivate
                    default: .at(now.adding(.seconds(Int64(1 + b % 50))))
                    }
                return try c.activate(schedule, session: session, now: now, using: &rng)
            }
        case .grantTime:
            _ = try? net.client("moreTimeDecided(granted)") { c, now, _ throws(OrderCommandError) in try c.moreTimeDecided(granted: true, now: now) }
        case .refuseTime:
            _ = try? net.client("moreTimeDecided(refused)") { c, now, _ throws(OrderCommandError) in try c.moreTimeDecided(granted: false, now: now) }
        }
    }

    // MARK: Server

    enum ServerCommand: String, CaseIterable {
        case wait, acknowledge, offer, reject, moreTime, confirm, confirmWithdrawal
    }

    private mutating func serverAct(_ a: Int, _ b: Int) {
        guard let s = net.server else { net.deliver(at: 0, advancingBy: .milliseconds(b % 400)); return }
        let options: [ServerCommand]
        switch s.state {
        case .pqoReceived: options = [.acknowledge, .acknowledge, .acknowledge, .offer, .offer, .reject]
        case .awaitingProcessing:
            options = s.requestedOfferTime == nil ? [.offer, .offer, .offer, .reject, .moreTime, .wait] : [.offer, .offer, .wait, .reject]
        case .acceptReceived: options = [.confirm, .confirm, .confirm, .confirm, .confirm, .reject]
        case .completed: options = s.withdrawalPending ? [.confirmWithdrawal, .confirmWithdrawal, .wait] : [.wait]
        default: options = [.wait]
        }
        let cmd = options[a % options.count]
        if cmd == .wait { net.deliver(at: 0, advancingBy: .milliseconds(b % 400)) } else { serverCommand(cmd, b) }
    }

    private mutating func serverCommand(_ cmd: ServerCommand, _ b: Int) {
        switch cmd {
        case .wait: return
        case .acknowledge:
            _ = try? net.server("acknowledge") { s, now, _ throws(OrderCommandError) in
                try s.acknowledge(expectedOfferTime: b % 3 == 0 ? nil : now.adding(.seconds(Int64(5 + b % 60))), now: now)
            }
        case .offer:
            _ = try? net.server("makeOffer") { s, now, rng throws(OrderCommandError) in
                let cpd =
                    s.isUpdate
                    ? (b % 2 == 0 ? SMPFixtures.updateOffered : SMPFixtures.updateRequested)
                    : (b % 2 == 0 ? SMPFixtures.offered : SMPFixtures.counterOffer)
                return try s.makeOffer(
                    offeredCPD: cpd, validityOfferTime: now.adding(.seconds(Int64(5 + b % 240))),
                    informationElements: SMPFixtures.ies(b / 11, now: now), now: now, using: &rng)
            }
        case .reject:
            _ = try? net.server("reject") { s, now, _ throws(OrderCommandError) in
                let codes = FailStatusCode.allCases
                return try s.reject(codes[b % codes.count], diagnostic: b % 2 == 0 ? nil : "no capacity", now: now)
            }
        case .moreTime:
            _ = try? net.server("requestMoreTime") { s, now, _ throws(OrderCommandError) in
                try s.requestMoreTime(until: now.adding(.seconds(Int64(5 + b % 40))), subcode: b % 2 == 0 ? nil : .requestExternalResources, now: now)
            }
        case .confirm:
            _ = try? net.server("agreementConfirmed") { s, now, _ throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
        case .confirmWithdrawal:
            _ = try? net.server("withdrawalConfirmed") { s, now, _ throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
        }
    }

    // MARK: Forgeries

    enum Forgery: String, CaseIterable {
        case replay, wrongNonce, wrongProviderID, wrongTransactionID, staleSequence, wrongCustomerID, foreignSession
    }

    /// The latest of `messages` satisfying `where`, counting back `b % 3`.
    private func recent(_ messages: [CPNPMessage], _ b: Int, where ok: (CPNPMessage) -> Bool = { _ in true }) -> CPNPMessage? {
        let m = messages.filter(ok).suffix(3)
        return m.isEmpty ? nil : m[m.startIndex + b % m.count]
    }

    private mutating func injectServer(_ a: Int, _ b: Int) {
        guard let server = net.server else { return }
        let live = server.transaction
        /// The next number the server would accept in its live transaction.
        func fresh(_ m: CPNPMessage) -> CPNPMessage {
            m.transactionID == live.id ? m.withSequenceNumber((live.sequence.lastIncoming ?? m.sequenceNumber) &+ 1) : m
        }
        let forgery = Forgery.allCases[a % Forgery.allCases.count]
        var session: CPNPSession?
        let forged: CPNPMessage?
        switch forgery {
        case .replay:
            // Only messages the server already consumed: another transaction, or a number not
            // above the live one (a never-consumed one would just be a late delivery).
            let done = net.deliveredToServer.filter { m in
                m.transactionID != live.id || live.sequence.lastIncoming.map { m.sequenceNumber <= $0 } ?? false
            }
            forged = done.isEmpty ? nil : done[b % done.count]
        case .wrongNonce:
            forged = recent(net.sentByClient, b) { $0.nonce != nil }.map { fresh(SMPForge.nonce($0, Nonce.random(using: &forgeRNG))) }
        case .wrongProviderID:
            forged = recent(net.sentByClient, b) { $0.providerOrderID != nil }.map {
                fresh(SMPForge.providerOrderID($0, ProviderOrderID("po-forged-\(b)")!))
            }
        case .wrongTransactionID:
            forged = recent(net.sentByClient, b) { !SMPForge.opensTransaction($0) }.map {
                SMPForge.transactionID($0, TransactionID.random(using: &forgeRNG))
            }
        case .staleSequence:
            if let last = live.sequence.lastIncoming, last > 0 {
                forged = recent(net.sentByClient, b) { $0.transactionID == live.id }.map {
                    $0.withSequenceNumber(last - 1 - min(last - 1, SequenceNumber(b % 3)))
                }
            } else {
                forged = nil
            }
        case .wrongCustomerID:
            forged = recent(net.sentByClient, b).map { SMPForge.customerOrderID($0, CustomerOrderID("someone-else-\(b)")!) }
        case .foreignSession:
            forged = recent(net.sentByClient, b) { !SMPForge.opensTransaction($0) }.map(fresh)
            session = CPNPSession(local: net.serverSession.local, remote: CPNPEndpoint(host: "203.0.113.66", port: UInt16(1024 + b)))
        }
        guard let forged else { return }
        net.trace.append("— forge \(forgery.rawValue) → server")
        net.inject(forged, to: .toServer, session: session)
    }

    private mutating func injectClient(_ a: Int, _ b: Int) {
        let client = net.client
        let live = client.transaction
        func fresh(_ m: CPNPMessage) -> CPNPMessage {
            guard let live, m.transactionID == live.id else { return m }
            return m.withSequenceNumber((live.sequence.lastIncoming ?? m.sequenceNumber) &+ 1)
        }
        let forgery = Forgery.allCases[a % Forgery.allCases.count]
        var session: CPNPSession?
        let forged: CPNPMessage?
        switch forgery {
        case .replay:
            // Only messages the client already processed or discarded as stale: their sequence
            // number is not above the live one (a never-processed one would be a late delivery).
            let done = net.deliveredToClient.filter { m in
                guard let live, m.transactionID == live.id else { return true }
                return live.sequence.lastIncoming.map { m.sequenceNumber <= $0 } ?? false
            }
            forged = done.isEmpty ? nil : done[b % done.count]
        case .wrongNonce:
            // The client cannot check the nonce of an OFFER (the server assigns it): not a forgery.
            forged = nil
        case .wrongProviderID:
            // Before the client learnt the provider order id any is acceptable.
            guard client.providerOrderID != nil else { return }
            forged = recent(net.sentByServer, b) { $0.providerOrderID != nil }.map {
                fresh(SMPForge.providerOrderID($0, ProviderOrderID("po-forged-\(b)")!))
            }
        case .wrongTransactionID:
            forged = recent(net.sentByServer, b).map { SMPForge.transactionID($0, TransactionID.random(using: &forgeRNG)) }
        case .staleSequence:
            if let live, let last = live.sequence.lastIncoming, last > 0 {
                forged = recent(net.sentByServer, b) { $0.transactionID == live.id }.map {
                    $0.withSequenceNumber(last - 1 - min(last - 1, SequenceNumber(b % 3)))
                }
            } else {
                forged = nil
            }
        case .wrongCustomerID:
            forged = recent(net.sentByServer, b).map { SMPForge.customerOrderID($0, CustomerOrderID("someone-else-\(b)")!) }
        case .foreignSession:
            forged = recent(net.sentByServer, b).map(fresh)
            session = CPNPSession(local: net.clientSession.local, remote: CPNPEndpoint(host: "203.0.113.66", port: UInt16(1024 + b)))
        }
        guard let forged else { return }
        net.trace.append("— forge \(forgery.rawValue) → client")
        net.inject(forged, to: .toClient, session: session)
    }
}

// MARK: - Tests

@Suite("State machine properties")
struct StateMachinePropertyTests {
    /// Runs random event sequences and fails with the first violations and the trace.
    private static func randomRuns(count: Int, table: [SMPStep.Kind], length: ClosedRange<Int>) async -> (SMPChecker, Int) {
        var totals = SMPChecker()
        var runs = 0
        await propertyCheck(count: count, input: Gen.uint64(), SMPStep.generator(table, count: length)) { seed, steps in
            // The run itself off the pool (``computeOffThePool(_:)``); its checks here, on the test's task.
            let runner = await computeOffThePool {
                var runner = SMPRunner(seed: seed)
                runner.run(steps)
                runner.settle()
                return runner
            }
            let c = runner.checker
            #expect(
                c.violations.isEmpty,
                "\(c.violations.joined(separator: "\n"))\nseed \(seed)\ntrace (last 60):\n\(runner.net.trace.suffix(60).joined(separator: "\n"))")
            runs += 1
            totals.callsChecked += c.callsChecked
            totals.clientStates.formUnion(c.clientStates)
            totals.serverStates.formUnion(c.serverStates)
            totals.observations.merge(c.observations, uniquingKeysWith: +)
            totals.reports.merge(c.reports, uniquingKeysWith: +)
        }
        return (totals, runs)
    }

    /// Random interleavings of commands, decisions, deliveries, losses, duplicates, reorderings,
    /// timers and a few forgeries. After every machine call:
    /// - Completed ⇒ an agreement whose (provider order id, nonce, accepted CPD) is an OFFER the
    ///   server sent; both Completed after the same negotiation ⇒ equal agreements;
    /// - Cancelled never left (client and server);
    /// - per transaction and side, new messages have strictly increasing sequence numbers, a
    ///   reused number is the identical message (retransmission, cached answer), retransmission
    ///   timers only repeat, `lastIncoming` never decreases;
    /// - every sent message survives `CPNPCodec.encode` → `decode` unchanged;
    /// - every received message or timer yields at least one action (a discard is explicit);
    ///   a refused command changes nothing;
    /// - persist precedes the first send whenever the call changed the machine;
    /// - a forged message changes nothing and is answered only with FAIL / discard / the cached answer.
    /// At the end of each run ``SMPRunner/settle(maximumSteps:)`` lets everything finish and
    /// ``SMPChecker/checkSettled(_:)`` checks that both sides agree or the client was told.
    /// Shrinking is off (runs are long); a failure prints the seed, the end of the trace and the
    /// `.fixedSeed(…)` trait that replays it.
    @Test(.shrinking(false)) func randomEventSequencesKeepInvariants() async {
        let (totals, runs) = await Self.randomRuns(count: 300, table: SMPStep.mixed, length: 60...240)
        // The generators must reach the deep states, or the properties prove little.
        if runs == 300 {
            #expect(
                totals.clientStates.isSuperset(of: [
                    .pqoSent, .serverProcessing, .offerReceived, .offerProcessing, .acceptSent, .completed, .cancelled,
                ]),
                "client states reached: \(totals.clientStates.map(\.rawValue).sorted())")
            #expect(
                totals.serverStates.isSuperset(of: [
                    .pqoReceived, .awaitingProcessing, .offerProposed, .processingReceived, .acceptReceived, .completed, .cancelled,
                ]),
                "server states reached: \(totals.serverStates.map(\.rawValue).sorted())")
        }
        print(
            "[SMP mixed] runs \(runs), calls \(totals.callsChecked), observations \(totals.observations)\n  reports \(totals.reports.sorted { $0.key < $1.key })"
        )
    }

    /// The same invariants with a third of the steps forging messages towards either machine:
    /// replays of delivered messages, a wrong nonce / provider order id / transaction id / customer
    /// order id (with a sequence number the live transaction would accept), stale sequence
    /// numbers, a foreign 4-tuple.
    @Test(.shrinking(false)) func forgedMessagesNeverChangeState() async {
        let (totals, runs) = await Self.randomRuns(count: 200, table: SMPStep.hostile, length: 60...240)
        print(
            "[SMP hostile] runs \(runs), calls \(totals.callsChecked), observations \(totals.observations)\n  reports \(totals.reports.sorted { $0.key < $1.key })"
        )
    }
}

// MARK: - Liveness over a lossy network

/// A quote → offer → accept negotiation where the provider always offers and the customer always
/// accepts, over a network that loses (≤ 30 %), duplicates and reorders packets but delivers the
/// rest with less latency than RETRANS_TIMER; timers fire in deadline order once the network is idle.
struct SMPLossyNegotiation {
    enum Outcome: String, CaseIterable {
        /// Both Completed with the same agreement.
        case agreed
        /// Neither Completed (both Cancelled): a deadline passed, or an ACCEPT went unanswered after
        /// every retry and the client withdrew whatever the server may have agreed.
        case noAgreement
    }

    var net: InMemoryNetwork
    var checker = SMPChecker()
    var random: SplitMix64
    let lossPercent: Int
    let duplicatePercent: Int
    let reorderPercent: Int

    init(seed: UInt64, lossPercent: Int, duplicatePercent: Int, reorderPercent: Int) {
        net = InMemoryNetwork(seed: seed)
        random = SplitMix64(seed: seed ^ 0x11fe)
        self.lossPercent = lossPercent
        self.duplicatePercent = duplicatePercent
        self.reorderPercent = reorderPercent
    }

    private mutating func percent(_ p: Int) -> Bool { random.below(100) < p }

    /// Runs until both machines are idle (nothing in flight, no timer armed, nothing to decide).
    /// Returns false if that did not happen within the step budget.
    mutating func run(maximumSteps: Int = 3_000) -> Bool {
        let session = net.clientSession
        let withDeadline = percent(50)
        _ = try? net.client("quote") { c, now, rng throws(OrderCommandError) in
            try c.quote(
                requestedCPD: SMPFixtures.requested, expectedResponseTime: withDeadline ? now.adding(.seconds(120)) : nil,
                session: session, now: now, using: &rng)
        }
        checker.check(&net)
        for _ in 0..<maximumSteps {
            if policies() {
                checker.check(&net)
                continue
            }
            if !net.inFlight.isEmpty {
                let index = percent(reorderPercent) ? random.below(min(3, net.inFlight.count)) : 0
                if percent(lossPercent) {
                    net.drop(at: index)
                } else {
                    if percent(duplicatePercent) { net.duplicate(at: index) }
                    net.deliver(at: index, advancingBy: .milliseconds(random.below(300)))
                }
            } else if !net.fireNextTimer() {
                return true
            }
            checker.check(&net)
        }
        return false
    }

    /// The customer acknowledges and accepts every offer; the provider acknowledges, offers and
    /// confirms (agreements and withdrawals) at once. Returns true when one of them acted.
    private mutating func policies() -> Bool {
        switch net.client.state {
        case .offerReceived where percent(50):
            _ = try? net.client("offerProcessingStarted") { c, now, _ throws(OrderCommandError) in try c.offerProcessingStarted(now: now) }
            return true
        case .offerReceived, .offerProcessing:
            _ = try? net.client("accept") { c, now, _ throws(OrderCommandError) in try c.accept(now: now) }
            return true
        default:
            break
        }
        guard let s = net.server else { return false }
        switch s.state {
        case .pqoReceived:
            let eot = percent(50) ? net.now.adding(.seconds(60)) : nil
            _ = try? net.server("acknowledge") { s, now, _ throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: eot, now: now) }
            return true
        case .awaitingProcessing:
            _ = try? net.server("makeOffer") { s, now, rng throws(OrderCommandError) in
                try s.makeOffer(offeredCPD: SMPFixtures.offered, validityOfferTime: now.adding(.seconds(300)), now: now, using: &rng)
            }
            return true
        case .acceptReceived:
            _ = try? net.server("agreementConfirmed") { s, now, _ throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
            return true
        case .completed where s.withdrawalPending:
            // The WITHDRAW that follows an ACCEPT unanswered after every retry.
            _ = try? net.server("withdrawalConfirmed") { s, now, _ throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
            return true
        default:
            return false
        }
    }

    /// The final outcome, or nil with an explanation when it is not an acceptable one.
    var outcome: Result<Outcome, SMPLossyFailure> {
        let c = net.client
        guard let s = net.server else {
            return c.state == .cancelled ? .success(.noAgreement) : .failure(.init("client \(c.state.rawValue) and no server order"))
        }
        switch (c.state, s.state) {
        case (.completed, .completed):
            guard let ca = c.agreement, let sa = s.agreement, SMPChecker.sameAgreement(ca, sa) else {
                return .failure(.init("both Completed with different agreements"))
            }
            return .success(.agreed)
        case (.cancelled, .cancelled):
            return .success(.noAgreement)
        default:
            return .failure(.init("client \(c.state.rawValue) (\(String(describing: c.lastEnd))) but server \(s.state.rawValue)"))
        }
    }
}

struct SMPLossyFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension StateMachinePropertyTests {
    /// Liveness: over a lossy (≤ 30 %), duplicating, reordering network, the always-offer /
    /// always-accept negotiation quiesces with both sides Completed and equal agreements, or both
    /// Cancelled. Never one side Completed without the other: a client without any deadline
    /// probes a silent server (``ClientOrderStateMachine/Timer/silenceProbe``), and an ACCEPT
    /// unanswered after every retry is followed by CANCEL and WITHDRAW. The per-call invariants hold
    /// throughout. Prints the share of negotiations that reached an agreement, per loss band.
    @Test func lossyNegotiationConverges() async {
        var outcomes: [SMPLossyNegotiation.Outcome: Int] = [:]
        var byLossBand: [Int: (agreed: Int, runs: Int)] = [:]
        await propertyCheck(count: 300, input: Gen.uint64(), Gen.int(in: 0...30), Gen.int(in: 0...20), Gen.int(in: 0...30)) {
            seed, loss, dup, reorder in
            // The run itself off the pool (``computeOffThePool(_:)``); its checks here, on the test's task.
            let (n, quiet) = await computeOffThePool {
                var n = SMPLossyNegotiation(seed: seed, lossPercent: loss, duplicatePercent: dup, reorderPercent: reorder)
                let quiet = n.run()
                return (n, quiet)
            }
            let trace = n.net.trace.suffix(50).joined(separator: "\n")
            #expect(quiet, "did not quiesce\n\(trace)")
            #expect(n.checker.violations.isEmpty, "\(n.checker.violations.joined(separator: "\n"))\n\(trace)")
            switch n.outcome {
            case .success(let o):
                outcomes[o, default: 0] += 1
                let band = loss / 10 * 10
                byLossBand[band, default: (0, 0)].runs += 1
                if o == .agreed { byLossBand[band, default: (0, 0)].agreed += 1 }
            case .failure(let f): Issue.record("\(f)\n\(trace)")
            }
        }
        // With no loss at all the negotiation must succeed (a sanity check of the harness).
        await propertyCheck(count: 20, input: Gen.uint64()) { seed in
            var n = SMPLossyNegotiation(seed: seed, lossPercent: 0, duplicatePercent: 10, reorderPercent: 20)
            let quiet = n.run()
            #expect(quiet)
            #expect((try? n.outcome.get()) == .agreed, "\(n.net.trace.suffix(40).joined(separator: "\n"))")
        }
        print("[SMP lossy] outcomes \(outcomes.map { "\($0.key.rawValue): \($0.value)" }.sorted())")
        for (band, counts) in byLossBand.sorted(by: { $0.key < $1.key }) {
            print("[SMP lossy] loss \(band)–\(min(band + 9, 30)) %: \(counts.agreed) of \(counts.runs) agreed")
        }
    }
}
