import Testing
@testable import CPNPHTTP

/// The portal keeps one client order store per customer, named after the customer's identity.
struct PortalStoreNameTests {
    @Test func anyIdentityIsASafeReversibleFileName() {
        for identity in ["acme", "globex.example", "ACME Corp/Paris", "../etc", ".hidden", "ünïcode", "a_b", "x%2F"] {
            let name = CustomerPortal.fileName(for: identity)
            #expect(!name.contains("/") && !name.hasPrefix(".") && !name.contains(" "), "\(name)")
            #expect(CustomerPortal.customer(fromFileName: name) == identity)
        }
        #expect(CustomerPortal.fileName(for: "acme") == "acme", "plain names stay readable")
        #expect(CustomerPortal.customer(fromFileName: "bad_Z") == nil)
    }
}
