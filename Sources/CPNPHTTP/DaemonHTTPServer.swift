import CPNPAPI
import CPNPCore
public import CPNPPolicy
public import CPNPServer
public import CPNPStorage
import CPNPTransport
import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
import OpenAPIHummingbird
import OpenAPIRuntime

/// The HTTP server of `cpnpd` (docs/console.md): `/healthz` and `/readyz` for probes, open to all;
/// `/metrics` for Prometheus, and every other path, only with the operator's bearer token.
public enum DaemonHTTPServer {
    /// What the server reads from the daemon.
    public struct Sources: Sendable {
        public var engine: CPNPServerEngine
        public var metrics: MetricsExporter
        /// The order store, for the console's pages (none: no console).
        public var store: ServerOrderStore?
        /// The transport's counts, when it keeps them (DTLS).
        public var transportCounts: @Sendable () -> MetricsExporter.TransportCounts?
        /// The customer portal and the catalogue (none: no portal; needs ``store``).
        public var portal: CustomerPortal?

        public init(
            engine: CPNPServerEngine, metrics: MetricsExporter, store: ServerOrderStore? = nil, portal: CustomerPortal? = nil,
            transportCounts: @escaping @Sendable () -> MetricsExporter.TransportCounts? = { nil }
        ) {
            self.engine = engine
            self.metrics = metrics
            self.store = store
            self.portal = portal
            self.transportCounts = transportCounts
        }
    }

    /// A configuration `cpnpd` cannot serve: it names the key.
    public struct ConfigurationProblem: Error, CustomStringConvertible {
        public var description: String
    }

    /// The operators' token from `http.operator-token-file` (relative to the PKI directory). With
    /// `create`, a missing file at the default place is made (32 random bytes, hex, mode 0600), as
    /// the development PKI's other files are. Nil when there is none.
    public static func operatorToken(_ http: HTTPConfiguration, pki: PKIConfiguration, create: Bool) throws -> String? {
        let path = tokenPath(http, pki: pki)
        if !FileManager.default.fileExists(atPath: path) {
            guard create, http.operatorTokenFile == HTTPConfiguration().operatorTokenFile else { return nil }
            let token = randomHex()
            try FileManager.default.createDirectory(atPath: pki.directory, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ConfigurationProblem(description: "http.operator-token-file: cannot create \(path)")
            }
            return token
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationProblem(description: "http.operator-token-file: cannot read \(path)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 16, !token.contains(where: \.isWhitespace) else {
            throw ConfigurationProblem(description: "http.operator-token-file: \(path) must hold one token of at least 16 characters")
        }
        return token
    }

    /// The operators' token, made at the default place when missing and the server listens on
    /// loopback. Beyond loopback the token must already exist: `cpnpd` never listens there without
    /// authentication, and never invents the credential that would open it.
    public static func checkAuthentication(_ http: HTTPConfiguration, pki: PKIConfiguration) throws -> String? {
        let token = try operatorToken(http, pki: pki, create: http.isLoopback)
        if !http.isLoopback, token == nil, !(http.tls && !http.operatorIdentities.isEmpty) {
            throw ConfigurationProblem(
                description:
                    "http.listen: \(http.host):\(http.port) is beyond loopback and no authentication is configured: write a token of at least 16 characters to \(tokenPath(http, pki: pki)) (http.operator-token-file), or listen on 127.0.0.1"
            )
        }
        return token
    }

    /// 32 random bytes as 64 hex characters (tokens, session ids).
    static func randomHex() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Where the token file is.
    public static func tokenPath(_ http: HTTPConfiguration, pki: PKIConfiguration) -> String {
        http.operatorTokenFile.hasPrefix("/") ? http.operatorTokenFile : (pki.directory as NSString).appendingPathComponent(http.operatorTokenFile)
    }

    /// The server as a service for the daemon's service group. Refuses an address beyond loopback
    /// without authentication (no operator token).
    public static func make(
        _ http: HTTPConfiguration, pki: PKIConfiguration, operatorToken: String?, sources: Sources, logger: Logger,
        onListening: @escaping @Sendable (String) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        if !http.isLoopback, operatorToken == nil, !(http.tls && !http.operatorIdentities.isEmpty) {
            throw ConfigurationProblem(description: "http.listen: \(http.host):\(http.port) is beyond loopback and no authentication is configured")
        }
        let router = Router(context: DaemonRequestContext.self)
        let sessions = ConsoleSessions(operatorToken: operatorToken)
        let console = try sources.store.map { try Console(engine: sources.engine, store: $0, sessions: sessions, secureCookies: http.tls) }
        var portal: Portal?
        if let store = sources.store, let customerPortal = sources.portal { portal = try Portal(portal: customerPortal, store: store) }
        router.add(
            middleware: OperatorAuthentication(
                token: operatorToken, sessions: sessions, console: console, operatorIdentities: http.tls ? Set(http.operatorIdentities) : [],
                portal: portal, https: http.tls))
        console?.addRoutes(to: router)
        portal?.addRoutes(to: router)
        if let portal {
            // The REST API, generated from Sources/CPNPHTTP/openapi.yaml (docs/api.md).
            let api = RESTAPI(portal: portal.portal, store: portal.store, engine: sources.engine)
            router.add(middleware: RESTAPI.CallerMiddleware())
            try api.registerHandlers(
                on: router, serverURL: URL(string: "/api")!,
                configuration: Configuration(jsonEncodingOptions: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]),
                middlewares: [ProblemMiddleware()])
        }
        router.get("healthz") { _, _ in Self.text("ok\n") }
        router.get("readyz") { _, _ -> Response in
            if sources.engine.isReady { return Self.text("ready\n") }
            return Self.text("not ready: the database does not answer\n", status: .serviceUnavailable)
        }
        router.get("metrics") { _, _ -> Response in
            let gauges = try? await sources.engine.gauges()
            let body = sources.metrics.render(gauges, transport: sources.transportCounts())
            var response = Self.text(body)
            response.headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        }
        let server: HTTPServerBuilder
        if http.tls {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(pki.certificatePath).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: pki.keyPath, format: .pem)))
            tls.minimumTLSVersion = .tlsv12
            // Operators may present a client certificate of the PKI instead of the token.
            tls.trustRoots = .file(pki.caPath)
            tls.certificateVerification = .optionalVerification
            server = try .tls(.http1(), tlsConfiguration: tls)
        } else {
            server = .http1()
        }
        let scheme = http.tls ? "https" : "http"
        return Application(
            router: router, server: server,
            configuration: ApplicationConfiguration(address: .hostname(http.host, port: Int(http.port)), serverName: "cpnpd"),
            onServerRunning: { channel in
                let address = channel.localAddress.map { "\($0.ipAddress ?? http.host):\($0.port ?? 0)" } ?? "\(http.host):\(http.port)"
                logger.notice("HTTP server listening", metadata: ["http": "\(scheme)://\(address)"])
                await onListening(address)
            },
            logger: logger)
    }

    static func text(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The request context of the daemon's server: Hummingbird's, plus the connection, to read the
/// client certificate of an HTTPS request.
public struct DaemonRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel
    /// The customer signed in to the portal (its profile's identity), set by the authentication.
    var customer: String?
    /// Whether the request authenticated as an operator (token or certificate).
    var isOperator = false

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The identity in the client certificate of this HTTPS connection (verified against the PKI's
    /// CA during the handshake); nil over plain HTTP or when the client sent none.
    func peerIdentity() async -> CPNPPeerIdentity? {
        let channel = self.channel
        let der: [UInt8]?? = try? await channel.eventLoop.submit { () throws -> [UInt8]? in
            try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate?.toDERBytes()
        }.get()
        return der.flatMap { $0 }.flatMap { try? CPNPPeerIdentity(certificateDER: $0) }
    }
}

/// Every path but the probes and the console's sign-in needs the operators' token: as
/// `Authorization: Bearer TOKEN`, or for the console a session cookie from signing in with it. 401
/// otherwise (RFC 6750), with the sign-in page for the console's paths.
/// Over HTTPS, a client certificate of one of `http.operator-identities` (signed by the PKI's CA)
/// authenticates an operator too.
/// The portal (`/portal/…`) and the catalogue (`/catalog…`) are for customers: a client
/// certificate whose names match a customer profile (RFC 8921 §13, as CPNP's own sessions) signs
/// one in. Operators may read the catalogue; nobody else reaches anything else.
struct OperatorAuthentication: RouterMiddleware {
    typealias Context = DaemonRequestContext
    let token: String?
    let sessions: ConsoleSessions
    let console: Console?
    /// Certificate names (CN or DNS-ID) with the operator role; empty over plain HTTP.
    let operatorIdentities: Set<String>
    let portal: Portal?
    let https: Bool
    static var openPaths: Set<String> { ["/healthz", "/readyz", "/console/login"] }

    static func isPortal(_ path: String) -> Bool { path == "/portal" || path.hasPrefix("/portal/") }
    static func isCatalog(_ path: String) -> Bool { path == "/catalog" || path.hasPrefix("/catalog/") }
    static func isAPI(_ path: String) -> Bool { path == "/api" || path.hasPrefix("/api/") }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if Self.openPaths.contains(path) { return try await next(request, context) }
        var context = context
        if let portal, Self.isPortal(path) || Self.isCatalog(path) || Self.isAPI(path) {
            if let identity = await context.peerIdentity(),
                let profile = portal.portal.configuration.customerProfile(matching: [identity.commonName].compactMap { $0 } + identity.dnsNames)
            {
                context.customer = profile.identity
                return try await next(request, context)
            }
            if Self.isPortal(path) { return portal.signInRequired(https: https) }
        }
        if let token, let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            Self.equalInConstantTime(Array(header.dropFirst("Bearer ".count).utf8), Array(token.utf8))
        {
            context.isOperator = true
            return try await next(request, context)
        }
        if !operatorIdentities.isEmpty, let identity = await context.peerIdentity(),
            !operatorIdentities.isDisjoint(with: [identity.commonName].compactMap { $0 } + identity.dnsNames)
        {
            context.isOperator = true
            return try await next(request, context)
        }
        if Self.isAPI(path) {
            var response = RESTAPI.problemResponse(
                status: 401, title: "authentication required",
                detail: "customers: your CPNP client certificate over HTTPS; operators: Authorization: Bearer <operator token>")
            response.headers[.wwwAuthenticate] = "Bearer realm=\"cpnpd\""
            return response
        }
        if path == "/console" || path.hasPrefix("/console/"), let console {
            if sessions.session(request) != nil { return try await next(request, context) }
            return console.loginRequired(request)
        }
        var response = DaemonHTTPServer.text("authentication required: Authorization: Bearer <operator token>\n", status: .unauthorized)
        response.headers[.wwwAuthenticate] = "Bearer realm=\"cpnpd\""
        return response
    }

    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
