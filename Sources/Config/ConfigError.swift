import Support

/// A configuration that cannot be used, naming the key, the value and what is allowed.
public struct ConfigError: ActionableError, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The file could not be read.
        case unreadable
        /// The file is not valid TOML.
        case syntax
        /// A section or key that wanlora does not know.
        case unknownKey
        /// A value of the wrong TOML type (a string where a number belongs, …).
        case wrongType
        /// A value of the right type outside what is allowed.
        case invalidValue
        /// Values that are fine alone but not together.
        case inconsistent
        /// A key that a file must have and lacks (config.resolved.json has no defaults).
        case missingKey
        /// A value wanlora can plan with but the engine cannot train with (yet).
        case unsupported
    }

    public let kind: Kind
    /// Dotted key, e.g. "training.frames"; nil when the whole file is concerned.
    public let key: String?
    public let problem: String
    public let remedy: String

    public init(kind: Kind, key: String?, problem: String, remedy: String) {
        self.kind = kind
        self.key = key
        self.problem = problem
        self.remedy = remedy
    }

    static func invalid(_ key: String, _ value: String, allowed: String, why: String? = nil) -> ConfigError {
        let reason = why.map { ": \($0)" } ?? ""
        return ConfigError(
            kind: .invalidValue, key: key,
            problem: "\(key) = \(value) is not allowed\(reason).",
            remedy: "Set \(key) to \(allowed)."
        )
    }
}

/// Several problems of one configuration, in file order, so that one run names all of them.
public struct ConfigErrors: ActionableError, Equatable {
    public let errors: [ConfigError]

    public init(_ errors: [ConfigError]) { self.errors = errors }

    /// Each problem with its own remedy, numbered.
    public var problem: String {
        "\(errors.count) problems in the configuration:\n"
            + errors.enumerated().map {
                "  \($0.offset + 1). \($0.element.problem)\n     \($0.element.remedy)"
            }.joined(separator: "\n")
    }

    public var remedy: String { "Fix each of them (docs/config.md describes every key)." }

    /// Throws nothing for no problem, the `ConfigError` itself for one, `ConfigErrors` for several.
    public static func throwIfAny(_ errors: [ConfigError]) throws {
        if errors.count == 1 { throw errors[0] }
        if errors.count > 1 { throw ConfigErrors(errors) }
    }
}
