// Requests to a daemon's HTTP server (health, readiness, metrics), through Foundation's URLSession.
import CPNPTesting
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One HTTP answer.
struct HTTPAnswer: Sendable {
    var status: Int
    var body: String
    var headers: [String: String]

    /// The value of a sample line of the Prometheus text format, `name{labels} value` (labels in the
    /// server's order, as written); nil when absent.
    func sample(_ series: String) -> Double? {
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            if Self.sameSeries(String(line[..<space]), series) { return Double(line[line.index(after: space)...]) }
        }
        return nil
    }

    /// Same name and the same set of labels, whatever their order.
    private static func sameSeries(_ a: String, _ b: String) -> Bool {
        func split(_ s: String) -> (String, Set<Substring>) {
            guard let brace = s.firstIndex(of: "{") else { return (s, []) }
            return (String(s[..<brace]), Set(s[s.index(after: brace)..<s.index(before: s.endIndex)].split(separator: ",")))
        }
        return split(a) == split(b)
    }
}

extension Daemon {
    /// The operators' bearer token the daemon made in its PKI directory.
    var operatorToken: String {
        get throws {
            try String(contentsOf: pkiDirectory.appendingPathComponent("operator.token"), encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
        }
    }

    /// GET `path` on the daemon's HTTP server, with `token` as the bearer token when given.
    func http(_ path: String, token: String? = nil) async throws -> HTTPAnswer {
        try await Self.http("http://127.0.0.1:\(httpPort)\(path)", token: token)
    }

    static func http(_ url: String, token: String? = nil) async throws -> HTTPAnswer {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 10
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields { headers["\(key)".lowercased()] = "\(value)" }
        return HTTPAnswer(status: http.statusCode, body: String(decoding: data, as: UTF8.self), headers: headers)
    }
}
