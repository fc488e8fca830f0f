public import CPNPCore
public import Foundation
public import HTTPTypes
public import OpenAPIRuntime

/// An RFC 9457 problem of the REST API (docs/api.md): the status, a short title, and the field at
/// fault, named as `cpnp validate` names CPD paths.
public struct APIProblem: Error, Sendable {
    public var status: Int
    public var title: String
    public var detail: String?
    public var field: String?

    public init(status: Int, title: String, detail: String? = nil, field: String? = nil) {
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
    }

    public static func notFound(_ what: String) -> APIProblem { APIProblem(status: 404, title: "not found", detail: what) }

    /// The `type` URI.
    public var type: String { "https://cpnp.example/problems/\(title.replacingOccurrences(of: " ", with: "-"))" }

    /// The problem as `application/problem+json`.
    public var json: String {
        var object = JSONObject([("type", .string(type)), ("title", .string(title)), ("status", .number(CPNPDecimal(Int64(status))))])
        if let detail { object["detail"] = .string(detail) }
        if let field { object["field"] = .string(field) }
        return JSONSerializer.serializeString(.object(object))
    }

    /// The CPD of a request's `cpd` member, decoded and validated as a QUOTATION's; errors name the field.
    public static func requestedCPD(_ document: JSONDocument, field base: String = "cpd") throws(APIProblem) -> CPD {
        let cpd: CPD
        do { cpd = try CPD(json: document.value, at: .root) } catch {
            throw APIProblem(status: 400, title: "invalid CPD", detail: error.reason, field: base + suffix(error.path))
        }
        if let issue = cpd.validate(at: .root).first(where: { $0.severity == .error }) {
            throw APIProblem(status: 400, title: "invalid CPD", detail: issue.message, field: base + suffix(issue.path))
        }
        return cpd
    }

    /// The `when` of an activation: `now`, `off`, or an RFC 3339 time.
    public static func activationSchedule(_ when: String) throws(APIProblem) -> ActivationSchedule {
        switch when {
        case "now": return .now
        case "off": return .deactivate
        default:
            guard let time = CPNPTimestamp(rfc3339: when) else {
                throw APIProblem(status: 400, title: "invalid value", detail: "now, off, or an RFC 3339 time", field: "when")
            }
            return .at(time)
        }
    }

    static func suffix(_ path: JSONPath) -> String {
        let text = path.description
        if text == "$" || text.isEmpty { return "" }
        return text.hasPrefix("[") ? text : "." + text
    }

    /// A CPNP time as the API's `date-time`.
    public static func date(_ timestamp: CPNPTimestamp) -> Date {
        Date(timeIntervalSince1970: Double(timestamp.millisecondsSinceEpoch) / 1_000)
    }
}

/// Errors the generated code throws (a body that does not decode, a missing parameter, an undeclared
/// content type) as problems naming the field; anything else is a 500 problem.
public struct ProblemMiddleware: ServerMiddleware {
    public init() {}

    public func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        do {
            return try await next(request, body, metadata)
        } catch let error as ServerError {
            let cause = error.causeDescription.lowercased()
            if cause.contains("unexpected content type") {
                return Self.response(
                    APIProblem(status: 415, title: "unsupported media type", detail: error.causeDescription + " (send application/json)"))
            }
            var field: String?
            var detail = error.causeDescription
            if let decoding = error.underlyingError as? DecodingError {
                switch decoding {
                case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                    field = Self.path(context.codingPath)
                    detail = context.debugDescription
                case .keyNotFound(let key, let context):
                    field = Self.path(context.codingPath + [key])
                    detail = "missing"
                @unknown default: break
                }
            }
            let invalid = error.underlyingError is DecodingError || "\(error.underlyingError)".contains("decod") || cause.contains("missing")
            return Self.response(
                APIProblem(status: invalid ? 400 : 500, title: invalid ? "invalid request" : "internal error", detail: detail, field: field))
        }
    }

    static func path(_ keys: [any CodingKey]) -> String? {
        guard !keys.isEmpty else { return nil }
        var text = ""
        for key in keys {
            if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return text
    }

    /// The problem as an HTTP response.
    public static func response(_ problem: APIProblem) -> (HTTPResponse, HTTPBody?) {
        var response = HTTPResponse(status: .init(code: problem.status))
        response.headerFields[.contentType] = "application/problem+json"
        return (response, HTTPBody(problem.json))
    }
}
