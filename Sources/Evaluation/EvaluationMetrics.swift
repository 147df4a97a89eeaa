import Foundation
import Support

/// `metrics.json` as the engine writes it (docs/evaluate.md, "metrics.json").
public struct EvaluationMetrics: Sendable, Equatable, Decodable {
    public struct Summary: Sendable, Equatable, Decodable {
        public var mean: Double?
        public var std: Double?
        public var videos: Int?
    }

    public struct InceptionSummary: Sendable, Equatable, Decodable {
        public var mean: Double?
        public var std: Double?
        public var splits: Int
        public var frames: Int
        public var videos: Int
    }

    public struct PairSummary: Sendable, Equatable, Decodable {
        public var mean: Double?
        public var std: Double?
        public var pairs: Int
    }

    /// A measure of the generated videos beside the same measure of the reference clips.
    public struct Sides<Value: Sendable & Equatable & Decodable>: Sendable, Equatable, Decodable {
        public var generated: Value?
        public var reference: Value?
    }

    public struct FVD: Sendable, Equatable, Decodable {
        public var value: Double?
        public var generated: Int
        public var reference: Int
        public var frames: Int
        public var stable: Bool
        public var note: String?
    }

    public struct LPIPS: Sendable, Equatable, Decodable {
        public var net: String
        public var toReference: PairSummary?
        public var diversity: PairSummary?
    }

    /// The metrics of one category, or of all of them (`category` nil).
    public struct Group: Sendable, Equatable, Decodable {
        public var category: String?
        public var generatedVideos: Int
        public var referenceVideos: Int
        public var fvd: FVD?
        public var inceptionScore: Sides<InceptionSummary>?
        public var clipScore: Sides<Summary>?
        public var temporalConsistency: Sides<Summary>?
        public var lpips: LPIPS?
    }

    public struct Skipped: Sendable, Equatable, Decodable {
        public var set: String
        public var id: String
        public var path: String
        public var reason: String
    }

    public struct Inputs: Sendable, Equatable, Decodable {
        public var generatedDir: String
        public var referenceManifest: String
        public var generatedVideos: Int
        public var referenceVideoRows: Int
        public var referenceVideosSelected: Int
        public var referenceImagesIgnored: Int
        public var pairedVideos: Int
        public var skipped: [Skipped]
    }

    public struct Settings: Sendable, Equatable, Decodable {
        public var metrics: [String]
        public var framesPerVideo: Int
        public var fvdFrames: Int
        public var fvdMinSamples: Int
        public var isSplits: Int
        public var lpipsNet: String
        public var textEncoder: String?
    }

    public struct Warning: Sendable, Equatable, Decodable {
        public var code: String
        public var message: String
        public var category: String?
    }

    public var schemaVersion: Int
    public var created: String
    public var engineVersion: String
    public var device: String
    public var seconds: Double
    public var inputs: Inputs
    public var settings: Settings
    public var overall: Group
    public var categories: [Group]
    public var warnings: [Warning]

    public static func decode(_ data: Data, source: String) throws -> EvaluationMetrics {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            let metrics = try decoder.decode(EvaluationMetrics.self, from: data)
            guard metrics.schemaVersion == 1 else {
                throw GeneralError(
                    "\(source) has schema_version \(metrics.schemaVersion); this wanlora reads 1.",
                    remedy: "evaluate again with this wanlora version")
            }
            return metrics
        } catch let error as GeneralError {
            throw error
        } catch {
            throw GeneralError(
                "\(source) is not a metrics.json of schema 1: \(error)",
                remedy: "evaluate again with this wanlora version (the engine writes the file)")
        }
    }
}
