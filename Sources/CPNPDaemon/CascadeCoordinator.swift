import CPNPClient
public import CPNPCore
public import CPNPPolicy
public import CPNPServer
public import CPNPStorage
public import CPNPTransport
import Crypto
import Foundation
public import Logging
import Synchronization

/// Negotiates cpnpd's child orders with its upstream providers (RFC 8921 §8.8, Figure 7;
/// docs/cascade.md): one ``CPNPClientEngine`` per upstream over DTLS, all on one client store where
/// each child order's group is its parent's provider order id. The same engine and store as `cpnp`
/// give retransmission and resumption after a crash (§11.1, §11.3–11.4).
public actor CascadeCoordinator: ChildOrderNegotiator {
    struct Upstream {
        var provider: UpstreamProvider
        var engine: CPNPClientEngine
        var peer: CPNPPeer
        var transport: any CPNPTransport

        /// Whether `order` was negotiated with this upstream.
        func serves(_ order: StoredClientOrder) -> Bool {
            order.serverAddress == CPNPClientEngine.storedAddress(of: peer)
        }
    }

    nonisolated let configuration: ServerConfiguration
    nonisolated let engine: CPNPServerEngine
    nonisolated let logger: Logger
    /// The child orders, every upstream's (`cascade.store`).
    public nonisolated let store: ClientOrderStore
    /// Parents with child orders, read without waiting for the actor.
    private nonisolated let parentsWithChildren = Mutex<Set<ProviderOrderID>>([])
    private var upstreams: [String: Upstream] = [:]
    private var running: [ProviderOrderID: Task<Void, Never>] = [:]
    /// Parents whose negotiation ended while their children were negotiated.
    private var ended: Set<ProviderOrderID> = []
    /// For a parent renegotiating (UPDATE): the children updated in this round, with the CPD they
    /// had agreed before, to go back to if the customer's UPDATE ends without agreement.
    private var updatedChildren: [ProviderOrderID: [CustomerOrderID: CPD]] = [:]
    /// The children the parent's latest offer rests on: once it is agreed, the others (nodes an
    /// UPDATE removed) are withdrawn.
    private var chosenInRound: [ProviderOrderID: Set<CustomerOrderID>] = [:]
    /// Wraps each upstream's transport (tests: `ChaosTransport` on the upstream leg).
    nonisolated let wrapTransport: (@Sendable (any CPNPTransport, _ upstream: String) -> any CPNPTransport)?

    /// - Parameters:
    ///   - configuration: the daemon's configuration (`upstreams`, `cascade`).
    ///   - engine: the server engine whose orders are the parents.
    ///   - wrapTransport: wraps each upstream's transport (tests: fault injection on the upstream leg).
    public init(
        configuration: ServerConfiguration, engine: CPNPServerEngine, logger: Logger,
        wrapTransport: (@Sendable (any CPNPTransport, _ upstream: String) -> any CPNPTransport)? = nil
    ) throws {
        self.wrapTransport = wrapTransport
        self.configuration = configuration
        self.engine = engine
        self.logger = logger
        let path = configuration.cascadeStorePath
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        store = try ClientOrderStore(path: path)
    }

    /// Opens a client engine per upstream (on the local port its open child orders use, so their
    /// transactions keep their 4-tuple, §8.3) and notes which parents have children. Call before the
    /// server engine recovers its orders.
    public func start() async throws {
        let open = try store.openOrders()
        parentsWithChildren.withLock { set in
            for order in open { if let group = order.group, let parent = ProviderOrderID(group) { set.insert(parent) } }
        }
        for provider in configuration.upstreams {
            let target = try CPNPServerTarget(parsing: provider.address)
            guard let peer = try await CPNPServerLocator.peers(for: target).first else { continue }
            let address = CPNPClientEngine.storedAddress(of: peer)
            let mine = open.filter { $0.serverAddress == address }
            let port = mine.compactMap { $0.machine.transaction.map { Int($0.session.local.port) } }.last ?? 0
            let security = try CPNPSecurityConfiguration(
                certificateFile: provider.certificateFile, keyFile: provider.keyFile, trustRootsFile: provider.caFile)
            var transportLogger = logger
            transportLogger[metadataKey: "upstream"] = "\(provider.name)"
            let transport: DTLSTransport
            do {
                transport = try await DTLSTransport.client(
                    bindingTo: "0.0.0.0", port: port, configuration: DTLSTransportConfiguration(security: security), logger: transportLogger)
            } catch  where port != 0 {
                logger.warning(
                    "cascade: the child orders' local port is taken; a new one is used",
                    metadata: ["upstream": "\(provider.name)", "port": "\(port)"])
                transport = try await DTLSTransport.client(
                    bindingTo: "0.0.0.0", port: 0, configuration: DTLSTransportConfiguration(security: security), logger: transportLogger)
            }
            // A provider's upstream leg retries longer than a person's client: the customer waits on it.
            let retransmission = RetransmissionPolicy(
                initialInterval: configuration.timers.retransmissionInitial, maximumRetries: max(configuration.timers.retransmissionMaxRetries, 5))
            let clientConfiguration = CPNPClientEngine.Configuration(
                // A WITHDRAW answered PROCESSING whose ACK is lost is repeated at the shortest interval
                // allowed (docs/protocol.md §6, A1).
                machine: .init(retransmission: retransmission, withdrawalRetryInterval: .seconds(60)),
                expectedResponseTime: provider.expectedResponseTime,
                moreTime: GrantMoreTime(upTo: .seconds(3_600)))
            let wrapped = wrapTransport?(transport, provider.name) ?? transport
            let client = CPNPClientEngine(transport: wrapped, store: store, configuration: clientConfiguration, logger: transportLogger)
            await client.start()
            upstreams[provider.name] = Upstream(provider: provider, engine: client, peer: peer, transport: wrapped)
        }
        logger.info(
            "cascade: upstream providers ready",
            metadata: [
                "upstreams": "\(configuration.upstreams.map(\.name).joined(separator: ", "))", "store": "\(configuration.cascadeStorePath)",
            ])
    }

    /// After the server engine recovered: resumes every open child order (timers re-armed,
    /// transactions retransmitted) and winds down those whose parent ended meanwhile.
    public func reconcile() async {
        guard let open = try? store.openOrders() else { return }
        for child in open {
            guard let group = child.group, let parent = ProviderOrderID(group), let upstream = upstream(of: child) else { continue }
            do { try await upstream.engine.resume(child.customerOrderID) } catch {
                logger.warning("cascade: cannot resume a child order", metadata: ["child": "\(child.customerOrderID)", "error": "\(error)"])
                continue
            }
            let state = await engine.parentState(parent)
            if state == nil || state?.isOpen == false {
                await windDown(child.customerOrderID, upstream, why: "its parent \(parent) ended")
            }
        }
    }

    /// Stops the upstream engines; stored child orders stay.
    public func shutdown() async {
        for task in running.values { task.cancel() }
        for upstream in upstreams.values {
            if let chaos = upstream.transport as? ChaosTransport {
                let (sent, received) = (chaos.counters(.outgoing), chaos.counters(.incoming))
                logger.notice(
                    "cascade: faults injected on the upstream leg",
                    metadata: [
                        "upstream": "\(upstream.provider.name)", "sent": "\(sent.messages)", "sent-dropped": "\(sent.dropped)",
                        "sent-duplicated": "\(sent.duplicated)", "received": "\(received.messages)", "received-dropped": "\(received.dropped)",
                        "received-duplicated": "\(received.duplicated)",
                    ])
            }
            await upstream.engine.shutdown()
        }
    }

    public nonisolated func hasChildren(_ parent: ProviderOrderID) -> Bool {
        parentsWithChildren.withLock { $0.contains(parent) }
    }

    // MARK: - Negotiating the children (RFC 8921 §8.8, Figure 7)

    public func negotiate(_ request: ChildOrderRequest) async {
        parentsWithChildren.withLock { _ = $0.insert(request.parent) }
        ended.remove(request.parent)
        guard running[request.parent] == nil else { return }
        running[request.parent] = Task { await self.run(request) }
    }

    /// A child order of one round: the upstream's answer to one segment.
    struct Candidate {
        var segment: UpstreamSegment
        var upstream: Upstream
        var id: CustomerOrderID
        var offer: OfferMessage?
        var agreement: Agreement?
        var failure: String?

        var cpd: CPD? { agreement?.acceptedCPD ?? offer?.offeredCPD }
        var cost: Cost? { offer?.informationElements?.cost ?? agreement?.informationElements?.cost }
    }

    private func run(_ request: ChildOrderRequest) async {
        defer { running[request.parent] = nil }
        var candidates: [Candidate] = []
        for segment in request.segments {
            guard let upstream = upstreams[segment.upstream] else { continue }
            do {
                let customerOrderID = try await startChild(request, segment, upstream)
                candidates.append(Candidate(segment: segment, upstream: upstream, id: customerOrderID))
            } catch {
                logger.warning(
                    "cascade: child order not sent",
                    metadata: ["parent": "\(request.parent)", "upstream": "\(segment.upstream)", "error": "\(error)"])
            }
        }
        // The answers, in parallel.
        candidates = await withTaskGroup(of: (Int, Candidate).self) { group in
            for (index, candidate) in candidates.enumerated() {
                group.addTask { (index, await Self.answer(candidate)) }
            }
            var out = candidates
            for await (index, answered) in group { out[index] = answered }
            return out
        }
        for candidate in candidates {
            let what =
                candidate.agreement != nil
                ? "agreement in force"
                : candidate.offer.map {
                    "OFFER received (provider order \($0.providerOrderID)\($0.informationElements?.cost.map { ", \($0)" } ?? ""))"
                }
                    ?? "no offer: \(candidate.failure ?? "?")"
            await engine.recordChildOrderEvent(request.parent, "child order \(candidate.id) at \(candidate.upstream.provider.name): \(what)")
        }
        guard !ended.contains(request.parent) else {
            for candidate in candidates { await windDown(candidate.id, candidate.upstream, why: "the parent's negotiation ended") }
            return
        }
        // The best offer for each set of nodes: those satisfying their request, then the most nodes,
        // then the lowest resale price; the others are declined (reason 2, another offer was chosen).
        let priced = candidates.map { candidate in (candidate, resalePrice(candidate, currency: request.currency)) }
        // An offer is resold at its price plus the markup: an unpriced one (or priced in another
        // currency) cannot be.
        let usable = priced.filter { candidate, price in candidate.cpd != nil && price != nil }
        let ranked = usable.sorted { first, second in
            let (firstSatisfies, secondSatisfies) = (satisfies(first.0), satisfies(second.0))
            if firstSatisfies != secondSatisfies { return firstSatisfies }
            let firstNodes = first.0.cpd?.customerNodeIdentifiers.count ?? 0
            let secondNodes = second.0.cpd?.customerNodeIdentifiers.count ?? 0
            if firstNodes != secondNodes { return firstNodes > secondNodes }
            switch (first.1, second.1) {
            case (let firstPrice?, let secondPrice?): return firstPrice < secondPrice
            case (.some, nil): return true
            default: return false
            }
        }
        var covered: Set<String> = []
        var chosen: [ChosenChild] = []
        for (candidate, price) in ranked {
            let nodes = Set(candidate.cpd?.customerNodeIdentifiers ?? [])
            guard covered.isDisjoint(with: nodes) else {
                await windDown(candidate.id, candidate.upstream, why: "another provider's offer was chosen", reason: .conflictWithAnotherOffer)
                await engine.recordChildOrderEvent(
                    request.parent, "child order \(candidate.id) at \(candidate.upstream.provider.name): declined, another offer was chosen")
                continue
            }
            if let agreement = candidate.agreement {
                covered.formUnion(nodes)
                chosen.append(
                    ChosenChild(
                        upstream: candidate.upstream.provider.name, customerOrderID: candidate.id, cpd: agreement.acceptedCPD, resalePrice: price))
                continue
            }
            guard let offer = candidate.offer else { continue }
            if configuration.cascade.acceptChildren == .afterAccept {
                do { try await candidate.upstream.engine.acknowledgeOffer(candidate.id) } catch {}
                covered.formUnion(nodes)
                chosen.append(
                    ChosenChild(
                        upstream: candidate.upstream.provider.name, customerOrderID: candidate.id, cpd: offer.offeredCPD, resalePrice: price,
                        validUntil: offer.validityOfferTime))
                continue
            }
            do {
                let agreement = try await candidate.upstream.engine.accept(candidate.id)
                covered.formUnion(nodes)
                chosen.append(
                    ChosenChild(
                        upstream: candidate.upstream.provider.name, customerOrderID: candidate.id, cpd: agreement.acceptedCPD, resalePrice: price))
                await engine.recordChildOrderEvent(
                    request.parent,
                    "child order \(candidate.id) at \(candidate.upstream.provider.name): ACCEPT sent, ACK received (provider order \(agreement.providerOrderID))"
                )
            } catch {
                logger.warning(
                    "cascade: child offer not accepted", metadata: ["parent": "\(request.parent)", "child": "\(candidate.id)", "error": "\(error)"])
                await engine.recordChildOrderEvent(
                    request.parent, "child order \(candidate.id) at \(candidate.upstream.provider.name): ACCEPT failed: \(error)")
            }
        }
        for (candidate, _) in priced where candidate.cpd != nil && !usable.contains(where: { $0.0.id == candidate.id }) {
            await windDown(candidate.id, candidate.upstream, why: "unpriced, or not priced in \(request.currency)", reason: .unacceptableGap)
            await engine.recordChildOrderEvent(
                request.parent, "child order \(candidate.id) at \(candidate.upstream.provider.name): declined, unpriced or not in \(request.currency)"
            )
        }
        chosenInRound[request.parent] = Set(chosen.map(\.customerOrderID))
        guard !ended.contains(request.parent) else {
            for child in chosen {
                if let upstream = upstreams[child.upstream] { await windDown(child.customerOrderID, upstream, why: "the parent's negotiation ended") }
            }
            return
        }
        let offered = await engine.childOrdersSettled(request.parent, transactionID: request.parentTransactionID, children: chosen)
        if !offered {
            for child in chosen {
                if let upstream = upstreams[child.upstream] {
                    await windDown(child.customerOrderID, upstream, why: "no offer was made to the customer")
                }
            }
        }
    }

    /// Sends the segment's QUOTATION (or, for an UPDATE of the parent, the child's UPDATE), unless a
    /// previous run of this round did: a resumed cascade finds its child orders by their ids.
    private func startChild(_ request: ChildOrderRequest, _ segment: UpstreamSegment, _ upstream: Upstream) async throws -> CustomerOrderID {
        var informationElements = request.informationElements
        informationElements.customerDescription = upstream.provider.customerDescription
        if request.isUpdate,
            let agreed = try store.orders(group: request.parent.rawValue).last(where: {
                $0.isOpen && upstream.serves($0) && $0.machine.agreement != nil
            })
        {
            let machine = try await upstream.engine.resume(agreed.customerOrderID)
            let inFlight = machine.transaction?.kind == .update && machine.state != .completed
            if !inFlight && !(machine.agreement.map { $0.acceptedCPD.comparison(against: segment.request).satisfies } ?? false) {
                if let previous = machine.agreement?.acceptedCPD { updatedChildren[request.parent, default: [:]][agreed.customerOrderID] = previous }
                try await upstream.engine.update(agreed.customerOrderID, request: segment.request, informationElements: informationElements)
                await engine.recordChildOrderEvent(
                    request.parent,
                    "child order \(agreed.customerOrderID) at \(upstream.provider.name): UPDATE sent for \(segment.nodes.joined(separator: ", "))")
            }
            return agreed.customerOrderID
        }
        let customerOrderID = Self.childOrderID(
            parent: request.parent, upstream: upstream.provider.name,
            transactionID: request.parentTransactionID)
        if try store.order(customerOrderID: customerOrderID) != nil {
            try await upstream.engine.resume(customerOrderID)
            return customerOrderID
        }
        if let limit = upstream.provider.maxOpenOrders, try store.openOrders().filter(upstream.serves).count >= limit {
            await engine.recordChildOrderEvent(request.parent, "no child order at \(upstream.provider.name): \(limit) open already (max-open-orders)")
            throw CPNPClientError.invalidArgument("\(upstream.provider.name) has \(limit) open child orders already (max-open-orders)")
        }
        _ = try await upstream.engine.quote(
            segment.request, informationElements: informationElements, to: upstream.peer, customerOrderID: customerOrderID,
            group: request.parent.rawValue)
        await engine.recordChildOrderEvent(
            request.parent, "child order \(customerOrderID) at \(upstream.provider.name): QUOTATION sent for \(segment.nodes.joined(separator: ", "))"
        )
        return customerOrderID
    }

    /// Waits for the child's answer to its open QUOTATION or UPDATE (or finds it agreed already).
    private static func answer(_ candidate: Candidate) async -> Candidate {
        var answered = candidate
        do {
            let machine = try await answered.upstream.engine.order(answered.id)
            if machine.state == .completed, machine.transaction?.pending == nil, let agreement = machine.agreement,
                agreement.acceptedCPD.comparison(against: answered.segment.request).satisfies || machine.offer == nil
            {
                answered.agreement = agreement
                return answered
            }
            // A refused handshake may be passing (the upstream still holds the association of a
            // previous process on this port): the retransmissions go on until the response time.
            let deadline = ContinuousClock.now + answered.upstream.provider.expectedResponseTime
            while true {
                do {
                    switch try await answered.upstream.engine.awaitOffer(answered.id) {
                    case .offer(let offer): answered.offer = offer
                    case .ended(let end): answered.failure = "\(end)"
                    }
                    break
                } catch CPNPClientError.transport(let error) where ContinuousClock.now < deadline {
                    answered.failure = "\(error)"
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
        } catch {
            answered.failure = "\(error)"
        }
        return answered
    }

    private func satisfies(_ candidate: Candidate) -> Bool {
        candidate.cpd?.comparison(against: candidate.segment.request).satisfies ?? false
    }

    /// The child's price with the upstream's markup, in `currency`; nil when unpriced or priced in
    /// another currency (or not in the upstream's `resale.currency`).
    private func resalePrice(_ candidate: Candidate, currency: String) -> CPNPDecimal? {
        guard let cost = candidate.cost, cost.currency == currency, candidate.upstream.provider.currency.map({ $0 == cost.currency }) ?? true else {
            return nil
        }
        let price = cost.amount + cost.amount * candidate.upstream.provider.markupPercent * CPNPDecimal(parsing: "0.01")!
        return price.rounded(fractionDigits: Cost.minorUnitDigits(currency))
    }

    // MARK: - What the parent's fate does to its children

    public func acceptChildren(of parent: ProviderOrderID) async -> Bool {
        let children = (try? store.orders(group: parent.rawValue)) ?? []
        var accepted = true
        for child in children where child.isOpen && [.offerReceived, .offerProcessing, .acceptSent].contains(child.machine.state) {
            guard let upstream = upstream(of: child) else { continue }
            do {
                if child.machine.state == .acceptSent {
                    _ = try await upstream.engine.resume(child.customerOrderID)
                    let machine = try await upstream.engine.awaitAgreement(child.customerOrderID)
                    guard machine.state == .completed else {
                        throw CPNPClientError.invalidArgument("the child order ended in \(machine.state.rawValue)")
                    }
                } else {
                    let agreement = try await upstream.engine.accept(child.customerOrderID)
                    await engine.recordChildOrderEvent(
                        parent,
                        "child order \(child.customerOrderID) at \(upstream.provider.name): ACCEPT sent after the customer's, ACK received (provider order \(agreement.providerOrderID))"
                    )
                }
            } catch {
                logger.warning(
                    "cascade: a child offer could not be accepted after the customer's ACCEPT",
                    metadata: [
                        "parent": "\(parent)", "child": "\(child.customerOrderID)", "error": "\(error)",
                    ])
                accepted = false
            }
        }
        return accepted
    }

    public func parentChanged(_ parent: ProviderOrderID, _ change: ParentOrderChange) async {
        let children = (try? store.orders(group: parent.rawValue)) ?? []
        switch change {
        case .negotiationEnded(let agreementKept):
            if running[parent] != nil { ended.insert(parent) }
            chosenInRound[parent] = nil
            let updated = updatedChildren.removeValue(forKey: parent) ?? [:]
            for child in children where child.isOpen {
                guard let upstream = upstream(of: child) else { continue }
                // A QUOTATION's children go. After an UPDATE that ended, the agreement in force stays:
                // children updated for it go back to what they had agreed (§9.2.9).
                guard agreementKept, child.machine.agreement != nil, child.machine.state == .completed else {
                    await windDown(child.customerOrderID, upstream, why: "the customer's negotiation ended")
                    continue
                }
                if let previous = updated[child.customerOrderID] { await revert(child.customerOrderID, to: previous, upstream, parent: parent) }
            }
        case .agreementReached(let customerNodes):
            // The children the agreement rests on stay: those chosen for its offer, or (an UPDATE
            // decided without upstreams) those holding one of its nodes. The others go.
            updatedChildren[parent] = nil
            let chosen = chosenInRound.removeValue(forKey: parent)
            let agreed = Set(customerNodes)
            for child in children where child.isOpen && child.machine.agreement != nil {
                let nodes = Set(child.machine.agreement?.acceptedCPD.customerNodeIdentifiers ?? [])
                guard !(chosen.map { $0.contains(child.customerOrderID) } ?? !nodes.isDisjoint(with: agreed)), let upstream = upstream(of: child)
                else { continue }
                await windDown(child.customerOrderID, upstream, why: "the customer's agreement no longer holds its nodes")
            }
        case .withdrawn:
            for child in children where child.isOpen {
                guard let upstream = upstream(of: child) else { continue }
                await windDown(child.customerOrderID, upstream, why: "the customer withdrew the agreement")
            }
        case .activationChanged(let status):
            let schedule: ActivationSchedule =
                switch status {
                case .active: .now
                case .inactive: .deactivate
                case .scheduled(let time): .at(time)
                }
            for child in children where child.isOpen && child.machine.agreement?.activationType == .explicit {
                guard let upstream = upstream(of: child) else { continue }
                do { _ = try await upstream.engine.activate(child.customerOrderID, schedule) } catch {
                    logger.warning(
                        "cascade: ACTIVATE not confirmed by the upstream", metadata: ["child": "\(child.customerOrderID)", "error": "\(error)"])
                }
            }
        }
        if (try? store.orders(group: parent.rawValue).contains(where: \.isOpen)) == false {
            parentsWithChildren.withLock { _ = $0.remove(parent) }
        }
    }

    /// Renegotiates a child agreement back to `previous` (UPDATE, accepted as offered).
    private func revert(_ customerOrderID: CustomerOrderID, to previous: CPD, _ upstream: Upstream, parent: ProviderOrderID) async {
        do {
            try await upstream.engine.update(
                customerOrderID, request: previous,
                informationElements: InformationElements(negotiationOptions: NegotiationOptions(costRequested: true)))
            guard case .offer = try await upstream.engine.awaitOffer(customerOrderID) else {
                throw CPNPClientError.invalidArgument("no offer for the previous agreement")
            }
            _ = try await upstream.engine.accept(customerOrderID)
            await engine.recordChildOrderEvent(
                parent, "child order \(customerOrderID) at \(upstream.provider.name): back to its previous agreement (the customer's UPDATE ended)")
        } catch {
            logger.error(
                "cascade: a child agreement updated for an UPDATE that ended could not go back",
                metadata: [
                    "parent": "\(parent)", "child": "\(customerOrderID)", "error": "\(error)",
                ])
        }
    }

    /// Ends a child order whatever its state: WITHDRAW an agreement, DECLINE an offer, CANCEL a request.
    private func windDown(_ customerOrderID: CustomerOrderID, _ upstream: Upstream, why: String, reason: DeclineReason = .conflictWithAnotherOffer)
        async
    {
        do {
            let machine = try await upstream.engine.resume(customerOrderID)
            switch machine.state {
            case .completed where machine.agreement != nil:
                logger.info(
                    "cascade: child order withdrawn",
                    metadata: ["child": "\(customerOrderID)", "upstream": "\(upstream.provider.name)", "why": "\(why)"])
                try await upstream.engine.withdraw(customerOrderID, timeout: .seconds(150))
            case .offerReceived, .offerProcessing:
                logger.info(
                    "cascade: child offer declined",
                    metadata: ["child": "\(customerOrderID)", "upstream": "\(upstream.provider.name)", "why": "\(why)"])
                try await upstream.engine.decline(customerOrderID, reasons: [reason])
            case .pqoSent, .serverProcessing, .acceptSent:
                logger.info(
                    "cascade: child order cancelled",
                    metadata: ["child": "\(customerOrderID)", "upstream": "\(upstream.provider.name)", "why": "\(why)"])
                _ = try await upstream.engine.cancel(customerOrderID)
            default:
                break
            }
        } catch {
            logger.warning(
                "cascade: child order not wound down",
                metadata: ["child": "\(customerOrderID)", "upstream": "\(upstream.provider.name)", "error": "\(error)"])
        }
    }

    private func upstream(of child: StoredClientOrder) -> Upstream? {
        upstreams.values.first { $0.serves(child) }
    }

    /// A child order's customer order id: the same for the same parent, upstream and parent
    /// transaction, so a cascade resumed after a crash re-sends the same QUOTATION (§11.3).
    static func childOrderID(parent: ProviderOrderID, upstream: String, transactionID: TransactionID) -> CustomerOrderID {
        let digest = SHA256.hash(data: Data("\(parent.rawValue)\u{0}\(upstream)\u{0}\(transactionID.rawValue)".utf8))
        return CustomerOrderID("co-" + digest.prefix(12).map { String(format: "%02x", $0) }.joined())!
    }
}
