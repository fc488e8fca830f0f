import ArgumentParser
import CPNPClient
import CPNPCore
import CPNPRuntime
import CPNPStorage
import CPNPTransport
import Foundation
import Logging

/// `cpnp` exit statuses (documented in docs/client.md and `cpnp --help`).
enum ClientExit: Int32 {
    /// The requested outcome was reached.
    case success = 0
    /// A local problem: bad argument or file, unknown order, command not allowed in the order's state.
    case localError = 1
    /// The server refused (FAIL).
    case refused = 2
    /// No acceptable offer: declined by the client's strategy or by the user.
    case noAgreement = 3
    /// No answer in time: the request was cancelled or is still unanswered.
    case noAnswer = 4
    /// The secure transport failed (handshake, certificate).
    case transport = 5

    var code: ExitCode { ExitCode(rawValue) }

    static func of(_ error: any Error) -> ClientExit {
        switch error as? CPNPClientError {
        case .failed?: .refused
        case .negotiationEnded(let end)?:
            switch end {
            case .failed: .refused
            case .declinedByClient, .cancelledByClient: .noAgreement
            case .offerExpired, .expectedOfferTimeElapsed, .expectedResponseTimeElapsed, .noResponse, .offerTimeRefused: .noAnswer
            }
        case .noResponse?, .timedOut?, .withdrawalUnconfirmed?: .noAnswer
        case .transport?: .transport
        default: .localError
        }
    }
}

/// The client certificate, its key and the trusted CA: from a PKI directory, or given one by one.
struct CredentialOptions: ParsableArguments {
    @Option(name: .long, help: "Directory of the dev PKI made by `cpnpd` (ca.pem, client-NAME.pem, client-NAME-key.pem).")
    var pki: String = ".cpnp/pki"

    @Option(name: .long, help: "The client identity in the PKI directory.")
    var identity: String = "acme"

    @Option(name: .long, help: "Client certificate chain (PEM); overrides --pki/--identity.")
    var cert: String?

    @Option(name: .long, help: "Client private key (PEM); overrides --pki/--identity.")
    var key: String?

    @Option(name: .long, help: "Trusted CA certificates (PEM); overrides --pki.")
    var ca: String?

    /// The certificate, key and CA files, checked to exist.
    func files() throws -> (certificate: String, privateKey: String, roots: String) {
        let certificate = cert ?? "\(pki)/client-\(identity).pem"
        let privateKey = key ?? "\(pki)/client-\(identity)-key.pem"
        let roots = ca ?? "\(pki)/ca.pem"
        for (what, path) in [("certificate", certificate), ("private key", privateKey), ("CA file", roots)]
        where !FileManager.default.fileExists(atPath: path) {
            throw CLIError(
                "the client \(what) \(path) does not exist (run `swift run cpnpd` once to create the dev PKI, or give --pki/--cert/--key/--ca)")
        }
        return (certificate, privateKey, roots)
    }

    func security() throws -> CPNPSecurityConfiguration {
        let (certificate, privateKey, roots) = try files()
        do { return try CPNPSecurityConfiguration(certificateFile: certificate, keyFile: privateKey, trustRootsFile: roots) } catch {
            throw CLIError("cannot load the client certificate: \(error)")
        }
    }
}

/// Options every networked `cpnp` command shares.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "The client order store (SQLite).")
    var database: String = ".cpnp/cpnp.sqlite"

    @OptionGroup var credentials: CredentialOptions

    @Option(name: .long, help: "Transport: dtls (default), tls, or plain-udp (labs only: no security).")
    var transport: String = "dtls"

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Option(name: .long, help: "Log level on standard error: trace, debug, info, notice, warning, error.")
    var logLevel: String = "warning"

    func logger() -> Logger {
        var logger = Logger(label: "cpnp")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        return logger
    }

    func store() throws -> ClientOrderStore {
        let url = URL(fileURLWithPath: database)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        do { return try ClientOrderStore(path: url.path) } catch { throw CLIError("cannot open the client store \(database): \(error)") }
    }

    func security() throws -> CPNPSecurityConfiguration { try credentials.security() }

    /// A transport bound to `host:port` (port 0: ephemeral) and an engine on it.
    func engine(store: ClientOrderStore, bindHost: String = "0.0.0.0", port: Int = 0, configuration: CPNPClientEngine.Configuration = .init())
        async throws -> CPNPClientEngine
    {
        let logger = logger()
        let clientTransport: any CPNPTransport
        do {
            switch transport {
            case "dtls":
                clientTransport = try await DTLSTransport.client(
                    bindingTo: bindHost, port: port,
                    configuration: DTLSTransportConfiguration(security: try security()), logger: logger)
            case "tls":
                clientTransport = try TLSTransport.client(configuration: TLSTransportConfiguration(security: try security()), logger: logger)
            case "plain-udp":
                clientTransport = try await PlainUDPTransport.bind(host: bindHost, port: port, logger: logger)
            default:
                throw CLIError("--transport must be dtls, tls or plain-udp")
            }
        } catch let cliError as CLIError {
            throw cliError
        } catch {
            if port != 0 { throw CLIError("cannot bind the order's local port \(bindHost):\(port) (another cpnp command on this order?): \(error)") }
            throw CLIError("cannot start the \(transport) transport: \(error)")
        }
        let engine = CPNPClientEngine(transport: clientTransport, store: store, configuration: configuration, logger: logger)
        await engine.start()
        return engine
    }

    /// Loads `order` and starts an engine bound to the local end of its open transaction, so that
    /// ACCEPT, DECLINE or CANCEL travel on the same 4-tuple as the QUOTATION (RFC 8921 §8.3).
    func engine(resuming order: String, store: ClientOrderStore) async throws -> (CPNPClientEngine, CustomerOrderID) {
        guard let customerOrderID = CustomerOrderID(order) else { throw CLIError("\(order) is not a valid customer order id") }
        guard let stored = try store.order(customerOrderID: customerOrderID) else {
            throw CLIError("no order \(order) in \(database) (see `cpnp orders`)")
        }
        var host = "0.0.0.0"
        var port = 0
        if let transaction = stored.machine.transaction,
            [.pqoSent, .serverProcessing, .offerReceived, .offerProcessing, .acceptSent].contains(stored.machine.state) || transaction.pending != nil
        {
            host = transaction.session.local.host
            port = Int(transaction.session.local.port)
        }
        let engine = try await engine(store: store, bindHost: host, port: port)
        try await engine.resume(customerOrderID)
        return (engine, customerOrderID)
    }
}

/// An error the CLI reports as `error: …` with exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a command body: prints errors as `error: …` and maps them to the documented exit status.
func runClientCommand(json: Bool, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        let status = ClientExit.of(error)
        if json {
            print(
                JSONSerializer.serializeString(
                    .object(
                        JSONObject([
                            ("outcome", .string("error")), ("exit-status", .number(CPNPDecimal(Int64(status.rawValue)))),
                            ("error", .string("\(error)")),
                        ]))))
        }
        Diagnostics.write("error: \(error)")
        throw status.code
    }
}

/// Parses a time given as RFC 3339 or as an offset such as `+30s`, `+10m`, `+2h`.
func parseTime(_ text: String, now: CPNPTimestamp = SystemWallClock().now()) throws -> CPNPTimestamp {
    if text.hasPrefix("+"), let offset = Duration(text: String(text.dropFirst())) { return now.adding(offset) }
    guard let time = CPNPTimestamp(rfc3339: text) else { throw CLIError("\(text) is neither an RFC 3339 time nor an offset like +10m") }
    return time
}

/// Loads and validates a CPD file; errors name the path in the document.
func loadCPD(_ file: String) throws -> CPD {
    let bytes: [UInt8]
    do { bytes = try Input.read(file) } catch { throw CLIError("\(error)") }
    let cpd: CPD
    do { cpd = try CPD(json: JSONParser.parse(bytes, limits: .stream), at: .root) } catch {
        throw CLIError("\(file): \(error.path): \(error.reason) (\(error.code.rawValue))")
    }
    let issues = cpd.validate(at: .root)
    if let firstError = issues.first(where: { $0.severity == .error }) { throw CLIError("\(file): \(firstError)") }
    return cpd
}
