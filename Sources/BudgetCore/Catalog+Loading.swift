extension Catalog {
    /// Loads a catalog from its JSON text: the native format of CONTRACT §3, or the LiteLLM
    /// price map, told apart by shape: a `prices` array is native; otherwise an object with an
    /// entry carrying `litellm_provider` is the LiteLLM map (whose keys are models: one may be
    /// named "prices", an entry or an alias); otherwise `prices` makes it native (and wrong).
    public static func load(json bytes: some Collection<UInt8>) throws(CatalogError) -> Catalog {
        let value: JSONValue
        do { value = try JSON.parse(bytes, maxDepth: 64) } catch {
            throw CatalogError("catalog is not valid JSON: \(error.message) at byte \(error.offset)")
        }
        guard let object = value.objectValue else { throw CatalogError("catalog must be a JSON object") }
        if let prices = object["prices"], prices.arrayValue != nil
            || !object.contains(where: { $0.value.objectValue?["litellm_provider"] != nil }) {
            return try loadNative(object)
        }
        return try loadLiteLLM(object)
    }

    static func decimal(_ value: JSONValue?, _ what: String) throws(CatalogError) -> ExactDecimal {
        guard let value, let text = value.numberText ?? value.stringValue else {
            throw CatalogError("\(what) must be a decimal number or string")
        }
        let d: ExactDecimal
        do { d = try ExactDecimal(parsing: text) } catch { throw CatalogError("\(what): \(error.message)") }
        if d.isNegative { throw CatalogError("\(what) is negative") }
        return d
    }

    static func prices(_ value: JSONValue?, _ what: String) throws(CatalogError) -> [String: ExactDecimal] {
        guard let value, !value.isNull else { return [:] }
        guard let object = value.objectValue else { throw CatalogError("\(what) must be an object of unit → price") }
        var result: [String: ExactDecimal] = [:]
        for (unit, price) in object { result[unit] = try decimal(price, "\(what).\(unit)") }
        return result
    }

    static func time(_ value: JSONValue?, _ what: String) throws(CatalogError) -> Timestamp {
        guard let text = value?.stringValue else { throw CatalogError("\(what) is missing") }
        do { return try DateSpec(parsing: text).startInstant } catch {
            throw CatalogError("\(what): \(error.message)")
        }
    }

    static func loadNative(_ object: JSONObject) throws(CatalogError) -> Catalog {
        let version = object["version"]?.stringValue ?? object["version"]?.numberText ?? "unversioned"
        guard let items = object["prices"]?.arrayValue else { throw CatalogError("prices must be an array") }
        var catalog = Catalog(version: version)
        for (i, item) in items.enumerated() {
            let at = "prices[\(i)]"
            guard let e = item.objectValue else { throw CatalogError("\(at) must be an object") }
            guard let platform = e["platform"]?.stringValue, !platform.isEmpty else {
                throw CatalogError("\(at).platform is missing")
            }
            guard let model = e["model"]?.stringValue, !model.isEmpty else { throw CatalogError("\(at).model is missing") }
            let from = e["effectiveFrom"]?.isNull ?? true ? Timestamp(nanosecondsSinceEpoch: 0) : try time(e["effectiveFrom"], "\(at).effectiveFrom")
            let currency = UsageEventDecoder.uppercased(e["currency"]?.stringValue ?? "USD")
            if !UsageEventDecoder.isCurrencyCode(currency) { throw CatalogError("\(at).currency must be a 3-letter code") }
            let perRequest: ExactDecimal? = (e["perRequest"] == nil || e["perRequest"]!.isNull)
                ? nil : try decimal(e["perRequest"], "\(at).perRequest")
            let alternatives = (e["alternatives"]?.arrayValue ?? []).compactMap(\.stringValue)
            catalog.add(PriceEntry(
                platform: platform, model: model, effectiveFrom: from, currency: currency,
                unitPrices: try prices(e["unitPrices"], "\(at).unitPrices"), perRequest: perRequest,
                batchUnitPrices: try prices(e["batchUnitPrices"], "\(at).batchUnitPrices"),
                alternatives: alternatives
            ))
        }
        for (i, item) in (object["rates"]?.arrayValue ?? []).enumerated() {
            let at = "rates[\(i)]"
            guard let r = item.objectValue, let from = r["from"]?.stringValue, let to = r["to"]?.stringValue else {
                throw CatalogError("\(at) needs from and to")
            }
            let rate = try decimal(r["rate"], "\(at).rate")
            for (key, code) in [("from", from), ("to", to)] where !UsageEventDecoder.isCurrencyCode(UsageEventDecoder.uppercased(code)) {
                throw CatalogError("\(at).\(key) must be a 3-letter code, not \(code)")
            }
            // A rate of 0 would book every converted cost at 0 without a word (§5: never
            // silently zero); a price of 0 is a choice, a rate of 0 is a mistake.
            if rate.isZero { throw CatalogError("\(at).rate must be greater than 0") }
            catalog.add(ExchangeRate(
                from: UsageEventDecoder.uppercased(from), to: UsageEventDecoder.uppercased(to), rate: rate,
                effectiveFrom: r["effectiveFrom"]?.isNull ?? true ? Timestamp(nanosecondsSinceEpoch: 0) : try time(r["effectiveFrom"], "\(at).effectiveFrom")
            ))
        }
        return catalog
    }

    /// LiteLLM's map: key = model, `litellm_provider` = platform; per-token prices for input,
    /// output and cached input; `provider/model` keys are also found as `model`, on the entry's
    /// provider and on the key's.
    static func loadLiteLLM(_ object: JSONObject) throws(CatalogError) -> Catalog {
        var catalog = Catalog(version: "litellm")
        let units: [(String, String)] = [
            ("input_cost_per_token", "inputTokens"), ("output_cost_per_token", "outputTokens"),
            ("cache_read_input_token_cost", "cachedInputTokens"),
        ]
        let batchUnits: [(String, String)] = [
            ("input_cost_per_token_batches", "inputTokens"), ("output_cost_per_token_batches", "outputTokens"),
        ]
        var prefixed: [PriceEntry] = [], otherPrefixed: [PriceEntry] = []
        var sawProvider = false
        for (key, value) in object where key != "sample_spec" {
            guard let e = value.objectValue, let provider = e["litellm_provider"]?.stringValue else { continue }
            sawProvider = true
            var unitPrices: [String: ExactDecimal] = [:]
            for (field, unit) in units {
                if let v = e[field], !v.isNull { unitPrices[unit] = try decimal(v, "\(key).\(field)") }
            }
            if unitPrices.isEmpty { continue }
            var batch: [String: ExactDecimal] = [:]
            for (field, unit) in batchUnits {
                if let v = e[field], !v.isNull { batch[unit] = try decimal(v, "\(key).\(field)") }
            }
            // A unit the map gives no batch price (cached input: LiteLLM has no such field)
            // keeps its regular price in batch mode: batch prices replace unit prices whole
            // (CONTRACT §3), so a batch event with cached input was UNPRICED (an audit).
            if !batch.isEmpty {
                for (unit, price) in unitPrices where batch[unit] == nil { batch[unit] = price }
            }
            let entry = PriceEntry(
                platform: provider, model: key, effectiveFrom: Timestamp(nanosecondsSinceEpoch: 0),
                unitPrices: unitPrices, batchUnitPrices: batch
            )
            catalog.add(entry)
            // `provider/model`: also `model`, on the entry's provider and, where the key names
            // another (`vertex_ai/claude-3-5-haiku` of `vertex_ai-anthropic_models`), on that one.
            if let slash = key.firstIndex(of: "/"), key.index(after: slash) < key.endIndex {
                let keyProvider = String(key[..<slash])
                var short = entry
                short.model = String(key[key.index(after: slash)...])
                if keyProvider.lowercased() == provider.lowercased() {
                    prefixed.append(short)
                } else {
                    otherPrefixed.append(short)
                    short.platform = keyProvider
                    otherPrefixed.append(short)
                }
            }
        }
        if !sawProvider { throw CatalogError("catalog is neither a native catalog (no \"prices\") nor a LiteLLM map (no \"litellm_provider\")") }
        // A plain key wins over the same model found through a provider/model key, and a key
        // prefixed with its own provider over one prefixed with another; then the first in the file.
        for entry in prefixed + otherPrefixed where catalog.entry(platform: entry.platform, model: entry.model, at: entry.effectiveFrom) == nil {
            catalog.add(entry)
        }
        catalog.version = "litellm-\(catalog.entryCount)"
        return catalog
    }
}
