import Support
import Testing

@Test func actionableErrorPrintsProblemAndRemedy() {
    let error = GeneralError("file x.csv is empty", remedy: "point --manifest at a CSV with a header row")
    #expect(error.description == "file x.csv is empty\nHow to fix: point --manifest at a CSV with a header row")
}
