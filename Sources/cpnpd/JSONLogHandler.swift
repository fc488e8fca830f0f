import CPNPCore
import Foundation
import Logging
import Synchronization

/// `--log-format json`: one JSON object per line on standard error, for log shippers (docs/console.md).
/// Fields: `time` (RFC 3339, milliseconds), `level`, `module`, `message`, then the metadata as
/// strings (`order`, `client`, `customer-order`, `method`, `from`, `to`, … for state changes).
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    private static let output = Mutex(FileHandle.standardError)

    init(level: Logger.Level) { logLevel = level }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let given = event.metadata { fields.merge(given) { $1 } }
        if let error = event.error { fields["error"] = "\(error)" }
        var pairs: [(String, JSONValue)] = [
            ("time", .string(Self.time())), ("level", .string(event.level.rawValue)), ("module", .string(event.source)),
            ("message", .string(event.message.description)),
        ]
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) where !["time", "level", "module", "message"].contains(key) {
            pairs.append((key, .string("\(value)")))
        }
        let line = JSONSerializer.serialize(.object(JSONObject(pairs))) + [UInt8(ascii: "\n")]
        Self.output.withLock { $0.write(Data(line)) }
    }

    static func time() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
