// The console's pure parts: the CPD clause by clause, and the gauges /metrics renders.
import CPNPCore
@testable import CPNPHTTP
import CPNPServer
import CPNPStorage
import Foundation
import Testing

struct ConsoleTests {
    static func example(_ name: String) throws -> CPD {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let bytes = try Data(contentsOf: root.appendingPathComponent("Examples/\(name)"))
        return try CPD(json: JSONParser.parse(Array(bytes)), at: .root)
    }

    @Test func clausesAreComparedOneByOneAndDifferencesMarked() throws {
        let requested = try Self.example("l3vpn-3-sites.json")
        let offered = try Self.example("l3vpn-3-sites-partial-offer.json")
        let rows = Console.clauses(requested: requested, offered: offered, agreed: nil)
        let names = rows.compactMap { $0["clause"] as? String }
        #expect(names.contains("components[0].profiles[0].capacity"), "\(names)")
        #expect(!names.contains("components"), "containers are opened, not shown whole")
        let differing = rows.filter { $0["offerDiffers"] as? Bool == true }.compactMap { $0["clause"] as? String }
        #expect(!differing.isEmpty && differing.count < rows.count, "\(differing)")
        // What the comparison finds different is marked.
        for gap in offered.comparison(against: requested).gaps {
            let text = gap.path.description
            #expect(differing.contains { text.hasPrefix($0) || text.hasPrefix("$." + $0) }, "\(text) not marked among \(differing)")
        }
        #expect(rows.allSatisfy { $0["agreed"] as? String == "" && $0["agreementDiffers"] as? Bool == false })
        let same = Console.clauses(requested: requested, offered: requested, agreed: requested)
        #expect(same.allSatisfy { $0["offerDiffers"] as? Bool == false && $0["agreementDiffers"] as? Bool == false })
    }

    @Test func gaugesAreRenderedInThePrometheusFormat() {
        let exporter = MetricsExporter()
        let gauges = EngineGauges(
            inboxDepth: 3, armedTimers: 7, residentOrders: 2, isReady: false, openOrdersByState: ["Completed": 5],
            reservedMbps: ["L1": ["incoming": 150]], capacityMbps: ["L1": ["incoming": 1000, "outgoing": 1000]],
            walCheckpoints: WALCheckpointCounts(background: 40, onWriter: 2))
        var text = exporter.render(gauges, transport: .init(associations: 4, handshakesCompleted: 9, handshakesFailed: 1))
        #expect(text.contains("cpnp_store_wal_checkpoints_total{by=\"checkpointer\"} 40"))
        #expect(text.contains("cpnp_store_wal_checkpoints_total{by=\"writer\"} 2"))
        #expect(text.contains("cpnp_inbox_depth 3.0") && text.contains("cpnp_armed_timers 7.0") && text.contains("cpnp_ready 0.0"))
        #expect(text.contains("cpnp_open_orders{state=\"Completed\"} 5.0") && text.contains("cpnp_open_orders{state=\"OfferProposed\"} 0.0"))
        #expect(text.contains("cpnp_link_reserved_mbps{link=\"L1\",direction=\"incoming\"} 150.0"))
        #expect(text.contains("cpnp_link_reserved_mbps{link=\"L1\",direction=\"outgoing\"} 0.0"))
        #expect(text.contains("cpnp_dtls_handshakes_total{result=\"completed\"} 9"))
        // Handshake counters only grow: the transport's totals are added as differences.
        text = exporter.render(nil, transport: .init(associations: 1, handshakesCompleted: 12, handshakesFailed: 1))
        #expect(text.contains("cpnp_dtls_handshakes_total{result=\"completed\"} 12") && text.contains("cpnp_up 0.0"))
        var later = gauges
        later.walCheckpoints = WALCheckpointCounts(background: 55, onWriter: 2)
        text = exporter.render(later, transport: nil)
        #expect(text.contains("cpnp_store_wal_checkpoints_total{by=\"checkpointer\"} 55"))
    }
}
