// The end-to-end test shown in ARCHITECTURE.md §4, kept here so that the example compiles and passes.
import CPNPClient
import CPNPCore
import CPNPTransport
import CPNPTesting
import Testing

@Suite("ARCHITECTURE.md example")
struct ArchitectureExampleTests {
    @Test(arguments: ProviderMode.allCases) func aQuotationIsAgreed(mode: ProviderMode) async throws {
        try await withProvider(mode) { provider, _ in
            let customer = try await provider.customerEngine()
            let id = try await customer.quote(try loadExample("l3vpn-3-sites.json"), to: try provider.server)
            guard case .offer = try await customer.awaitOffer(id) else { throw DaemonError(description: "no offer") }
            let agreement = try await customer.accept(id)
            #expect(try await provider.show(agreement.providerOrderID).state == "Completed")
            await customer.shutdown()
        }
    }
}
