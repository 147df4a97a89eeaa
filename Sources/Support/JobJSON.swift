import Foundation

/// The job files Swift writes for the engine (`sample-job.json`, `evaluate.json`): snake_case keys in
/// sorted order, two-space indentation, `/` unescaped, a final newline, and every key present (an
/// optional that is nil is written as `null`, see `ExplicitNull`): the engine treats a missing key as
/// an error. Both sides check the same fixtures (engine/tests/fixtures/*.contract.json).
public enum JobJSON {
    public static func data<Job: Encodable>(_ job: Job) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        var data = try encoder.encode(job)
        data.append(0x0A)
        return data
    }

    public static func decode<Job: Decodable>(_ type: Job.Type, from data: Data) throws -> Job {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: data)
    }
}

/// An optional member that is encoded as `null` when nil, instead of being left out as the
/// synthesised `Encodable` does; decoding accepts `null` and a missing key alike.
@propertyWrapper
public struct ExplicitNull<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A missing key is nil, as for a plain optional (the synthesised decoder calls this overload).
    public func decode<Value>(_ type: ExplicitNull<Value>.Type, forKey key: Key) throws -> ExplicitNull<Value> {
        try decodeIfPresent(type, forKey: key) ?? ExplicitNull(wrappedValue: nil)
    }
}
