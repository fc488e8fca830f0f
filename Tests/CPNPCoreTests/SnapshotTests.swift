// Durable snapshots: every reachable state of both machines survives snapshot → JSON bytes →
// restore unchanged, and the restored machine re-arms the timers the state needs.
import CPNPTesting
import Testing
@testable import CPNPCore

@Suite("Order state machine snapshots")
struct SnapshotTests {
    static func roundTrip(_ v: JSONValue) throws -> JSONValue {
        try JSONParser.parse(JSONSerializer.serialize(v))
    }

    /// Each case is a snapshot with one member set to a value: `restore` must refuse it, naming
    /// the expected member.
    static func expectRefused(
        _ cases: [(snapshot: JSONObject, member: String, value: JSONValue, named: String)], restore: (JSONValue) throws(SnapshotError) -> Void
    ) {
        for (original, member, value, named) in cases {
            var object = original
            object[member] = value
            do {
                try restore(.object(object))
                Issue.record("\(member) = \(value) was accepted")
            } catch {
                #expect(error.path.description == named, "\(member) = \(value): \(error)")
            }
        }
    }

    @Test(arguments: ClientState.allCases)
    func clientRoundTrip(state: ClientState) throws {
        var d = try clientDialogue(in: state)
        if state == .serverProcessing {
            // Include a pending request for more time.
            _ = apply(ClientEvent.processing, to: &d)
        }
        let restored = try ClientOrderStateMachine(snapshot: Self.roundTrip(d.client.snapshot))
        #expect(restored == d.client)
    }

    @Test(arguments: serverStates)
    func serverRoundTrip(state: ServerState) throws {
        let d = try serverDialogue(in: state)
        let s = try #require(d.server)
        let restored = try ServerOrderStateMachine(snapshot: Self.roundTrip(s.snapshot))
        #expect(restored == s)
    }

    /// The members a server snapshot leaves out where they hold their default (docs/design/storage.md,
    /// "What is stored"), with the value a snapshot of an earlier release wrote for each.
    static let serverDefaults: [(String, JSONValue)] = [
        (
            "configuration",
            .object(
                JSONObject([
                    (
                        "retransmission",
                        .object(
                            JSONObject([
                                ("initial-interval-ms", .number(1000)), ("maximum-retries", .number(3)),
                                ("cached-answer-minimum-interval-ms", .number(250)),
                            ]))
                    )
                ]))
        ),
        ("child", .null), ("requested-information-elements", .null), ("offer", .null), ("agreement", .null),
        ("withdrawn-agreement", .null), ("is-update", .bool(false)), ("withdrawal-pending", .bool(false)),
        ("expected-offer-time", .null), ("requested-offer-time", .null), ("child-agreements", .array([])),
        ("closed-transaction-ids", .array([])), ("refused-transactions", .array([])), ("more-time-requests", .number(0)),
        ("more-time-refused", .bool(false)),
    ]

    /// A server snapshot leaves out what holds its default, and the header members of its messages
    /// that are the order's, and restores to the same machine; written in full, as earlier releases
    /// wrote it, it restores to the same machine too.
    @Test(arguments: serverStates)
    func serverSnapshotsLeaveDefaultsOut(state: ServerState) throws {
        var d = try serverDialogue(in: state)
        if state == .completed { _ = apply(ServerEvent.withdraw, to: &d) }
        let s = try #require(d.server)
        guard case .object(var object) = s.snapshot, case .object(var transaction)? = object["transaction"] else {
            Issue.record("not an object")
            return
        }
        for (key, full) in Self.serverDefaults {
            if let value = object[key] { #expect(value != full, "\(key) holds its default") }
            if object[key] == nil { object[key] = full }
        }
        for key in ["pending", "cache"] {
            #expect(transaction[key] != .null, "transaction.\(key) is null")
            if transaction[key] == nil { transaction[key] = .null }
        }
        // Messages leave out their version and the ids that are the order's and the transaction's;
        // earlier releases wrote them whole.
        func whole(_ stored: JSONValue?, _ message: CPNPMessage?) -> JSONValue? {
            guard case .object(let members)? = stored, let message else { return stored }
            #expect(members["version"] == nil && members["transaction-id"] == nil && members["customer-order-id"] == nil)
            #expect(members["provider-order-id"] == (message.providerOrderID == nil ? .null : nil))
            return CPNPCodec.encodeJSON(message)
        }
        if case .object(var cache)? = transaction["cache"], let exchange = s.transaction.cache {
            cache["incoming"] = whole(cache["incoming"], exchange.incoming)
            cache["answer"] = whole(cache["answer"], exchange.answer)
            transaction["cache"] = .object(cache)
        }
        if case .object(var pending)? = transaction["pending"] {
            pending["message"] = whole(pending["message"], s.transaction.pending?.message)
            transaction["pending"] = .object(pending)
        }
        object["transaction"] = .object(transaction)
        object["offer"] = whole(object["offer"], s.offer.map { .offer($0) })
        for key in ["agreement", "withdrawn-agreement"] {
            guard case .object(var agreement)? = object[key] else { continue }
            #expect(agreement["customer-order-id"] == nil && agreement["provider-order-id"] == nil, "\(key) repeats the order's ids")
            #expect(agreement["test-period-end"] == nil && agreement["activation-schedule"] == nil)
            agreement["customer-order-id"] = .string(s.customerOrderID.rawValue)
            agreement["provider-order-id"] = .string(s.providerOrderID.rawValue)
            for member in ["test-period-end", "activation-schedule"] { agreement[member] = .null }
            object[key] = .object(agreement)
        }
        #expect(try ServerOrderStateMachine(snapshot: Self.roundTrip(s.snapshot)) == s)
        #expect(try ServerOrderStateMachine(snapshot: Self.roundTrip(.object(object))) == s)
        #expect(JSONSerializer.serialize(.object(object)).count > JSONSerializer.serialize(s.snapshot).count)
    }

    /// A retransmission policy other than the default is written, and read back.
    @Test func aServerSnapshotKeepsAConfigurationOtherThanTheDefault() throws {
        let s = try #require(try serverDialogue(in: .completed).server)
        guard case .object(var object) = s.snapshot, object["configuration"] == nil, case .object(let defaults)? = Self.serverDefaults.first?.1,
            case .object(var retransmission)? = defaults["retransmission"]
        else {
            Issue.record("not an object, or the default configuration is written")
            return
        }
        retransmission["maximum-retries"] = .number(5)
        object["configuration"] = .object(JSONObject([("retransmission", .object(retransmission))]))
        let other = try ServerOrderStateMachine(snapshot: .object(object))
        #expect(other.configuration.retransmission.maximumRetries == 5)
        guard case .object(let written) = other.snapshot else { return }
        #expect(written["configuration"] != nil)
        #expect(try ServerOrderStateMachine(snapshot: Self.roundTrip(other.snapshot)) == other)
    }

    @Test func serverWithChildOrderRoundTrip() throws {
        var d = try serverDialogue(in: .awaitingProcessing)
        _ = apply(ServerEvent.cChildOrder, to: &d)
        let s = try #require(d.server)
        #expect(s.state == .childPQOSent)
        let restored = try ServerOrderStateMachine(snapshot: Self.roundTrip(s.snapshot))
        #expect(restored == s)
        #expect(restored.armedTimers(now: Fixture.start).contains { $0.0 == .child(.retransmission) })
    }

    @Test func restoredMachinesReArmTheirTimers() throws {
        let offered = try serverDialogue(in: .offerProposed).server!
        let timers = offered.armedTimers(now: Fixture.at(5))
        #expect(timers.contains { $0.0 == .offerValidity && $0.1 == Fixture.at(3_600) })
        #expect(timers.contains { $0.0 == .retransmission && $0.1 == Fixture.at(5) })

        let waiting = try serverDialogue(in: .awaitingProcessing).server!
        #expect(waiting.armedTimers(now: Fixture.start).map(\.0) == [.expectedOfferTime])

        var testing = Dialogue()
        try testing.negotiate(offerIEs: Fixture.informationElements(purpose: .testing, testPeriodEnd: Fixture.at(86_400)))
        #expect(testing.server!.armedTimers(now: Fixture.start).map(\.0) == [.testPeriodEnd])
        #expect(testing.client.armedTimers(now: Fixture.start).map(\.0) == [.testPeriodEnd])

        let client = try clientDialogue(in: .offerReceived).client
        #expect(client.armedTimers(now: Fixture.start).map(\.0) == [.offerValidity])
        let quoting = try clientDialogue(in: .pqoSent).client
        #expect(Set(quoting.armedTimers(now: Fixture.start).map(\.0)) == [.retransmission, .expectedResponseTime])
    }

    /// The phase's data (``ServerOrderStateMachine/Phase``) survives a snapshot in the states that carry
    /// the most of it: an UPDATE negotiated while the agreement stays in force, a withdrawal awaiting
    /// its confirmation, and the withdrawn agreement of a Cancelled order.
    @Test func phasesWithTheirDataRoundTrip() throws {
        var d = try serverDialogue(in: .completed)
        let agreed = try #require(d.server?.agreement)
        _ = apply(ServerEvent.update, to: &d)
        let updating = try #require(d.server)
        #expect(updating.state == .pqoReceived && updating.isUpdate && updating.agreement == agreed && updating.offer == nil)
        #expect(try ServerOrderStateMachine(snapshot: Self.roundTrip(updating.snapshot)) == updating)
        _ = apply(ServerEvent.cMakeOffer, to: &d)
        let offering = try #require(d.server)
        #expect(offering.state == .offerProposed && offering.isUpdate && offering.agreement == agreed && offering.offer != nil)
        #expect(try ServerOrderStateMachine(snapshot: Self.roundTrip(offering.snapshot)) == offering)

        var w = try serverDialogue(in: .completed)
        _ = apply(ServerEvent.withdraw, to: &w)
        let withdrawing = try #require(w.server)
        #expect(withdrawing.state == .completed && withdrawing.withdrawalPending && withdrawing.agreement == agreed)
        #expect(try ServerOrderStateMachine(snapshot: Self.roundTrip(withdrawing.snapshot)) == withdrawing)
        _ = apply(ServerEvent.cWithdrawalConfirmed, to: &w)
        let withdrawn = try #require(w.server)
        #expect(withdrawn.state == .cancelled && withdrawn.agreement == nil && withdrawn.withdrawnAgreement == agreed)
        #expect(!withdrawn.withdrawalPending && !withdrawn.isUpdate)
        #expect(try ServerOrderStateMachine(snapshot: Self.roundTrip(withdrawn.snapshot)) == withdrawn)
    }

    /// A snapshot whose members contradict its phase (an offer where none can be, a Completed order
    /// without its agreement …) is corrupt: the restore names the member instead of dropping it.
    @Test func snapshotMembersThatContradictThePhaseAreNamed() throws {
        let completed = try serverDialogue(in: .completed).server!
        let offered = try serverDialogue(in: .offerProposed).server!
        let waiting = try serverDialogue(in: .awaitingProcessing).server!
        guard case .object(let completedObject) = completed.snapshot, case .object(let offeredObject) = offered.snapshot,
            case .object(let waitingObject) = waiting.snapshot
        else {
            Issue.record("not an object")
            return
        }
        let agreement = try #require(completedObject["agreement"])
        let offer = try #require(offeredObject["offer"])
        let cases: [(JSONObject, String, JSONValue, String)] = [
            (completedObject, "agreement", .null, "agreement"),
            (completedObject, "offer", offer, "offer"),
            (completedObject, "is-update", .bool(true), "is-update"),
            (waitingObject, "withdrawal-pending", .bool(true), "withdrawal-pending"),
            (waitingObject, "withdrawn-agreement", agreement, "withdrawn-agreement"),
            (waitingObject, "agreement", agreement, "is-update"),
            (waitingObject, "is-update", .bool(true), "is-update"),
            (completedObject, "phase", .string("Negotiating"), "phase"),
        ]
        Self.expectRefused(cases) { snapshot throws(SnapshotError) in _ = try ServerOrderStateMachine(snapshot: snapshot) }
        // The same members where the phase holds them restore.
        var pending = completedObject
        pending["withdrawal-pending"] = .bool(true)
        #expect(try ServerOrderStateMachine(snapshot: .object(pending)).withdrawalPending)
    }

    /// The client's phase keeps what outlives a negotiation step: the declined offer (shown with the
    /// other providers' answers) and the agreement a WITHDRAW ends until the provider confirms it.
    @Test func clientPhasesWithTheirDataRoundTrip() throws {
        var declined = try clientDialogue(in: .offerReceived)
        let offered = try #require(declined.client.offer)
        try declined.clientDo { c, _, now throws(OrderCommandError) in try c.decline(now: now) }
        #expect(declined.client.state == .cancelled && declined.client.offer == offered && declined.client.agreement == nil)
        #expect(try ClientOrderStateMachine(snapshot: Self.roundTrip(declined.client.snapshot)) == declined.client)

        var withdrawing = try clientDialogue(in: .completed)
        let agreed = try #require(withdrawing.client.agreement)
        try withdrawing.clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        #expect(withdrawing.client.state == .cancelled && withdrawing.client.agreement == agreed && withdrawing.client.offer == nil)
        #expect(try ClientOrderStateMachine(snapshot: Self.roundTrip(withdrawing.client.snapshot)) == withdrawing.client)
        withdrawing.deliverToServer()
        try withdrawing.serverDo { s, _, now throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
        withdrawing.deliverToClient()
        withdrawing.deliverToClient()
        #expect(withdrawing.client.state == .cancelled && withdrawing.client.agreement == nil)
        #expect(withdrawing.clientEvents.last == .withdrawalConfirmed)

        // An expected offer time beyond the expected response time awaits the application's decision.
        var deciding = try clientDialogue(in: .pqoSent)
        try deciding.serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: Fixture.at(86_400), now: now) }
        deciding.deliverToClient()
        #expect(deciding.client.state == .pqoSent && deciding.client.pendingTimeDecision == Fixture.at(86_400))
        #expect(try ClientOrderStateMachine(snapshot: Self.roundTrip(deciding.client.snapshot)) == deciding.client)
    }

    /// As for the server: a client snapshot whose members contradict its state is corrupt, and the
    /// restore names the member.
    @Test func clientSnapshotMembersThatContradictTheStateAreNamed() throws {
        let completed = try clientDialogue(in: .completed).client
        let offered = try clientDialogue(in: .offerReceived).client
        let quoting = try clientDialogue(in: .pqoSent).client
        guard case .object(let completedObject) = completed.snapshot, case .object(let offeredObject) = offered.snapshot,
            case .object(let quotingObject) = quoting.snapshot
        else {
            Issue.record("not an object")
            return
        }
        let agreement = try #require(completedObject["agreement"])
        let offer = try #require(offeredObject["offer"])
        var created = quotingObject
        created["state"] = .string("Created")
        let cases: [(JSONObject, String, JSONValue, String)] = [
            (completedObject, "agreement", .null, "agreement"),
            (offeredObject, "offer", .null, "offer"),
            (quotingObject, "offer", offer, "offer"),
            (completedObject, "pending-time-decision", .string(Fixture.at(60).rfc3339), "pending-time-decision"),
            (created, "agreement", agreement, "agreement"),
        ]
        Self.expectRefused(cases) { snapshot throws(SnapshotError) in _ = try ClientOrderStateMachine(snapshot: snapshot) }
        // Where the state holds them, the same members restore: an UPDATE's declined offer in Completed.
        var declinedUpdate = completedObject
        declinedUpdate["offer"] = offer
        #expect(try ClientOrderStateMachine(snapshot: .object(declinedUpdate)).offer != nil)
    }

    @Test func corruptSnapshotsNameTheField() throws {
        let s = try serverDialogue(in: .completed).server!
        guard case .object(var o) = s.snapshot, case .object(var t)? = o["transaction"] else { Issue.record("not an object"); return }
        t["id"] = .string("short")
        o["transaction"] = .object(t)
        #expect(throws: SnapshotError.self) { try ServerOrderStateMachine(snapshot: .object(o)) }
        do {
            _ = try ServerOrderStateMachine(snapshot: .object(o))
        } catch {
            #expect(error.path.description == "transaction.id")
        }
    }
}

@Suite("CPD interning while decoding snapshots")
struct CPDInterningTests {
    /// A Completed server order repeats the agreed CPD in the agreement and in the cached ACCEPT and
    /// ACK; decoded with sharing, each distinct document is decoded once and the machine is unchanged.
    @Test(arguments: serverStates)
    func equalDocumentsAreDecodedOnceAndTheMachineIsUnchanged(state: ServerState) throws {
        let d = try serverDialogue(in: state)
        let s = try #require(d.server)
        let json = try SnapshotTests.roundTrip(s.snapshot)
        var distinct = 0
        let restored = try CPDInterning.sharingEqualDocuments { () throws -> ServerOrderStateMachine in
            let m = try ServerOrderStateMachine(snapshot: json)
            distinct = CPDInterning.current?.documents.count ?? -1
            return m
        }
        #expect(restored == s)
        #expect(try ServerOrderStateMachine(snapshot: json) == s)
        #expect(CPDInterning.current == nil, "the table lives only inside the scope")
        // Count the CPDs the snapshot holds: `distinct` must not exceed the distinct ones among them.
        var all: [JSONValue] = []
        func collect(_ v: JSONValue, key: String?) {
            switch v {
            case .object(let o):
                for (k, child) in o {
                    if ["cpd", "requested-cpd", "offered-cpd", "accepted-cpd"].contains(k), case .object = child {
                        all.append(child)
                    } else {
                        collect(child, key: k)
                    }
                }
            case .array(let a): for child in a { collect(child, key: key) }
            default: break
            }
        }
        collect(json, key: nil)
        #expect(distinct == Set(all).count, "\(state): \(all.count) documents in the snapshot, \(Set(all).count) distinct, \(distinct) decoded")
        if state == .completed { #expect(all.count >= 3 && distinct < all.count) }
    }
}
