// Connectivity Provisioning Documents for tests, built from JSON text.
public import CPNPCore

/// Small CPDs (RFC 8921 §6) that the state-machine and storage tests negotiate with.
public enum CPDFixtures {
    /// The CPD in the JSON `text`; traps if it is not one (fixtures are written to be valid).
    public static func cpd(_ text: String) -> CPD {
        let json = try! JSONParser.parse(Array(text.utf8))
        return try! CPD(json: json, at: .root)
    }

    /// The JSON text of one component: customer node `identifier` at site `S-identifier`, outgoing
    /// traffic to anywhere, `bandwidth` Mbps both ways (a JSON value: `90`, `{"min":80,"max":100}`), policed.
    public static func component(customerNode identifier: String, bandwidth: String) -> String {
        """
        {"profiles":[{"customer-nodes":[{"identifier":"\(identifier)","link-identifiers":[],"localization":{"site-id":"S-\(identifier)"}}],
        "scope":[{"customer-node":"\(identifier)","direction":"outgoing","reachability":"global"}],
        "capacity":[{"customer-node":"\(identifier)","incoming-bandwidth-mbps":\(bandwidth),"outgoing-bandwidth-mbps":\(bandwidth)}],
        "conformance-traffic":{"enforcement":"policing","out-of-profile-action":"discard"}}]}
        """
    }

    /// A CPD of one component, ``component(customerNode:bandwidth:)`` for the node `CE-PAR-1`.
    public static func singleNode(bandwidth: String) -> CPD {
        cpd(#"{"components":["# + component(customerNode: "CE-PAR-1", bandwidth: bandwidth) + "]}")
    }

    /// A loose request: 80 to 100 Mbps.
    public static let requested = singleNode(bandwidth: #"{"min":80,"max":100}"#)
    /// A concrete offer that satisfies ``requested``: 90 Mbps.
    public static let offered = singleNode(bandwidth: "90")
}

extension CPD {
    /// One site in Marseille on the 200 Mbps link PE-MRS-1:xe-1/0/0; `bandwidth` is its JSON value
    /// both ways (`50`, `{"min":60,"max":200}`).
    public static func marseille(_ bandwidth: String) -> CPD {
        site("CE-MRS-1", site: "MARSEILLE-BR", link: "PE-MRS-1:xe-1/0/0", bandwidth: bandwidth)
    }

    /// One site in Paris on the 10 Gbps link PE-PAR-1:xe-0/0/0.
    public static func paris(_ mbps: Int) -> CPD {
        site("CE-PAR-9", site: "PARIS-DC1", link: "PE-PAR-1:xe-0/0/0", bandwidth: "\(mbps)")
    }

    /// One site: customer node `node` at `site` in France on `link`, `bandwidth` Mbps both ways (a
    /// JSON value).
    public static func site(_ node: String, site: String, link: String, bandwidth: String) -> CPD {
        CPDFixtures.cpd(
            """
            {"components":[{"profiles":[{"customer-nodes":[{"identifier":"\(node)","link-identifiers":["\(link)"],"localization":{"site-id":"\(site)","country":"FR"}}],
            "scope":[{"customer-node":"\(node)","direction":"outgoing","reachability":"global"}],
            "capacity":[{"customer-node":"\(node)","incoming-bandwidth-mbps":\(bandwidth),"outgoing-bandwidth-mbps":\(bandwidth)}],
            "conformance-traffic":{"enforcement":"policing","out-of-profile-action":"discard"}}]}]}
            """)
    }
}
