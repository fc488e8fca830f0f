import CPNPClient
public import CPNPCore
public import CPNPPolicy
public import CPNPServer
import CPNPStorage
import Foundation
public import Logging
import Synchronization

/// The provider's portal negotiating for its customers (RFC 8921 §6, deployment model 2): one
/// ``CPNPClientEngine`` per customer, with its own client order store, talking to the server engine
/// in process. Its orders are normal CPNP orders; the customer signs in with its CPNP client
/// certificate (docs/console.md).
public actor CustomerPortal {
    /// A customer's client engine and its in-process transport.
    struct Client {
        var engine: CPNPClientEngine
        var store: ClientOrderStore
        var transport: PortalTransport
        var updates: Task<Void, Never>
    }

    /// The latest expected offer time the portal accepts from the provider.
    static let longestWait: Duration = .seconds(7 * 86_400)

    nonisolated let engine: CPNPServerEngine
    /// The customer profiles and the catalogue.
    public nonisolated let configuration: ServerConfiguration
    nonisolated let directory: String
    nonisolated let logger: Logger
    /// Transports by customer, for the engine's answers (read without waiting for the actor).
    private nonisolated let transports = Mutex<[String: PortalTransport]>([:])
    private var clients: [String: Client] = [:]
    private var opening: [String: Task<Client, any Error>] = [:]
    private var isShutDown = false

    /// - Parameters:
    ///   - engine: the daemon's server engine.
    ///   - configuration: the daemon's configuration (customer profiles, `catalog`).
    ///   - directory: where the customers' client order stores are (`http.portal-store`).
    public init(engine: CPNPServerEngine, configuration: ServerConfiguration, directory: String, logger: Logger) {
        self.engine = engine
        self.configuration = configuration
        self.directory = directory
        self.logger = logger
    }

    /// Hands a message of the engine to the customer's portal client (the transport adapter's side:
    /// see ``PortalSessions``). A customer whose client is not loaded yet (after a restart) is loaded
    /// first, with its open orders.
    public nonisolated func deliver(_ bytes: [UInt8], to customer: String) async {
        if let transport = transports.withLock({ $0[customer] }) {
            transport.receive(bytes)
            return
        }
        do {
            try await client(for: customer).transport.receive(bytes)
        } catch {
            logger.warning(
                "customer portal: cannot load the customer's client; message dropped", metadata: ["customer": "\(customer)", "error": "\(error)"])
        }
    }

    /// Loads the client of every customer that has a store, and resumes their open orders (a
    /// restart loses nothing: timers are re-armed, RFC 8921 §11.1).
    public func resumeAll() async {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for file in files.sorted() where file.hasSuffix(".sqlite") {
            guard let customer = Self.customer(fromFileName: String(file.dropLast(".sqlite".count))) else { continue }
            do { _ = try await client(for: customer) } catch {
                logger.error("customer portal: cannot resume the customer's orders", metadata: ["customer": "\(customer)", "error": "\(error)"])
            }
        }
    }

    /// The customer's client if the portal ever negotiated for it (reading makes no store).
    func existingClient(for customer: String) async -> Client? {
        if let client = clients[customer] { return client }
        guard FileManager.default.fileExists(atPath: storePath(for: customer)) else { return nil }
        return try? await client(for: customer)
    }

    func storePath(for customer: String) -> String {
        (directory as NSString).appendingPathComponent(Self.fileName(for: customer) + ".sqlite")
    }

    /// The customer's client engine, made (and its open orders resumed) on first use.
    func client(for customer: String) async throws -> Client {
        if let client = clients[customer] { return client }
        guard !isShutDown else { throw CPNPClientError.invalidArgument("the portal is shutting down") }
        if let pending = opening[customer] { return try await pending.value }
        let task = Task { try await open(customer) }
        opening[customer] = task
        defer { opening[customer] = nil }
        let client = try await task.value
        clients[customer] = client
        return client
    }

    private func open(_ customer: String) async throws -> Client {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = storePath(for: customer)
        let store = try ClientOrderStore(path: path)
        let transport = PortalTransport(customer: customer, engine: engine)
        transports.withLock { $0[customer] = transport }
        var clientLogger = logger
        clientLogger[metadataKey: "portal-customer"] = "\(customer)"
        // The provider may hold an order for an operator for hours (RFC 8921 §12.2, more time §9.2.2):
        // the portal's customers wait, as a person at a CPNP client would.
        let configuration = CPNPClientEngine.Configuration(moreTime: GrantMoreTime(upTo: Self.longestWait))
        let client = CPNPClientEngine(transport: transport, store: store, configuration: configuration, logger: clientLogger)
        await client.start()
        for order in try store.openOrders() {
            do { try await client.resume(order.customerOrderID) } catch {
                logger.warning("customer portal: cannot resume an order", metadata: ["order": "\(order.customerOrderID)", "error": "\(error)"])
            }
        }
        // An offer waits for a person: PROCESSING tells the provider so, and it stops retransmitting
        // the OFFER (RFC 8921 Figure 8, OfferReceived → OfferProcessing).
        let updates = Task { [logger] in
            for await update in client.updates {
                guard case .offerReceived = update.event else { continue }
                do { try await client.acknowledgeOffer(update.customerOrderID) } catch {
                    logger.debug("customer portal: offer not acknowledged", metadata: ["order": "\(update.customerOrderID)", "error": "\(error)"])
                }
            }
        }
        logger.info("customer portal: client loaded", metadata: ["customer": "\(customer)", "store": "\(path)"])
        return Client(engine: client, store: store, transport: transport, updates: updates)
    }

    // MARK: - What the portal's pages do

    /// Requests a quote for `template` with the customer's values (RFC 8921 §9.2.1) and returns its
    /// customer order id; the answer arrives in the background.
    public func quote(_ template: CatalogTemplate, values: [JSONPath: String], customer: String) async throws -> CustomerOrderID {
        let request = try template.cpd.filling(values)
        let client = try await client(for: customer)
        let options = InformationElements(negotiationOptions: NegotiationOptions(costRequested: true))
        return try await client.engine.quote(request, informationElements: options, to: PortalTransport.server, group: "catalog:\(template.id)")
    }

    /// Requests a quote for `request` as customer order `customerOrderID` (RFC 8921 §9.2.1).
    public func quote(
        _ request: CPD, customer: String, customerOrderID: CustomerOrderID?, group: String, activationType: ActivationType? = nil
    ) async throws -> CustomerOrderID {
        let client = try await client(for: customer)
        let options = InformationElements(negotiationOptions: NegotiationOptions(activationType: activationType, costRequested: true))
        return try await client.engine.quote(
            request, informationElements: options, to: PortalTransport.server, customerOrderID: customerOrderID, group: group)
    }

    /// The customer's portal orders, newest first, with the catalogue template each came from.
    public func orders(customer: String, limit: Int = 1_000) async -> [(order: ClientOrderStateMachine, group: String?)] {
        guard let client = await existingClient(for: customer) else { return [] }
        let stored = (try? client.store.orders(limit: limit)) ?? []
        var out: [(order: ClientOrderStateMachine, group: String?)] = []
        for storedOrder in stored {
            out.append(((try? await client.engine.order(storedOrder.customerOrderID)) ?? storedOrder.machine, storedOrder.group))
        }
        return out
    }

    /// The group an order was made in (`catalog:ID` for a catalogue template, `api` otherwise).
    public func group(of customerOrderID: CustomerOrderID, customer: String) async -> String? {
        guard let client = await existingClient(for: customer) else { return nil }
        return (try? client.store.order(customerOrderID: customerOrderID))?.group
    }

    /// Waits (at most `patience`) for the provider's first answer to the order's request.
    public func awaitFirstAnswer(_ customerOrderID: CustomerOrderID, customer: String, patience: Duration) async throws {
        let client = try await client(for: customer)
        try await Self.briefly(patience) { _ = try await client.engine.awaitFirstAnswer(customerOrderID) }
    }

    /// Cancels the negotiation in progress (§9.2.7), waiting briefly for the provider's answer.
    public func cancel(_ customerOrderID: CustomerOrderID, customer: String, patience: Duration = .seconds(3)) async throws {
        let client = try await client(for: customer)
        try await Self.briefly(patience) { _ = try await client.engine.cancel(customerOrderID) }
    }

    /// Renegotiates the agreement (§9.2.9) and waits briefly for the provider's first answer.
    public func update(_ customerOrderID: CustomerOrderID, request: CPD, customer: String, patience: Duration = .seconds(2)) async throws {
        let client = try await client(for: customer)
        let options = InformationElements(negotiationOptions: NegotiationOptions(costRequested: true))
        try await client.engine.update(customerOrderID, request: request, informationElements: options)
        try await Self.briefly(patience) { _ = try await client.engine.awaitFirstAnswer(customerOrderID) }
    }

    /// Activates, schedules or deactivates the agreement (§9.2.11) and waits for the ACK.
    public func activate(_ customerOrderID: CustomerOrderID, _ schedule: ActivationSchedule, customer: String) async throws {
        _ = try await client(for: customer).engine.activate(customerOrderID, schedule)
    }

    /// Withdraws the agreement (§9.2.8) and waits for the provider's final ACK (bounded).
    public func withdraw(_ customerOrderID: CustomerOrderID, customer: String, timeout: Duration = .seconds(30)) async throws {
        try await client(for: customer).engine.withdraw(customerOrderID, timeout: timeout)
    }

    /// The customer's portal order, if the portal made it.
    public func order(_ customerOrderID: CustomerOrderID, customer: String) async -> ClientOrderStateMachine? {
        guard let client = await existingClient(for: customer) else { return nil }
        return try? await client.engine.order(customerOrderID)
    }

    /// The customer order ids of the portal's orders of `customer` (the newest 1,000).
    public func orderIDs(customer: String) async -> Set<CustomerOrderID> {
        guard let client = await existingClient(for: customer) else { return [] }
        return Set((try? client.store.orders(limit: 1_000).map(\.customerOrderID)) ?? [])
    }

    /// Accepts the offer (§9.2.4). Returns once the ACK came, or after `patience` with the ACCEPT
    /// still in flight (the engine retransmits it).
    public func accept(_ customerOrderID: CustomerOrderID, customer: String, patience: Duration = .seconds(3)) async throws {
        let client = try await client(for: customer)
        try await Self.briefly(patience) { _ = try await client.engine.accept(customerOrderID) }
    }

    /// Declines the offer (§9.2.5).
    public func decline(_ customerOrderID: CustomerOrderID, reasons: [DeclineReason], customer: String) async throws {
        try await client(for: customer).engine.decline(customerOrderID, reasons: reasons)
    }

    /// Stops every client (stored orders stay).
    public func shutdown() async {
        isShutDown = true
        for client in clients.values {
            client.updates.cancel()
            await client.engine.shutdown()
        }
        clients = [:]
        transports.withLock { $0 = [:] }
    }

    /// Runs `body`, returning when it ends or after `patience`, whichever comes first; `body` keeps
    /// running in the background. Its error is thrown if it failed within the patience.
    static func briefly(_ patience: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        let work = Task { try await body() }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await work.value
                return true
            }
            group.addTask {
                try? await Task.sleep(for: patience)
                return false
            }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    // MARK: - Store files

    /// The store's file name for a customer: its identity with every byte other than a letter,
    /// digit, `-` or `.` written `_XX` (hex), so that any identity is a safe, reversible name.
    static func fileName(for customer: String) -> String {
        var out = ""
        for byte in customer.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if byte < 0x80, character.isLetter || character.isNumber || character == "-" || (character == "." && !out.isEmpty) {
                out.append(character)
            } else {
                out += "_" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    static func customer(fromFileName name: String) -> String? {
        var bytes: [UInt8] = []
        var index = name.utf8.startIndex
        let utf8 = name.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "_") {
                let hexStart = utf8.index(after: index)
                guard let hexEnd = utf8.index(hexStart, offsetBy: 2, limitedBy: utf8.endIndex),
                    let value = UInt8(String(decoding: utf8[hexStart..<hexEnd], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
                index = hexEnd
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
