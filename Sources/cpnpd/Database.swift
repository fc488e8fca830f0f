import ArgumentParser
import CPNPPolicy
import CPNPStorage
import Foundation

/// Opens the configured order store: PostgreSQL when a URL is set, else the SQLite file (its folder
/// made first). A bad URL, an unreachable server or refused credentials stop `cpnpd` with an error
/// that names `option` and the cause.
func openStore(_ database: DatabaseConfiguration, option: String) throws -> ServerOrderStore {
    if let url = database.url {
        let location: PostgresLocation
        do { location = try PostgresLocation(url: url) } catch { throw ValidationError("\(option): \(error)") }
        do { return try ServerOrderStore(postgres: location) } catch { throw ValidationError("\(option): \(error)") }
    }
    let folder = (database.path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true)
    return try ServerOrderStore(path: database.path)
}

/// The store's location for logs: a URL without its password, or the file's path.
func databaseDescription(_ database: DatabaseConfiguration) -> String {
    guard let url = database.url else { return database.path }
    return (try? PostgresLocation(url: url).description) ?? "an invalid PostgreSQL URL"
}
