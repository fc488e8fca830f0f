import CPNPClient
import CPNPCore
import Foundation
import Histogram

/// The figures of one run, as text or as one JSON object.
struct Report {
    struct Settings {
        var transport: String
        var customers: Int
        var identity: String
        var withdraw: Bool
        var stop: String
        var warmup: String
        var warmupNegotiations: Int
        var server: String
        var preload: Int
        var quotationBytes: Int
        /// Distinct Requested CPDs (`--distinct-cpds`).
        var distinctCPDs: Int
        var serverLogLevel: String?
        /// The cpnpd children's store (`sqlite`, `postgresql`) and how many share it; nil with --server.
        var database: String?
        var instances: Int?
        var retransmissionInterval: String
        var expectedResponseTime: String
        var renewSession: Bool
        /// The customers' order store (`--customer-store`).
        var customerStore: String
        /// Negotiations started per second on a schedule (`--rate`); nil: each customer back to back.
        var rate: Double?
    }

    var settings: Settings
    var run: LoadRun.Result
    var reference: PingPong.Result?
    var preload: Preloader.Report?
    var daemon: DaemonProcess.Readiness?
    /// The cpnpd children's mean commit latency (their group-commit log line).
    var commitLatencyMilliseconds: Double?
    var loadBefore: LoadAverage?
    var loadAfter: LoadAverage?
    var startedAt: Date
    var serverLogTail: String?

    // MARK: - Derived figures

    var negotiationsPerSecond: Double { Double(run.tally.completed) / max(run.seconds, 1e-9) }
    var messages: Int { run.messages.messagesSent + run.messages.messagesReceived }
    var messagesPerSecond: Double { Double(messages) / max(run.seconds, 1e-9) }
    var messagesPerNegotiation: Double { Double(messages) / Double(max(run.attempted, 1)) }
    var serverCPU: Double? {
        guard let after = run.serverAfter, let before = run.serverBefore else { return nil }
        return after.cpuSeconds - before.cpuSeconds
    }
    var databaseCPU: Double? {
        guard let after = run.databaseAfter, let before = run.databaseBefore else { return nil }
        return after.cpuSeconds - before.cpuSeconds
    }
    var clientCPU: Double? {
        guard let after = run.clientAfter, let before = run.clientBefore else { return nil }
        return after.cpuSeconds - before.cpuSeconds
    }

    /// Bytes the server read or wrote through file system calls during the run.
    func serverFileBytes(_ figure: KeyPath<ProcessSample, Int64?>) -> Int64? {
        guard let after = run.serverAfter?[keyPath: figure], let before = run.serverBefore?[keyPath: figure] else { return nil }
        return after - before
    }

    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]

    /// ms, from a histogram in µs.
    static func ms(_ microseconds: UInt64) -> Double { Double(microseconds) / 1_000 }

    func latencies(_ histogram: Histogram<UInt64>) -> [(String, Double)] {
        guard histogram.totalCount > 0 else { return [] }
        return Self.percentiles.map { ($0.0, Self.ms(histogram.valueAtPercentile($0.1))) }
            + [("max", Self.ms(histogram.max)), ("mean", histogram.mean / 1_000)]
    }

    // MARK: - Text

    func text() -> String {
        var out: [String] = []
        func line(_ text: String = "") { out.append(text) }
        func f(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        func mib(_ bytes: Int64?) -> String { bytes.map { f(Double($0) / 1_048_576) + " MiB" } ?? "n/a" }

        line(
            "cpnp-bench: \(settings.customers) customer\(settings.customers == 1 ? "" : "s") (\(settings.identity)) over \(settings.transport) → \(settings.server)"
        )
        if let database = settings.database, let instances = settings.instances {
            line("  store: \(database)\(instances > 1 ? ", \(instances) cpnpd instances on one port (SO_REUSEPORT)" : "")")
        }
        line(
            "  cycle: QUOTATION → OFFER → ACCEPT → ACK\(settings.withdraw ? " → WITHDRAW → ACK" : ""); \(settings.rate.map { "started at \(f($0)) per second, latency from the scheduled start; " } ?? "")\(settings.stop); warm-up \(settings.warmup) and \(settings.warmupNegotiations) per customer (took \(f(run.warmupSeconds)) s, excluded)"
        )
        line(
            "  customers' engines: retransmission \(settings.retransmissionInterval) doubling, expected response time \(settings.expectedResponseTime), session renewal \(settings.renewSession ? "on" : "off"), order store \(settings.customerStore)"
        )
        line(
            "  QUOTATION: \(settings.quotationBytes) bytes, \(settings.distinctCPDs) distinct CPD\(settings.distinctCPDs == 1 ? "" : "s"); \(onlineCPUs) CPUs; load average \(loadBefore?.description ?? "?") before, \(loadAfter?.description ?? "?") after"
        )
        if let preload {
            let kinds = Preloader.Kind.allCases.map { "\($0.rawValue) \(preload.byKind[$0] ?? 0)" }.joined(separator: ", ")
            line(
                "  preloaded: \(preload.orders) orders (\(kinds)) in \(f(preload.seconds)) s (\(Int(Double(preload.orders) / max(preload.seconds, 1e-9))) orders/s), database \(mib(preload.databaseBytes))"
            )
        }
        if let daemon {
            line(
                "  cpnpd ready in \(f(daemon.seconds, 2)) s, recovered \(daemon.recoveredOrders.map(String.init) ?? "?") open orders\(settings.serverLogLevel.map { ", log level \($0)" } ?? "")"
            )
        }
        line()
        line("completed negotiations   \(run.tally.completed) in \(f(run.seconds, 2)) s")
        line(
            "negotiations/s           \(f(negotiationsPerSecond))\(ratio(negotiationsPerSecond, reference?.roundTripsPerSecond, "ping-pong round trips/s"))"
        )
        line(
            "messages/s (both ways)   \(f(messagesPerSecond))\(ratio(messagesPerSecond, reference?.messagesPerSecond, "ping-pong datagrams/s"))  [\(run.messages.messagesSent) sent, \(run.messages.messagesReceived) received, \(f(messagesPerNegotiation, 2)) per negotiation]"
        )
        let rtt = reference.map { Self.ms($0.histogram.valueAtPercentile(50)) }
        for (name, latency) in latencies(run.tally.latency) {
            line(
                "latency \(name.padding(toLength: 6, withPad: " ", startingAt: 0))           \(f(latency, 3)) ms\(ratio(latency, rtt, "ping-pong p50 RTT"))"
            )
        }
        if settings.withdraw {
            let withdrawLatencies = latencies(run.tally.withdrawLatency).map { "\($0.0) \(f($0.1, 3))" }.joined(separator: ", ")
            line("withdraw latency (ms)    \(withdrawLatencies.isEmpty ? "n/a" : withdrawLatencies)")
        }
        line("retransmissions          \(run.messages.retransmissions)")
        let warmFailures = run.warmupTally.failures.values.reduce(0, +)
        if warmFailures > 0 {
            let kinds = run.warmupTally.failures.sorted { $0.value > $1.value }.map { "\($0.value) × \($0.key)" }.joined(separator: ", ")
            line("warm-up                  \(run.warmupTally.completed) completed, \(warmFailures) failed (\(kinds)); excluded")
        }
        if run.tally.failures.isEmpty {
            line("failures                 0")
        } else {
            line("failures                 \(run.tally.failures.values.reduce(0, +)):")
            for (failure, count) in run.tally.failures.sorted(by: { $0.value > $1.value }) { line("  \(count) × \(failure)") }
        }
        if let cpu = serverCPU, let after = run.serverAfter {
            let perNegotiation = run.tally.completed > 0 ? " = \(f(cpu * 1_000 / Double(run.tally.completed), 3)) ms per negotiation" : ""
            line(
                "server CPU               \(f(cpu, 2)) s (\(f(100 * cpu / max(run.seconds, 1e-9)))% of one core)\(perNegotiation); user \(f(after.userSeconds - run.serverBefore!.userSeconds, 2)) s, system \(f(after.systemSeconds - run.serverBefore!.systemSeconds, 2)) s"
            )
            line(
                "server memory            peak RSS (VmHWM) \(mib(after.peakResidentBytes)), RSS at end \(mib(after.residentBytes)), \(after.threads.map(String.init) ?? "?") threads"
            )
            if let read = serverFileBytes(\.fileReadBytes), let written = serverFileBytes(\.fileWrittenBytes), run.tally.completed > 0 {
                let negotiations = Double(run.tally.completed)
                line(
                    "server file I/O          \(f(Double(written) / negotiations / 1_024)) KiB written, \(f(Double(read) / negotiations / 1_024)) KiB read per negotiation (store, WAL and checkpoints)"
                )
            }
        } else {
            line("server CPU / memory      n/a (give --server-pid)")
        }
        if let cpu = databaseCPU {
            let perNegotiation = run.tally.completed > 0 ? " = \(f(cpu * 1_000 / Double(run.tally.completed), 3)) ms per negotiation" : ""
            line(
                "PostgreSQL CPU           \(f(cpu, 2)) s (\(f(100 * cpu / max(run.seconds, 1e-9)))% of one core)\(perNegotiation), all its processes")
        }
        if let milliseconds = commitLatencyMilliseconds {
            line("commit latency           \(f(milliseconds, 3)) ms per group commit (mean, cpnpd's own measure)")
        }
        if let cpu = clientCPU {
            line(
                "customers' CPU           \(f(cpu, 2)) s (\(f(100 * cpu / max(run.seconds, 1e-9)))% of one core), this process; setup \(f(run.setupSeconds, 2)) s"
            )
        }
        if let reference {
            line()
            line(
                "reference: bare UDP ping-pong on 127.0.0.1, \(reference.messageSize)-byte datagrams, one socket pair, \(reference.roundTrips) round trips"
            )
            line(
                "  round trips/s \(f(reference.roundTripsPerSecond)); RTT p50 \(f(Self.ms(reference.histogram.valueAtPercentile(50)), 3)) ms, p99 \(f(Self.ms(reference.histogram.valueAtPercentile(99)), 3)) ms, p99.9 \(f(Self.ms(reference.histogram.valueAtPercentile(99.9)), 3)) ms, max \(f(Self.ms(reference.histogram.max), 3)) ms"
            )
        }
        if settings.transport == "plain-udp", run.tally.completed == 0, run.tally.failures.keys.contains(where: { $0.hasPrefix("FAIL 2 ") }) {
            line()
            line(
                "plain UDP is not measurable with this server: it refuses clients without a certificate identity (FAIL 2, Authentication Required; set listen.plain-udp-customer)."
            )
        }
        return out.joined(separator: "\n")
    }

    private func ratio(_ value: Double, _ reference: Double?, _ what: String) -> String {
        guard let reference, reference > 0 else { return "" }
        let factor = value / reference
        return "   (" + String(format: factor >= 100 ? "%.0f" : "%.3g", factor) + " × \(what))"
    }

    // MARK: - JSON

    func json() -> String {
        func n(_ value: Double) -> JSONValue {
            guard value.isFinite else { return .null }
            // Four decimals, or eight significant digits for small ratios.
            return .number(CPNPDecimal(parsing: String(format: abs(value) < 0.01 ? "%.10f" : "%.4f", value)) ?? 0)
        }
        func i(_ value: Int) -> JSONValue { .number(CPNPDecimal(Int64(value))) }
        func i64(_ value: Int64?) -> JSONValue { value.map { .number(CPNPDecimal($0)) } ?? .null }
        func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(pairs)) }
        func latencyObject(_ histogram: Histogram<UInt64>) -> JSONValue {
            object(latencies(histogram).map { ($0.0 + "-ms", n($0.1)) } + [("count", i(Int(histogram.totalCount)))])
        }
        func process(_ before: ProcessSample?, _ after: ProcessSample?) -> JSONValue {
            guard let before, let after else { return .null }
            return object([
                ("cpu-seconds", n(after.cpuSeconds - before.cpuSeconds)),
                ("user-seconds", n(after.userSeconds - before.userSeconds)),
                ("system-seconds", n(after.systemSeconds - before.systemSeconds)),
                ("cpu-percent-of-one-core", n(100 * (after.cpuSeconds - before.cpuSeconds) / max(run.seconds, 1e-9))),
                ("peak-rss-bytes", i64(after.peakResidentBytes)), ("rss-bytes", i64(after.residentBytes)),
                ("threads", after.threads.map(i) ?? .null),
                ("file-read-bytes", i64(after.fileReadBytes.flatMap { read in before.fileReadBytes.map { read - $0 } })),
                ("file-written-bytes", i64(after.fileWrittenBytes.flatMap { written in before.fileWrittenBytes.map { written - $0 } })),
            ])
        }
        var pairs: [(String, JSONValue)] = [
            (
                "settings",
                object([
                    ("transport", .string(settings.transport)), ("customers", i(settings.customers)), ("identity", .string(settings.identity)),
                    ("withdraw", .bool(settings.withdraw)), ("stop", .string(settings.stop)), ("warmup", .string(settings.warmup)),
                    ("warmup-negotiations", i(settings.warmupNegotiations)), ("server", .string(settings.server)),
                    ("preload", i(settings.preload)), ("quotation-bytes", i(settings.quotationBytes)),
                    ("distinct-cpds", i(settings.distinctCPDs)),
                    ("server-log-level", settings.serverLogLevel.map { .string($0) } ?? .null),
                    ("database", settings.database.map { .string($0) } ?? .null), ("instances", settings.instances.map(i) ?? .null),
                    ("retransmission-interval", .string(settings.retransmissionInterval)),
                    ("expected-response-time", .string(settings.expectedResponseTime)), ("renew-session", .bool(settings.renewSession)),
                    ("customer-store", .string(settings.customerStore)),
                    ("rate", settings.rate.map(n) ?? .null),
                    ("cpus", i(onlineCPUs)),
                    ("load-average-before", loadBefore.map { .string($0.description) } ?? .null),
                    ("load-average-after", loadAfter.map { .string($0.description) } ?? .null),
                    ("started-at", .string(ISO8601DateFormatter().string(from: startedAt))),
                ])
            ),
            ("completed", i(run.tally.completed)),
            ("failed", i(run.tally.failures.values.reduce(0, +))),
            ("failures", object(run.tally.failures.sorted { $0.key < $1.key }.map { ($0.key, i($0.value)) })),
            ("seconds", n(run.seconds)),
            ("warmup-seconds", n(run.warmupSeconds)),
            (
                "warmup",
                object([
                    ("completed", i(run.warmupTally.completed)), ("failed", i(run.warmupTally.failures.values.reduce(0, +))),
                    ("failures", object(run.warmupTally.failures.sorted { $0.key < $1.key }.map { ($0.key, i($0.value)) })),
                ])
            ),
            ("negotiations-per-second", n(negotiationsPerSecond)),
            (
                "messages",
                object([
                    ("sent", i(run.messages.messagesSent)), ("received", i(run.messages.messagesReceived)),
                    ("per-second", n(messagesPerSecond)), ("per-negotiation", n(messagesPerNegotiation)),
                ])
            ),
            ("retransmissions", i(run.messages.retransmissions)),
            ("latency", latencyObject(run.tally.latency)),
        ]
        if settings.withdraw { pairs.append(("withdraw-latency", latencyObject(run.tally.withdrawLatency))) }
        pairs.append(("server", process(run.serverBefore, run.serverAfter)))
        pairs.append(("customers-process", process(run.clientBefore, run.clientAfter)))
        if settings.database == "postgresql" { pairs.append(("database-process", process(run.databaseBefore, run.databaseAfter))) }
        pairs.append(("commit-latency-ms", commitLatencyMilliseconds.map(n) ?? .null))
        if let reference {
            let p50 = Self.ms(reference.histogram.valueAtPercentile(50))
            pairs.append(
                (
                    "ping-pong",
                    object([
                        ("round-trips", i(reference.roundTrips)), ("message-bytes", i(reference.messageSize)),
                        ("round-trips-per-second", n(reference.roundTripsPerSecond)), ("messages-per-second", n(reference.messagesPerSecond)),
                        ("rtt", latencyObject(reference.histogram)),
                    ])
                ))
            var ratios: [(String, JSONValue)] = [
                ("negotiations-per-second-to-round-trips-per-second", n(negotiationsPerSecond / reference.roundTripsPerSecond)),
                ("messages-per-second-to-datagrams-per-second", n(messagesPerSecond / reference.messagesPerSecond)),
            ]
            if p50 > 0 { ratios += latencies(run.tally.latency).map { ("latency-\($0.0)-to-rtt-p50", n($0.1 / p50)) } }
            pairs.append(("ratios-to-ping-pong", object(ratios)))
        }
        if let preload {
            pairs.append(
                (
                    "preload",
                    object([
                        ("orders", i(preload.orders)), ("seconds", n(preload.seconds)), ("database-bytes", i64(preload.databaseBytes)),
                        ("by-kind", object(Preloader.Kind.allCases.map { ($0.rawValue, i(preload.byKind[$0] ?? 0)) })),
                    ])
                ))
        }
        if let daemon {
            pairs.append(
                (
                    "cpnpd",
                    object([
                        ("ready-seconds", n(daemon.seconds)), ("recovered-orders", daemon.recoveredOrders.map(i) ?? .null),
                        ("database-bytes", i64(daemon.databaseBytes)),
                    ])
                ))
        }
        return JSONSerializer.serializeString(object(pairs))
    }
}
