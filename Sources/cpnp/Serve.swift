import ArgumentParser
import CPNPClient
import CPNPCore
import CPNPCustomerAPI
import CPNPStorage
import CPNPTransport
import Foundation
import Hummingbird

/// `cpnp serve`: the REST API of docs/api.md for a customer's own systems. Each quote is one CPNP
/// negotiation with every `--server`, decided by the strategy (RFC 8921 §7: best of N, several
/// rounds, or accept if it satisfies), so that a BSS negotiates with several providers in one call.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the REST API (docs/api.md): each quote is negotiated with the servers by the strategy.",
        discussion: """
            POST /api/quotes with {"cpd": …} starts a negotiation with every --server (best-of-n by \
            default with several, accept-if-satisfies with one); GET /api/quotes/ID follows it, with each \
            provider's answer in "candidates". Listens on loopback only: put a reverse proxy with \
            authentication in front to reach it from elsewhere.
            """)

    @OptionGroup var options: ClientOptions
    @OptionGroup var strategyOptions: StrategyOptions

    @Option(name: .long, help: "Where to listen, HOST:PORT on loopback (port 0: any free port).")
    var http: String = "127.0.0.1:8923"

    @Option(name: .long, help: "A provider: HOST[:PORT], [IPv6]:PORT, or a domain with _cpnp._udp SRV records. Repeat for several.")
    var server: [String] = []

    @Option(name: .long, help: "Time the servers have to answer (e.g. 30s, 5m).")
    var expectedResponseTime: String = "30s"

    @Option(name: .long, help: "Grant a provider's request for more time up to this far ahead.")
    var grantMoreTime: String = "24h"

    func run() async throws {
        guard let colon = http.lastIndex(of: ":"), let port = Int(http[http.index(after: colon)...]) else {
            throw ValidationError("--http must be HOST:PORT")
        }
        let host = String(http[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard host == "localhost" || host == "::1" || host.hasPrefix("127.") else {
            throw ValidationError("--http \(http): cpnp serve listens on loopback only (it has no authentication of its own)")
        }
        var peers: [CPNPPeer] = []
        for address in server.isEmpty ? ["127.0.0.1:\(CPNPTransportDefaults.port)"] : server {
            guard let first = try await CPNPServerLocator.peers(for: try CPNPServerTarget(parsing: address)).first else {
                throw ValidationError("--server \(address): no address")
            }
            peers.append(first)
        }
        let store = try options.store()
        var configuration = CPNPClientEngine.Configuration()
        configuration.expectedResponseTime = Duration(text: expectedResponseTime) ?? .seconds(30)
        configuration.moreTime = GrantMoreTime(upTo: Duration(text: grantMoreTime) ?? .seconds(86_400))
        let engine = try await options.engine(
            store: store, bindHost: peers.first?.address.protocol == .inet6 ? "::" : "0.0.0.0", configuration: configuration)
        let names = peers.map(\.displayName).joined(separator: ", ")
        let app = try CustomerAPIServer.application(
            engine: engine, store: store, servers: peers, strategy: strategyOptions.chosenStrategy(servers: peers.count),
            host: host, port: port, logger: options.logger(),
            onListening: { bound in
                FileHandle.standardOutput.write(Data("cpnp serve: listening on http://\(host):\(bound)/api, negotiating with \(names)\n".utf8))
            })
        try await app.runService()
        await engine.settle(timeout: .seconds(5))
        await engine.shutdown()
    }
}
