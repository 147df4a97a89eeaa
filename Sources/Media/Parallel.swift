/// Bounded parallelism for child processes: at most `width` bodies run at once.
public enum Parallel {
    /// Runs `body` on every item, at most `width` at a time, and returns the results in input
    /// order. `finished` is called after each item with the number finished so far.
    public static func map<Item: Sendable, Output: Sendable>(
        _ items: [Item], width: Int, finished: @escaping @Sendable (Int) -> Void = { _ in },
        _ body: @escaping @Sendable (Item) async throws -> Output
    ) async throws -> [Output] {
        var results = [Output?](repeating: nil, count: items.count)
        try await withThrowingTaskGroup(of: (Int, Output).self) { group in
            var next = 0
            var done = 0
            func launch() {
                guard next < items.count else { return }
                let index = next
                let item = items[index]
                next += 1
                group.addTask { (index, try await body(item)) }
            }
            for _ in 0..<max(1, width) { launch() }
            while let (index, output) = try await group.next() {
                results[index] = output
                done += 1
                finished(done)
                try Task.checkCancellation()
                launch()
            }
        }
        return results.map { $0! }
    }
}
