// cpnp-transport-bench: DTLS handshakes/s and request/response round trips/s over loopback,
// for CPNP's DTLS transport and, driven the same way, for `openssl s_server -dtls1_2`.
//
// Usage: cpnp-transport-bench [--handshakes N] [--concurrency C] [--round-trips N] [--no-openssl]

import CPNPPKI
import CPNPTransport
import Foundation
import Logging
import NIOCore
#if canImport(Glibc)
    import Glibc
#endif

struct Options {
    var handshakes = 200
    var concurrency = 1
    var roundTrips = 2_000
    var openssl = true

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--handshakes": handshakes = Int(iterator.next() ?? "") ?? handshakes
            case "--concurrency": concurrency = max(1, Int(iterator.next() ?? "") ?? concurrency)
            case "--round-trips": roundTrips = Int(iterator.next() ?? "") ?? roundTrips
            case "--no-openssl": openssl = false
            default:
                print("usage: cpnp-transport-bench [--handshakes N] [--concurrency C] [--round-trips N] [--no-openssl]")
                exit(2)
            }
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

let options = Options(CommandLine.arguments)
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = ProcessInfo.processInfo.environment["CPNP_BENCH_TRACE"] != nil ? .error : .critical
    return handler
}

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-bench-\(getpid())").path
try DevPKI.initialize(directory: directory, overwrite: true)
try DevPKI.issueClient(name: "bench-client", directory: directory)
defer { try? FileManager.default.removeItem(atPath: directory) }
let serverSecurity = try CPNPSecurityConfiguration(
    certificateFile: "\(directory)/server.pem", keyFile: "\(directory)/server-key.pem", trustRootsFile: "\(directory)/ca.pem")
let clientSecurity = try CPNPSecurityConfiguration(
    certificateFile: "\(directory)/client-bench-client.pem", keyFile: "\(directory)/client-bench-client-key.pem",
    trustRootsFile: "\(directory)/ca.pem")

func clientConfiguration() -> DTLSTransportConfiguration {
    var configuration = DTLSTransportConfiguration(security: clientSecurity)
    configuration.handshakeTimeout = .seconds(30)
    return configuration
}

/// One complete handshake: a fresh client socket, one message, wait for `ready`, close.
func handshakeOnce(to peer: CPNPPeer, awaitReply: Bool) async throws {
    let client = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: clientConfiguration())
    defer { Task { await client.close() } }
    try await client.send(Array("hello".utf8), to: peer)
    if awaitReply {
        var iterator = client.inbound.makeAsyncIterator()
        guard await iterator.next() != nil else { throw BenchError(description: "no reply") }
    }
    await client.close()
}

func handshakes(count: Int, concurrency: Int, to peer: CPNPPeer, awaitReply: Bool) async throws -> Double {
    let started = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        var next = 0
        for _ in 0..<min(concurrency, count) {
            group.addTask { try await handshakeOnce(to: peer, awaitReply: awaitReply) }
            next += 1
        }
        while try await group.next() != nil {
            if next < count {
                group.addTask { try await handshakeOnce(to: peer, awaitReply: awaitReply) }
                next += 1
            }
        }
    }
    return Double(count) / seconds(ContinuousClock.now - started)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

// MARK: our stack

func benchOurs() async throws -> (handshakes: Double, roundTrips: Double) {
    let server = try await DTLSTransport.server(host: "127.0.0.1", port: 0, configuration: DTLSTransportConfiguration(security: serverSecurity))
    let echo = Task {
        for await message in server.inbound { try? await server.send(message.bytes, to: message.peer) }
    }
    defer { echo.cancel() }
    let peer = CPNPPeer(address: server.localAddress!, serverName: "localhost")
    let tracer = Task {
        while trace && !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            print("  server: \(server.statistics)")
        }
    }
    defer { tracer.cancel() }
    let handshakeRate = try await handshakes(count: options.handshakes, concurrency: options.concurrency, to: peer, awaitReply: true)

    let client = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: clientConfiguration())
    var iterator = client.inbound.makeAsyncIterator()
    let request = Array(#"{"version":1,"method":1,"sequence-number":1}"#.utf8)
    try await client.send(request, to: peer)
    _ = await iterator.next()
    let started = ContinuousClock.now
    for _ in 0..<options.roundTrips {
        try await client.send(request, to: peer)
        guard await iterator.next() != nil else { throw BenchError(description: "echo stopped") }
    }
    let roundTripRate = Double(options.roundTrips) / seconds(ContinuousClock.now - started)
    await client.close()
    await server.close()
    return (handshakeRate, roundTripRate)
}

// MARK: openssl s_server

/// `openssl s_server -dtls1_2`, one client at a time. It cannot echo over DTLS (`-rev` is
/// refused), so replies are relayed: what it prints is written back to its stdin.
final class OpenSSLServer: @unchecked Sendable {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    let lock = NSLock()
    var buffer = Data()
    var lines = 0
    let port: Int

    init(port: Int) throws {
        self.port = port
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "s_server", "-dtls1_2", "-accept", "127.0.0.1:\(port)", "-cert", "\(directory)/server.pem",
            "-key", "\(directory)/server-key.pem", "-CAfile", "\(directory)/ca.pem", "-Verify", "1", "-verify_return_error",
        ]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            guard let self else { return }
            let data = handle.availableData
            self.lock.lock()
            self.buffer.append(data)
            while let newline = self.buffer.firstIndex(of: 0x0A) {
                let line = self.buffer[self.buffer.startIndex...newline]
                self.buffer.removeSubrange(self.buffer.startIndex...newline)
                self.lines += 1
                if line.starts(with: Data("REQ".utf8)) { self.input.fileHandleForWriting.write(Data("RSP\n".utf8)) }
            }
            self.lock.unlock()
        }
        try process.run()
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(process.processIdentifier, &status, 0)
    }
}

func freeUDPPort() async throws -> Int {
    let probe = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: Logger(label: "probe"))
    let port = probe.localAddress!.port!
    await probe.close()
    return port
}

let trace = ProcessInfo.processInfo.environment["CPNP_BENCH_TRACE"] != nil

func benchOpenSSL() async throws -> (handshakes: Double, roundTrips: Double) {
    let port = try await freeUDPPort()
    let server = try OpenSSLServer(port: port)
    defer { server.stop() }
    try await Task.sleep(for: .milliseconds(300))
    let peer = CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: port), serverName: "localhost")
    // s_server is single-threaded and serves one client at a time: concurrency 1.
    if trace { print("  openssl: handshakes") }
    let handshakeRate = try await handshakes(count: options.handshakes, concurrency: 1, to: peer, awaitReply: false)

    let client = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: clientConfiguration())
    var iterator = client.inbound.makeAsyncIterator()
    if trace { print("  openssl: round trips") }
    let request = Array("REQ {\"version\":1,\"method\":1,\"sequence-number\":1}\n".utf8)
    try await client.send(request, to: peer)
    _ = await iterator.next()
    let started = ContinuousClock.now
    for _ in 0..<options.roundTrips {
        try await client.send(request, to: peer)
        guard await iterator.next() != nil else { throw BenchError(description: "s_server stopped answering") }
    }
    let roundTripRate = Double(options.roundTrips) / seconds(ContinuousClock.now - started)
    await client.close()
    return (handshakeRate, roundTripRate)
}

// MARK: report

print("cpnp-transport-bench: DTLS 1.2 over 127.0.0.1, mutual auth with P-256 certs (dev PKI)")
print(
    "handshakes: \(options.handshakes) (new client socket each, concurrency \(options.concurrency) for ours, 1 for s_server); round trips: \(options.roundTrips) sequential on one association"
)
let ours = try await benchOurs()
func format(_ value: Double) -> String { String(format: "%10.1f", value) }
print("")
print("stack                              handshakes/s   round-trips/s")
print("CPNP DTLSTransport (server)        \(format(ours.handshakes))      \(format(ours.roundTrips))")
if options.openssl && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") {
    let theirs = try await benchOpenSSL()
    print(
        "openssl s_server -dtls1_2          \(format(theirs.handshakes))      \(format(theirs.roundTrips))   (replies relayed through its stdin/stdout)"
    )
}
print("(clients are CPNP DTLSTransport in both rows; build with -c release for meaningful numbers)")
