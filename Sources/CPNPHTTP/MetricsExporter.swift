public import CPNPServer
import CPNPCore
import CPNPStorage
import Foundation
import Synchronization
public import Prometheus

/// The Prometheus side of `/metrics`: one registry for the engine's counters (EngineMetrics.swift),
/// and the gauges set from the engine and the transport at each scrape (docs/console.md).
public final class MetricsExporter: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// The factory to give ``EngineMetrics`` (and, bootstrapped, to swift-metrics).
    public let factory: PrometheusMetricsFactory
    private let previousTransport = Mutex<TransportCounts>(TransportCounts())
    private let previousCheckpoints = Mutex<WALCheckpointCounts>(WALCheckpointCounts(background: 0, onWriter: 0))

    /// Counts of a transport since it started (for DTLS: ``CPNPTransport/DTLSTransportStatistics``).
    public struct TransportCounts: Sendable, Hashable {
        public var associations = 0
        public var handshakesCompleted = 0
        public var handshakesFailed = 0
        public init(associations: Int = 0, handshakesCompleted: Int = 0, handshakesFailed: Int = 0) {
            self.associations = associations
            self.handshakesCompleted = handshakesCompleted
            self.handshakesFailed = handshakesFailed
        }
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
        ]
        factory.defaultValueHistogramBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        self.factory = factory
    }

    /// Sets the gauges from `gauges` and `transport`, then renders every metric in the Prometheus text format.
    public func render(_ gauges: EngineGauges?, transport: TransportCounts?) -> String {
        if let gauges { set(gauges) }
        registry.makeGauge(descriptor: Self.descriptor("cpnp_up", "1 while the engine's last read of the store succeeded")).set(
            gauges == nil ? 0 : 1 as Int)
        if let transport { set(transport) }
        return registry.emitToString()
    }

    private func set(_ gauges: EngineGauges) {
        registry.makeGauge(descriptor: Self.descriptor("cpnp_ready", "1 when commits reach the order store (/readyz)")).set(
            gauges.isReady ? 1 : 0 as Int)
        registry.makeGauge(descriptor: Self.descriptor("cpnp_inbox_depth", "Datagrams waiting for the engine")).set(gauges.inboxDepth)
        registry.makeGauge(descriptor: Self.descriptor("cpnp_armed_timers", "Protocol timers armed in this process")).set(gauges.armedTimers)
        registry.makeGauge(descriptor: Self.descriptor("cpnp_resident_orders", "Orders held in memory (something in flight)")).set(
            gauges.residentOrders)
        for state in ServerOrderStateMachine.State.allCases {
            registry.makeGauge(
                descriptor: Self.descriptor("cpnp_open_orders", "Open orders by RFC 8921 state, all instances"), labels: [("state", state.rawValue)]
            )
            .set(gauges.openOrdersByState[state.rawValue] ?? 0)
        }
        if let checkpoints = gauges.walCheckpoints { set(checkpoints) }
        for (link, directions) in gauges.capacityMbps {
            for direction in ["incoming", "outgoing"] {
                let labels = [("link", link), ("direction", direction)]
                registry.makeGauge(descriptor: Self.descriptor("cpnp_link_capacity_mbps", "Configured capacity of a link"), labels: labels).set(
                    to: directions[direction] ?? 0)
                registry.makeGauge(
                    descriptor: Self.descriptor("cpnp_link_reserved_mbps", "Capacity offered or agreed on a link, all instances"), labels: labels
                )
                .set(to: gauges.reservedMbps[link]?[direction] ?? 0)
            }
        }
    }

    /// The store's checkpoints, added as differences: the counters only grow.
    private func set(_ checkpoints: WALCheckpointCounts) {
        let before = Self.exchange(previousCheckpoints, checkpoints)
        let help = "Checkpoints of the SQLite store's log, by its checkpointer's thread or by the writer (docs/design/storage.md)"
        increment("cpnp_store_wal_checkpoints_total", help, ("by", "checkpointer"), from: before.background, to: checkpoints.background)
        increment("cpnp_store_wal_checkpoints_total", help, ("by", "writer"), from: before.onWriter, to: checkpoints.onWriter)
    }

    private func set(_ counts: TransportCounts) {
        let before = Self.exchange(previousTransport, counts)
        registry.makeGauge(descriptor: Self.descriptor("cpnp_dtls_associations", "DTLS associations open now")).set(counts.associations)
        increment(
            "cpnp_dtls_handshakes_total", "DTLS handshakes", ("result", "completed"), from: before.handshakesCompleted, to: counts.handshakesCompleted
        )
        increment("cpnp_dtls_handshakes_total", "DTLS handshakes", ("result", "failed"), from: before.handshakesFailed, to: counts.handshakesFailed)
    }

    /// Stores `now` as the last totals seen and returns the ones before.
    private static func exchange<Totals: Sendable>(_ previous: borrowing Mutex<Totals>, _ now: Totals) -> Totals {
        previous.withLock { previous in
            defer { previous = now }
            return previous
        }
    }

    /// Adds to a counter what a total grew by since the last scrape (never less than nothing).
    private func increment(_ name: String, _ help: String, _ label: (String, String), from before: Int, to now: Int) {
        registry.makeCounter(descriptor: Self.descriptor(name, help), labels: [label]).increment(by: Int64(max(0, now - before)))
    }
}

extension MetricsExporter {
    fileprivate static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

extension Prometheus.Gauge {
    fileprivate func set(_ value: Int) { set(to: Double(value)) }
}
