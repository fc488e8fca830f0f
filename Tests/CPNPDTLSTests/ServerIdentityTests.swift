import CPNPDTLS
import CPNPTesting
import Foundation
import Testing

@Suite("Server identity: RFC 6125 reference identities (RFC 8921 §8.1)")
struct ReferenceIdentityTests {
    @Test func textFormsParse() {
        #expect(ServerReferenceIdentity("CPNP.Example.NET.").kind == .dnsName("cpnp.example.net"))
        #expect(ServerReferenceIdentity("127.0.0.1").kind == .ipAddress([127, 0, 0, 1]))
        #expect(ServerReferenceIdentity("::1").kind == .ipAddress(Array(repeating: 0, count: 15) + [1]))
        #expect(ServerReferenceIdentity("_cpnp.Provider.example").kind == .service(service: "cpnp", domain: "provider.example"))
        #expect(ServerReferenceIdentity.service(domain: "provider.example.").description == "_cpnp.provider.example")
        #expect(ServerReferenceIdentity("_cpnp.provider.example").serverNameIndication == "provider.example")
        #expect(ServerReferenceIdentity("192.0.2.1").serverNameIndication == nil)
        #expect(ServerReferenceIdentity("::1").description == "::1")
    }

    @Test func dnsIDMatchesExactlyAndCaseInsensitively() {
        let reference = ServerReferenceIdentity("cpnp.example.net")
        #expect(reference.isMatched(by: PresentedIdentifiers(dnsNames: ["CPNP.example.net"])))
        #expect(reference.isMatched(by: PresentedIdentifiers(dnsNames: ["other.example", "cpnp.example.net."])))
        #expect(!reference.isMatched(by: PresentedIdentifiers(dnsNames: ["example.net"])))
        #expect(!reference.isMatched(by: PresentedIdentifiers(dnsNames: ["cpnp.example.net.evil"])))
        #expect(!reference.isMatched(by: PresentedIdentifiers()))
        // A name in the wrong kind of identifier does not count.
        #expect(!reference.isMatched(by: PresentedIdentifiers(srvNames: ["cpnp.example.net"])))
    }

    @Test func wildcardsOnlyAsTheWholeLeftMostLabel() {
        let reference = ServerReferenceIdentity("cpnp.example.net")
        #expect(reference.isMatched(by: PresentedIdentifiers(dnsNames: ["*.example.net"])))
        #expect(!ServerReferenceIdentity("a.cpnp.example.net").isMatched(by: PresentedIdentifiers(dnsNames: ["*.example.net"])))
        #expect(!ServerReferenceIdentity("example.net").isMatched(by: PresentedIdentifiers(dnsNames: ["*.example.net"])))
        for pattern in ["c*.example.net", "*p.example.net", "cp*np.example.net", "*.*.net", "cpnp.*.net", "*.net", "*", "**.example.net"] {
            #expect(!reference.isMatched(by: PresentedIdentifiers(dnsNames: [pattern])), "\(pattern)")
        }
    }

    @Test func ipIDComparesBytes() {
        #expect(ServerReferenceIdentity("127.0.0.1").isMatched(by: PresentedIdentifiers(ipAddresses: [[127, 0, 0, 1]])))
        #expect(!ServerReferenceIdentity("127.0.0.2").isMatched(by: PresentedIdentifiers(ipAddresses: [[127, 0, 0, 1]])))
        #expect(ServerReferenceIdentity("0:0::1").isMatched(by: PresentedIdentifiers(ipAddresses: [Array(repeating: 0, count: 15) + [1]])))
        // An IP address written as a DNS-ID is not an IP-ID (RFC 6125 §1.7.2).
        #expect(!ServerReferenceIdentity("127.0.0.1").isMatched(by: PresentedIdentifiers(dnsNames: ["127.0.0.1"])))
        // Nor does an IP reference match a DNS wildcard.
        #expect(!ServerReferenceIdentity("10.0.0.1").isMatched(by: PresentedIdentifiers(dnsNames: ["*.0.0.1"])))
    }

    @Test func serviceFoundBySRVMatchesSRVIDOrSourceDomainOnly() {
        let reference = ServerReferenceIdentity.service(domain: "provider.example")
        #expect(reference.isMatched(by: PresentedIdentifiers(srvNames: ["_cpnp.provider.example"])))
        #expect(reference.isMatched(by: PresentedIdentifiers(srvNames: ["_CPNP.Provider.Example"])))
        #expect(reference.isMatched(by: PresentedIdentifiers(dnsNames: ["provider.example"])))
        // The SRV target host is not a reference identity (RFC 6125 §6.2.1: not securely derived).
        #expect(!reference.isMatched(by: PresentedIdentifiers(dnsNames: ["cpnp1.provider.example"])))
        #expect(!reference.isMatched(by: PresentedIdentifiers(dnsNames: ["*.provider.example"])))
        // Another service or another domain does not match.
        #expect(!reference.isMatched(by: PresentedIdentifiers(srvNames: ["_xmpp.provider.example"])))
        #expect(!reference.isMatched(by: PresentedIdentifiers(srvNames: ["_cpnp.other.example"])))
        // An SRV-ID is no DNS-ID for a host dialled directly.
        #expect(!ServerReferenceIdentity("provider.example").isMatched(by: PresentedIdentifiers(srvNames: ["_cpnp.provider.example"])))
    }

    @Test func presentedIdentifiersComeFromTheSubjectAltNamesOnly() throws {
        let pki = TestIdentityCertificates.shared
        let srv = try PresentedIdentifiers(certificateDER: derOf(pki.srvOnly))
        #expect(srv.srvNames == ["_cpnp.provider.example"])
        #expect(srv.dnsNames.isEmpty && srv.ipAddresses.isEmpty)
        let cnOnly = try PresentedIdentifiers(certificateDER: derOf(pki.commonNameOnly))
        #expect(cnOnly == PresentedIdentifiers())
        let wrong = try PresentedIdentifiers(certificateDER: derOf(pki.wrongDNS))
        #expect(wrong.dnsNames == ["cpnp.example.net"])
        #expect(wrong.ipAddresses == [[192, 0, 2, 7]])
        #expect(throws: DTLSError.self) { try PresentedIdentifiers(certificateDER: [0x30, 0x03, 1, 2, 3]) }
    }

    func derOf(_ pair: (String, String)) throws -> [UInt8] {
        try derBytes(pem: pair.0)
    }
}

/// The DER bytes of the first PEM block.
func derBytes(pem: String) throws -> [UInt8] {
    let body = pem.split(separator: "\n").drop { !$0.hasPrefix("-----BEGIN") }.dropFirst().prefix { !$0.hasPrefix("-----END") }
    guard let data = Data(base64Encoded: body.joined()) else { throw DTLSError(.invalidConfiguration, detail: "bad PEM") }
    return Array(data)
}

@Suite("Server identity in DTLS handshakes (RFC 6125; RFC 8921 §8.1)")
struct ServerIdentityHandshakeTests {
    let pki = TestIdentityCertificates.shared

    func handshake(_ pair: (String, String), serverName: String) throws -> Harness {
        let h = try Harness(serverCredentials: DTLSCredentials(pair), clientTrust: pki.caPEM, serverName: serverName)
        h.pump()
        return h
    }

    @Test func matchingCommonNameWithoutSubjectAltNameIsRefused() throws {
        // OpenSSL's host check alone would accept this certificate (CN fallback).
        let h = try handshake(pki.commonNameOnly, serverName: "localhost")
        #expect(code(h.clientEvents) == .nameMismatch)
        #expect(!h.established)
        #expect(failureDetail(h.client).contains("DNS-ID localhost"), "\(failureDetail(h.client))")
        // The client refuses before sending its certificate and Finished: no server association.
        #expect(h.server?.state != .established)
    }

    @Test func matchingCommonNameWithAWrongSubjectAltNameIsRefused() throws {
        let byName = try handshake(pki.wrongDNS, serverName: "localhost")
        #expect(code(byName.clientEvents) == .nameMismatch)
        let byAddress = try handshake(pki.wrongDNS, serverName: "127.0.0.1")
        #expect(code(byAddress.clientEvents) == .nameMismatch)
        #expect(failureDetail(byAddress.client).contains("IP-ID 127.0.0.1"), "\(failureDetail(byAddress.client))")
    }

    @Test func dnsIDAndIPIDAreAccepted() throws {
        let server = try Harness(serverName: "LOCALHOST")
        server.pump()
        #expect(server.established)
        #expect(try handshake(pki.ipOnly, serverName: "127.0.0.1").established)
        #expect(code(try handshake(pki.ipOnly, serverName: "localhost").clientEvents) == .nameMismatch)
        #expect(code(try handshake(pki.ipOnly, serverName: "127.0.0.2").clientEvents) == .nameMismatch)
    }

    @Test func wildcardCoversOneLeftMostLabel() throws {
        #expect(try handshake(pki.wildcard, serverName: "cpnp.provider.example").established)
        #expect(code(try handshake(pki.wildcard, serverName: "a.cpnp.provider.example").clientEvents) == .nameMismatch)
        #expect(code(try handshake(pki.wildcard, serverName: "provider.example").clientEvents) == .nameMismatch)
    }

    @Test func serviceFoundBySRVAcceptsSRVIDOrSourceDomain() throws {
        #expect(try handshake(pki.srvOnly, serverName: "_cpnp.provider.example").established)
        #expect(try handshake(pki.sourceDomainDNS, serverName: "_cpnp.provider.example").established)
        let target = try handshake(pki.srvTargetOnly, serverName: "_cpnp.provider.example")
        #expect(code(target.clientEvents) == .nameMismatch)
        #expect(failureDetail(target.client).contains("SRV-ID _cpnp.provider.example or DNS-ID provider.example"))
        // An SRV-ID is not accepted for a host dialled by name.
        #expect(code(try handshake(pki.srvOnly, serverName: "provider.example").clientEvents) == .nameMismatch)
    }
}
