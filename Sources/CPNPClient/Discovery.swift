public import CPNPTransport
import NIOCore
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A server as the user names it: `host`, `host:port`, `[v6]` or `[v6]:port` (RFC 8921 §8.1).
public struct CPNPServerTarget: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// Whether the port was given explicitly (an explicit port disables SRV discovery).
    public var portGiven: Bool

    public init(host: String, port: Int = CPNPTransportDefaults.port, portGiven: Bool = true) {
        self.host = host
        self.port = port
        self.portGiven = portGiven
    }

    /// Parses `host[:port]`; errors name the problem.
    public init(parsing text: String) throws(CPNPClientError) {
        var host = text.trimmingWhitespace
        var port: Int?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .invalidArgument("server \"\(text)\": missing ] after the IPv6 address") }
            let rest = host[host.index(after: close)...]
            if rest.hasPrefix(":") {
                port = Int(rest.dropFirst()) ?? -1
            } else if !rest.isEmpty {
                throw .invalidArgument("server \"\(text)\": unexpected text after ]")
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            port = Int(host[host.index(after: colon)...]) ?? -1
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw .invalidArgument("server \"\(text)\": empty host") }
        if let port, !(1...65_535).contains(port) { throw .invalidArgument("server \"\(text)\": the port must be 1…65535") }
        self.init(host: host, port: port ?? CPNPTransportDefaults.port, portGiven: port != nil)
    }

    /// Whether `host` is an IPv4 or IPv6 literal.
    public var isIPLiteral: Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

/// Finds the CPNP servers of a domain from its `_cpnp._udp.DOMAIN` SRV records (RFC 8921 §8.1;
/// RFC 2782 ordering: priority, then weighted random). A small stub resolver over UDP.
public struct SRVResolver: Sendable {
    /// One SRV record.
    public struct Record: Sendable, Hashable {
        public var priority: UInt16
        public var weight: UInt16
        public var port: UInt16
        public var target: String
        public init(priority: UInt16, weight: UInt16, port: UInt16, target: String) {
            self.priority = priority
            self.weight = weight
            self.port = port
            self.target = target
        }
    }

    /// The DNS server asked (`host`, port).
    public var nameserver: (host: String, port: Int)
    public var timeout: Duration
    public var attempts: Int

    /// Uses `CPNP_DNS_SERVER` (`host[:port]`) if set, else the first `nameserver` of /etc/resolv.conf.
    public init(nameserver: (host: String, port: Int)? = nil, timeout: Duration = .seconds(2), attempts: Int = 2) {
        self.nameserver = nameserver ?? SRVResolver.systemNameserver()
        self.timeout = timeout
        self.attempts = max(1, attempts)
    }

    static func systemNameserver() -> (host: String, port: Int) {
        if let variable = getenv("CPNP_DNS_SERVER").map({ String(cString: $0) }), let target = try? CPNPServerTarget(parsing: variable) {
            return (target.host, target.portGiven ? target.port : 53)
        }
        if let file = fopen("/etc/resolv.conf", "r") {
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 512)
            while fgets(&line, Int32(line.count), file) != nil {
                let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
                if parts.count >= 2, parts[0] == "nameserver" { return (String(parts[1]), 53) }
            }
        }
        return ("127.0.0.1", 53)
    }

    /// The servers for `domain`, in the order to try them; empty when the domain has no SRV records.
    public func servers(for domain: String) async throws(CPNPClientError) -> [CPNPServerTarget] {
        var rng = SystemRandomNumberGenerator()
        return SRVResolver.order(try await records(name: "_cpnp._udp." + domain), using: &rng)
            .map { CPNPServerTarget(host: $0.target, port: Int($0.port)) }
    }

    /// RFC 2782: ascending priority; within a priority, weighted random order ("." = no service).
    public static func order(_ records: [Record], using rng: inout some RandomNumberGenerator) -> [Record] {
        var out: [Record] = []
        let usable = records.filter { $0.target != "." && !$0.target.isEmpty }
        for priority in Set(usable.map(\.priority)).sorted() {
            var group = usable.filter { $0.priority == priority }.sorted { $0.weight < $1.weight }
            while !group.isEmpty {
                let total = group.reduce(0) { $0 + Int($1.weight) }
                let pick = total == 0 ? 0 : Int.random(in: 0...total, using: &rng)
                var running = 0
                let index =
                    group.firstIndex {
                        running += Int($0.weight); return running >= pick
                    } ?? 0
                out.append(group.remove(at: index))
            }
        }
        return out
    }

    /// Queries `name` for SRV records.
    public func records(name: String) async throws(CPNPClientError) -> [Record] {
        var rng = SystemRandomNumberGenerator()
        let id = UInt16.random(in: 0...UInt16.max, using: &rng)
        let query = try DNSMessage.srvQuery(name: name, id: id)
        let server = nameserver
        let timeout = timeout
        for _ in 0..<attempts {
            let reply: [UInt8]?
            do {
                reply = try await Task.detached { try DNSMessage.exchange(query, with: server, timeout: timeout) }.value
            } catch {
                throw .invalidArgument("SRV lookup of \(name): \(error)")
            }
            guard let reply else { continue }
            do { return try DNSMessage.parseSRVAnswer(reply, id: id) } catch { throw .invalidArgument("SRV lookup of \(name): \(error)") }
        }
        throw .invalidArgument("SRV lookup of \(name): no answer from the DNS server \(server.host):\(server.port)")
    }
}

/// The DNS wire format needed for one SRV question (RFC 1035 §4; RFC 2782).
enum DNSMessage {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func srvQuery(name: String, id: UInt16) throws(CPNPClientError) -> [UInt8] {
        var message: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            let bytes = Array(label.utf8)
            guard (1...63).contains(bytes.count) else { throw .invalidArgument("invalid DNS name \(name)") }
            message.append(UInt8(bytes.count))
            message += bytes
        }
        message += [0, 0, 33, 0, 1]
        guard message.count <= 512 else { throw .invalidArgument("DNS name too long: \(name)") }
        return message
    }

    /// Sends `query` over UDP and returns the reply, or nil after `timeout`.
    static func exchange(_ query: [UInt8], with server: (host: String, port: Int), timeout: Duration) throws -> [UInt8]? {
        let address = try SocketAddress.makeAddressResolvingHost(server.host, port: server.port)
        #if canImport(Glibc)
            let socketDescriptor = socket(Int32(address.protocol.rawValue), Int32(SOCK_DGRAM.rawValue), 0)
        #else
            let socketDescriptor = socket(Int32(address.protocol.rawValue), SOCK_DGRAM, 0)
        #endif
        guard socketDescriptor >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(socketDescriptor) }
        let (seconds, attoseconds) = timeout.components
        var receiveTimeout = timeval(tv_sec: Int(seconds), tv_usec: .init(attoseconds / 1_000_000_000_000))
        setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &receiveTimeout, socklen_t(MemoryLayout<timeval>.size))
        let sent: Int = address.withSockAddr { socketAddress, length in
            query.withUnsafeBytes { sendto(socketDescriptor, $0.baseAddress, $0.count, 0, socketAddress, socklen_t(length)) }
        }
        guard sent == query.count else { throw Failure(description: "sendto() failed") }
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let received = buffer.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress, $0.count, 0) }
        guard received > 0 else { return nil }
        return Array(buffer.prefix(received))
    }

    static func parseSRVAnswer(_ reply: [UInt8], id: UInt16) throws -> [SRVResolver.Record] {
        guard reply.count >= 12 else { throw Failure(description: "short DNS reply") }
        guard UInt16(reply[0]) << 8 | UInt16(reply[1]) == id, reply[2] & 0x80 != 0 else {
            throw Failure(description: "reply does not match the query")
        }
        if reply[2] & 0x02 != 0 { throw Failure(description: "truncated DNS reply") }
        let rcode = reply[3] & 0x0f
        if rcode == 3 { return [] }  // NXDOMAIN: no SRV records
        guard rcode == 0 else { throw Failure(description: "DNS error code \(rcode)") }
        let questionCount = Int(reply[4]) << 8 | Int(reply[5])
        let answerCount = Int(reply[6]) << 8 | Int(reply[7])
        var offset = 12
        for _ in 0..<questionCount {
            _ = try name(reply, &offset)
            offset += 4
        }
        var out: [SRVResolver.Record] = []
        for _ in 0..<answerCount {
            _ = try name(reply, &offset)
            guard offset + 10 <= reply.count else { throw Failure(description: "short answer record") }
            let type = Int(reply[offset]) << 8 | Int(reply[offset + 1])
            let length = Int(reply[offset + 8]) << 8 | Int(reply[offset + 9])
            offset += 10
            guard offset + length <= reply.count else { throw Failure(description: "short answer data") }
            if type == 33, length >= 7 {
                var targetOffset = offset + 6
                out.append(
                    SRVResolver.Record(
                        priority: UInt16(reply[offset]) << 8 | UInt16(reply[offset + 1]),
                        weight: UInt16(reply[offset + 2]) << 8 | UInt16(reply[offset + 3]),
                        port: UInt16(reply[offset + 4]) << 8 | UInt16(reply[offset + 5]), target: try name(reply, &targetOffset)))
            }
            offset += length
        }
        return out
    }

    /// Reads a possibly compressed name at `offset` (RFC 1035 §4.1.4), bounded against pointer loops.
    static func name(_ reply: [UInt8], _ offset: inout Int) throws -> String {
        var labels: [String] = []
        var position = offset
        var jumped = false
        var hops = 0
        while true {
            guard position < reply.count else { throw Failure(description: "name runs past the reply") }
            let labelLength = Int(reply[position])
            if labelLength == 0 {
                if !jumped { offset = position + 1 }
                break
            }
            if labelLength & 0xc0 == 0xc0 {
                guard position + 1 < reply.count, hops < 32 else { throw Failure(description: "bad name compression") }
                if !jumped { offset = position + 2 }
                position = (labelLength & 0x3f) << 8 | Int(reply[position + 1])
                jumped = true
                hops += 1
                continue
            }
            guard position + 1 + labelLength <= reply.count, labelLength <= 63 else { throw Failure(description: "bad label") }
            labels.append(String(decoding: reply[(position + 1)...(position + labelLength)], as: UTF8.self))
            position += 1 + labelLength
        }
        return labels.isEmpty ? "." : labels.joined(separator: ".")
    }
}

/// Turns what the user typed into peers to contact: SRV records for a bare domain name (no port,
/// not an IP literal), else the host itself on the given or default port.
///
/// Server identity (RFC 8921 §8.1; RFC 6125 §6.2): a host dialled directly must be named by the
/// certificate (DNS-ID or IP-ID). A server found through `_cpnp._udp.DOMAIN` is checked against
/// the source domain, not the SRV target host: the stub resolver does not validate DNSSEC, so the
/// target is not securely derived (RFC 6125 §6.2.1) and whoever forges the SRV answer could name
/// any host it has a certificate for. Its reference identity is the SRV-ID `_cpnp.DOMAIN`
/// (certificate: SRV-ID `_cpnp.DOMAIN` or DNS-ID `DOMAIN`, RFC 4985 / RFC 6125 §6.2.2), kept in
/// ``CPNPPeer/serverName`` in that text form so that it is stored with the order.
public enum CPNPServerLocator {
    public static func peers(for target: CPNPServerTarget, resolver: SRVResolver = SRVResolver()) async throws(CPNPClientError) -> [CPNPPeer] {
        var targets = [target]
        var serviceIdentity: String?
        if !target.portGiven, !target.isIPLiteral, target.host != "localhost", target.host.contains(".") {
            let found = (try? await resolver.servers(for: target.host)) ?? []
            if !found.isEmpty {
                targets = found
                serviceIdentity = "_cpnp." + (target.host.hasSuffix(".") ? String(target.host.dropLast()) : target.host).lowercased()
            }
        }
        var peers: [CPNPPeer] = []
        for resolvedTarget in targets {
            do {
                var peer = try CPNPPeer.server(host: resolvedTarget.host, port: resolvedTarget.port)
                if let serviceIdentity { peer.serverName = serviceIdentity }
                peers.append(peer)
            } catch { continue }
        }
        guard !peers.isEmpty else { throw .invalidArgument("cannot resolve the server \(target)") }
        return peers
    }
}

extension CPNPPeer {
    /// `name:port` as the user gave it (or `ip:port`), for messages and stored orders.
    /// A server found through SRV (``serverName`` `_cpnp.DOMAIN`) shows its address.
    public var displayName: String {
        let port = address.port ?? CPNPTransportDefaults.port
        let host = serverName.flatMap { $0.hasPrefix("_") ? nil : $0 } ?? address.ipAddress ?? "?"
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
