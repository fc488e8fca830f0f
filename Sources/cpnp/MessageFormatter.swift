import CPNPCore

/// Human-readable rendering of messages and CPDs for `cpnp inspect` and `cpnp validate`:
/// one attribute per line, named as in RFC 8921 §9.1.
enum MessageFormatter {
    static let nameWidth = 30

    /// `  NAME                        value`
    static func line(_ name: String, _ value: String, indent: Int = 2) -> String {
        let pad = max(1, nameWidth + 2 - indent - name.count)
        return String(repeating: " ", count: indent) + name + String(repeating: " ", count: pad) + value
    }

    static func lines(for message: CPNPMessage, size: Int) -> [String] {
        let datagram = JSONParser.Limits.datagram.maxBytes
        var out = [
            "\(message.method.name) (method \(message.method.rawValue)), \(size) bytes"
                + (size > datagram ? " (over the \(datagram)-byte datagram limit: TLS transport only)" : "")
        ]
        out.append(line("VERSION", "\(CPNPMessage.version)"))
        out.append(line("SEQUENCE_NUMBER", "\(message.sequenceNumber)"))
        out.append(line("TRANSACTION_ID", message.transactionID.rawValue))
        out.append(line("CUSTOMER_ORDER_IDENTIFIER", quoted(message.customerOrderID.rawValue)))
        if let providerOrderID = message.providerOrderID { out.append(line("PROVIDER_ORDER_IDENTIFIER", quoted(providerOrderID.rawValue))) }
        if let nonce = message.nonce { out.append(line("NONCE", nonce.rawValue)) }

        func time(_ name: String, _ timestamp: CPNPTimestamp?) { if let timestamp { out.append(line(name, timestamp.rfc3339)) } }
        func cpd(_ name: String, _ document: CPD?) { if let document { out += cpdLines(document, name: name) } }
        func ies(_ elements: InformationElements?) { if let elements { out += informationElementLines(elements) } }

        switch message {
        case .quotation(let quotation):
            time("EXPECTED_RESPONSE_TIME", quotation.expectedResponseTime)
            cpd("REQUESTED_CPD", quotation.requestedCPD)
            ies(quotation.informationElements)
        case .processing(let processing):
            time("EXPECTED_OFFER_TIME", processing.expectedOfferTime)
            if let subcode = processing.processingSubcode { out.append(line("PROCESSING_SUBCODE", "\(subcode.rawValue) (\(subcode))")) }
        case .offer(let offer):
            time("VALIDITY_OFFER_TIME", offer.validityOfferTime)
            cpd("OFFERED_CPD", offer.offeredCPD)
            ies(offer.informationElements)
        case .accept(let accept):
            cpd("ACCEPTED_CPD", accept.acceptedCPD)
            ies(accept.informationElements)
        case .decline(let decline):
            if decline.reasons.isEmpty { out.append(line("REASON", "(none given)")) }
            for reason in decline.reasons { out.append(line("REASON", "\(reason.rawValue) (\(reason))")) }
        case .ack(let ack):
            time("EXPECTED_RESPONSE_TIME", ack.expectedResponseTime)
            cpd("CPD", ack.cpd)
            ies(ack.informationElements)
        case .cancel(let cancel):
            cpd("CPD", cancel.cpd)
        case .withdraw(let withdraw):
            cpd("ACCEPTED_CPD", withdraw.acceptedCPD)
            ies(withdraw.informationElements)
        case .update(let update):
            time("EXPECTED_RESPONSE_TIME", update.expectedResponseTime)
            cpd("REQUESTED_CPD", update.requestedCPD)
            ies(update.informationElements)
        case .fail(let fail):
            out.append(line("STATUS_CODE", "\(fail.statusCode.rawValue) (\(fail.statusCode))"))
            if let diagnostic = fail.diagnostic { out.append(line("DIAGNOSTIC (extension)", quoted(diagnostic))) }
        case .activate(let activate):
            let schedule =
                switch activate.activationSchedule {
                case .now: "null (activate now)"
                case .deactivate: "0 (deactivate)"
                case .at(let activationTime): "\(activationTime.rfc3339) (activate then)"
                }
            out.append(line("ACTIVATION_SCHEDULE", schedule))
            ies(activate.informationElements)
        }
        return out
    }

    /// A summary of a CPD: sizes, concreteness, then per profile its customer nodes and clauses.
    static func cpdLines(_ cpd: CPD, name: String) -> [String] {
        guard !cpd.isEmpty else { return [line(name, "empty CPD {\"components\": []}")] }
        let profiles = cpd.components.flatMap(\.profiles)
        let nodes = profiles.reduce(0) { $0 + $1.customerNodes.count }
        let loose = cpd.looseFields
        let concreteness =
            loose.isEmpty
            ? "concrete"
            : "loose (\(count(loose.count, "negotiable value")) not fixed, first at \(loose[0]))"
        var out = [
            line(
                name,
                "\(count(cpd.components.count, "component")), \(count(profiles.count, "profile")), "
                    + "\(count(nodes, "customer node")); \(concreteness)")
        ]
        for (componentIndex, component) in cpd.components.enumerated() {
            for (profileIndex, profile) in component.profiles.enumerated() {
                let clauses: [String] = if case .object(let object) = profile.json { object.keys } else { [] }
                out.append(
                    line(
                        "components[\(componentIndex)].profiles[\(profileIndex)]",
                        "customer nodes: " + profile.customerNodes.map(\.identifier).joined(separator: ", "), indent: 4))
                out.append(line("", "clauses: " + clauses.joined(separator: ", "), indent: 4))
            }
        }
        return out
    }

    static func informationElementLines(_ elements: InformationElements) -> [String] {
        var out: [String] = []
        if let customer = elements.customerDescription {
            out.append(line("CUSTOMER_DESCRIPTION", description(name: customer.name, asNumber: nil, contact: customer.contact)))
        }
        if let provider = elements.providerDescription {
            out.append(line("PROVIDER_DESCRIPTION", description(name: provider.name, asNumber: provider.asNumber, contact: provider.contact)))
        }
        if let options = elements.negotiationOptions {
            var parts = ["purpose \(options.effectivePurpose.rawValue)" + (options.testPeriodEnd.map { " until \($0.rfc3339)" } ?? "")]
            parts.append("activation \(options.effectiveActivationType.rawValue)" + (options.activationSchedule.map { " at \($0.rfc3339)" } ?? ""))
            if let localOnly = options.localOnly { parts.append(localOnly ? "local only" : "child orders allowed") }
            if options.costRequested { parts.append("cost requested") }
            out.append(line("NEGOTIATION_OPTIONS", parts.joined(separator: ", ")))
        }
        if let cost = elements.cost {
            out.append(
                line("COST", "\(cost.amount.plainString(minimumFractionDigits: 2)) \(cost.currency)" + (cost.period.map { " per \($0)" } ?? "")))
        }
        return out
    }

    static func description(name: String?, asNumber: UInt32?, contact: ContactInformation?) -> String {
        var parts: [String] = []
        if let name { parts.append(quoted(name)) }
        if let asNumber { parts.append("AS\(asNumber)") }
        if let contact = contact {
            if let email = contact.email { parts.append(email) }
            if let postalAddress = contact.postalAddress { parts.append(quoted(postalAddress)) }
            parts += contact.telephoneNumbers
        }
        return parts.isEmpty ? "(empty)" : parts.joined(separator: ", ")
    }

    static func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }

    /// A string in JSON quotes, so that spaces and control characters are visible.
    static func quoted(_ text: String) -> String { JSONSerializer.serializeString(.string(text)) }
}
