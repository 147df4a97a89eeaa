import Foundation
import Support
import Testing

/// The engine's job files: every key written, nil as null; sorted snake_case keys; a final newline.
@Suite struct JobJSONTests {
    struct Job: Codable, Equatable, Sendable {
        var outDir: String
        @ExplicitNull var planGpu: String?
        @ExplicitNull var lora: LoRA?

        struct LoRA: Codable, Equatable, Sendable {
            var path: String
            var scale: Double
        }
    }

    @Test func nilIsWrittenAsNull() throws {
        let text = String(decoding: try JobJSON.data(Job(outDir: "/o/a", planGpu: nil, lora: nil)), as: UTF8.self)
        #expect(text == "{\n  \"lora\" : null,\n  \"out_dir\" : \"/o/a\",\n  \"plan_gpu\" : null\n}\n")
        let full = String(
            decoding: try JobJSON.data(Job(outDir: "/o", planGpu: "H100", lora: .init(path: "/l", scale: 0.5))),
            as: UTF8.self)
        #expect(
            full == "{\n  \"lora\" : {\n    \"path\" : \"/l\",\n    \"scale\" : 0.5\n  },\n  \"out_dir\" : \"/o\",\n"
                + "  \"plan_gpu\" : \"H100\"\n}\n")
    }

    @Test func nullAndMissingKeysReadAsNil() throws {
        let job = Job(outDir: "/o", planGpu: "H100", lora: .init(path: "/l", scale: 2))
        #expect(try JobJSON.decode(Job.self, from: JobJSON.data(job)) == job)
        let missing = try JobJSON.decode(Job.self, from: Data(#"{"out_dir": "/o", "plan_gpu": null}"#.utf8))
        #expect(missing == Job(outDir: "/o", planGpu: nil, lora: nil))
        #expect(throws: DecodingError.self) { try JobJSON.decode(Job.self, from: Data(#"{"plan_gpu": "x"}"#.utf8)) }
    }
}
