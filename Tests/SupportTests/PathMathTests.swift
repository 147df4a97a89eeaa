import Foundation
import Support
import Testing

/// The one path normaliser: absolute against a base, `~` expanded, `.`/`..`/slashes resolved lexically.
@Suite struct PathMathTests {
    let home = NSHomeDirectory()
    let cwd = FileManager.default.currentDirectoryPath

    @Test func normaliseResolvesDotsAndSlashes() {
        #expect(PathMath.normalise("/a/./b/../c//d") == "/a/c/d")
        #expect(PathMath.normalise("/../x") == "/x")
        #expect(PathMath.normalise("/a/b/../../..") == "/")
        #expect(PathMath.normalise("a/../../b") == "../b")
        #expect(PathMath.normalise("runs/demo/") == "runs/demo")
        #expect(PathMath.normalise("./") == "." && PathMath.normalise("") == ".")
        #expect(PathMath.normalise("//") == "/")
    }

    @Test func absoluteAgainstABase() {
        #expect(PathMath.absolute("../media/a.mp4", base: "/data/curated") == "/data/media/a.mp4")
        #expect(PathMath.absolute("runs/demo/", base: "/work/") == "/work/runs/demo")
        #expect(PathMath.absolute("./x/./y", base: "/b") == "/b/x/y")
        #expect(PathMath.absolute("../../../../x", base: "/a/b") == "/x")
        // Already absolute: the base does not matter, the path is still normalised.
        #expect(PathMath.absolute("/abs/./c.mp4", base: "/elsewhere") == "/abs/c.mp4")
        // Empty: the base itself.
        #expect(PathMath.absolute("", base: "/data/x/") == "/data/x")
        // A relative base is relative to the working folder.
        #expect(PathMath.absolute("a.csv", base: "demo") == cwd + "/demo/a.csv")
        #expect(PathMath.absolute("a.csv", base: "") == cwd + "/a.csv")
        #expect(PathMath.absolute("a.csv") == cwd + "/a.csv")
        #expect(PathMath.absolute("..") == PathMath.normalise(cwd + "/.."))
    }

    @Test func homeIsExpanded() {
        #expect(PathMath.absolute("~", base: "/b") == PathMath.normalise(home))
        #expect(PathMath.absolute("~/models/wan/../wan22", base: "/b") == PathMath.normalise(home + "/models/wan22"))
        #expect(PathMath.absolute("x", base: "~/runs") == PathMath.normalise(home + "/runs/x"))
        // Only the home folder's own `~`: a file or folder whose name starts with it is relative.
        #expect(PathMath.absolute("~draft/a.mp4", base: "/b") == "/b/~draft/a.mp4")
        #expect(PathMath.absolute("a/~/b", base: "/b") == "/b/a/~/b")
    }
}
