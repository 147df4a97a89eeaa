import Foundation
import Testing

@testable import Curation

@Suite struct ContentHasherTests {
    func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hash-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func knownDigests() throws {
        let abc = try temporaryFile(Array("abc".utf8))
        let empty = try temporaryFile([])
        defer {
            try? FileManager.default.removeItem(atPath: abc)
            try? FileManager.default.removeItem(atPath: empty)
        }
        #expect(
            try ContentHasher().digest(path: abc).digest.description
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            try ContentHasher().digest(path: empty).digest.description
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func streamingAcrossManyReadsGivesTheOneShotDigest() throws {
        // 3,000,001 bytes of (7i + 3) mod 251; digest from Python's hashlib.
        let bytes = (0..<3_000_001).map { UInt8((7 * $0 + 3) % 251) }
        let path = try temporaryFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expected = "d847d6c790bfe374fbca284c0278bd222bde95b490f40f456efe9c218834f522"
        for bufferSize in [1 << 20, 65_537, 4_093] {
            let (digest, count) = try ContentHasher(bufferSize: bufferSize).digest(path: path)
            #expect(digest.description == expected)
            #expect(count == 3_000_001)
        }
        #expect(ContentDigest(hex: expected)?.description == expected)
    }

    @Test func aMissingFileIsAFailureNotACrash() {
        #expect(throws: ContentHasher.Failure.self) {
            try ContentHasher().digest(path: "/nonexistent/\(UUID().uuidString)")
        }
    }
}
