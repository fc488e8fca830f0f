/// Semantic checks of a decoded message, beyond what ``CPNPCodec/decode(json:)`` enforces.
///
/// The decoder checks syntax, types, ranges and the presence of mandatory attributes; this
/// checks the meaning: the CPD cross-field rules (docs/protocol.md §2.7, §4.2) of every CPD the
/// message carries, and rules that tie attributes together (RFC 8921 §8.7, §9.1.10.3, §9.2.5;
/// docs/protocol.md §4.1). A message with an issue of severity `error` must be rejected with
/// FAIL 1 Message Validation Error (RFC 8921 §10.2); warnings leave it usable.
extension CPNPMessage {
    /// Every semantic issue of the message, each with the path of the offending field
    /// (e.g. `cpd.components[0].profiles[0].capacity[1].customer-node`), in document order.
    public func validationIssues() -> [CPDValidationIssue] {
        var v = MessageValidator()
        let cpdPath = JSONPath.root.appending(CPNPCodec.Key.cpd)
        switch self {
        case .quotation(let m):
            v.cpd(m.requestedCPD, nonEmpty: "a requested CPD must contain at least one component")
            v.informationElements(m.informationElements)
        case .processing:
            break
        case .offer(let m):
            v.cpd(m.offeredCPD, nonEmpty: "an offered CPD must contain at least one component (answer FAIL 5 when nothing can be offered)")
            if !m.offeredCPD.isEmpty, !m.offeredCPD.isConcrete {
                v.warning(cpdPath, "the offered CPD is not concrete: it cannot be ACCEPTed, only answered by a new QUOTATION (RFC 8921 §8.7)")
            }
            v.informationElements(m.informationElements)
        case .accept(let m):
            v.cpd(m.acceptedCPD, nonEmpty: "an accepted CPD must contain at least one component")
            for loose in m.acceptedCPD.looseFields {
                v.error(cpdPath.appending(contentsOf: loose), "an accepted CPD must be concrete (RFC 8921 §8.7): this value is not fixed")
            }
            v.unfilledLinks(m.acceptedCPD)
            v.informationElements(m.informationElements)
        case .decline(let m):
            var seen = Set<DeclineReason>()
            for (i, r) in m.reasons.enumerated() where !seen.insert(r).inserted {
                v.error(JSONPath.root.appending(CPNPCodec.Key.reasons).appending(index: i), "reason \(r.rawValue) is repeated")
            }
        case .ack(let m):
            if let c = m.cpd { v.cpd(c) }
            v.informationElements(m.informationElements)
        case .cancel(let m):
            if let c = m.cpd { v.cpd(c) }
        case .withdraw(let m):
            if let c = m.acceptedCPD { v.cpd(c) }
            v.informationElements(m.informationElements)
        case .update(let m):
            v.cpd(m.requestedCPD, nonEmpty: "an UPDATE must request a non-empty CPD (use WITHDRAW to remove the agreement)")
            v.informationElements(m.informationElements)
        case .fail:
            break
        case .activate(let m):
            v.informationElements(m.informationElements)
        }
        return v.issues
    }
}

private struct MessageValidator {
    var issues: [CPDValidationIssue] = []
    let cpdPath = JSONPath.root.appending(CPNPCodec.Key.cpd)
    let iePath = JSONPath.root.appending(CPNPCodec.Key.informationElements)

    mutating func error(_ path: JSONPath, _ message: String) {
        issues.append(CPDValidationIssue(path: path, message: message))
    }

    mutating func warning(_ path: JSONPath, _ message: String) {
        issues.append(CPDValidationIssue(path: path, message: message, severity: .warning))
    }

    /// The CPD rules; `nonEmpty` is the error message when the empty CPD is not allowed here.
    mutating func cpd(_ cpd: CPD, nonEmpty: String? = nil) {
        if let nonEmpty, cpd.isEmpty { error(cpdPath.appending("components"), nonEmpty) }
        issues += cpd.validate(at: cpdPath)
    }

    /// Customer nodes whose `link-identifiers` the requester left to the provider (`[]`)
    /// should have been filled in by the offer that is being accepted.
    mutating func unfilledLinks(_ cpd: CPD) {
        for (ci, component) in cpd.components.enumerated() {
            for (pi, profile) in component.profiles.enumerated() {
                for (ni, node) in profile.customerNodes.enumerated() where node.linkIdentifiers.isEmpty {
                    let p = cpdPath.appending("components").appending(index: ci).appending("profiles").appending(index: pi)
                        .appending("customer-nodes").appending(index: ni).appending("link-identifiers")
                    warning(p, "no link identifier: the provider should have chosen one in its offer")
                }
            }
        }
    }

    mutating func informationElements(_ ie: InformationElements?) {
        guard let ie else { return }
        if let n = ie.negotiationOptions {
            let np = iePath.appending("negotiation-options")
            if n.effectivePurpose == .testing, n.testPeriodEnd == nil {
                error(np.appending("test-period-end"), "required when purpose is \"testing\" (RFC 8921 §9.1.10.3)")
            } else if n.effectivePurpose != .testing, n.testPeriodEnd != nil {
                warning(np.appending("test-period-end"), "ignored unless purpose is \"testing\"")
            }
            if n.activationSchedule != nil, n.effectiveActivationType != .scheduled {
                error(np.appending("activation-schedule"), "only allowed with activation-type \"scheduled\"")
            } else if n.effectiveActivationType == .scheduled, n.activationSchedule == nil {
                error(np.appending("activation-schedule"), "required when activation-type is \"scheduled\"")
            }
        }
        if let c = ie.cost, c.amount < CPNPDecimal(0) {
            error(iePath.appending("cost").appending("amount"), "a cost must not be negative")
        }
    }
}

extension JSONPath {
    /// This path followed by `other` (a path relative to the value this path names).
    fileprivate func appending(contentsOf other: JSONPath) -> JSONPath {
        JSONPath(components + other.components)
    }
}
