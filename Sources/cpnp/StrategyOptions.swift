import ArgumentParser
import CPNPClient

/// How `cpnp quote --yes` and `cpnp serve` choose among offers (RFC 8921 §7; docs/client.md).
struct StrategyOptions: ParsableArguments {
    @Option(name: .long, help: "accept-if-satisfies, best-of-n or multi-round.")
    var strategy: String?

    @Option(name: .long, help: "Accepted relative shortfall of numeric values (0.2 accepts 80 for 100).")
    var tolerance: Double = 0

    @Option(name: .long, help: "multi-round: maximum number of rounds.")
    var rounds: Int = 3

    @Option(name: .long, help: "multi-round: how far (relative) the request may be relaxed towards an offer.")
    var floor: Double = 0.5

    func validate() throws {
        if let strategy, !["accept-if-satisfies", "best-of-n", "multi-round"].contains(strategy) {
            throw ValidationError("--strategy must be accept-if-satisfies, best-of-n or multi-round")
        }
        if !(0...1).contains(tolerance) { throw ValidationError("--tolerance must be between 0 and 1") }
        if rounds < 1 { throw ValidationError("--rounds must be at least 1") }
    }

    /// The strategy named, by default best-of-n with several servers and accept-if-satisfies with one.
    func chosenStrategy(servers: Int) -> any NegotiationStrategy {
        let tolerances = OfferTolerances(relative: tolerance)
        switch strategy ?? (servers > 1 ? "best-of-n" : "accept-if-satisfies") {
        case "best-of-n": return BestOfN(tolerances: tolerances)
        case "multi-round":
            let base: any NegotiationStrategy = servers > 1 ? BestOfN(tolerances: tolerances) : AcceptIfSatisfies(tolerances: tolerances)
            return MultiRound(base: base, maximumRounds: rounds, adjust: RelaxTowardsOffer(floor: floor))
        default: return AcceptIfSatisfies(tolerances: tolerances)
        }
    }
}
