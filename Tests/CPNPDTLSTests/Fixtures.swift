import CPNPDTLS
import CPNPTesting
import Foundation

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
        serverCredentials: DTLSCredentials = DTLSCredentials(TestCertificates.shared.server),
        clientCredentials: DTLSCredentials? = DTLSCredentials(TestCertificates.shared.client),
        serverTrust: String = TestCertificates.shared.caPEM,
        clientTrust: String = TestCertificates.shared.caPEM,
        serverName: String = "localhost",
        peerAddress: [UInt8] = [127, 0, 0, 1, 0x30, 0x39]
    ) throws {
        let serverContext = try DTLSContext(
            configuration: DTLSConfiguration(role: .server, credentials: serverCredentials, trustRootsPEM: serverTrust))
        let clientContext = try DTLSContext(
            configuration: DTLSConfiguration(role: .client, credentials: clientCredentials, trustRootsPEM: clientTrust))
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
