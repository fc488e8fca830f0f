public import CPNPCore
import CPNPPolicy
import CPNPRuntime
import CPNPStorage
import Logging

/// Negotiates child orders with upstream providers for orders the local network cannot serve alone
/// (RFC 8921 §8.8, Figure 7; docs/cascade.md). cpnpd's `CascadeCoordinator` implements it.
public protocol ChildOrderNegotiator: Sendable {
    /// Starts, or resumes after a restart, the child orders of a parent held in AwaitingProcessing.
    /// The answer comes back through ``CPNPServerEngine/childOrdersSettled(_:transactionID:children:)``.
    func negotiate(_ request: ChildOrderRequest) async
    /// What became of a parent with child orders, once it is durable.
    func parentChanged(_ parent: ProviderOrderID, _ change: ParentOrderChange) async
    /// Whether `parent` has child orders (read without waiting).
    func hasChildren(_ parent: ProviderOrderID) -> Bool
    /// With `accept-children: after-accept`: accepts the parent's child offers once the customer
    /// accepted; false when one could not be accepted.
    func acceptChildren(of parent: ProviderOrderID) async -> Bool
}

/// The part of a request one upstream provider is asked for (RFC 8921 §8.9).
public struct UpstreamSegment: Sendable, Hashable {
    /// `upstreams[].name`.
    public var upstream: String
    /// The customer nodes it is asked for.
    public var nodes: [String]
    /// The request restricted to them.
    public var request: CPD

    public init(upstream: String, nodes: [String], request: CPD) {
        self.upstream = upstream
        self.nodes = nodes
        self.request = request
    }
}

/// The child orders a parent needs (RFC 8921 §8.8).
public struct ChildOrderRequest: Sendable, Hashable {
    public var parent: ProviderOrderID
    /// The parent's transaction (its QUOTATION or UPDATE): child orders are named after it, so a
    /// resumed cascade finds the ones it made.
    public var parentTransactionID: TransactionID
    /// Whether the parent is renegotiating its agreement (UPDATE, §9.2.9).
    public var isUpdate: Bool
    /// One segment per eligible upstream; a node may be in several (each is asked).
    public var segments: [UpstreamSegment]
    /// The information elements of the child requests: the parent's options, the price asked for,
    /// and the provider chain with this provider added.
    public var informationElements: InformationElements
    /// The currency of the local price list: offers priced otherwise are not resold.
    public var currency: String

    public init(
        parent: ProviderOrderID, parentTransactionID: TransactionID, isUpdate: Bool, segments: [UpstreamSegment],
        informationElements: InformationElements, currency: String
    ) {
        self.parent = parent
        self.parentTransactionID = parentTransactionID
        self.isUpdate = isUpdate
        self.segments = segments
        self.informationElements = informationElements
        self.currency = currency
    }
}

/// A child order chosen for the parent's offer: agreed (Figure 7) or offered (`accept-children: after-accept`).
public struct ChosenChild: Sendable, Hashable {
    public var upstream: String
    public var customerOrderID: CustomerOrderID
    /// Its agreed (or offered) CPD.
    public var cpd: CPD
    /// Its price with the resale markup, in the local currency; nil when unpriced.
    public var resalePrice: CPNPDecimal?
    /// Until when its offer is valid, when not yet accepted.
    public var validUntil: CPNPTimestamp?

    public init(upstream: String, customerOrderID: CustomerOrderID, cpd: CPD, resalePrice: CPNPDecimal?, validUntil: CPNPTimestamp? = nil) {
        self.upstream = upstream
        self.customerOrderID = customerOrderID
        self.cpd = cpd
        self.resalePrice = resalePrice
        self.validUntil = validUntil
    }
}

/// What happened to a parent order, for its children (RFC 8921 §8.8).
public enum ParentOrderChange: Sendable, Hashable {
    /// The negotiation ended without agreement (DECLINE, CANCEL, offer expiry, FAIL); for an UPDATE
    /// the agreement in force stays.
    case negotiationEnded(agreementKept: Bool)
    /// The customer accepted: the agreement on `customerNodes` is in force (with `after-accept`, its
    /// children were accepted first, ``ChildOrderNegotiator/acceptChildren(of:)``).
    case agreementReached(customerNodes: [String])
    /// The agreement was withdrawn (WITHDRAW, end of a test period).
    case withdrawn
    /// The agreement was activated, deactivated or scheduled (ACTIVATE, §9.2.11).
    case activationChanged(ActivationStatus)
}

/// An order waiting for its child orders.
struct CascadeHold: Sendable {
    /// The nodes served locally (decided again when the children are back).
    var localNodes: [String]
    /// The nodes with no network presence here (FAIL 6 when no upstream serves them, else FAIL 5).
    var withoutPresence: Set<String>
    var transactionID: TransactionID
}

extension CPNPServerEngine {
    /// Lets the engine order from upstream providers (cpnpd, when `upstreams` are configured).
    public func setChildNegotiator(_ negotiator: any ChildOrderNegotiator) {
        childNegotiator = negotiator
    }

    /// When to cascade rather than answer `decision` (RFC 8921 §8.8): the request is not served in full
    /// here, the customer did not set `local-only`, this provider is not already in its chain, and an
    /// upstream may serve a node left out.
    func childOrderRequest(_ providerOrderID: ProviderOrderID, _ live: LiveOrder, decision: Decision, profile: CustomerProfile?, now: CPNPTimestamp)
        -> (ChildOrderRequest, CascadeHold)?
    {
        guard childNegotiator != nil, !configuration.upstreams.isEmpty else { return nil }
        let machine = live.machine
        let options = machine.requestedInformationElements?.negotiationOptions
        guard options?.localOnly != true else { return nil }
        let chain = options?.providerChain ?? []
        guard !chain.contains(configuration.cascadeProviderID) else { return nil }
        switch decision {
        case .fail(let code, _) where code == .networkPresenceError || code == .outOfResources: break
        case .needsApproval(_, nil): break
        case .offer(let offer), .needsApproval(_, let offer?):
            guard Set(offer.cpd.customerNodeIdentifiers) != Set(machine.requestedCPD.customerNodeIdentifiers) else { return nil }
        default: return nil
        }
        guard
            let coverage = decisionEngine.localCoverage(
                request: machine.requestedCPD, informationElements: machine.requestedInformationElements, profile: profile,
                inventory: inventory(deciding: providerOrderID, live), now: now, updating: machine.isUpdate ? live.committed : nil),
            !coverage.elsewhere.isEmpty
        else { return nil }
        var nodesByID: [String: CPDCustomerNode] = [:]
        for component in machine.requestedCPD.components {
            for profile in component.profiles { for node in profile.customerNodes { nodesByID[node.identifier] = node } }
        }
        let remote = machine.requestedCPD.customerNodeIdentifiers.filter { coverage.elsewhere[$0] != nil }
        var segments: [UpstreamSegment] = []
        for upstream in configuration.upstreams where !chain.contains(upstream.name) {
            let nodes = remote.filter { nodesByID[$0].map(upstream.mayServe) ?? false }
            guard !nodes.isEmpty, let part = machine.requestedCPD.restricted(to: Set(nodes)) else { continue }
            segments.append(UpstreamSegment(upstream: upstream.name, nodes: nodes, request: part))
        }
        guard !segments.isEmpty else { return nil }
        var childOptions = options ?? NegotiationOptions()
        childOptions.localOnly = nil
        childOptions.costRequested = true
        childOptions.providerChain = chain + [configuration.cascadeProviderID]
        let pricing = decisionEngine.pricing(for: profile)
        let request = ChildOrderRequest(
            parent: providerOrderID, parentTransactionID: machine.transaction.id, isUpdate: machine.isUpdate, segments: segments,
            informationElements: InformationElements(negotiationOptions: childOptions), currency: pricing.currency)
        return (request, CascadeHold(localNodes: coverage.local, withoutPresence: coverage.withoutPresence, transactionID: machine.transaction.id))
    }

    /// Holds the order in AwaitingProcessing (PROCESSING with subcode 2, request external resources,
    /// §9.2.2) and has its child orders negotiated.
    func holdForChildOrders(_ providerOrderID: ProviderOrderID, _ request: ChildOrderRequest, _ hold: CascadeHold, now: CPNPTimestamp) async {
        guard let negotiator = childNegotiator, var live = orders[providerOrderID] else { return }
        live.cascade = hold
        orders[providerOrderID] = live
        let upstreams = request.segments.map { "\($0.upstream) (\($0.nodes.joined(separator: ", ")))" }.joined(separator: "; ")
        logger.notice("order needs other providers: child orders requested", metadata: ["order": "\(providerOrderID)", "upstreams": "\(upstreams)"])
        var actions: [ServerOrderStateMachine.Action] = []
        if live.machine.state == .pqoReceived {
            // The children have their expected response time, then the offer is composed.
            let slowest =
                request.segments.compactMap { segment in configuration.upstreams.first { $0.name == segment.upstream }?.expectedResponseTime }.max()
                ?? .seconds(30)
            let expectedOfferTime = now.adding(max(configuration.timers.expectedOfferTime, slowest * 2 + .seconds(30)))
            actions += mutateThrowing(providerOrderID) { machine, _ throws(OrderCommandError) in
                try machine.acknowledge(expectedOfferTime: expectedOfferTime, subcode: .requestExternalResources, now: now)
            }
        }
        let state = orders[providerOrderID]?.machine.state ?? .awaitingProcessing
        actions.append(.persist(from: state, to: state, event: "child orders requested from \(upstreams)"))
        await perform(actions, order: providerOrderID, now: now)
        Task { await negotiator.negotiate(request) }
    }

    /// The child orders of `parent` are settled (RFC 8921 §8.8, Figure 7): composes the offer to the
    /// customer from the local segment and `children` (price: local + each child's resale price),
    /// or answers FAIL when nothing (or, with `on-child-failure: fail`, not everything) can be offered.
    /// Returns whether the offer was made; when not, the caller winds the children down.
    public func childOrdersSettled(_ parent: ProviderOrderID, transactionID: TransactionID, children: [ChosenChild]) async -> Bool {
        await flushBatch()
        let now = clock.now()
        guard let live = liveOrder(parent), let hold = live.cascade, live.machine.state == .awaitingProcessing,
            live.machine.transaction.id == transactionID, hold.transactionID == transactionID
        else { return false }
        let machine = live.machine
        let profile = profile(for: live)
        var localOffer: Offer?
        var notes: [String] = []
        if let part = machine.requestedCPD.restricted(to: Set(hold.localNodes)) {
            let decision = decisionEngine.decide(
                request: part, informationElements: machine.requestedInformationElements, profile: profile, identityPresent: true,
                inventory: inventory(deciding: parent, live), now: now, updating: machine.isUpdate ? live.committed : nil, requestValidated: true)
            switch decision {
            case .offer(let offer), .needsApproval(_, let offer?): localOffer = offer
            case .fail(_, let why): notes.append("local segment: \(why)")
            case .needsApproval(_, nil): notes.append("local segment: no free capacity")
            }
        }
        let segments = (localOffer.map { [$0.cpd] } ?? []) + children.map(\.cpd)
        let covered = Set(segments.flatMap(\.customerNodeIdentifiers))
        let missing = machine.requestedCPD.customerNodeIdentifiers.filter { !covered.contains($0) }
        orders[parent]?.cascade = nil
        if segments.isEmpty || (!missing.isEmpty && configuration.cascade.onChildFailure == .fail) {
            let code: FailStatusCode = missing.contains(where: hold.withoutPresence.contains) ? .networkPresenceError : .outOfResources
            let why =
                "no provider serves customer node(s) \(missing.joined(separator: ", "))" + (notes.isEmpty ? "" : "; " + notes.joined(separator: "; "))
            logger.info("cascaded order refused", metadata: ["order": "\(parent)", "status": "\(code.rawValue)", "diagnostic": "\(why)"])
            let actions = mutateThrowing(parent) { machine, _ throws(OrderCommandError) in
                try machine.reject(code, diagnostic: String(why.prefix(250)), now: now)
            }
            await perform(actions, order: parent, now: now)
            return false
        }
        if !missing.isEmpty { notes.append("left out (no provider serves them): \(missing.joined(separator: ", "))") }
        let composed = CPD.composed(request: machine.requestedCPD, segments: segments)
        let comparison = composed.comparison(against: machine.requestedCPD)
        let options = machine.requestedInformationElements?.negotiationOptions
        let pricing = decisionEngine.pricing(for: profile)
        var cost: Cost?
        if options?.costRequested == true {
            var amount = localOffer.map { ($0.cost ?? pricing.cost(for: $0.cpd)).amount } ?? 0
            for child in children { amount += child.resalePrice ?? 0 }
            cost = Cost(amount: amount, currency: pricing.currency, period: pricing.period)
        }
        let informationElements = decisionEngine.offerInformationElements(options: options, cost: cost)
        let offer = Offer(
            cpd: composed, reservations: localOffer?.reservations ?? [], cost: cost, satisfiesRequest: comparison.satisfies,
            gaps: comparison.gaps, notes: notes, informationElements: informationElements)
        let validUntil = children.compactMap(\.validUntil).min()
        var actions = offerActions(parent, offer, now: now, validUntil: validUntil)
        guard !actions.isEmpty else { return false }
        let summary = children.map { "\($0.upstream) \($0.customerOrderID)\($0.resalePrice.map { " at \($0)" } ?? "")" }.joined(separator: ", ")
        actions.insert(
            .persist(from: machine.state, to: machine.state, event: "offer composed from the local segment and child orders: \(summary)"), at: 0)
        await perform(actions, order: parent, now: now)
        return true
    }

    /// Whether the customer's ACCEPT of `parent` must wait for its children's (`after-accept`).
    func acceptsChildrenFirst(_ parent: ProviderOrderID) -> Bool {
        configuration.cascade.acceptChildren == .afterAccept && childNegotiator?.hasChildren(parent) == true
    }

    /// With `after-accept`: the customer's ACCEPT waits, outside any batch, while the child offers
    /// are accepted; then the agreement is confirmed (ACK), or the ACCEPT is answered FAIL 5 and the
    /// children wound down (RFC 8921 §8.8, §9.2.4).
    func acceptChildrenThenConfirm(_ parent: ProviderOrderID) {
        guard let negotiator = childNegotiator else { return }
        Task {
            let accepted = await negotiator.acceptChildren(of: parent)
            await self.childrenAccepted(parent, accepted)
        }
    }

    private func childrenAccepted(_ parent: ProviderOrderID, _ accepted: Bool) async {
        await flushBatch()
        let now = clock.now()
        guard orders[parent]?.machine.state == .acceptReceived else { return }
        let actions = mutateThrowing(parent) { machine, _ throws(OrderCommandError) in
            accepted
                ? try machine.agreementConfirmed(now: now)
                : try machine.reject(.outOfResources, diagnostic: "an upstream provider's part of the offer could not be accepted", now: now)
        }
        await perform(actions, order: parent, now: now)
    }

    /// Adds an entry to the parent's audit trail about its child orders (§8.11), while it is open.
    public func recordChildOrderEvent(_ parent: ProviderOrderID, _ event: String) async {
        await flushBatch()
        guard let live = liveOrder(parent), ServerOrderStore.isOpen(live.machine) else { return }
        let state = live.machine.state
        await perform([.persist(from: state, to: state, event: event)], order: parent, now: clock.now())
    }

    /// The parent's state, for a coordinator reconciling its child orders after a restart.
    public func parentState(_ parent: ProviderOrderID) -> (state: ServerOrderStateMachine.State, isOpen: Bool, transactionID: TransactionID)? {
        if let live = orders[parent] { return (live.machine.state, ServerOrderStore.isOpen(live.machine), live.machine.transaction.id) }
        guard let stored = try? store.order(providerOrderID: parent) else { return nil }
        return (stored.machine.state, stored.isOpen, stored.machine.transaction.id)
    }

    /// Tells the child negotiator what a committed change did to a parent (RFC 8921 §8.8).
    func notifyChildNegotiator(_ event: ServerOrderStateMachine.Event, order providerOrderID: ProviderOrderID) {
        guard let negotiator = childNegotiator, orders[providerOrderID]?.cascade != nil || negotiator.hasChildren(providerOrderID) else { return }
        let change: ParentOrderChange
        switch event {
        case .negotiationEnded: change = .negotiationEnded(agreementKept: orders[providerOrderID]?.machine.agreement != nil)
        case .agreementReached(let agreement): change = .agreementReached(customerNodes: agreement.acceptedCPD.customerNodeIdentifiers)
        case .withdrawn, .testPeriodEnded: change = .withdrawn
        case .activationChanged(let status): change = .activationChanged(status)
        default: return
        }
        if case .negotiationEnded = change { orders[providerOrderID]?.cascade = nil }
        Task { await negotiator.parentChanged(providerOrderID, change) }
    }
}
