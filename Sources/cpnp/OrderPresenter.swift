import CPNPClient
import CPNPCore
import CPNPStorage
import Foundation

/// Text and JSON views of orders, offers and agreements for the `cpnp` commands.
enum OrderPresenter {
    // MARK: Text

    /// The offer against the request, clause by clause: each clause of each profile is either
    /// "as requested" or lists what was asked and what is offered (docs/protocol.md §4.3).
    static func comparisonLines(request: CPD, offered: CPD) -> [String] {
        let gaps = offered.comparison(against: request).gaps
        var out: [String] = []
        guard case .object(let root) = request.json, case .array(let components)? = root["components"] else { return out }
        for (ci, component) in components.enumerated() {
            guard case .object(let c) = component, case .array(let profiles)? = c["profiles"] else { continue }
            for (pi, profile) in profiles.enumerated() {
                guard case .object(let p) = profile else { continue }
                if components.count > 1 || profiles.count > 1 { out.append("  component \(ci + 1), profile \(pi + 1):") }
                let base: [JSONPath.Component] = [.key("components"), .index(ci), .key("profiles"), .index(pi)]
                for clause in p.keys {
                    let prefix = base + [.key(clause)]
                    let mine = gaps.filter { Array($0.path.components.prefix(prefix.count)) == prefix }
                    if mine.isEmpty {
                        out.append("    \(pad(clause)) as requested")
                        continue
                    }
                    out.append("    \(pad(clause)) \(mine.count) difference\(mine.count == 1 ? "" : "s"):")
                    for g in mine {
                        let sub = JSONPath(Array(g.path.components.dropFirst(prefix.count))).description
                        let at = sub == "$" ? "" : sub + ": "
                        switch g.kind {
                        case .extraNode: out.append("        \(at)offered \(text(g.offered)) (not requested)")
                        default: out.append("        \(at)asked \(text(g.requested)), offered \(text(g.offered))")
                        }
                    }
                }
            }
        }
        // Gaps outside the request's clauses (extra customer nodes, structure).
        let outside = gaps.filter { g in g.path.components.count < 5 }
        for g in outside { out.append("    \(g)") }
        return out
    }

    static func pad(_ s: String) -> String { (s + ":").padding(toLength: 30, withPad: " ", startingAt: 0) }

    static func text(_ v: JSONValue?) -> String {
        guard let v else { return "nothing" }
        let s = JSONSerializer.serializeString(v)
        return s.count > 120 ? String(s.prefix(117)) + "…" : s
    }

    static func offerLines(_ offer: OfferMessage, request: CPD?, server: String) -> [String] {
        var out = ["offer from \(server): provider order \(offer.providerOrderID), valid until \(offer.validityOfferTime.rfc3339)"]
        if let cost = offer.informationElements?.cost { out.append("  price: \(cost)") }
        if let o = offer.informationElements?.negotiationOptions {
            out.append("  activation: \(o.effectiveActivationType.rawValue), purpose: \(o.effectivePurpose.rawValue)"
                + (o.testPeriodEnd.map { ", test period ends \($0.rfc3339)" } ?? ""))
        }
        if let request {
            let satisfied = offer.offeredCPD.satisfies(request)
            out.append(satisfied ? "  the offer satisfies the request:" : "  the offer differs from the request (counter-proposal):")
            out += comparisonLines(request: request, offered: offer.offeredCPD)
        }
        return out
    }

    static func agreementLines(_ ag: Agreement) -> [String] {
        var out = [
            "agreement: provider order \(ag.providerOrderID), agreed \(ag.agreedAt.rfc3339)",
            "  activation: \(ag.activationType.rawValue), now \(ag.activation)",
            "  purpose: \(ag.purpose.rawValue)" + (ag.testPeriodEnd.map { ", test period ends \($0.rfc3339)" } ?? ""),
        ]
        if let cost = ag.informationElements?.cost { out.append("  price: \(cost)") }
        return out
    }

    // MARK: JSON

    static func json(_ m: ClientOrderStateMachine, server: String?, outcome: String, extra: [(String, JSONValue)] = []) -> JSONValue {
        var o = JSONObject()
        o["outcome"] = .string(outcome)
        o["customer-order-id"] = .string(m.customerOrderID.rawValue)
        if let p = m.providerOrderID { o["provider-order-id"] = .string(p.rawValue) }
        o["state"] = .string(m.state.rawValue)
        if let server { o["server"] = .string(server) }
        if let offer = m.offer { o["offer"] = offerJSON(offer, request: m.requestedCPD) }
        if let ag = m.agreement { o["agreement"] = agreementJSON(ag) }
        if let end = m.lastEnd, m.agreement == nil { o["ended"] = .string(ClientOutcomeText.describe(end)) }
        if m.withdrawalUnconfirmed { o["alarm"] = .string(alarmText) }
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    /// The administrator alarm of an unconfirmed withdrawal (RFC 8921 §11.1.2).
    static let alarmText = "withdrawal unconfirmed: WITHDRAW unanswered after every retry; the provider may still hold the agreement (RFC 8921 §11.1.2)"

    static func offerJSON(_ offer: OfferMessage, request: CPD?) -> JSONValue {
        var o = JSONObject()
        o["provider-order-id"] = .string(offer.providerOrderID.rawValue)
        o["validity-offer-time"] = .string(offer.validityOfferTime.rfc3339)
        if let cost = offer.informationElements?.cost { o["cost"] = costJSON(cost) }
        if let request {
            let c = offer.offeredCPD.comparison(against: request)
            o["satisfies-request"] = .bool(c.satisfies)
            o["gaps"] = .array(c.gaps.map { g in
                var e = JSONObject()
                e["path"] = .string(g.path.description)
                e["kind"] = .string(g.kind.rawValue)
                if let r = g.requested { e["requested"] = r }
                if let v = g.offered { e["offered"] = v }
                return .object(e)
            })
        }
        o["offered-cpd"] = offer.offeredCPD.json
        return .object(o)
    }

    static func agreementJSON(_ ag: Agreement) -> JSONValue {
        var o = JSONObject()
        o["provider-order-id"] = .string(ag.providerOrderID.rawValue)
        o["agreed-at"] = .string(ag.agreedAt.rfc3339)
        o["activation-type"] = .string(ag.activationType.rawValue)
        o["activation"] = .string("\(ag.activation)")
        o["purpose"] = .string(ag.purpose.rawValue)
        if let t = ag.testPeriodEnd { o["test-period-end"] = .string(t.rfc3339) }
        if let cost = ag.informationElements?.cost { o["cost"] = costJSON(cost) }
        o["accepted-cpd"] = ag.acceptedCPD.json
        return .object(o)
    }

    static func costJSON(_ c: Cost) -> JSONValue {
        var o = JSONObject()
        o["amount"] = .string(c.amountText)
        o["currency"] = .string(c.currency)
        if let p = c.period { o["period"] = .string(p) }
        return .object(o)
    }

    static func print(_ value: JSONValue) {
        Swift.print(JSONSerializer.serializeString(value))
    }
}
