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
        var validator = MessageValidator()
        var cpdPath: JSONPath { MessageValidator.cpdPath }
        switch self {
        case .quotation(let message):
            validator.cpd(message.requestedCPD, nonEmpty: "a requested CPD must contain at least one component")
            validator.informationElements(message.informationElements)
        case .processing:
            break
        case .offer(let message):
            validator.cpd(
                message.offeredCPD, nonEmpty: "an offered CPD must contain at least one component (answer FAIL 5 when nothing can be offered)")
            if !message.offeredCPD.isEmpty, !message.offeredCPD.isConcrete {
                validator.warning(cpdPath, "the offered CPD is not concrete: it cannot be ACCEPTed, only answered by a new QUOTATION (RFC 8921 §8.7)")
            }
            validator.informationElements(message.informationElements)
        case .accept(let message):
            validator.cpd(message.acceptedCPD, nonEmpty: "an accepted CPD must contain at least one component")
            for loose in message.acceptedCPD.looseFields {
                validator.error(cpdPath.appending(contentsOf: loose), "an accepted CPD must be concrete (RFC 8921 §8.7): this value is not fixed")
            }
            validator.unfilledLinks(message.acceptedCPD)
            validator.informationElements(message.informationElements)
        case .decline(let message):
            var seen = Set<DeclineReason>()
            for (i, reason) in message.reasons.enumerated() where !seen.insert(reason).inserted {
                validator.error(JSONPath.root.appending(CPNPCodec.Key.reasons).appending(index: i), "reason \(reason.rawValue) is repeated")
            }
        case .ack(let message):
            if let cpd = message.cpd { validator.cpd(cpd) }
            validator.informationElements(message.informationElements)
        case .cancel(let message):
            if let cpd = message.cpd { validator.cpd(cpd) }
        case .withdraw(let message):
            if let cpd = message.acceptedCPD { validator.cpd(cpd) }
            validator.informationElements(message.informationElements)
        case .update(let message):
            validator.cpd(message.requestedCPD, nonEmpty: "an UPDATE must request a non-empty CPD (use WITHDRAW to remove the agreement)")
            validator.informationElements(message.informationElements)
        case .fail:
            break
        case .activate(let message):
            validator.informationElements(message.informationElements)
        }
        return validator.issues
    }
}

private struct MessageValidator {
    var issues: [CPDValidationIssue] = []
    // Paths are built only for an issue, as in CPDValidator (Sources/CPNPCore/Model/CPDValidation.swift).
    static var cpdPath: JSONPath { JSONPath.root.appending(CPNPCodec.Key.cpd) }
    static var informationElementsPath: JSONPath { JSONPath.root.appending(CPNPCodec.Key.informationElements) }

    mutating func error(_ path: @autoclosure () -> JSONPath, _ message: String) {
        issues.append(CPDValidationIssue(path: path(), message: message))
    }

    mutating func warning(_ path: @autoclosure () -> JSONPath, _ message: String) {
        issues.append(CPDValidationIssue(path: path(), message: message, severity: .warning))
    }

    /// The CPD rules; `nonEmpty` is the error message when the empty CPD is not allowed here.
    mutating func cpd(_ cpd: CPD, nonEmpty: String? = nil) {
        if let nonEmpty, cpd.isEmpty { error(Self.cpdPath.appending("components"), nonEmpty) }
        issues += cpd.issuesInMessage
    }

    /// Customer nodes whose `link-identifiers` the requester left to the provider (`[]`)
    /// should have been filled in by the offer that is being accepted.
    mutating func unfilledLinks(_ cpd: CPD) {
        for (componentIndex, component) in cpd.components.enumerated() {
            for (profileIndex, profile) in component.profiles.enumerated() {
                for (nodeIndex, node) in profile.customerNodes.enumerated() where node.linkIdentifiers.isEmpty {
                    warning(
                        Self.cpdPath.appending("components").appending(index: componentIndex).appending("profiles").appending(index: profileIndex)
                            .appending("customer-nodes").appending(index: nodeIndex).appending("link-identifiers"),
                        "no link identifier: the provider should have chosen one in its offer")
                }
            }
        }
    }

    mutating func informationElements(_ informationElements: InformationElements?) {
        guard let informationElements else { return }
        if let options = informationElements.negotiationOptions {
            var optionsPath: JSONPath { Self.informationElementsPath.appending("negotiation-options") }
            if options.effectivePurpose == .testing, options.testPeriodEnd == nil {
                error(optionsPath.appending("test-period-end"), "required when purpose is \"testing\" (RFC 8921 §9.1.10.3)")
            } else if options.effectivePurpose != .testing, options.testPeriodEnd != nil {
                warning(optionsPath.appending("test-period-end"), "ignored unless purpose is \"testing\"")
            }
            if options.activationSchedule != nil, options.effectiveActivationType != .scheduled {
                error(optionsPath.appending("activation-schedule"), "only allowed with activation-type \"scheduled\"")
            } else if options.effectiveActivationType == .scheduled, options.activationSchedule == nil {
                error(optionsPath.appending("activation-schedule"), "required when activation-type is \"scheduled\"")
            }
        }
        if let cost = informationElements.cost, cost.amount < CPNPDecimal(0) {
            error(Self.informationElementsPath.appending("cost").appending("amount"), "a cost must not be negative")
        }
    }
}
