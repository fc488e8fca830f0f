import ArgumentParser
import CPNPClient
import CPNPCore
import CPNPDaemon
import CPNPPolicy
import CPNPServer
import CPNPRuntime
import CPNPStorage
import CPNPTransport
import Foundation

/// `cpnpd admin …`: operator commands on the order store (RFC 8921 §8.2 administrative validation,
/// §12.1 logging). They talk to a running daemon through its database.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "List, show, approve and reject orders.",
        subcommands: [Orders.self, Show.self, Approve.self, Reject.self])

    struct StoreOptions: ParsableArguments {
        @Option(
            name: .long, help: "The daemon's order store: a SQLite file or a postgres:// URL (default: from --config, else ./.cpnp/cpnpd.sqlite).")
        var database: String?
        @Option(name: .long, help: "The daemon's configuration file.")
        var config: String?

        func open() throws -> ServerOrderStore {
            var location = try loadConfiguration(config).database
            if let database, let problem = location.set(commandLine: database) { throw ValidationError("--database: \(problem)") }
            if location.url == nil, !FileManager.default.fileExists(atPath: location.path) {
                throw ValidationError("no database at \(location.path): is cpnpd running from this directory? (use --database)")
            }
            do {
                return try ProviderDaemon.openStore(location, option: database == nil ? "database" : "--database")
            } catch let error as ProviderDaemon.StartupError {
                throw ValidationError(error.description)
            }
        }

        /// The child orders' store (RFC 8921 §8.8, `cascade.store`), when there is one.
        func childOrders() throws -> (store: ClientOrderStore, upstreams: [UpstreamProvider])? {
            var configuration = try loadConfiguration(config)
            if let database { _ = configuration.database.set(commandLine: database) }
            let path = configuration.cascadeStorePath
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            return (try ClientOrderStore(path: path), configuration.upstreams)
        }
    }

    /// An order's child orders at upstream providers, with the upstream's name (RFC 8921 §8.8).
    struct ChildOrder {
        var provider: String
        var order: StoredClientOrder
        var events: [ClientOrderEvent]
    }

    static func children(of parent: ProviderOrderID, _ options: StoreOptions) throws -> [ChildOrder] {
        guard let (store, upstreams) = try options.childOrders() else { return [] }
        return try store.orders(group: parent.rawValue).map { order in
            let provider =
                upstreams.first { upstream in
                    guard let target = try? CPNPServerTarget(parsing: upstream.address) else { return false }
                    // A domain looked up through SRV records is the order's server name (`_cpnp.DOMAIN`);
                    // a host is stored as its address, as the coordinator's client engine stored it.
                    if !target.portGiven, order.serverName == "_cpnp.\(target.host.lowercased())" { return true }
                    return (try? CPNPPeer.server(host: target.host, port: target.port)).map(CPNPClientEngine.storedAddress(of:))
                        == order.serverAddress
                }?.name ?? order.serverAddress
            return ChildOrder(provider: provider, order: order, events: try store.events(customerOrderID: order.customerOrderID))
        }
    }

    struct Orders: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List orders, newest first.")
        @OptionGroup var options: StoreOptions
        @Option(help: "Only orders in this state (e.g. AwaitingProcessing, Completed).") var state: String?
        @Option(help: "At most this many.") var limit = 50

        func run() throws {
            let store = try options.open()
            let filter = try state.map { text in
                guard let parsedState = ServerOrderStateMachine.State(rawValue: text) else {
                    throw ValidationError("unknown state \(text)")
                }
                return parsedState
            }
            let rows = try store.orders(limit: limit, state: filter)
            print("PROVIDER-ORDER                 CUSTOMER-ORDER            CLIENT      STATE               UPDATED")
            for row in rows {
                print(
                    "\(pad(row.providerOrderID.rawValue, 30)) \(pad(row.customerOrderID.rawValue, 25)) \(pad(row.clientIdentity, 11)) \(pad(row.state.rawValue, 19)) \(row.updatedAt.rfc3339)"
                )
            }
            if rows.isEmpty { print("(no orders)") }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an order with its audit trail.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The provider order id.") var order: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            let store = try options.open()
            // The order, its reservations and its audit trail as one committed state.
            guard let providerOrderID = ProviderOrderID(order), let details = try store.details(providerOrderID: providerOrderID) else {
                throw ValidationError("no order \(order)")
            }
            let stored = details.order
            let children = try AdminCommand.children(of: providerOrderID, options)
            if json {
                var object: [String: Any] = [
                    "provider-order-id": stored.providerOrderID.rawValue, "customer-order-id": stored.customerOrderID.rawValue,
                    "client": stored.clientIdentity,
                    "state": stored.state.rawValue, "open": stored.isOpen,
                ]
                if let cost = stored.machine.agreement?.informationElements?.cost {
                    object["price"] = ["amount": cost.amountText, "currency": cost.currency, "period": cost.period as Any]
                }
                object["reservations"] = details.reservations.byKind.map {
                    ["resource": "\($0.reservation.key)", "mbps": $0.reservation.mbps.plainString(), "kind": $0.kind.rawValue]
                }
                object["audit"] = details.audit.map {
                    ["at": $0.at.rfc3339, "from": $0.from.rawValue, "to": $0.to.rawValue, "event": $0.event]
                }
                object["children"] = children.map { child -> [String: Any] in
                    var entry: [String: Any] = [
                        "provider": child.provider, "customer-order-id": child.order.customerOrderID.rawValue,
                        "provider-order-id": child.order.providerOrderID?.rawValue ?? NSNull(), "state": child.order.state.rawValue,
                        "open": child.order.isOpen,
                    ]
                    if let cost = child.order.machine.agreement?.informationElements?.cost ?? child.order.machine.offer?.informationElements?.cost {
                        entry["price"] = ["amount": cost.amountText, "currency": cost.currency]
                    }
                    return entry
                }
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print(
                "order \(stored.providerOrderID) (customer order \(stored.customerOrderID), "
                    + "client \(stored.clientIdentity) at \(stored.clientAddress))")
            print("state: \(stored.state.rawValue)\(stored.isOpen ? "" : " (closed)")")
            if let agreement = stored.machine.agreement {
                print("agreement: activation \(agreement.activationType.rawValue), \(agreement.activation), purpose \(agreement.purpose.rawValue)")
                if let cost = agreement.informationElements?.cost { print("price: \(cost)") }
            }
            for (kind, reservation) in details.reservations.byKind {
                print("reservation: \(reservation.key) \(reservation.mbps) Mbps (\(kind.rawValue))")
            }
            print("audit trail:")
            for entry in details.audit {
                print(
                    "  \(entry.at.rfc3339)  \(pad(entry.from.rawValue, 19)) → \(pad(entry.to.rawValue, 19)) \(entry.event)  "
                        + "[\(entry.clientIdentity) \(entry.clientAddress)]")
            }
            for child in children {
                print(
                    "child order \(child.order.customerOrderID) at \(child.provider): provider order \(child.order.providerOrderID?.rawValue ?? "-"), \(child.order.state.rawValue)\(child.order.isOpen ? "" : " (closed)")"
                )
                for entry in child.events {
                    print("  \(entry.at.rfc3339)  \(pad(entry.from.rawValue, 19)) → \(pad(entry.to.rawValue, 19)) \(entry.event)")
                }
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve an order held for administrative validation; the daemon makes its offer.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The provider order id.") var order: String

        func run() async throws { try await request(options, order, .approve) }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject an order held for administrative validation with FAIL CODE.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The provider order id.") var order: String
        @Option(help: "FAIL status code (RFC 8921 Table 4), default 4 Administratively Prohibited.") var code = 4
        @Option(help: "Diagnostic sent with the FAIL.") var diagnostic: String?

        func run() async throws {
            guard let status = FailStatusCode(rawValue: code) else { throw ValidationError("--code must be 1…8") }
            try await request(options, order, .reject(status, diagnostic: diagnostic))
        }
    }
}

/// Writes an operator request and waits (up to 10 s) for the daemon to apply it.
private func request(_ options: AdminCommand.StoreOptions, _ order: String, _ action: AdminAction) async throws {
    let store = try options.open()
    guard let providerOrderID = ProviderOrderID(order), try store.order(providerOrderID: providerOrderID) != nil else {
        throw ValidationError("no order \(order)")
    }
    let requestID = try store.enqueueAdminRequest(
        providerOrderID: providerOrderID, action: action,
        requestedBy: ProcessInfo.processInfo.environment["USER"], at: SystemWallClock().now())
    for _ in 0..<100 {
        if let adminRequest = try store.adminRequest(id: requestID), adminRequest.processedAt != nil {
            print("\(order): \(adminRequest.outcome ?? "done")")
            return
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    print("\(order): request queued (id \(requestID)); the daemon has not applied it yet — is cpnpd running?")
    throw ExitCode(3)
}

private func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
