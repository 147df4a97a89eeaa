import Support
import Testing

@Test func actionableErrorPrintsProblemAndRemedy() {
    let error = GeneralError("file x.csv is empty", remedy: "point --manifest at a CSV with a header row")
    #expect(error.description == "file x.csv is empty\nHow to fix: point --manifest at a CSV with a header row")
}

@Test func relativePathsBetweenFolders() {
    #expect(PathMath.relative("/data/media/a.mp4", from: "/data/curated") == "../media/a.mp4")
    #expect(PathMath.relative("/data/media/a.mp4", from: "/data/media") == "a.mp4")
    #expect(PathMath.relative("/x/y", from: "/x/y") == ".")
    #expect(PathMath.join("demo/media", "videos/b.mp4") == "demo/media/videos/b.mp4")
    #expect(PathMath.join("demo", "/abs/c.mp4") == "/abs/c.mp4")
    #expect(PathMath.absolute("/a/./b/../c") == "/a/c")
}
