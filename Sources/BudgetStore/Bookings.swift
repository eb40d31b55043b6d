import BudgetCore
import GRDB
import GRDBSQLite

// How a budget's bookings are found (its costs booked in event rows, docs/ledger.md "Where
// costs are stored"), without an index of the event rows by budget.
//
// An index of the rows by (budget, time) takes each new booking in its budget's part of the
// tree: a commit dirties a page per budget it books to (and the pages above it), written to
// the log and again to the database at the checkpoint. At 20 budgets that was 2 µs of CPU and
// 340 bytes written per event (a build without it), and 200 budgets cost 7 µs and 2 KB per
// event more than one (docs/benchmarks.md, "Eleventh session"). Instead each booking (budget, event time, row number) is kept in memory as its
// row is inserted; every `bookingsPerSet` rows the set is sealed, sorted, and copied into
// `booking_index` a step per write transaction (as event keys are copied into their
// generations: EventKeys.swift), so that each budget's bookings of a whole set go into its
// part of the tree together; the last step records in `booking_state.through` the last row
// the set covers. Every booked row up to `through` has its entry in `booking_index`; the
// rows after it (about two sets' rows: the one being copied and the one filling) are read
// directly when a budget's costs are listed (`StoreReader.costRows`). At a start the bookings
// after `through` are read back from their rows.

/// A booking of an event row: its budget, its event time, its row.
struct Booking: Sendable {
    var budgetId: String
    var time: Int64
    var rowid: Int64
}

/// The copy of a sealed set of bookings into `booking_index`: sorted, how many are copied, and
/// the last row the set covers.
struct BookingCopy {
    let bookings: SortedInBackground<Booking>
    let through: Int64
    var next: Int
}

extension Store {
    /// Bookings sealed into a set and copied into `booking_index` at once: enough that each
    /// budget of a few hundred gets a page's worth at a time; few enough that listing a
    /// budget's costs reads at most twice as many event rows directly.
    public static let defaultBookingsPerSet = 8_192

    /// Reads `booking_state.through` and the bookings of the rows after it.
    func loadBookings() throws {
        bookingState = try queue.read { db in
            let through = try Int64.fetchOne(db, sql: "SELECT through FROM booking_state") ?? 0
            var pending: [Booking] = []
            let rows = try Row.fetchCursor(db, sql: """
                SELECT budget_id, event_time, rowid FROM usage_events
                WHERE rowid > ? AND booked IS NOT NULL AND budget_id IS NOT NULL ORDER BY rowid
                """, arguments: [through])
            while let row = try rows.next() { pending.append(Booking(budgetId: row[0], time: row[1], rowid: row[2])) }
            let last = try Int64.fetchOne(db, sql: "SELECT max(rowid) FROM usage_events") ?? 0
            return (through, pending, max(last, through))
        }
    }
}

extension HotStatements {
    /// At the start of each write transaction, after `stepKeys`: seals the pending bookings
    /// once `bookingsPerSet` rows have come after `through` (sorted in the background when
    /// many), then copies the next step of the sealed set; the last step records `through`.
    func stepBookings() throws {
        bookingsBefore = (pendingBookings, bookingCopy, bookingsThrough, lastRowid, skippedBookingRows)
        // Sealed by rows, not bookings: the rows after `through` are what `cost.list` reads
        // directly, bookings or not (a run of unpriced events, say).
        if bookingCopy == nil && lastRowid - bookingsThrough >= Int64(bookingsPerSet) {
            let sealed = pendingBookings
            pendingBookings = []
            pendingBookings.reserveCapacity(bookingsPerSet)
            let bookings = sealed.count < backgroundSortKeys
                ? SortedInBackground(Self.sorted(sealed)) : SortedInBackground(sortingInBackground: { Self.sorted(sealed) })
            // Every row committed so far: the pending bookings were all of those after `through`.
            bookingCopy = BookingCopy(bookings: bookings, through: lastRowid, next: 0)
        }
        guard var c = bookingCopy, let sorted = c.bookings.result else { return }
        let end = min(c.next + max(keysPerStep, 2 * lastTransactionEvents), sorted.count)
        let batch = skippedBookingRows.isEmpty ? sorted[c.next..<end] : ArraySlice(sorted[c.next..<end].filter { !skippedBookingRows.contains($0.rowid) })
        try insertRows(batch.count, single: insertBooking, multi: [insertBookings], rowsPerStatement: [Self.keysPerCopyInsert]) {
            let b = batch[batch.startIndex + $0]
            binder.text(b.budgetId)
            binder.int(b.time)
            binder.int(b.rowid)
        }
        c.next = end
        if end == sorted.count {
            binder.begin(updateBookingsThrough)
            binder.int(c.through)
            try binder.run(step)
            bookingsThrough = c.through
            completingBookings = true
        }
        bookingCopy = c
    }

    /// The order of `booking_index`: budget (by its UTF-8 bytes, as SQLite compares text),
    /// time, row. Grouped by budget first (a set has a few budgets, or a few bookings each),
    /// so texts are hashed once each rather than compared at every step of the sort: with texts
    /// compared, the daemon's sort threads took 0.6 µs per event; grouped, 0.1.
    static func sorted(_ bookings: [Booking]) -> [Booking] {
        var groups: [String: [Int]] = [:]
        for i in bookings.indices { groups[bookings[i].budgetId, default: []].append(i) }
        let budgets = groups.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var result: [Booking] = []
        result.reserveCapacity(bookings.count)
        for budget in budgets {
            // Row order within a group already; by time, then row, it stays so for equal times.
            let group = groups[budget]!.sorted { a, b in
                bookings[a].time != bookings[b].time ? bookings[a].time < bookings[b].time : bookings[a].rowid < bookings[b].rowid
            }
            for i in group { result.append(bookings[i]) }
        }
        return result
    }

    /// Retention deleted these rows: their bookings not yet in `booking_index` never go there
    /// (an entry of a deleted row would only be skipped when read, but it would stay).
    func forgetBookings(ofRows rowids: Set<Int64>) {
        guard !rowids.isEmpty else { return }
        pendingBookings.removeAll { rowids.contains($0.rowid) }
        uncommittedBookings.removeAll { rowids.contains($0.rowid) }
        if let copy = bookingCopy { skippedBookingRows.formUnion(rowids.filter { $0 <= copy.through }) }
    }

    func committedBookings() {
        // The saved state first: while it shares the pending array, appending to it would copy
        // the whole array (a retain per booking) at every commit.
        bookingsBefore = nil
        pendingBookings += uncommittedBookings
        uncommittedBookings.removeAll(keepingCapacity: true)
        if completingBookings {
            bookingCopy = nil
            skippedBookingRows = []
            completingBookings = false
        }
    }

    func forgetUncommittedBookings() {
        uncommittedBookings.removeAll()
        if let b = bookingsBefore {
            pendingBookings = b.pending
            bookingCopy = b.copy
            bookingsThrough = b.through
            lastRowid = b.lastRowid
            skippedBookingRows = b.skipped
        }
        bookingsBefore = nil
        completingBookings = false
    }
}
