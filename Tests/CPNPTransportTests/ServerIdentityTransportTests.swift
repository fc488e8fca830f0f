import CPNPTransport
import CPNPTesting
import Foundation
import Logging
import NIOCore
import Testing

/// The client side of both secure transports checks the server certificate's DNS-ID, IP-ID or
/// SRV-ID, never its CN (RFC 8921 §8.1; RFC 6125).
@Suite("Server identity over DTLS and TLS on loopback", .timeLimit(.minutes(1)))
struct ServerIdentityTransportTests {
    let certs = TestCertificates.shared
    let identity = TestIdentityCertificates.shared

    enum Kind: CaseIterable { case dtls, tls }

    /// Sends one message from a client (trusting the identity CA) to a server presenting `serverPair`,
    /// dialled as `serverName`: nil when it arrived, else the client's failure (or, with `server`
    /// set, the server's).
    func attempt(
        _ kind: Kind, serverPair: (String, String), serverName: String, clientPair: (String, String)? = nil, server failureOfServer: Bool = false
    ) async throws -> CPNPTransportError? {
        let serverSecurity = CPNPSecurityConfiguration(certificateChainPEM: serverPair.0, privateKeyPEM: serverPair.1, trustRootsPEM: certs.caPEM)
        let clientPair = clientPair ?? certs.client
        let clientSecurity = CPNPSecurityConfiguration(certificateChainPEM: clientPair.0, privateKeyPEM: clientPair.1, trustRootsPEM: identity.caPEM)
        let server: any CPNPTransport
        let client: any CPNPTransport
        switch kind {
        case .dtls:
            server = try await DTLSTransport.server(host: "127.0.0.1", port: 0, configuration: DTLSTransportConfiguration(security: serverSecurity))
            client = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: clientSecurity))
        case .tls:
            server = try await TLSTransport.server(host: "127.0.0.1", port: 0, configuration: TLSTransportConfiguration(security: serverSecurity))
            client = try TLSTransport.client(configuration: TLSTransportConfiguration(security: clientSecurity))
        }
        defer {
            Task {
                await client.close(); await server.close()
            }
        }
        let peer = CPNPPeer(address: try #require(server.localAddress), serverName: serverName)
        do {
            try await withDeadline { try await client.send(Array("hello".utf8), to: peer) }
        } catch {
            // The failures stream carries the precise reason on both transports.
            return try await next(failureOfServer ? server.failures : client.failures)
        }
        if failureOfServer {
            // With TLS 1.3 the client may finish before the server rejects its certificate.
            return try await next(server.failures)
        }
        #expect(try await next(server.inbound).bytes == Array("hello".utf8))
        return nil
    }

    @Test(arguments: Kind.allCases)
    func matchingCommonNameAloneIsRefused(_ kind: Kind) async throws {
        let failure = try await attempt(kind, serverPair: identity.commonNameOnly, serverName: "localhost")
        #expect(failure?.code == .nameMismatch, "\(String(describing: failure))")
    }

    @Test(arguments: Kind.allCases)
    func wrongSubjectAltNameIsRefused(_ kind: Kind) async throws {
        let failure = try await attempt(kind, serverPair: identity.wrongName, serverName: "127.0.0.1")
        #expect(failure?.code == .nameMismatch, "\(String(describing: failure))")
    }

    @Test(arguments: Kind.allCases)
    func ipIDIsAccepted(_ kind: Kind) async throws {
        #expect(try await attempt(kind, serverPair: identity.ipOnly, serverName: "127.0.0.1") == nil)
    }

    @Test(arguments: Kind.allCases)
    func srvIDIsAcceptedForAServiceButTheSRVTargetIsNot(_ kind: Kind) async throws {
        #expect(try await attempt(kind, serverPair: identity.srvOnly, serverName: "_cpnp.provider.example") == nil)
        let target = try await attempt(kind, serverPair: identity.srvTargetOnly, serverName: "_cpnp.provider.example")
        #expect(target?.code == .nameMismatch, "\(String(describing: target))")
    }

    @Test(arguments: Kind.allCases)
    func aServerCertificateIsNotAcceptedAsAClientCertificate(_ kind: Kind) async throws {
        // certs.server chains to the CA the server trusts but is for serverAuth only.
        let failure = try await attempt(kind, serverPair: identity.ipOnly, serverName: "127.0.0.1", clientPair: certs.server, server: true)
        #expect(failure?.code == .unknownCA, "\(String(describing: failure))")
    }
}
