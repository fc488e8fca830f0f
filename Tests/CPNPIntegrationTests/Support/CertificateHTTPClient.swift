// HTTPS requests to a daemon's HTTP server as a customer or an operator would make them from a
// browser: with a client certificate of the daemon's PKI, forms, and redirects not followed.
import CPNPTesting
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

struct CertificateHTTPClient {
    let base: String
    let client: HTTPClient

    /// A client of `daemon`'s HTTPS server presenting `client-CERTIFICATE.pem` (none: anonymous).
    init(daemon: Daemon, certificate: String?) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(daemon.pkiDirectory.appendingPathComponent("ca.pem").path)
        if let certificate {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(daemon.pkiDirectory.appendingPathComponent("client-\(certificate).pem").path).map
            { .certificate($0) }
            tls.privateKey = .privateKey(
                try NIOSSLPrivateKey(file: daemon.pkiDirectory.appendingPathComponent("client-\(certificate)-key.pem").path, format: .pem))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        base = "https://127.0.0.1:\(daemon.httpPort)"
    }

    /// A plain HTTP client of `base` (e.g. `cpnp serve`'s `http://127.0.0.1:PORT/api`).
    init(plainBase base: String) {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.base = base
    }

    func get(_ path: String) async throws -> HTTPAnswer {
        try await execute(HTTPClientRequest(url: base + path))
    }

    /// POSTs `form` as `application/x-www-form-urlencoded`.
    func post(_ path: String, form: [String: String]) async throws -> HTTPAnswer {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        let body = form.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }.joined(separator: "&")
        request.body = .bytes(ByteBuffer(string: body))
        return try await execute(request)
    }

    /// A request with a JSON body (or none), and extra headers (e.g. `Idempotency-Key`, `Authorization`).
    func send(_ method: HTTPMethod, _ path: String, json: String? = nil, headers: [String: String] = [:]) async throws -> HTTPAnswer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        return try await execute(request)
    }

    private func execute(_ request: HTTPClientRequest) async throws -> HTTPAnswer {
        let response = try await client.execute(request, timeout: .seconds(20))
        let body = try await response.body.collect(upTo: 8 << 20)
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return HTTPAnswer(status: Int(response.status.code), body: String(buffer: body), headers: headers)
    }

    func shutdown() async { try? await client.shutdown() }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// The CSRF token of the first form of a page.
    static func csrf(in page: String) -> String? {
        guard let range = page.range(of: "name=\"csrf\" value=\"") else { return nil }
        let rest = page[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    /// The text of the element with `id` (tags removed), e.g. `<span id="state">agreed</span>`.
    static func text(of id: String, in page: String) -> String? {
        guard let start = page.range(of: "id=\"\(id)\"") else { return nil }
        guard let open = page[start.upperBound...].firstIndex(of: ">") else { return nil }
        let rest = page[page.index(after: open)...]
        guard let close = rest.range(of: "</") else { return nil }
        return String(rest[..<close.lowerBound]).replacingOccurrences(of: "<[^>]+>", with: "", options: .regularExpression)
    }
}
