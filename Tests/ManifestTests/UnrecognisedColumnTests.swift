import Foundation
import Manifest
import Testing

/// Headers no alias matches (`dur`, `cat`) stop the read with their names and the `--column` that maps
/// them, instead of thousands of "missing value" rejects and an empty category in every row.
@Test func lookAlikeHeadersAreNamedWithTheMappingThatFixesThem() throws {
    let path = temporaryFile(
        "path,media_type,width,height,dur,cat,caption\n"
            + "a.mp4,video,1280,720,4.5,축제,one\n"
            + "b.jpg,image,1280,720,,축제,two\n")
    do {
        _ = try ManifestReader().read(path: path)
        Issue.record("a manifest with dur and cat was read without an error")
    } catch {
        #expect(
            error
                == .columnsNotRecognised(
                    [ColumnGuess(column: "duration", header: "dur"), ColumnGuess(column: "category", header: "cat")],
                    unmapped: ["dur", "cat"], source: path))
        #expect(error.problem.contains("no duration column (expected one of: duration, duration_s"))
        #expect(error.problem.hasSuffix("headers not recognised: dur, cat"))
        #expect(error.remedy == "map them: --column duration=dur --column category=cat (or rename the headers)")
    }
    // The suggested mapping reads every row.
    let mapped = try ManifestReader(mapping: ColumnMapping(parsing: ["duration=dur", "category=cat"])).read(path: path)
    #expect(mapped.rejected.isEmpty)
    #expect(mapped.items.map(\.duration) == [4.5, nil])
    #expect(mapped.items.map(\.category) == ["축제", "축제"])
}

@Test func videoRowsWithoutAnyDurationColumnStopTheRead() throws {
    let path = temporaryFile(
        "path,media_type,width,height,secs,category,caption\n"
            + "a.mp4,video,1280,720,4.5,축제,one\n"
            + "b.mp4,video,1280,720,3,축제,two\n"
            + "c.jpg,image,1280,720,,축제,three\n",
        name: "items.csv")
    #expect(throws: ManifestError.durationColumnMissing(videoRows: 2, unmapped: ["secs"], source: path)) {
        try ManifestReader().read(path: path)
    }
    let jsonl = temporaryFile(
        #"{"path":"a.mp4","media_type":"video","width":1,"height":1,"secs":2,"caption":"x"}"# + "\n",
        name: "items.jsonl")
    #expect(throws: ManifestError.durationColumnMissing(videoRows: 1, unmapped: ["secs"], source: jsonl)) {
        try ManifestReader().read(path: jsonl)
    }
}

@Test func manifestsWithoutLookAlikesReadAsBefore() throws {
    // Images need no duration; extra columns that resemble nothing (weight, quality, group) are fine.
    let manifest = try ManifestReader().read(
        path: temporaryFile("path,media_type,width,height,caption,weight,quality,group\na.jpg,image,4,4,x,1,0.5,g\n"))
    #expect(manifest.items.count == 1)
    #expect(manifest.rejected.isEmpty)
}
