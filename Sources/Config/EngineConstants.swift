/// Facts the planner and the engine must agree on that are no configuration key; `wanlora config generate`
/// writes them into the engine's schema (`constants`), so each is written once, here.
public enum EngineConstants {
    /// Bytes kept out of a card's memory: the CUDA context (about 0.5 GiB, outside the allocator) and the
    /// allocator's slack. The planner's usable capacity and the engine's `hardware.gpu_memory_limit = 0`
    /// ("what the card has") both leave it out.
    public static let cardReserveBytes = 1 << 30
}
