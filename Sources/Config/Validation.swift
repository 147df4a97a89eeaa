extension WanLoRAConfig {
    /// Checks every key's own rule and the rules between keys; throws every violation (a
    /// `ConfigError` for one, `ConfigErrors` for several), in file order.
    ///
    /// Rules that need the model's dimensions or the GPU (heads divisible by the Ulysses degree,
    /// target names that exist, bf16 support, memory) are the planner's checks.
    public func validate() throws {
        try ConfigErrors.throwIfAny(problems())
    }

    /// Every violation of a key's rule or of a rule between keys, in file order.
    public func problems() -> [ConfigError] {
        // Each key's rule, also for values set in code rather than read from a file.
        var found: [ConfigError] = []
        for entry in ConfigKeys.all {
            if case .failure(let error) = entry.key.check(entry.value(in: self), path: entry.path) {
                found.append(error)
            }
        }

        let world = hardware.worldSize
        if hardware.ulyssesDegree > 0, world % hardware.ulyssesDegree != 0 {
            let divisors = (1...max(world, 1)).filter { world % $0 == 0 }.map(String.init).joined(separator: ", ")
            found.append(
                ConfigError(
                    kind: .inconsistent, key: "hardware.ulysses_degree",
                    problem:
                        "hardware.ulysses_degree = \(hardware.ulyssesDegree) does "
                        + "not divide the \(world) GPUs of the run "
                        + "(gpus_per_node \(hardware.gpusPerNode) × nodes \(hardware.nodes)).",
                    remedy:
                        "Use a Ulysses degree that divides \(world): \(divisors); the GPUs form groups of that size, "
                        + "one sample per group."
                ))
        }
        return found
    }
}
