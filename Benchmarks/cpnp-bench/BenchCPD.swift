import CPNPCore
import CPNPRuntime
import Foundation

/// The Requested CPD of the benchmark's QUOTATIONs.
enum BenchCPD {
    /// A 3-site L3VPN on the demo network (Paris HQ, Lyon DC, Marseille branch): hose scope, fixed
    /// bandwidths (60/60, 40/40, 20/20 Mbit/s, far below the approval threshold), quantitative QoS,
    /// availability and MTU bounds. Everything the demo network achieves, so every decision is an OFFER
    /// that satisfies the request: the cost measured is the decision's, never a counter-offer loop.
    static let json = """
        {
          "components": [ { "profiles": [ {
            "customer-nodes": [
              { "identifier": "BENCH-PAR", "link-identifiers": ["PE-PAR-2:ge-0/0/1"],
                "localization": { "site-id": "PARIS-HQ", "country": "FR" } },
              { "identifier": "BENCH-LYS", "link-identifiers": [],
                "localization": { "site-id": "LYON-DC", "country": "FR" } },
              { "identifier": "BENCH-MRS", "link-identifiers": ["PE-MRS-1:xe-1/0/0"],
                "localization": { "site-id": "MARSEILLE-BR", "country": "FR" } }
            ],
            "scope": [
              { "customer-node": "BENCH-PAR", "direction": "outgoing", "reachability": "restricted", "model": "hose",
                "source-prefixes": ["10.71.0.0/16"], "destination-prefixes": ["10.72.0.0/16", "10.73.0.0/16"] },
              { "customer-node": "BENCH-PAR", "direction": "incoming", "reachability": "restricted", "model": "hose",
                "source-prefixes": ["10.72.0.0/16", "10.73.0.0/16"], "destination-prefixes": ["10.71.0.0/16"] },
              { "customer-node": "BENCH-LYS", "direction": "outgoing", "reachability": "restricted", "model": "hose",
                "source-prefixes": ["10.72.0.0/16"], "destination-prefixes": ["10.71.0.0/16"] },
              { "customer-node": "BENCH-LYS", "direction": "incoming", "reachability": "restricted", "model": "hose",
                "source-prefixes": ["10.71.0.0/16"], "destination-prefixes": ["10.72.0.0/16"] },
              { "customer-node": "BENCH-MRS", "direction": "outgoing", "reachability": "restricted", "model": "hose",
                "source-prefixes": ["10.73.0.0/16"], "destination-prefixes": ["10.71.0.0/16"] },
              { "customer-node": "BENCH-MRS", "direction": "incoming", "reachability": "restricted", "model": "hose",
                "source-prefixes": ["10.71.0.0/16"], "destination-prefixes": ["10.73.0.0/16"] }
            ],
            "qos-guarantees": { "kind": "quantitative", "entries": [
              { "from": "BENCH-PAR", "to": "BENCH-LYS", "statistic": "average",
                "one-way-delay-ms": { "max": 25 }, "delay-variation-ms": { "max": 6 }, "loss-percent": { "max": 0.2 } },
              { "from": "BENCH-LYS", "to": "BENCH-PAR", "statistic": "average",
                "one-way-delay-ms": { "max": 25 }, "delay-variation-ms": { "max": 6 }, "loss-percent": { "max": 0.2 } },
              { "from": "*", "to": "BENCH-MRS", "statistic": "average",
                "one-way-delay-ms": { "max": 40 }, "delay-variation-ms": "any", "loss-percent": { "max": 0.5 } }
            ] },
            "availability": { "availability-percent": { "min": 99.9 }, "statistic": "average", "measurement-period": "month" },
            "capacity": [
              { "customer-node": "BENCH-PAR", "incoming-bandwidth-mbps": 60, "outgoing-bandwidth-mbps": 60 },
              { "customer-node": "BENCH-LYS", "incoming-bandwidth-mbps": 40, "outgoing-bandwidth-mbps": 40 },
              { "customer-node": "BENCH-MRS", "incoming-bandwidth-mbps": 20, "outgoing-bandwidth-mbps": 20 }
            ],
            "traffic-isolation": { "isolated": true, "encryption-required": false },
            "conformance-traffic": { "enforcement": "policing", "out-of-profile-action": "discard", "mtu-bytes": { "min": 1500 } },
            "activation-means": [ { "mechanism": "static", "customer-node": "BENCH-PAR" },
                                  { "mechanism": "static", "customer-node": "BENCH-LYS" },
                                  { "mechanism": "static", "customer-node": "BENCH-MRS" } ],
            "invocation-means": { "type": "implicit" },
            "notifications": [ { "events": ["sla-violation"], "method": "syslog", "destination": "noc.bench.example",
                                 "interval-seconds": { "max": 300 } } ]
          } ] } ]
        }
        """

    /// `count` distinct documents: `cpd`'s copies whose first profile names the customer "bench variant
    /// N" (RFC 7297 §4's customer description, an extension the provider echoes). With more of them than
    /// a receiver remembers of recent documents (``RecentDocuments``), neither side recognises one it has
    /// not seen in the same order: what a provider with customers that never quote the same CPD does.
    static func variants(of cpd: CPD, count: Int) -> [CPD] {
        guard count > 1, !cpd.components.isEmpty, !cpd.components[0].profiles.isEmpty else { return [cpd] }
        return (0..<count).map { index in
            var variant = cpd
            var extensions = variant.components[0].profiles[0].extensions ?? CPDExtensions()
            var description = extensions.customerDescription ?? CPDPartyDescription()
            description.name = "bench variant \(index)"
            extensions.customerDescription = description
            variant.components[0].profiles[0].extensions = extensions
            return variant
        }
    }

    static func builtIn() throws -> CPD {
        try parse(Array(json.utf8), name: "the built-in CPD")
    }

    static func load(_ file: String) throws -> CPD {
        guard let data = FileManager.default.contents(atPath: file) else { throw BenchError("cannot read \(file)") }
        return try parse(Array(data), name: file)
    }

    private static func parse(_ bytes: [UInt8], name: String) throws -> CPD {
        let cpd: CPD
        do {
            cpd = try CPD(json: JSONParser.parse(bytes, limits: .stream), at: .root)
        } catch {
            throw BenchError("\(name): \(error.path): \(error.reason)")
        }
        if let firstError = cpd.validate(at: .root).first(where: { $0.severity == .error }) { throw BenchError("\(name): \(firstError)") }
        return cpd
    }

    /// The encoded size of a QUOTATION carrying `cpd`, as the engine sends it (for the ping-pong).
    static func quotationSize(_ cpd: CPD) -> Int {
        var rng = SystemRandomNumberGenerator()
        var machine = ClientOrderStateMachine(customerOrderID: CustomerOrderID("co-0123456789abcdef")!)
        let now = SystemWallClock().now()
        let session = CPNPSession(local: CPNPEndpoint(host: "127.0.0.1", port: 40_000), remote: CPNPEndpoint(host: "127.0.0.1", port: 8921))
        let actions =
            (try? machine.quote(requestedCPD: cpd, expectedResponseTime: now.adding(.seconds(30)), session: session, now: now, using: &rng)) ?? []
        for case .send(let message) in actions { return CPNPCodec.encode(message).count }
        return 2_000
    }
}
