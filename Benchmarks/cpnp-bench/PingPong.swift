import Foundation
import Histogram
#if canImport(Glibc)
    import Glibc
#endif
// The C structs used here (`sockaddr_in`, `timeval`) come from system headers that are not modular:
// Clang gives each to whichever module includes it first, which changes from build to build (Glibc,
// the toolchain's SwiftOverlayShims, or SwiftNIO's CNIOLinux, which NIOCore brings into the build).
// With member import visibility their fields are usable only if that module is imported here, so
// all three are.
#if canImport(SwiftOverlayShims)
    import SwiftOverlayShims
#endif
#if canImport(CNIOLinux)
    import CNIOLinux
#endif

/// The physical reference: a bare UDP ping-pong between two sockets on 127.0.0.1 (blocking system
/// calls, an echo thread), with datagrams the size of the benchmark's QUOTATION. No CPNP, no DTLS,
/// no event loop: what one round trip over this loopback costs at the least.
enum PingPong {
    struct Result: Sendable {
        var roundTrips: Int
        var messageSize: Int
        var seconds: Double
        /// Round-trip times, microseconds (resolution 0.1 µs is not needed: 1 µs buckets).
        var histogram: Histogram<UInt64>
        var roundTripsPerSecond: Double { Double(roundTrips) / seconds }
        /// Two datagrams per round trip.
        var messagesPerSecond: Double { 2 * roundTripsPerSecond }
    }

    static func run(roundTrips: Int, messageSize: Int) throws -> Result {
        let pinger = try socketBoundToLoopback()
        let echoer = try socketBoundToLoopback()
        defer {
            close(pinger.fd)
            close(echoer.fd)
        }
        let echo = Thread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            var from = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            while true {
                let received = buffer.withUnsafeMutableBytes { raw in
                    withUnsafeMutablePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(echoer.fd, raw.baseAddress, raw.count, 0, $0, &length) }
                    }
                }
                if received <= 1 { return }  // a 1-byte datagram (or an error: the socket was closed) ends it
                _ = buffer.withUnsafeBytes { raw in
                    withUnsafePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(echoer.fd, raw.baseAddress, received, 0, $0, length) }
                    }
                }
            }
        }
        echo.start()

        var message = [UInt8](repeating: 0x7B, count: max(2, messageSize))
        var reply = [UInt8](repeating: 0, count: 65_536)
        func roundTrip() throws {
            let sent = message.withUnsafeBytes { raw in
                withUnsafePointer(to: echoer.address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(pinger.fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            guard sent == message.count else { throw BenchError("ping-pong: sendto failed (errno \(errno))") }
            let received = reply.withUnsafeMutableBytes { recv(pinger.fd, $0.baseAddress, $0.count, 0) }
            guard received == message.count else { throw BenchError("ping-pong: no echo within 1 s (errno \(errno))") }
        }
        defer {
            // Stop the echo thread.
            message = [0]
            _ = message.withUnsafeBytes { raw in
                withUnsafePointer(to: echoer.address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(pinger.fd, raw.baseAddress, 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        // Warm-up, then the measured round trips.
        for _ in 0..<min(1_000, roundTrips) { try roundTrip() }
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        let clock = ContinuousClock()
        let started = clock.now
        var previous = started
        for _ in 0..<roundTrips {
            try roundTrip()
            let now = clock.now
            _ = histogram.record(max(1, (now - previous).microseconds))
            previous = now
        }
        return Result(roundTrips: roundTrips, messageSize: message.count, seconds: (clock.now - started).seconds, histogram: histogram)
    }

    private static func socketBoundToLoopback() throws -> (fd: Int32, address: sockaddr_in) {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw BenchError("ping-pong: socket() failed (errno \(errno))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw BenchError("ping-pong: bind() failed (errno \(errno))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (descriptor, address)
    }
}
