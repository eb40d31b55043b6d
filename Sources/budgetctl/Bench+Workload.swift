import Foundation

/// The clock-dependent parts of a bench run's events (BenchWorkload.swift has the rest).
extension BenchWorkload {
    /// The current UTC instant in RFC 3339, for the events' `time`.
    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }

    /// The first day of the current UTC month, `YYYY-MM-01`, for `--setup`.
    static func firstOfMonth() -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month], from: Date())
        let year = parts.year ?? 1970
        let month = parts.month ?? 1
        return "\(year)-\(month < 10 ? "0" : "")\(month)-01"
    }
}
