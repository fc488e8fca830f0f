// The transaction both order machines keep (OrderTransaction, RFC 8921 §11.3–11.4): sequence
// numbers, the answer a duplicate gets again, and the retransmission of the pending request.
import Testing

@testable import CPNPCore

@Suite("One transaction type for both machines")
struct OrderTransactionTests {
    let id = TransactionID("00112233445566778899aabbccddeeff")!

    func cancel(_ sequenceNumber: SequenceNumber) -> CPNPMessage {
        .cancel(CancelMessage(sequenceNumber: sequenceNumber, transactionID: id, customerOrderID: Fixture.customerOrderID))
    }

    func ack(_ sequenceNumber: SequenceNumber) -> CPNPMessage {
        .ack(
            AckMessage(
                sequenceNumber: sequenceNumber, transactionID: id, customerOrderID: Fixture.customerOrderID,
                providerOrderID: Fixture.providerOrderID))
    }

    @Test func arrivalsAreClassifiedBySequenceNumberAndDuplicatesGetTheCachedAnswer() {
        var transaction = OrderTransaction(id: id, session: Fixture.serverSession, sequence: SequenceCounters(initialOutgoing: 500))
        let policy = RetransmissionPolicy(cachedAnswerMinimumInterval: .milliseconds(250))
        #expect(transaction.arrival(of: cancel(10), now: Fixture.start, policy: policy) == .fresh)
        transaction.record(cancel(10))
        #expect(transaction.sequence.lastIncoming == 10)
        // Recorded but not answered yet: a duplicate has nothing to get.
        #expect(transaction.arrival(of: cancel(10), now: Fixture.start, policy: policy) == .duplicate(answer: nil))
        transaction.cache?.answer = ack(500)

        #expect(transaction.arrival(of: cancel(9), now: Fixture.start, policy: policy) == .stale)
        #expect(transaction.arrival(of: cancel(10), now: Fixture.start, policy: policy) == .duplicate(answer: ack(500)))
        // Resent at most once per cachedAnswerMinimumInterval (§11.4).
        #expect(transaction.arrival(of: cancel(10), now: Fixture.start.adding(.milliseconds(100)), policy: policy) == .duplicate(answer: nil))
        #expect(
            transaction.arrival(of: cancel(10), now: Fixture.start.adding(.milliseconds(300)), policy: policy) == .duplicate(answer: ack(500)))
        // Another message with the same number is no retransmission of the cached one.
        #expect(transaction.arrival(of: ack(10), now: Fixture.start.adding(.seconds(5)), policy: policy) == .duplicate(answer: nil))
        #expect(transaction.arrival(of: cancel(11), now: Fixture.start, policy: policy) == .fresh)
        #expect(transaction.sequence.lastIncoming == 10, "classifying records nothing")
    }

    @Test func retransmissionsDoubleTheirIntervalUntilTheRetriesRunOut() {
        var transaction = OrderTransaction(
            id: id, session: Fixture.clientSession, sequence: SequenceCounters(initialOutgoing: 7), pending: PendingRequest(message: cancel(7)))
        let policy = RetransmissionPolicy(initialInterval: .seconds(1), maximumRetries: 3)
        var next: [CPNPTimestamp] = []
        var now = Fixture.start
        while let resend = transaction.retransmission(now: now, policy: policy) {
            #expect(resend.message == cancel(7))
            next.append(resend.next)
            now = resend.next
        }
        #expect(next == [Fixture.at(2), Fixture.at(6), Fixture.at(14)])
        #expect(transaction.pending == PendingRequest(message: cancel(7), retries: 3), "the exhausted request stays for the machine to end")
        transaction.pending = nil
        #expect(transaction.retransmission(now: now, policy: policy) == nil)
    }

    @Test func bothMachinesKeepTheSameTransaction() {
        let exchange = OrderTransaction(id: id, session: Fixture.clientSession, sequence: SequenceCounters(initialOutgoing: 1))
        let server: ServerOrderStateMachine.Transaction = exchange
        let client = ClientOrderStateMachine.Transaction(kind: .quotation, id: id, session: Fixture.clientSession, sequence: exchange.sequence)
        #expect(client.exchange == server)
    }
}
