public import CPNPCore
public import CPNPTransport

/// The outcome of ``CPNPClientEngine/negotiate(_:informationElements:servers:strategy:)``.
public struct NegotiationResult: Sendable {
    /// The rounds played, with what each server answered.
    public var rounds: [NegotiationRound]
    /// The order whose offer was accepted and acknowledged, with its agreement.
    public var agreement: Agreement?
    public var winner: NegotiationCandidate?
    /// Why no agreement was reached (nil on success).
    public var failure: String?
    /// Orders declined along the way, with the reason sent.
    public var declined: [(CustomerOrderID, DeclineReason)]
}

extension CPNPClientEngine {
    /// Runs a whole negotiation (RFC 8921 §7, figure 4): QUOTATION to every server in parallel, offers
    /// collected until each has answered or its expected response time passed, then the `strategy`
    /// accepts one (the others are declined with reason 2), or quotes again, or stops (all declined
    /// with reason 1). Every order is stored under one negotiation group.
    public func negotiate(
        _ request: CPD, informationElements: InformationElements? = nil, servers: [CPNPPeer],
        strategy: any NegotiationStrategy, group: String? = nil,
        customerOrderID: (@Sendable (_ round: Int, _ server: Int) -> CustomerOrderID?)? = nil,
        progress: (@Sendable (String) -> Void)? = nil
    ) async throws -> NegotiationResult {
        guard !servers.isEmpty else { throw CPNPClientError.invalidArgument("no server to negotiate with") }
        let group = group ?? newNegotiationGroup()
        var rounds: [NegotiationRound] = []
        var declined: [(CustomerOrderID, DeclineReason)] = []
        var current = (request, informationElements)
        var number = 1
        while true {
            progress?("round \(number): QUOTATION to \(servers.count) server\(servers.count == 1 ? "" : "s")")
            var sent: [(CPNPPeer, CustomerOrderID?, String?)] = []
            for (index, server) in servers.enumerated() {
                do {
                    let chosenID = customerOrderID?(number, index)
                    sent.append(
                        (server, try await quote(current.0, informationElements: current.1, to: server, customerOrderID: chosenID, group: group), nil)
                    )
                } catch {
                    sent.append((server, nil, "\(error)"))
                }
            }
            let requested = current.0
            let acknowledge = servers.count > 1
            let candidates = await withTaskGroup(of: (Int, NegotiationCandidate?).self) { tasks in
                for (i, entry) in sent.enumerated() {
                    guard let sentID = entry.1 else { continue }
                    let server = entry.0
                    tasks.addTask {
                        let candidate = await self.candidate(server: server, id: sentID, request: requested, acknowledge: acknowledge)
                        progress?(
                            candidate.offer != nil
                                ? "offer from \(server.displayName)" : "no offer from \(server.displayName): \(candidate.failure ?? "")")
                        return (i, candidate)
                    }
                }
                var out: [(Int, NegotiationCandidate?)] = []
                for await result in tasks { out.append(result) }
                return out
            }
            var list: [NegotiationCandidate] = []
            for (i, entry) in sent.enumerated() {
                if let candidate = candidates.first(where: { $0.0 == i })?.1 {
                    list.append(candidate)
                } else {
                    list.append(
                        NegotiationCandidate(server: entry.0, customerOrderID: entry.1 ?? CustomerOrderID("none")!, failure: entry.2 ?? "not sent"))
                }
            }
            let round = NegotiationRound(number: number, request: current.0, informationElements: current.1, candidates: list)
            rounds.append(round)
            let decision = strategy.decide(round)
            switch decision {
            case .accept(let winnerID):
                for candidate in list where candidate.offer != nil && candidate.customerOrderID != winnerID {
                    try? await decline(candidate.customerOrderID, reasons: [.conflictWithAnotherOffer])
                    declined.append((candidate.customerOrderID, .conflictWithAnotherOffer))
                }
                let winner = list.first { $0.customerOrderID == winnerID }
                progress?("accepting the offer from \(winner.map { "\($0.server.displayName)" } ?? "?")")
                do {
                    let agreement = try await accept(winnerID)
                    return NegotiationResult(rounds: rounds, agreement: agreement, winner: winner, failure: nil, declined: declined)
                } catch {
                    return NegotiationResult(rounds: rounds, agreement: nil, winner: winner, failure: "\(error)", declined: declined)
                }
            case .requote(let cpd, let requotedElements):
                for candidate in list where candidate.offer != nil {
                    try? await decline(candidate.customerOrderID, reasons: [.unacceptableGap])
                    declined.append((candidate.customerOrderID, .unacceptableGap))
                }
                current = (cpd, requotedElements)
                number += 1
            case .stop(let why):
                for candidate in list where candidate.offer != nil {
                    try? await decline(candidate.customerOrderID, reasons: [.unacceptableGap])
                    declined.append((candidate.customerOrderID, .unacceptableGap))
                }
                return NegotiationResult(rounds: rounds, agreement: nil, winner: nil, failure: why, declined: declined)
            }
        }
    }

    /// Waits for one server's answer; with several servers, acknowledges the offer (PROCESSING) so the
    /// server stops retransmitting it while the others are awaited.
    private func candidate(server: CPNPPeer, id customerOrderID: CustomerOrderID, request: CPD, acknowledge: Bool) async -> NegotiationCandidate {
        do {
            switch try await awaitOffer(customerOrderID) {
            case .offer(let offer):
                if acknowledge { try? await acknowledgeOffer(customerOrderID) }
                return NegotiationCandidate(
                    server: server, customerOrderID: customerOrderID, offer: offer, comparison: offer.offeredCPD.comparison(against: request))
            case .ended(let end):
                return NegotiationCandidate(server: server, customerOrderID: customerOrderID, failure: ClientOutcomeText.describe(end))
            }
        } catch {
            return NegotiationCandidate(server: server, customerOrderID: customerOrderID, failure: "\(error)")
        }
    }
}
