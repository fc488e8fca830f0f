// The glue of cpnpd between its transport and its engine, as a library: cpnpd and the tests run
// the same code.
public import CPNPCore
public import CPNPHTTP
public import CPNPServer
public import CPNPTransport
import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
public import Synchronization

/// Where the engine's answers to the customer portal go (set once the portal exists).
public final class PortalMailbox: Sendable {
    public let portal = Mutex<CustomerPortal?>(nil)

    public init() {}
}

/// The transport as the engine's sink; the customer portal's sessions are answered in process.
public struct TransportSink: ServerMessageSink {
    let transport: any CPNPTransport
    let portal: PortalMailbox?
    let logger: Logger

    /// - Parameter portal: where the customer portal's sessions are answered (none: no portal).
    public init(transport: any CPNPTransport, portal: PortalMailbox? = nil, logger: Logger) {
        self.transport = transport
        self.portal = portal
        self.logger = logger
    }

    public func send(_ bytes: [UInt8], on session: CPNPSession) async {
        if let customer = PortalSessions.customer(of: session.remote) {
            await portal?.portal.withLock { $0 }?.deliver(bytes, to: customer)
            return
        }
        do {
            let address = try SocketAddress(ipAddress: session.remote.host, port: Int(session.remote.port))
            try await transport.send(bytes, to: CPNPPeer(address: address))
        } catch {
            logger.warning("send failed", metadata: ["to": "\(session.remote)", "error": "\(error)"])
        }
    }
}

/// The daemon's loops: inbound messages, operator requests, provisioning hand-off, transport failures.
public struct DaemonService: Service {
    let engine: ServerEngine
    let transport: any CPNPTransport
    let provisioning: ProvisioningWorker
    let logger: Logger

    public init(engine: ServerEngine, transport: any CPNPTransport, provisioning: ProvisioningWorker, logger: Logger) {
        self.engine = engine
        self.transport = transport
        self.provisioning = provisioning
        self.logger = logger
    }

    public func run() async throws {
        let transport = self.transport
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Ends when the transport is closed (graceful shutdown). The engine takes what
                    // queued while it was busy as one batch, committed together (group commit).
                    for await m in transport.inbound {
                        engine.submit(InboundDatagram(m, maximumSize: transport.maximumMessageSize))
                    }
                }
                group.addTask {
                    for await failure in transport.failures {
                        logger.debug("transport failure", metadata: ["error": "\(failure)"])
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        await engine.processAdminRequests()
                        try? await Task.sleep(for: .milliseconds(250))
                    }
                }
                group.addTask { await provisioning.run() }
                if engine.sharesStore {
                    group.addTask {
                        // Several cpnpd on one database: heartbeat, take over orders of instances that stopped.
                        while !Task.isCancelled {
                            try? await Task.sleep(for: ServerEngine.sharedHeartbeatInterval)
                            await engine.maintainSharedStore()
                        }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            logger.notice("shutting down")
            engine.events.close()
            Task {
                await engine.leaveSharedStore()
                await transport.close()
            }
        }
        let totals = await engine.commitStatistics
        logger.notice("group commit", metadata: [
            "batches": "\(totals.batches)", "datagrams": "\(totals.datagrams)", "transactions": "\(totals.transactions)", "changes": "\(totals.changes)",
            "largest-transaction": "\(totals.largestTransaction)", "failed-changes": "\(totals.failedChanges)",
            "commit-mean-ms": "\(totals.transactions == 0 ? 0 : (Double(totals.commitTime.components.attoseconds) / 1e15 + Double(totals.commitTime.components.seconds) * 1e3) / Double(totals.transactions))",
            "inbox-coalesced": "\(totals.inboxCoalesced)", "inbox-dropped": "\(totals.inboxDropped)",
        ])
    }
}

extension InboundDatagram {
    /// A message a transport received, as the engine takes it: its session 4-tuple, and the names of
    /// its client certificate (RFC 8921 §13).
    public init(_ message: CPNPInboundMessage, maximumSize: Int) {
        func endpoint(_ address: SocketAddress?) -> CPNPEndpoint {
            CPNPEndpoint(host: address?.ipAddress ?? "?", port: UInt16(clamping: address?.port ?? 0))
        }
        let identity = message.identity.map { certificate in
            ClientIdentity(names: ([certificate.commonName].compactMap { $0 } + certificate.dnsNames), subject: certificate.subject)
        }
        self.init(
            bytes: message.bytes, session: CPNPSession(local: endpoint(message.localAddress), remote: endpoint(message.remoteAddress)),
            identity: identity, maximumSize: maximumSize)
    }
}
