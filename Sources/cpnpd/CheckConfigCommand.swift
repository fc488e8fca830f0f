import ArgumentParser
import CPNPDaemon
import CPNPPolicy
import CPNPStorage

/// `cpnpd check-config FILE`: validates a configuration and names every error with its path.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file; list every error with its path.")

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() throws {
        let configuration = try loadConfiguration(file)
        if let url = configuration.database.url {
            do { _ = try PostgresLocation(url: url) } catch { throw ValidationError("\(file): database.url: \(error)") }
        }
        let policy = configuration.policy
        print(
            "\(file): OK — \(policy.networkPresence.count) PEs, \(policy.links.count) links, \(configuration.customers.count) customer profiles, "
                + "\(configuration.catalog.count) catalogue templates, \(configuration.listen.transport.rawValue) on "
                + "\(configuration.listen.host):\(configuration.listen.port), database \(ProviderDaemon.databaseDescription(configuration.database))")
    }
}
