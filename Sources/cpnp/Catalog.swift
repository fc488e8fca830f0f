import ArgumentParser
import AsyncHTTPClient
import CPNPClient
import CPNPCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// `cpnp catalog`: the provider's service catalogue, over HTTPS with the client certificate
/// (RFC 8921 §6, deployment model 2; the same templates as the customer portal, docs/console.md).
struct Catalog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the provider's service catalogue (over HTTPS, with the client certificate).",
        discussion: """
            Without TEMPLATE, lists the templates you may order and the values each leaves open. With \
            TEMPLATE, prints its Connectivity Provisioning Document: fill in the open values and send it \
            with `cpnp quote --cpd FILE`. The provider's cpnpd must serve HTTPS (http.tls: true).
            """)

    @Option(name: .long, help: "The provider's HTTPS server: https://HOST:PORT, or HOST[:PORT] (port 8922 by default).")
    var server: String = "127.0.0.1:8922"

    @Argument(help: "A template's id: print its CPD.")
    var template: String?

    @OptionGroup var credentials: CredentialOptions

    @Flag(name: .long, help: "Print the server's JSON.")
    var json = false

    func run() async throws {
        try await runClientCommand(json: json) {
            let base = try Self.baseURL(server)
            let path = template.map { "/catalog/" + ($0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? $0) } ?? "/catalog"
            let document = try await fetch(base + path)
            if json {
                print(JSONSerializer.serializeString(document, pretty: true))
            } else if template != nil {
                guard case .object(let object) = document, let cpd = object["cpd"] else {
                    throw CLIError("\(base)\(path): no CPD in the answer")
                }
                print(JSONSerializer.serializeString(cpd, pretty: true))
            } else {
                printCatalog(document)
            }
        }
    }

    private func printCatalog(_ document: JSONValue) {
        guard case .object(let object) = document, case .array(let templates)? = object["templates"] else { return }
        if templates.isEmpty { print("the provider publishes no service for you") }
        for case .object(let entry) in templates {
            let templateID = Self.text(entry["id"]), name = Self.text(entry["name"])
            print(templateID.padding(toLength: max(24, templateID.count + 2), withPad: " ", startingAt: 0) + name)
            if case .string(let description)? = entry["description"] { print("    " + description) }
            if case .array(let fields)? = entry["open-fields"] {
                for case .object(let field) in fields {
                    let constraint = field["constraint"].map { JSONSerializer.serializeString($0) } ?? "?"
                    print("    - \(Self.text(field["label"])): \(constraint)  [\(Self.text(field["path"]))]")
                }
            }
        }
    }

    private func fetch(_ url: String) async throws -> JSONValue {
        let (certificate, privateKey, roots) = try credentials.files()
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKey, format: .pem))
            tls.trustRoots = .file(roots)
        } catch {
            throw CLIError("cannot load the client certificate: \(error)")
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 4 << 20)
            try await client.shutdown()
            switch response.status.code {
            case 200: break
            case 401: throw CLIError("\(url): 401: the provider did not take the certificate of \(credentials.identity) as a customer's")
            case 404: throw CLIError("\(url): 404: no such template (see `cpnp catalog`)")
            default: throw CLIError("\(url): HTTP \(response.status.code): \(String(buffer: body))")
            }
            do { return try JSONParser.parse(Array(buffer: body)) } catch { throw CLIError("\(url): the answer is not JSON: \(error)") }
        } catch let error as CLIError {
            throw error
        } catch {
            try? await client.shutdown()
            throw CLIError("\(url): \(error)")
        }
    }

    static func baseURL(_ server: String) throws -> String {
        if server.hasPrefix("https://") || server.hasPrefix("http://") {
            return server.hasSuffix("/") ? String(server.dropLast()) : server
        }
        let target: CPNPServerTarget
        do { target = try CPNPServerTarget(parsing: server) } catch {
            throw CLIError("--server: \(server) is neither a URL nor HOST[:PORT]")
        }
        let host = target.host.contains(":") ? "[\(target.host)]" : target.host
        return "https://\(host):\(target.portGiven ? target.port : 8922)"
    }

    static func text(_ value: JSONValue?) -> String {
        if case .string(let string)? = value { return string }
        return value.map { JSONSerializer.serializeString($0) } ?? ""
    }
}
