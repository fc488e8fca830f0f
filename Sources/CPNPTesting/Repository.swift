// Files of the repository that tests read: the example CPDs in `Examples/`, the fuzz corpora in `Fuzz/`.
public import CPNPCore
public import Foundation

/// The repository's root directory (this file is `Sources/CPNPTesting/Repository.swift`).
public let repositoryRoot: URL = {
    var root = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { root.deleteLastPathComponent() }
    return root
}()

/// The CPD (RFC 8921 §6) in `Examples/NAME`, parsed with the default JSON limits.
public func loadExample(_ name: String) throws -> CPD {
    let bytes = try Data(contentsOf: repositoryRoot.appendingPathComponent("Examples/\(name)"))
    return try CPD(json: JSONParser.parse(Array(bytes)), at: .root)
}

/// The fuzz corpora's root, `Fuzz/` (docs/fuzzing.md).
public let fuzzRoot: URL = repositoryRoot.appendingPathComponent("Fuzz")

/// The files in `Fuzz/DIRECTORY`, sorted, as `DIRECTORY/NAME`, hidden files left out; none if it is missing.
public func fuzzInputs(_ directory: String) -> [String] {
    let url = fuzzRoot.appendingPathComponent(directory)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(directory)/\($0)" }
}
