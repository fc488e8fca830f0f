// The glue of cpnpd between its transport and its engine, as a library of services: cpnpd and the
// tests run the same code.
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
        guard let peer = peer(of: session) else { return }
        do {
            try await transport.send(bytes, to: peer)
        } catch {
            failed(session, error)
        }
    }

    public func sendWithoutWaiting(_ bytes: [UInt8], on session: CPNPSession) -> Bool {
        guard PortalSessions.customer(of: session.remote) == nil else { return false }
        guard let peer = peer(of: session) else { return true }
        return transport.sendWithoutWaiting(bytes, to: peer) { error in failed(session, error) }
    }

    /// Where the session's messages go; nil (logged) when its remote end is no socket address.
    private func peer(of session: CPNPSession) -> CPNPPeer? {
        do {
            return CPNPPeer(address: try SocketAddress(ipAddress: session.remote.host, port: Int(session.remote.port)))
        } catch {
            failed(session, error)
            return nil
        }
    }

    private func failed(_ session: CPNPSession, _ error: any Error) {
        logger.warning("send failed", metadata: ["to": "\(session.remote)", "error": "\(error)"])
    }
}

/// cpnpd's long-running loops, one ``Service`` each, in the order a `ServiceGroup` starts them (it
/// stops them in reverse): the inbox last, so that the others stop while messages still flow.
public enum DaemonServices {
    /// The inbox, operator requests, provisioning hand-off, and with a shared database its upkeep.
    public static func make(engine: CPNPServerEngine, transport: any CPNPTransport, provisioning: ProvisioningWorker, logger: Logger) -> [any Service]
    {
        var services: [any Service] = [
            InboxService(engine: engine, transport: transport, logger: logger),
            AdminRequestsService(engine: engine),
            ProvisioningService(worker: provisioning),
        ]
        if engine.sharesStore { services.append(SharedStoreUpkeepService(engine: engine)) }
        return services
    }
}

/// The transport's two streams: each received datagram goes to the engine's inbox (handled and
/// committed in batches, GroupCommit.swift), each failure to the log. Ends when the transport is
/// closed, which graceful shutdown does; then logs the group commit figures.
public struct InboxService: Service {
    let engine: CPNPServerEngine
    let transport: any CPNPTransport
    let logger: Logger

    public init(engine: CPNPServerEngine, transport: any CPNPTransport, logger: Logger) {
        self.engine = engine
        self.transport = transport
        self.logger = logger
    }

    public func run() async throws {
        let (engine, transport, logger) = (self.engine, self.transport, self.logger)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await failure in transport.failures {
                        logger.debug("transport failure", metadata: ["error": "\(failure)"])
                    }
                }
                // Straight from the transport's event loop where it can; what reached the stream
                // before, or every message where it cannot, from here.
                let maximumSize = transport.maximumMessageSize
                _ = transport.deliverInbound { message in engine.submit(InboundDatagram(message, maximumSize: maximumSize)) }
                for await message in transport.inbound {
                    engine.submit(InboundDatagram(message, maximumSize: maximumSize))
                }
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
        let statistics = await engine.commitStatistics
        let commitMilliseconds = Double(statistics.commitTime.components.attoseconds) / 1e15 + Double(statistics.commitTime.components.seconds) * 1e3
        logger.notice(
            "group commit",
            metadata: [
                "batches": "\(statistics.batches)", "datagrams": "\(statistics.datagrams)", "transactions": "\(statistics.transactions)",
                "changes": "\(statistics.changes)", "largest-transaction": "\(statistics.largestTransaction)",
                "failed-changes": "\(statistics.failedChanges)",
                "commit-mean-ms": "\(statistics.transactions == 0 ? 0 : commitMilliseconds / Double(statistics.transactions))",
                "inbox-coalesced": "\(statistics.inboxCoalesced)", "inbox-dropped": "\(statistics.inboxDropped)",
            ])
    }
}

/// Operator approvals and rejections written by `cpnpd admin` (docs/deployment.md), read every 250 ms.
public struct AdminRequestsService: Service {
    let engine: CPNPServerEngine

    public init(engine: CPNPServerEngine) { self.engine = engine }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await engine.processAdminRequests()
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }
}

/// The provisioning hand-off (Sources/CPNPServer/ProvisioningWorker.swift), until graceful shutdown.
public struct ProvisioningService: Service {
    let worker: ProvisioningWorker

    public init(worker: ProvisioningWorker) { self.worker = worker }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await worker.run() }
    }
}

/// Several cpnpd on one database (docs/deployment.md): heartbeat, take over the orders of instances
/// that stopped, refresh the shared totals, every ``CPNPServerEngine/sharedHeartbeatInterval``.
public struct SharedStoreUpkeepService: Service {
    let engine: CPNPServerEngine

    public init(engine: CPNPServerEngine) { self.engine = engine }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: CPNPServerEngine.sharedHeartbeatInterval)
                await engine.maintainSharedStore()
            }
        }
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
