// One end-to-end test body against either provider: cpnpd in the test's own process
// (InProcessProvider), or a real cpnpd process (Daemon). Both listen on loopback DTLS with cpnpd's
// development PKI and SQLite store, and both are read and driven with `cpnpd admin`.
public import CPNPCore
public import Foundation

/// Where the provider under test runs.
public enum ProviderMode: String, CaseIterable, Sendable, CustomStringConvertible {
    /// The engine and cpnpd's services in the test process.
    case inProcess
    /// A `cpnpd` child process.
    case live

    public var description: String { rawValue }
}

/// What a test body needs of a provider, whichever way it runs.
public protocol ProviderUnderTest: Sendable {
    var port: Int { get }
    var pkiDirectory: URL { get }
    /// `cpnpd admin ARGS` against the provider's database: standard output and error.
    func admin(_ arguments: [String]) throws -> String
}

extension ProviderUnderTest {
    /// `cpnpd admin show ORDER`, parsed.
    public func show(_ providerOrderID: ProviderOrderID) throws -> OrderView { OrderView(try admin(["show", providerOrderID.rawValue])) }

    /// Polls `cpnpd admin show` until `done` holds; fails after `timeout`.
    @discardableResult
    public func waitForOrder(_ providerOrderID: ProviderOrderID, timeout: Duration = .seconds(20), until done: (OrderView) -> Bool) async throws
        -> OrderView
    {
        let deadline = ContinuousClock.now + timeout
        while true {
            let view = try show(providerOrderID)
            if done(view) { return view }
            guard ContinuousClock.now < deadline else {
                throw DaemonError(description: "order \(providerOrderID) never reached the expected state:\n\(view.text)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

extension Daemon: ProviderUnderTest {}

extension InProcessProvider: ProviderUnderTest {
    public func admin(_ arguments: [String]) throws -> String {
        try Daemon.command(["admin"] + arguments + ["--database", database.path]).output
    }
}

/// Starts a provider of `mode` (embedded demo policy) and an `acme` client, runs `body`, and always
/// stops both.
public func withProvider<T>(_ mode: ProviderMode, _ body: (any ProviderUnderTest, TestClient) async throws -> T) async throws -> T {
    switch mode {
    case .live:
        return try await withDaemon { daemon, client in try await body(daemon, client) }
    case .inProcess:
        let provider = try await InProcessProvider.start()
        let client: TestClient
        do {
            client = try await TestClient(pki: provider.pkiDirectory, name: "acme", serverPort: provider.port)
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
