extension WanLoRAConfig {
    /// Checks every key's own rule and the rules between keys; throws the first violation.
    ///
    /// Rules that need the model's dimensions or the GPU (heads divisible by the Ulysses degree,
    /// target names that exist, bf16 support, memory) are the planner's checks.
    public func validate() throws {
        // Each key's rule, also for values set in code rather than read from a file: write the
        // value out as TOML and read it back through the key's own parser.
        var copy = self
        for key in ConfigKeys.all {
            let literal = key.tomlValue(in: self)
            guard let value = try? ConfigLoader.parseTable("v = \(literal)", source: key.path)["v"] else {
                throw ConfigError.invalid(key.path, literal, allowed: key.allowed)
            }
            try key.apply(&copy, value)
        }

        let world = hardware.worldSize
        if world % hardware.ulyssesDegree != 0 {
            let divisors = (1...world).filter { world % $0 == 0 }.map(String.init).joined(separator: ", ")
            throw ConfigError(
                kind: .inconsistent, key: "hardware.ulysses_degree",
                problem: "hardware.ulysses_degree = \(hardware.ulyssesDegree) does not divide the \(world) "
                    + "GPUs of the run (gpus_per_node \(hardware.gpusPerNode) × nodes \(hardware.nodes)).",
                remedy: "Use a Ulysses degree that divides \(world): \(divisors); "
                    + "the GPUs form groups of that size, one sample per group."
            )
        }
    }
}
