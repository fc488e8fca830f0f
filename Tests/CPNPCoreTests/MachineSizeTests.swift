// The engine copies order machines as it moves them between its table, a batch and the store: they
// stay small (the server's phase with what it holds, and the messages, are boxed, not inline).
import Testing

@testable import CPNPCore

@Suite("Order machine sizes")
struct MachineSizeTests {
    @Test func machinesAndTransactionsStaySmall() {
        #expect(MemoryLayout<CPNPMessage>.size == MemoryLayout<Int>.size, "a message is one reference")
        #expect(MemoryLayout<ServerOrderStateMachine.Phase>.size <= 16, "the offer, the agreements and the child machine are not inline")
        #expect(MemoryLayout<ServerOrderStateMachine.Transaction>.size <= 160)
        #expect(MemoryLayout<ServerOrderStateMachine>.size <= 640, "513 bytes; 1,560 with the offer and agreements inline")
        #expect(MemoryLayout<ClientOrderStateMachine.Phase>.size <= 16, "the offer and the agreement are not inline")
        #expect(MemoryLayout<ClientOrderStateMachine>.size <= 768, "604 bytes; about 1,290 with the offer and agreement inline")
    }
}
