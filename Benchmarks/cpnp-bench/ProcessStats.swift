import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// CPU time and memory of a process, from /proc (Linux).
struct ProcessSample: Sendable {
    /// User + system CPU seconds, all threads.
    var cpuSeconds: Double
    var userSeconds: Double
    var systemSeconds: Double
    /// Peak resident set size (VmHWM), bytes.
    var peakResidentBytes: Int64?
    /// Current resident set size (VmRSS), bytes.
    var residentBytes: Int64?
    var threads: Int?
    /// Bytes the process read and wrote through file system calls (/proc/PID/io `rchar`, `wchar`;
    /// sockets are not counted): its store's reads and writes, WAL and checkpoints included.
    var fileReadBytes: Int64?
    var fileWrittenBytes: Int64?

    /// Reads /proc/PID/stat and /proc/PID/status; nil when the process is gone or not on Linux.
    static func read(pid: Int32?) -> ProcessSample? {
        let base = pid.map { "/proc/\($0)" } ?? "/proc/self"
        guard let stat = try? String(contentsOfFile: base + "/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state is field 3, utime 14, stime 15 (proc(5)).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var sample = ProcessSample(cpuSeconds: (utime + stime) / ticks, userSeconds: utime / ticks, systemSeconds: stime / ticks)
        if let status = try? String(contentsOfFile: base + "/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count >= 2 else { continue }
                switch parts[0] {
                case "VmHWM:": sample.peakResidentBytes = Int64(parts[1]).map { $0 * 1024 }
                case "VmRSS:": sample.residentBytes = Int64(parts[1]).map { $0 * 1024 }
                case "Threads:": sample.threads = Int(parts[1])
                default: break
                }
            }
        }
        if let io = try? String(contentsOfFile: base + "/io", encoding: .utf8) {
            for line in io.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 2 else { continue }
                switch parts[0] {
                case "rchar:": sample.fileReadBytes = Int64(parts[1])
                case "wchar:": sample.fileWrittenBytes = Int64(parts[1])
                default: break
                }
            }
        }
        return sample
    }
}

extension ProcessSample {
    /// Several processes as one: CPU times and memory summed, threads summed.
    static func sum(_ samples: [ProcessSample]) -> ProcessSample? {
        guard var total = samples.first else { return nil }
        for sample in samples.dropFirst() {
            total.cpuSeconds += sample.cpuSeconds
            total.userSeconds += sample.userSeconds
            total.systemSeconds += sample.systemSeconds
            total.peakResidentBytes = total.peakResidentBytes.map { $0 + (sample.peakResidentBytes ?? 0) }
            total.residentBytes = total.residentBytes.map { $0 + (sample.residentBytes ?? 0) }
            total.threads = total.threads.map { $0 + (sample.threads ?? 0) }
            total.fileReadBytes = total.fileReadBytes.map { $0 + (sample.fileReadBytes ?? 0) }
            total.fileWrittenBytes = total.fileWrittenBytes.map { $0 + (sample.fileWrittenBytes ?? 0) }
        }
        return total
    }

    /// The processes named `name` (/proc/PID/comm), e.g. every process of a PostgreSQL server.
    static func processes(named name: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry in
            guard let pid = Int32(entry),
                let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8),
                comm.trimmingCharacters(in: .whitespacesAndNewlines) == name
            else { return nil }
            return pid
        }
    }
}

/// /proc/loadavg: the 1, 5 and 15 minute load averages.
struct LoadAverage: Sendable {
    var one: Double
    var five: Double
    var fifteen: Double

    static func read() -> LoadAverage? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        let averages = text.split(separator: " ").prefix(3).compactMap { Double($0) }
        guard averages.count == 3 else { return nil }
        return LoadAverage(one: averages[0], five: averages[1], fifteen: averages[2])
    }

    var description: String { String(format: "%.2f %.2f %.2f", one, five, fifteen) }
}

/// Online CPUs.
var onlineCPUs: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
