// A provider in the test's own process: cpnpd's composition (Sources/CPNPDaemon/ProviderDaemon.swift)
// over DTLS on loopback, with the development PKI and the SQLite store cpnpd would make, in a
// temporary directory.
public import CPNPDaemon
public import CPNPPolicy
public import CPNPServer
public import CPNPTransport
public import Foundation
import NIOCore

/// cpnpd run in process, without its HTTP server: the same ``ProviderDaemon`` as `cpnpd run`, over
/// DTLS on loopback or on an ``InMemoryLink``.
/// `cpnpd admin … --database` reads and drives it as it does a daemon.
public final class InProcessProvider: Sendable {
    /// The temporary directory holding `.cpnp/pki`, `.cpnp/cpnpd.sqlite` and `.cpnp/portal`, as
    /// cpnpd's defaults do.
    public let directory: URL
    public let daemon: ProviderDaemon
    private let running: Task<Void, Never>

    public var engine: CPNPServerEngine { daemon.engine }
    public var transport: any CPNPTransport { daemon.transport }
    public var pkiDirectory: URL { directory.appendingPathComponent(".cpnp/pki") }
    public var database: URL { directory.appendingPathComponent(".cpnp/cpnpd.sqlite") }
    /// The port on 127.0.0.1: DTLS, or the provider's end of ``link``.
    public var port: Int { transport.localAddress?.port ?? 0 }
    /// The network in memory the provider listens on, when it was started on one.
    public let link: InMemoryLink?

    /// Starts a provider with `configuration` (default: the embedded demo policy, as `cpnpd` without
    /// `--config`); its PKI, database, portal store and listen address are set here. The development
    /// PKI has the clients `acme`, `globex` and `operator`, as cpnpd's first start makes it. With
    /// `link`, the provider listens on its provider end instead of DTLS.
    public static func start(configuration: ServerConfiguration = .demo, link: InMemoryLink? = nil) async throws -> InProcessProvider {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnpd-in-process-\(UUID().uuidString)")
        var configuration = configuration
        configuration.pki.directory = directory.appendingPathComponent(".cpnp/pki").path
        configuration.database.path = directory.appendingPathComponent(".cpnp/cpnpd.sqlite").path
        configuration.database.url = nil
        configuration.http.portalStore = directory.appendingPathComponent(".cpnp/portal").path
        configuration.http.enabled = false
        configuration.listen.host = "127.0.0.1"
        configuration.listen.port = 0
        configuration.listen.transport = .dtls
        var options = ProviderDaemon.Options()
        options.transport = link?.provider
        let daemon = try await ProviderDaemon.start(configuration: configuration, options: options, logger: quietLogger("cpnpd-in-process"))
        return InProcessProvider(directory: directory, daemon: daemon, link: link)
    }

    private init(directory: URL, daemon: ProviderDaemon, link: InMemoryLink?) {
        self.directory = directory
        self.daemon = daemon
        self.link = link
        running = Task { try? await daemon.run() }
    }

    /// Stops the services gracefully (as SIGTERM stops cpnpd) and removes the directory.
    public func stop() async {
        await daemon.triggerGracefulShutdown()
        await running.value
        try? FileManager.default.removeItem(at: directory)
    }
}
