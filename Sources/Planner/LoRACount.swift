import Config
import Support

/// An error of the planner that a user can act on.
public struct PlanError: ActionableError, Equatable {
    public let problem: String
    public let remedy: String
    public init(problem: String, remedy: String) {
        self.problem = problem
        self.remedy = remedy
    }
}

/// Exact LoRA parameter counts, matched the way peft matches `target_modules` given as a list:
/// a module is adapted when its full name equals a target or ends with "." + target, and it
/// must be an `nn.Linear`.
public struct LoRACount: Sendable, Equatable, Codable {
    public var targets: [String]
    public var rank: Int
    /// Adapted Linear modules in one expert.
    public var modulesPerExpert: Int
    /// Modules per target name in one expert, in target order.
    public var modulesPerTarget: [Int]
    /// LoRA parameters of one expert: Σ over matched modules of r·(in + out).
    public var parametersPerExpert: Int
    /// Experts that get a LoRA (2 for expert = both on A14B, else 1).
    public var experts: Int
    public var parametersTotal: Int
    /// Adapted modules that run over video tokens (per expert), for the FLOP and memory models.
    public var videoModules: [LinearModuleShape]
    /// Adapted modules that run over text tokens or once per sample.
    public var otherModules: [LinearModuleShape]

    /// Size of the LoRA weights of one expert: bf16 (2 bytes a parameter) and fp32 (4).
    public var bytesPerExpertBF16: Int { parametersPerExpert * 2 }
    public var bytesPerExpertFP32: Int { parametersPerExpert * 4 }
    public var bytesTotalBF16: Int { parametersTotal * 2 }
    public var bytesTotalFP32: Int { parametersTotal * 4 }

    public struct LinearModuleShape: Sendable, Equatable, Codable {
        public var inFeatures: Int
        public var outFeatures: Int
        /// How many such modules (in all blocks).
        public var count: Int
    }
}

extension LoRACount {
    /// Counts the LoRA of `targets` at `rank` on `architecture`, for `experts` experts.
    /// Throws when a target matches no Linear module (naming what it matched instead).
    public static func count(architecture: Architecture, targets: [String], rank: Int, experts: Int) throws -> LoRACount
    {
        let modules = architecture.linearModules
        var matched = [Bool](repeating: false, count: modules.count)
        var perTarget: [Int] = []
        for target in targets {
            var n = 0
            for (i, m) in modules.enumerated() where m.name == target || m.name.hasSuffix("." + target) {
                matched[i] = true
                n += 1
            }
            if n == 0 {
                let isNonLinear = Architecture.nonLinearModuleNames.contains {
                    $0 == target || $0.hasSuffix("." + target) || target.hasSuffix("." + $0)
                }
                let blockNames = architecture.blockLinears.map(\.name)
                throw PlanError(
                    problem: isNonLinear
                        ? "LoRA target \"\(target)\" names a module that is not an "
                            + "nn.Linear in \(architecture.name); peft cannot adapt it."
                        : "LoRA target \"\(target)\" matches no module of \(architecture.name).",
                    remedy:
                        "Use Linear module names (or their suffixes) such as: \(blockNames.joined(separator: ", ")), "
                        + "proj_out, condition_embedder.time_proj. \"to_q\" matches attn1.to_q and "
                        + "attn2.to_q in every block; \"attn1.to_q\" only the self-attention one."
                )
            }
            perTarget.append(n)
        }
        var video: [String: LinearModuleShape] = [:]
        var other: [String: LinearModuleShape] = [:]
        var params = 0
        var count = 0
        for (i, m) in modules.enumerated() where matched[i] {
            count += 1
            params += rank * (m.inFeatures + m.outFeatures)
            let key = "\(m.inFeatures)x\(m.outFeatures)"
            if m.runsOver == .video {
                video[key, default: LinearModuleShape(inFeatures: m.inFeatures, outFeatures: m.outFeatures, count: 0)]
                    .count += 1
            } else {
                other[key, default: LinearModuleShape(inFeatures: m.inFeatures, outFeatures: m.outFeatures, count: 0)]
                    .count += 1
            }
        }
        let sortShapes = { (d: [String: LinearModuleShape]) in
            d.values.sorted { ($0.inFeatures, $0.outFeatures) < ($1.inFeatures, $1.outFeatures) }
        }
        return LoRACount(
            targets: targets, rank: rank, modulesPerExpert: count, modulesPerTarget: perTarget,
            parametersPerExpert: params, experts: experts, parametersTotal: params * experts,
            videoModules: sortShapes(video), otherModules: sortShapes(other)
        )
    }

    /// Adapted modules per transformer block that run over video tokens (for activation memory).
    public func videoModulesPerBlock(layers: Int) -> [LinearModuleShape] {
        videoModules.map {
            LinearModuleShape(inFeatures: $0.inFeatures, outFeatures: $0.outFeatures, count: max(0, $0.count / layers))
        }
    }
}
