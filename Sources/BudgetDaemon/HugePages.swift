#if canImport(Glibc)
import Glibc
#endif

/// Transparent huge pages for a large table read at random (the dedup key filter, 16 MiB).
///
/// Each key's lookup reads one block at a random place in the table: with 4 KiB pages that is
/// a TLB miss nearly every time (4,096 pages, more than the TLB holds), and a page walk,
/// which in a virtual machine walks two sets of tables. With 2 MiB pages the table takes eight
/// TLB entries (issue 8: the filter's reads were 4–5 % of the engine thread, nearly all of it
/// the walk). Debian's default (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise) gives
/// them only to memory that asks.
enum HugePages {
    static let size = 2 << 20
    /// MADV_COLLAPSE (Linux 6.1): back the range with huge pages now, not when khugepaged
    /// next passes (it scans 16 MiB every 10 s or so by default).
    private static let adviceCollapse: Int32 = 25

    /// Asks the kernel to back the part of `buffer` that covers whole, aligned 2 MiB pages with
    /// huge pages: at once where it can (MADV_COLLAPSE), as it can otherwise (MADV_HUGEPAGE).
    /// Returns the bytes asked for and whether the immediate collapse was done. Only advice: a
    /// kernel without THP, or that refuses, changes nothing but speed.
    @discardableResult
    static func advise(_ buffer: UnsafeMutableRawBufferPointer) -> (bytes: Int, collapsed: Bool) {
        #if os(Linux)
        guard let base = buffer.baseAddress else { return (0, false) }
        let start = (Int(bitPattern: base) + size - 1) & ~(size - 1)
        let end = (Int(bitPattern: base) + buffer.count) & ~(size - 1)
        guard end > start, let address = UnsafeMutableRawPointer(bitPattern: start) else { return (0, false) }
        guard madvise(address, end - start, MADV_HUGEPAGE) == 0 else { return (0, false) }
        return (end - start, madvise(address, end - start, adviceCollapse) == 0)
        #else
        return (0, false)
        #endif
    }
}
