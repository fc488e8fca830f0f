// The administrator alarm of RFC 8921 §11.1.2 with the real programs: a WITHDRAW that the provider
// never answers is reported by `cpnp withdraw` (exit 4), and `cpnp orders` and `cpnp show` keep
// showing it.
import CPNPTesting
import CPNPCore
import Foundation
import Testing
#if canImport(Glibc)
    import Glibc
#endif

@Suite(.enabled(if: Daemon.binary != nil && CLI.binary != nil, "cpnpd/cpnp not built"), .serialized)
struct WithdrawalAlarmEndToEndTests {
    @Test(.timeLimit(.minutes(2)))
    func anUnansweredWithdrawRaisesTheAlarmInTheCLI() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let cli = try CLI(daemon: daemon)
        let q = try await cli.run(["quote", "--cpd", CLI.example("l3vpn-3-sites.json"), "--yes", "--order-id", "alarm-1"])
        #expect(q.status == 0, "\(q.stderr)")
        #expect(try await cli.state("alarm-1") == "Completed")
        #expect(try await cli.show("alarm-1")["alarm"] == nil)

        // The provider stops answering (SIGSTOP keeps its port, so no other test's daemon can take
        // it): every retransmission of the WITHDRAW goes unanswered (1+2+4+8 s).
        kill(daemon.process.processIdentifier, SIGSTOP)
        defer { kill(daemon.process.processIdentifier, SIGCONT) }
        let w = try await cli.run(["withdraw", "alarm-1", "--json"])
        #expect(w.status == 4, "\(w.stdout)\n\(w.stderr)")
        #expect(w.stderr.contains("ALARM") && w.stderr.contains("§11.1.2"))
        let shown = try await cli.show("alarm-1")
        #expect(shown["alarm"]?.stringValue?.contains("withdrawal unconfirmed") == true)
        let human = try await cli.run(["show", "alarm-1"])
        #expect(human.stdout.contains("ALARM: withdrawal unconfirmed"))
        let list = try await cli.run(["orders"])
        #expect(list.stdout.split(separator: "\n").contains { $0.contains("alarm-1") && $0.contains("ALARM") })
    }
}
