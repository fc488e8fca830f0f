import CPNPCore
import CPNPTesting
import Foundation
import Testing

/// Runs the built `cpnp` executable as a real process.
///
/// `swift test` does not build executables that no test target depends on: build first
/// (`swift build && swift test`). Without the binary these tests are skipped with a message.
/// The binary is looked up in the products directory that holds the test bundle, so any
/// `--scratch-path` works; `CPNP_BINARY=/path/to/cpnp` overrides the lookup.
@Suite(.enabled(if: CPNPBinary.url != nil, "cpnp binary not found next to the test bundle: run `swift build` before `swift test`"))
struct CLITests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let vectors = repositoryRoot.appendingPathComponent("Tests/CPNPCoreTests/Vectors")

    static func vector(_ name: String) -> String { vectors.appendingPathComponent(name).path }

    @Test func inspectValidMessage() async throws {
        let r = try await CPNPBinary.run(["inspect", Self.vector("valid/01-quotation.json")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("QUOTATION (method 1)"))
        for expected in [
            "SEQUENCE_NUMBER", "1804289383", "TRANSACTION_ID", "CUSTOMER_ORDER_IDENTIFIER", "EXPECTED_RESPONSE_TIME",
            "REQUESTED_CPD", "3 customer nodes", "loose", "CE-PAR-1, CE-LYS-1, CE-MRS-1", "qos-guarantees",
            "NEGOTIATION_OPTIONS", "cost requested", "\nvalid\n",
        ] {
            #expect(r.stdout.contains(expected), "missing \(expected) in\n\(r.stdout)")
        }
        #expect(r.stderr.isEmpty)
    }

    @Test func inspectEveryValidVector() async throws {
        let dir = Self.vectors.appendingPathComponent("valid")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() where name.hasSuffix(".json") {
            let r = try await CPNPBinary.run(["inspect", dir.appendingPathComponent(name).path])
            #expect(r.status == 0, "\(name): \(r.stderr)")
            let method = try CPNPCodec.decode(Data(contentsOf: dir.appendingPathComponent(name))).method
            #expect(r.stdout.hasPrefix("\(method.name) (method \(method.rawValue))"), "\(name)")
        }
    }

    @Test func inspectInvalidMessageNamesTheField() async throws {
        let r = try await CPNPBinary.run(["inspect", "-"], stdin: try Self.invalidInput("49-cpd-deep-wrong-type"))
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: cpd.components[0].profiles[0].qos-guarantees.entries[0].one-way-delay-ms: "), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    /// Every invalid vector is refused with `error: <its path>: …` (the document-size vector
    /// is only too large for a datagram: files and stdin get the 1 MiB stream limit).
    @Test func inspectEveryInvalidVector() async throws {
        let dir = Self.vectors.appendingPathComponent("invalid")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() where name.hasSuffix(".json") {
            let stem = String(name.dropLast(5))
            let o = try JSONParser.parse(Data(contentsOf: dir.appendingPathComponent(name)), limits: .stream).object(at: .root)
            guard case .object(let error)? = o["error"], case .string(let code)? = error["code"], case .string(let path)? = error["path"]
            else { Issue.record("\(name): no error"); continue }
            let r = try await CPNPBinary.run(["inspect", "-"], stdin: try Self.invalidInput(stem))
            if code == "document-too-large" {
                #expect(r.status == 0, "\(name): \(r.stderr)")
                #expect(r.stdout.contains("over the 16384-byte datagram limit"))
            } else {
                #expect(r.status == 1, "\(name)")
                #expect(r.stderr.hasPrefix("error: \(path): ") && r.stderr.contains("(\(code))"), "\(name): \(r.stderr)")
            }
        }
    }

    @Test func inspectFromStandardInputWithJSON() async throws {
        let input = try Data(contentsOf: URL(fileURLWithPath: Self.vector("valid/10-fail.json")))
        let r = try await CPNPBinary.run(["inspect", "-", "--json"], stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("FAIL (method 10)"))
        #expect(r.stdout.contains("STATUS_CODE"))
        #expect(r.stdout.contains("5 (Out of Resources)"))
        #expect(r.stdout.contains("DIAGNOSTIC"))
        // The pretty JSON is the canonical message.
        let start = try #require(r.stdout.range(of: "\n{\n"))
        let end = try #require(r.stdout.range(of: "\n}\n", options: .backwards))
        let json = String(r.stdout[r.stdout.index(after: start.lowerBound)..<r.stdout.index(before: end.upperBound)])
        #expect(try CPNPCodec.decode(Array(json.utf8)) == CPNPCodec.decode(input))
        #expect(json.contains("\n  \"status-code\": 5,\n"))
    }

    @Test func inspectReportsSemanticErrors() async throws {
        // An ACCEPT must carry a concrete CPD: accepting the (loose) requested CPD is invalid.
        let quotation = try CPNPCodec.decode(Data(contentsOf: URL(fileURLWithPath: Self.vector("valid/01-quotation.json"))))
        guard case .quotation(let q) = quotation else { Issue.record("not a quotation"); return }
        let accept = CPNPMessage.accept(
            AcceptMessage(
                sequenceNumber: 2, transactionID: q.transactionID, customerOrderID: q.customerOrderID,
                providerOrderID: ProviderOrderID("pa-1")!, nonce: Nonce(String(repeating: "a", count: 32))!, acceptedCPD: q.requestedCPD))
        let r = try await CPNPBinary.run(["inspect", "-"], stdin: Data(CPNPCodec.encode(accept)))
        #expect(r.status == 1)
        #expect(r.stdout.hasPrefix("ACCEPT (method 4)"))
        #expect(
            r.stderr.contains("error: cpd.components[0].profiles[0].qos-guarantees.entries[0].one-way-delay-ms: an accepted CPD must be concrete"),
            "\(r.stderr)")
    }

    @Test func inputOverTheStreamLimitIsRefused() async throws {
        let r = try await CPNPBinary.run(["inspect", "-"], stdin: Data(repeating: 0x20, count: 1_048_577))
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: $: ") && r.stderr.contains("document-too-large"), "\(r.stderr)")
    }

    @Test func missingFile() async throws {
        let r = try await CPNPBinary.run(["inspect", "/nonexistent/message.json"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: /nonexistent/message.json: "))
    }

    @Test func validateExampleCPD() async throws {
        let r = try await CPNPBinary.run(["validate", Self.repositoryRoot.appendingPathComponent("Examples/l3vpn-3-sites.json").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("1 component, 1 profile, 3 customer nodes; loose"))
        #expect(r.stdout.hasSuffix("valid\n"))
    }

    @Test func validateNamesTheFieldOfAnInvalidCPD() async throws {
        let example = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("Examples/l3vpn-3-sites.json"), encoding: .utf8)
        let broken = example.replacingOccurrences(of: #""from": "CE-PAR-1", "to": "CE-LYS-1""#, with: #""from": "CE-PAR-1", "to": "CE-NICE-1""#)
        #expect(broken != example)
        let r = try await CPNPBinary.run(["validate", "-"], stdin: Data(broken.utf8))
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: components[0].profiles[0].qos-guarantees.entries[0].to: "), "\(r.stderr)")

        let undecodable = try await CPNPBinary.run(["validate", "-"], stdin: Data(#"{"components":[{"profiles":{}}]}"#.utf8))
        #expect(undecodable.status == 1)
        #expect(undecodable.stderr.hasPrefix("error: components[0].profiles: "), "\(undecodable.stderr)")
    }

    @Test func version() async throws {
        let r = try await CPNPBinary.run(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("cpnp "))
        #expect(r.stdout.contains("RFC 8921"))
    }

    /// The input of an invalid vector.
    static func invalidInput(_ stem: String) throws -> Data {
        let o = try JSONParser.parse(Data(contentsOf: vectors.appendingPathComponent("invalid/\(stem).json")), limits: .stream).object(at: .root)
        if case .string(let s)? = o["input"] { return Data(s.utf8) }
        guard case .string(let hex)? = o["input-hex"] else { throw CPNPDecodingError(.missingField, at: .root, "no input") }
        let digits = Array(hex.utf8)
        return Data(stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! })
    }
}

/// Finds and runs the `cpnp` executable.
enum CPNPBinary {
    /// `$CPNP_BINARY`, else `cpnp` in the products directory.
    static let url = BuiltExecutable.locate("cpnp", overriddenBy: "CPNP_BINARY")

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `cpnp` with `arguments`, feeding `stdin`; output goes through temporary files so
    /// that large outputs cannot block on a full pipe.
    /// On a thread of its own (``onOwnThread(_:)``), not one of the concurrency pool's.
    static func run(_ arguments: [String], stdin: Data = Data()) async throws -> Result {
        let url = try #require(url)
        return try await onOwnThread { try runBlocking(url, arguments, stdin: stdin) }
    }

    private static func runBlocking(_ url: URL, _ arguments: [String], stdin: Data) throws -> Result {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("cpnp-cli-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        let inURL = dir.appendingPathComponent("stdin")
        let outURL = dir.appendingPathComponent("stdout")
        let errURL = dir.appendingPathComponent("stderr")
        try stdin.write(to: inURL)
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        let input = try FileHandle(forReadingFrom: inURL)
        let output = try FileHandle(forWritingTo: outURL)
        let error = try FileHandle(forWritingTo: errURL)
        defer {
            try? input.close()
            try? output.close()
            try? error.close()
        }
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: try String(contentsOf: outURL, encoding: .utf8),
            stderr: try String(contentsOf: errURL, encoding: .utf8))
    }
}
