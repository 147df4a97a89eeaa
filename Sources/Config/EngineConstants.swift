/// Facts the planner and the engine must agree on that are no configuration key; `wanlora config generate`
/// writes them into the engine's schema (`constants`), so each is written once, here.
public enum EngineConstants {
    /// Bytes kept out of a card's memory: the CUDA context (about 0.5 GiB, outside the allocator) and the
    /// allocator's slack. The planner's usable capacity and the engine's `hardware.gpu_memory_limit = 0`
    /// ("what the card has") both leave it out.
    public static let cardReserveBytes = 1 << 30

    /// Optimizer state a trained parameter keeps: AdamW's two float32 moments (8 B), or 8-bit AdamW's two
    /// bytes (its block scales left out). The planner's memory and the engine's block placement both count it.
    public static func optimizerStateBytes(_ optimizer: Optimizer) -> Int {
        switch optimizer {
        case .adamw: 8
        case .adamw8bit: 2
        }
    }

    /// The constants as the engine's schema writes them (`constants`).
    static var schemaJSON: String {
        let optimizers = Optimizer.allCases.map { "\"\($0.rawValue)\": \(optimizerStateBytes($0))" }
        return "{\"card_reserve_bytes\": \(cardReserveBytes), \"optimizer_state_bytes\": {"
            + optimizers.joined(separator: ", ") + "}}"
    }
}
