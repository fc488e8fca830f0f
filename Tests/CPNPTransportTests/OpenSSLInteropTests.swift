import CPNPPKI
import CPNPTransport
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The `openssl` binary, if installed.
let opensslPath: String? = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// A child `openssl` process with its stdout collected; always terminated by `stop()`.
final class OpenSSLProcess: Sendable {
    let process: Process
    let stdin: Pipe
    let output = NIOLockedValueBox(Data())

    init(_ arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: opensslPath!)
        process.arguments = arguments
        stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        let output = self.output
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.withLockedValue { $0.append(data) }
        }
        try process.run()
    }

    var text: String { output.withLockedValue { String(decoding: $0, as: UTF8.self) } }

    func send(_ line: String) {
        stdin.fileHandleForWriting.write(Data(line.utf8))
    }

    func waitForOutput(containing needle: String, within seconds: Double = 10) async throws {
        try await withDeadline(seconds) {
            while !self.text.contains(needle) { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    /// Kills the child without blocking a concurrency thread (no `waitUntilExit`).
    func stop() {
        let pid = process.processIdentifier
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        for _ in 0..<200 {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || reaped < 0 { break }  // reaped here, or already by Foundation
            usleep(5_000)
        }
        stdin.fileHandleForWriting.closeFile()
    }
}

/// Writes a dev PKI (plus a client certificate) to a temporary directory.
func devPKIDirectory() throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-pki-\(UUID().uuidString)").path
    try DevPKI.initialize(directory: directory)
    try DevPKI.issueClient(name: "interop-client", directory: directory)
    return directory
}

@Suite("Interop with the openssl tools on 127.0.0.1", .enabled(if: opensslPath != nil), .timeLimit(.minutes(1)))
struct OpenSSLInteropTests {
    @Test func opensslClientTalksToOurServer() async throws {
        let dir = try devPKIDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let security = try CPNPSecurityConfiguration(
            certificateFile: "\(dir)/server.pem", keyFile: "\(dir)/server-key.pem", trustRootsFile: "\(dir)/ca.pem")
        let server = try await DTLSTransport.server(host: "127.0.0.1", port: 0, configuration: DTLSTransportConfiguration(security: security))
        defer { Task { await server.close() } }
        let port = try #require(server.localAddress?.port)
        let client = try OpenSSLProcess([
            "s_client", "-dtls1_2", "-connect", "127.0.0.1:\(port)", "-servername", "localhost",
            "-cert", "\(dir)/client-interop-client.pem", "-key", "\(dir)/client-interop-client-key.pem",
            "-CAfile", "\(dir)/ca.pem", "-verify_return_error", "-verify_hostname", "localhost",
        ])
        defer { client.stop() }
        // Wait for the handshake, then feed one line to s_client's stdin (sent as application data).
        try await withDeadline { while server.statistics.handshakesCompleted < 1 { try await Task.sleep(for: .milliseconds(20)) } }
        client.send("hello from s_client\n")
        let received = try await next(server.inbound)
        #expect(received.bytes == Array("hello from s_client\n".utf8))
        #expect(received.identity?.commonName == "interop-client")
        try await withDeadline { try await server.send(Array("reply from cpnp\n".utf8), to: received.peer) }
        try await client.waitForOutput(containing: "reply from cpnp")
        #expect(client.text.contains("Verify return code: 0"))
        #expect(client.text.contains("DTLSv1.2"))
    }

    @Test func ourClientTalksToOpenSSLServer() async throws {
        let dir = try devPKIDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // An ephemeral port: bind, note it, release it for s_server.
        let probe = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0)
        let port = try #require(probe.localAddress?.port)
        await probe.close()
        let server = try OpenSSLProcess([
            "s_server", "-dtls1_2", "-accept", "127.0.0.1:\(port)", "-cert", "\(dir)/server.pem", "-key", "\(dir)/server-key.pem",
            "-CAfile", "\(dir)/ca.pem", "-Verify", "1", "-verify_return_error",
        ])
        defer { server.stop() }
        try await server.waitForOutput(containing: "ACCEPT")
        let security = try CPNPSecurityConfiguration(
            certificateFile: "\(dir)/client-interop-client.pem", keyFile: "\(dir)/client-interop-client-key.pem", trustRootsFile: "\(dir)/ca.pem")
        let client = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: security))
        defer { Task { await client.close() } }
        let peer = CPNPPeer(address: try SocketAddress(ipAddress: "127.0.0.1", port: port), serverName: "localhost")
        try await withDeadline { try await client.send(Array("hello from swift\n".utf8), to: peer) }
        try await server.waitForOutput(containing: "hello from swift")
        #expect(server.text.contains("CN = interop-client") || server.text.contains("CN=interop-client"))
        server.send("reply from s_server\n")
        let answer = try await next(client.inbound)
        #expect(answer.bytes == Array("reply from s_server\n".utf8))
        #expect(answer.identity?.commonName == "localhost")
    }
}
