import ArgumentParser
import CPNPPolicy
import CPNPStorage

/// `cpnpd check-config FILE`: validates a configuration and names every error with its path.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate a configuration file; list every error with its path.")

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() throws {
        let c = try loadConfiguration(file)
        if let url = c.database.url {
            do { _ = try PostgresLocation(url: url) } catch { throw ValidationError("\(file): database.url: \(error)") }
        }
        print("\(file): OK — \(c.policy.networkPresence.count) PEs, \(c.policy.links.count) links, \(c.customers.count) customer profiles, \(c.catalog.count) catalogue templates, "
            + "\(c.listen.transport.rawValue) on \(c.listen.host):\(c.listen.port), database \(databaseDescription(c.database))")
    }
}
