import Foundation

/// The host's available memory, as the kernel reports it: what a training process can take without
/// pushing other memory out (`MemAvailable` of /proc/meminfo, which counts reclaimable page cache).
public enum HostMemoryInfo {
    /// `MemAvailable` in bytes from the text of /proc/meminfo ("MemAvailable:   12345678 kB"); nil when absent.
    public static func availableBytes(meminfo: String) -> Int? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kib = Int(fields[1]) else { return nil }
            let unit = fields.count >= 3 ? fields[2].lowercased() : "kb"
            return unit == "kb" ? kib * 1024 : kib
        }
        return nil
    }

    /// This machine's available memory; nil where /proc/meminfo cannot be read (not Linux).
    public static func availableBytes(path: String = "/proc/meminfo") -> Int? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return availableBytes(meminfo: String(decoding: data, as: UTF8.self))
    }
}
