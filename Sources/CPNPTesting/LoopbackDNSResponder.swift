// A DNS server on loopback for the SRV discovery tests (RFC 8921 §8.1; RFC 2782).
import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A one-thread DNS responder on 127.0.0.1 (an ephemeral UDP port) that answers SRV questions from a
/// table, and NXDOMAIN for names the table does not know.
///
/// A target ending in `.provider.example` is written as its first label and a compression pointer
/// to the question's `provider.example` (so the question must be `_cpnp._udp.provider.example`);
/// other targets are written as plain labels.
public final class LoopbackDNSResponder: @unchecked Sendable {
    /// One SRV record: priority, weight, port, target.
    public typealias Record = (priority: UInt16, weight: UInt16, port: UInt16, target: String)

    /// The socket's descriptor.
    public let fd: Int32
    /// The UDP port it listens on.
    public let port: Int
    private let thread: Thread

    /// Starts answering: `table` maps a question's name (labels joined by dots, as asked) to its
    /// records, or nil for NXDOMAIN.
    public init(_ table: @escaping @Sendable (String) -> [Record]?) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 1_500)
            while true {
                var from = sockaddr_storage()
                var fromLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let count = withUnsafeMutablePointer(to: &from) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(descriptor, &buffer, buffer.count, 0, $0, &fromLength) }
                }
                if count <= 0 { return }
                // Shorter than a DNS header: not a question.
                guard count > 12 else { continue }
                let reply = LoopbackDNSResponder.answer(Array(buffer.prefix(count)), table)
                _ = withUnsafePointer(to: &from) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, reply, reply.count, 0, $0, fromLength) }
                }
            }
        }
        thread.start()
    }

    /// Answers each name of `srv` with one record (priority 1, weight 0) for its port and target.
    public convenience init(srv: [String: (port: UInt16, target: String)]) throws {
        try self.init { name in srv[name].map { [(1, 0, $0.port, $0.target)] } }
    }

    /// Closes the socket, which ends the thread.
    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// The response to `query`: its header and question, then the records of `table` for its name.
    static func answer(_ query: [UInt8], _ table: (String) -> [Record]?) -> [UInt8] {
        var labels: [String] = []
        var index = 12
        while index < query.count, query[index] != 0 {
            labels.append(String(decoding: query[(index + 1)...(index + Int(query[index]))], as: UTF8.self))
            index += 1 + Int(query[index])
        }
        let questionEnd = index + 5
        let records = table(labels.joined(separator: "."))
        var response = Array(query[0..<2]) + [0x81, records == nil ? 0x83 : 0x80, 0, 1, 0, UInt8(records?.count ?? 0), 0, 0, 0, 0]
        response += query[12..<questionEnd]
        for (priority, weight, port, target) in records ?? [] {
            var data = [UInt8(priority >> 8), UInt8(priority & 0xff), UInt8(weight >> 8), UInt8(weight & 0xff), UInt8(port >> 8), UInt8(port & 0xff)]
            if target.hasSuffix(".provider.example") {
                // The target's first label, then a pointer to the question's "provider.example" suffix.
                let first = target.split(separator: ".")[0]
                data += [UInt8(first.utf8.count)] + Array(first.utf8) + [0xc0, UInt8(12 + 1 + 5 + 1 + 4)]
            } else {
                for label in target.split(separator: ".") { data += [UInt8(label.utf8.count)] + Array(label.utf8) }
                data.append(0)
            }
            response += [0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, UInt8(data.count)] + data
        }
        return response
    }
}
