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
        var out = ["\(message.method.name) (method \(message.method.rawValue)), \(size) bytes"
            + (size > datagram ? " (over the \(datagram)-byte datagram limit: TLS transport only)" : "")]
        out.append(line("VERSION", "\(CPNPMessage.version)"))
        out.append(line("SEQUENCE_NUMBER", "\(message.sequenceNumber)"))
        out.append(line("TRANSACTION_ID", message.transactionID.rawValue))
        out.append(line("CUSTOMER_ORDER_IDENTIFIER", quoted(message.customerOrderID.rawValue)))
        if let p = message.providerOrderID { out.append(line("PROVIDER_ORDER_IDENTIFIER", quoted(p.rawValue))) }
        if let n = message.nonce { out.append(line("NONCE", n.rawValue)) }

        func time(_ name: String, _ t: CPNPTimestamp?) { if let t { out.append(line(name, t.rfc3339)) } }
        func cpd(_ name: String, _ c: CPD?) { if let c { out += cpdLines(c, name: name) } }
        func ies(_ ie: InformationElements?) { if let ie { out += informationElementLines(ie) } }

        switch message {
        case .quotation(let m):
            time("EXPECTED_RESPONSE_TIME", m.expectedResponseTime)
            cpd("REQUESTED_CPD", m.requestedCPD)
            ies(m.informationElements)
        case .processing(let m):
            time("EXPECTED_OFFER_TIME", m.expectedOfferTime)
            if let s = m.processingSubcode { out.append(line("PROCESSING_SUBCODE", "\(s.rawValue) (\(s))")) }
        case .offer(let m):
            time("VALIDITY_OFFER_TIME", m.validityOfferTime)
            cpd("OFFERED_CPD", m.offeredCPD)
            ies(m.informationElements)
        case .accept(let m):
            cpd("ACCEPTED_CPD", m.acceptedCPD)
            ies(m.informationElements)
        case .decline(let m):
            if m.reasons.isEmpty { out.append(line("REASON", "(none given)")) }
            for r in m.reasons { out.append(line("REASON", "\(r.rawValue) (\(r))")) }
        case .ack(let m):
            time("EXPECTED_RESPONSE_TIME", m.expectedResponseTime)
            cpd("CPD", m.cpd)
            ies(m.informationElements)
        case .cancel(let m):
            cpd("CPD", m.cpd)
        case .withdraw(let m):
            cpd("ACCEPTED_CPD", m.acceptedCPD)
            ies(m.informationElements)
        case .update(let m):
            time("EXPECTED_RESPONSE_TIME", m.expectedResponseTime)
            cpd("REQUESTED_CPD", m.requestedCPD)
            ies(m.informationElements)
        case .fail(let m):
            out.append(line("STATUS_CODE", "\(m.statusCode.rawValue) (\(m.statusCode))"))
            if let d = m.diagnostic { out.append(line("DIAGNOSTIC (extension)", quoted(d))) }
        case .activate(let m):
            let schedule = switch m.activationSchedule {
            case .now: "null (activate now)"
            case .deactivate: "0 (deactivate)"
            case .at(let t): "\(t.rfc3339) (activate then)"
            }
            out.append(line("ACTIVATION_SCHEDULE", schedule))
            ies(m.informationElements)
        }
        return out
    }

    /// A summary of a CPD: sizes, concreteness, then per profile its customer nodes and clauses.
    static func cpdLines(_ cpd: CPD, name: String) -> [String] {
        guard !cpd.isEmpty else { return [line(name, "empty CPD {\"components\": []}")] }
        let profiles = cpd.components.flatMap(\.profiles)
        let nodes = profiles.reduce(0) { $0 + $1.customerNodes.count }
        let loose = cpd.looseFields
        let concreteness = loose.isEmpty
            ? "concrete"
            : "loose (\(count(loose.count, "negotiable value")) not fixed, first at \(loose[0]))"
        var out = [line(name, "\(count(cpd.components.count, "component")), \(count(profiles.count, "profile")), "
            + "\(count(nodes, "customer node")); \(concreteness)")]
        for (ci, component) in cpd.components.enumerated() {
            for (pi, profile) in component.profiles.enumerated() {
                let clauses: [String] = if case .object(let o) = profile.json { o.keys } else { [] }
                out.append(line("components[\(ci)].profiles[\(pi)]",
                                "customer nodes: " + profile.customerNodes.map(\.identifier).joined(separator: ", "), indent: 4))
                out.append(line("", "clauses: " + clauses.joined(separator: ", "), indent: 4))
            }
        }
        return out
    }

    static func informationElementLines(_ ie: InformationElements) -> [String] {
        var out: [String] = []
        if let c = ie.customerDescription {
            out.append(line("CUSTOMER_DESCRIPTION", description(name: c.name, asNumber: nil, contact: c.contact)))
        }
        if let p = ie.providerDescription {
            out.append(line("PROVIDER_DESCRIPTION", description(name: p.name, asNumber: p.asNumber, contact: p.contact)))
        }
        if let n = ie.negotiationOptions {
            var parts = ["purpose \(n.effectivePurpose.rawValue)" + (n.testPeriodEnd.map { " until \($0.rfc3339)" } ?? "")]
            parts.append("activation \(n.effectiveActivationType.rawValue)" + (n.activationSchedule.map { " at \($0.rfc3339)" } ?? ""))
            if let l = n.localOnly { parts.append(l ? "local only" : "child orders allowed") }
            if n.costRequested { parts.append("cost requested") }
            out.append(line("NEGOTIATION_OPTIONS", parts.joined(separator: ", ")))
        }
        if let c = ie.cost {
            out.append(line("COST", "\(c.amount.plainString(minimumFractionDigits: 2)) \(c.currency)" + (c.period.map { " per \($0)" } ?? "")))
        }
        return out
    }

    static func description(name: String?, asNumber: UInt32?, contact: ContactInformation?) -> String {
        var parts: [String] = []
        if let name { parts.append(quoted(name)) }
        if let asNumber { parts.append("AS\(asNumber)") }
        if let c = contact {
            if let e = c.email { parts.append(e) }
            if let p = c.postalAddress { parts.append(quoted(p)) }
            parts += c.telephoneNumbers
        }
        return parts.isEmpty ? "(empty)" : parts.joined(separator: ", ")
    }

    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// A string in JSON quotes, so that spaces and control characters are visible.
    static func quoted(_ s: String) -> String { JSONSerializer.serializeString(.string(s)) }
}
