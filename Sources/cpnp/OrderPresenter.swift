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
        for (componentIndex, component) in components.enumerated() {
            guard case .object(let componentObject) = component, case .array(let profiles)? = componentObject["profiles"] else { continue }
            for (profileIndex, profile) in profiles.enumerated() {
                guard case .object(let profileObject) = profile else { continue }
                if components.count > 1 || profiles.count > 1 { out.append("  component \(componentIndex + 1), profile \(profileIndex + 1):") }
                let base: [JSONPath.Component] = [.key("components"), .index(componentIndex), .key("profiles"), .index(profileIndex)]
                for clause in profileObject.keys {
                    let prefix = base + [.key(clause)]
                    let mine = gaps.filter { Array($0.path.components.prefix(prefix.count)) == prefix }
                    if mine.isEmpty {
                        out.append("    \(pad(clause)) as requested")
                        continue
                    }
                    out.append("    \(pad(clause)) \(mine.count) difference\(mine.count == 1 ? "" : "s"):")
                    for gap in mine {
                        let sub = JSONPath(Array(gap.path.components.dropFirst(prefix.count))).description
                        let location = sub == "$" ? "" : sub + ": "
                        switch gap.kind {
                        case .extraNode: out.append("        \(location)offered \(text(gap.offered)) (not requested)")
                        default: out.append("        \(location)asked \(text(gap.requested)), offered \(text(gap.offered))")
                        }
                    }
                }
            }
        }
        // Gaps outside the request's clauses (extra customer nodes, structure).
        let outside = gaps.filter { gap in gap.path.components.count < 5 }
        for gap in outside { out.append("    \(gap)") }
        return out
    }

    static func pad(_ clause: String) -> String { (clause + ":").padding(toLength: 30, withPad: " ", startingAt: 0) }

    static func text(_ value: JSONValue?) -> String {
        guard let value else { return "nothing" }
        let serialized = JSONSerializer.serializeString(value)
        return serialized.count > 120 ? String(serialized.prefix(117)) + "…" : serialized
    }

    static func offerLines(_ offer: OfferMessage, request: CPD?, server: String) -> [String] {
        var out = ["offer from \(server): provider order \(offer.providerOrderID), valid until \(offer.validityOfferTime.rfc3339)"]
        if let cost = offer.informationElements?.cost { out.append("  price: \(cost)") }
        if let options = offer.informationElements?.negotiationOptions {
            out.append(
                "  activation: \(options.effectiveActivationType.rawValue), purpose: \(options.effectivePurpose.rawValue)"
                    + (options.testPeriodEnd.map { ", test period ends \($0.rfc3339)" } ?? ""))
        }
        if let request {
            let satisfied = offer.offeredCPD.satisfies(request)
            out.append(satisfied ? "  the offer satisfies the request:" : "  the offer differs from the request (counter-proposal):")
            out += comparisonLines(request: request, offered: offer.offeredCPD)
        }
        return out
    }

    static func agreementLines(_ agreement: Agreement) -> [String] {
        var out = [
            "agreement: provider order \(agreement.providerOrderID), agreed \(agreement.agreedAt.rfc3339)",
            "  activation: \(agreement.activationType.rawValue), now \(agreement.activation)",
            "  purpose: \(agreement.purpose.rawValue)" + (agreement.testPeriodEnd.map { ", test period ends \($0.rfc3339)" } ?? ""),
        ]
        if let cost = agreement.informationElements?.cost { out.append("  price: \(cost)") }
        return out
    }

    // MARK: JSON

    static func json(_ machine: ClientOrderStateMachine, server: String?, outcome: String, extra: [(String, JSONValue)] = []) -> JSONValue {
        var object = JSONObject()
        object["outcome"] = .string(outcome)
        object["customer-order-id"] = .string(machine.customerOrderID.rawValue)
        if let providerOrderID = machine.providerOrderID { object["provider-order-id"] = .string(providerOrderID.rawValue) }
        object["state"] = .string(machine.state.rawValue)
        if let server { object["server"] = .string(server) }
        if let offer = machine.offer { object["offer"] = offerJSON(offer, request: machine.requestedCPD) }
        if let agreement = machine.agreement { object["agreement"] = agreementJSON(agreement) }
        if let end = machine.lastEnd, machine.agreement == nil { object["ended"] = .string(ClientOutcomeText.describe(end)) }
        if machine.withdrawalUnconfirmed { object["alarm"] = .string(alarmText) }
        for (key, value) in extra { object[key] = value }
        return .object(object)
    }

    /// The administrator alarm of an unconfirmed withdrawal (RFC 8921 §11.1.2).
    static let alarmText =
        "withdrawal unconfirmed: WITHDRAW unanswered after every retry; the provider may still hold the agreement (RFC 8921 §11.1.2)"

    static func offerJSON(_ offer: OfferMessage, request: CPD?) -> JSONValue {
        var object = JSONObject()
        object["provider-order-id"] = .string(offer.providerOrderID.rawValue)
        object["validity-offer-time"] = .string(offer.validityOfferTime.rfc3339)
        if let cost = offer.informationElements?.cost { object["cost"] = costJSON(cost) }
        if let request {
            let comparison = offer.offeredCPD.comparison(against: request)
            object["satisfies-request"] = .bool(comparison.satisfies)
            object["gaps"] = .array(
                comparison.gaps.map { gap in
                    var entry = JSONObject()
                    entry["path"] = .string(gap.path.description)
                    entry["kind"] = .string(gap.kind.rawValue)
                    if let requested = gap.requested { entry["requested"] = requested }
                    if let offered = gap.offered { entry["offered"] = offered }
                    return .object(entry)
                })
        }
        object["offered-cpd"] = offer.offeredCPD.json
        return .object(object)
    }

    static func agreementJSON(_ agreement: Agreement) -> JSONValue {
        var object = JSONObject()
        object["provider-order-id"] = .string(agreement.providerOrderID.rawValue)
        object["agreed-at"] = .string(agreement.agreedAt.rfc3339)
        object["activation-type"] = .string(agreement.activationType.rawValue)
        object["activation"] = .string("\(agreement.activation)")
        object["purpose"] = .string(agreement.purpose.rawValue)
        if let testPeriodEnd = agreement.testPeriodEnd { object["test-period-end"] = .string(testPeriodEnd.rfc3339) }
        if let cost = agreement.informationElements?.cost { object["cost"] = costJSON(cost) }
        object["accepted-cpd"] = agreement.acceptedCPD.json
        return .object(object)
    }

    static func costJSON(_ cost: Cost) -> JSONValue {
        var object = JSONObject()
        object["amount"] = .string(cost.amountText)
        object["currency"] = .string(cost.currency)
        if let period = cost.period { object["period"] = .string(period) }
        return .object(object)
    }

    static func print(_ value: JSONValue) {
        Swift.print(JSONSerializer.serializeString(value))
    }
}
