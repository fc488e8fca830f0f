// One end-to-end test body against any provider: cpnpd in the test's own process on a network in
// memory or on loopback DTLS (InProcessProvider), or a real cpnpd process (Daemon). Each has cpnpd's
// development PKI and SQLite store, and each is read and driven with `cpnpd admin`.
public import CPNPClient
public import CPNPCore
public import CPNPTransport
public import Foundation

/// Where the provider under test runs.
public enum ProviderMode: String, CaseIterable, Sendable, CustomStringConvertible {
    /// cpnpd's engine and services in the test process, the customers on an ``InMemoryLink``: no
    /// sockets, no DTLS.
    case inMemory
    /// cpnpd's engine and services in the test process, over DTLS on loopback.
    case inProcess
    /// A `cpnpd` child process.
    case live

    public var description: String { rawValue }
}

/// What a test body needs of a provider, whichever way it runs.
public protocol ProviderUnderTest: Sendable {
    var pkiDirectory: URL { get }
    /// Where customers send.
    var server: CPNPPeer { get throws }
    /// `cpnpd admin ARGS` against the provider's database: standard output and error.
    func admin(_ arguments: [String]) async throws -> String
    /// A new customer `name` (a client certificate of the development PKI): the core's client
    /// machine, driven by the test.
    func testClient(_ name: String) async throws -> TestClient
    /// A new client engine for acme (``customerEngine(pki:store:)``), started.
    func customerEngine() async throws -> CPNPClientEngine
}

extension ProviderUnderTest {
    /// `cpnpd admin show ORDER`, parsed.
    public func show(_ providerOrderID: ProviderOrderID) async throws -> OrderView { OrderView(try await admin(["show", providerOrderID.rawValue])) }

    /// Polls `cpnpd admin show` until `done` holds; fails after `timeout`, on a view fetched from then
    /// on: a view whose fetch began earlier may predate the change it waits for (a slow fetch).
    @discardableResult
    public func waitForOrder(_ providerOrderID: ProviderOrderID, timeout: Duration = .seconds(20), until done: (OrderView) -> Bool) async throws
        -> OrderView
    {
        let deadline = ContinuousClock.now + timeout
        while true {
            let fetched = ContinuousClock.now
            let view = try await show(providerOrderID)
            if done(view) { return view }
            if fetched >= deadline {
                throw DaemonError(
                    description:
                        "order \(providerOrderID) never reached the expected state (last view fetched in \(ContinuousClock.now - fetched)):\n\(view.text)"
                )
            }
            if ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        }
    }
}

extension Daemon: ProviderUnderTest {
    public var server: CPNPPeer { get throws { try CPNPPeer.server(host: "127.0.0.1", port: port) } }

    public func testClient(_ name: String) async throws -> TestClient {
        try await TestClient(pki: pkiDirectory, name: name, serverPort: port)
    }

    public func customerEngine() async throws -> CPNPClientEngine { try await CPNPTesting.customerEngine(pki: pkiDirectory) }
}

extension InProcessProvider: ProviderUnderTest {
    public func admin(_ arguments: [String]) async throws -> String {
        try await Daemon.command(["admin"] + arguments + ["--database", database.path]).output
    }

    public var server: CPNPPeer {
        get throws { try link?.providerPeer ?? CPNPPeer.server(host: "127.0.0.1", port: port) }
    }

    public func testClient(_ name: String) async throws -> TestClient {
        guard let link else { return try await TestClient(pki: pkiDirectory, name: name, serverPort: port) }
        return TestClient(transport: link.customer(name), server: link.providerPeer)
    }

    public func customerEngine() async throws -> CPNPClientEngine {
        guard let link else { return try await CPNPTesting.customerEngine(pki: pkiDirectory) }
        return try await CPNPTesting.customerEngine(transport: link.customer("acme"))
    }
}

/// Starts a provider of `mode` (embedded demo policy) and an `acme` client, runs `body`, and always
/// stops both.
public func withProvider<T>(_ mode: ProviderMode, _ body: (any ProviderUnderTest, TestClient) async throws -> T) async throws -> T {
    switch mode {
    case .live:
        return try await withDaemon { daemon, client in try await body(daemon, client) }
    case .inProcess, .inMemory:
        let provider = try await InProcessProvider.start(link: mode == .inMemory ? InMemoryLink() : nil)
        let client: TestClient
        do {
            client = try await provider.testClient("acme")
        } catch {
            await provider.stop()
            throw error
        }
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body(provider, client)) } catch { outcome = .failure(error) }
        await client.close()
        await provider.stop()
        return try outcome.get()
    }
}
