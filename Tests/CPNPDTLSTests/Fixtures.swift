import CPNPDTLS
import CPNPPKI
import Foundation

/// Certificates for the in-process tests, made once with the dev PKI.
struct TestPKI: Sendable {
    let caPEM: String
    let otherCAPEM: String
    let server: DTLSCredentials
    let serverWrongName: DTLSCredentials
    let serverExpired: DTLSCredentials
    let client: DTLSCredentials
    let clientOtherCA: DTLSCredentials
    let clientExpired: DTLSCredentials

    static let shared: TestPKI = try! TestPKI()

    init() throws {
        let ca = try CertificateAuthority.generate()
        let other = try CertificateAuthority.generate(commonName: "Some Other CA")
        func creds(_ c: IssuedCertificate) throws -> DTLSCredentials {
            DTLSCredentials(certificateChainPEM: try c.certificatePEM, privateKeyPEM: c.privateKeyPEM)
        }
        let past = Date().addingTimeInterval(-30 * 86400)
        let expiredEnd = Date().addingTimeInterval(-86400)
        caPEM = try ca.issued.certificatePEM
        otherCAPEM = try other.issued.certificatePEM
        server = try creds(ca.issue(commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"], usage: .server))
        serverWrongName = try creds(ca.issue(commonName: "elsewhere", dnsNames: ["elsewhere.example"], usage: .server))
        serverExpired = try creds(ca.issue(commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], usage: .server, notBefore: past, notAfter: expiredEnd))
        client = try creds(ca.issue(commonName: "customer-a", dnsNames: ["customer-a"], usage: .client))
        clientOtherCA = try creds(other.issue(commonName: "intruder", dnsNames: ["intruder"], usage: .client))
        clientExpired = try creds(ca.issue(commonName: "customer-old", dnsNames: ["customer-old"], usage: .client, notBefore: past, notAfter: expiredEnd))
    }
}

/// Two endpoints wired together in memory; datagrams pass through `filter` hooks.
final class Harness {
    let listener: DTLSCookieListener
    let client: DTLSAssociation
    var server: DTLSAssociation?
    var toServer: [[UInt8]] = []
    var toClient: [[UInt8]] = []
    var clientMessages: [[UInt8]] = []
    var serverMessages: [[UInt8]] = []
    var clientEvents: [DTLSAssociation.Event] = []
    var serverEvents: [DTLSAssociation.Event] = []
    var helloVerifyRequests = 0
    let peerAddress: [UInt8]

    init(
        serverCredentials: DTLSCredentials = TestPKI.shared.server,
        clientCredentials: DTLSCredentials? = TestPKI.shared.client,
        serverTrust: String = TestPKI.shared.caPEM,
        clientTrust: String = TestPKI.shared.caPEM,
        serverName: String = "localhost",
        peerAddress: [UInt8] = [127, 0, 0, 1, 0x30, 0x39]
    ) throws {
        let serverContext = try DTLSContext(configuration: DTLSConfiguration(role: .server, credentials: serverCredentials, trustRootsPEM: serverTrust))
        let clientContext = try DTLSContext(configuration: DTLSConfiguration(role: .client, credentials: clientCredentials, trustRootsPEM: clientTrust))
        listener = try DTLSCookieListener(context: serverContext)
        client = try DTLSAssociation.client(context: clientContext, serverName: serverName)
        self.peerAddress = peerAddress
        let output = client.start()
        toServer.append(contentsOf: output.datagrams)
    }

    func serverReceive(_ datagram: [UInt8]) {
        if let server {
            record(server.receive(datagram: datagram), server: true)
            return
        }
        switch listener.receive(datagram: datagram, peerAddress: peerAddress) {
        case .drop: break
        case .reply(let datagrams):
            helloVerifyRequests += 1
            toClient.append(contentsOf: datagrams)
        case .accepted(let association, let output):
            server = association
            record(output, server: true)
        }
    }

    func clientReceive(_ datagram: [UInt8]) {
        record(client.receive(datagram: datagram), server: false)
    }

    func record(_ output: DTLSOutput, server: Bool) {
        if server {
            toClient.append(contentsOf: output.datagrams)
            serverMessages.append(contentsOf: output.messages)
            if let event = output.event { serverEvents.append(event) }
        } else {
            toServer.append(contentsOf: output.datagrams)
            clientMessages.append(contentsOf: output.messages)
            if let event = output.event { clientEvents.append(event) }
        }
    }

    /// Delivers queued datagrams until both queues are empty. `filter` may drop, duplicate or
    /// reorder each batch: it gets (toServer?, batch number, batch) and returns what to deliver.
    func pump(rounds: Int = 20, filter: (Bool, Int, [[UInt8]]) -> [[UInt8]] = { $2 }) {
        var batch = 0
        for _ in 0..<rounds {
            if toServer.isEmpty && toClient.isEmpty { return }
            let s = toServer
            toServer = []
            for d in filter(true, batch, s) { serverReceive(d) }
            let c = toClient
            toClient = []
            for d in filter(false, batch, c) { clientReceive(d) }
            batch += 1
        }
    }

    var established: Bool { client.state == .established && server?.state == .established }
}
