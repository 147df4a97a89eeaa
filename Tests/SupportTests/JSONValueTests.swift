import Testing

@testable import Support

@Suite struct JSONValueTests {
    @Test func parsesTypesApart() throws {
        let value = try JSONValue.parse(
            #"{"i": 16, "d": 16.0, "e": 1e-08, "n": -0.5, "b": true, "z": "#
                + #"null, "s": "한\"\\\n\u00e9\ud83d\ude00", "a": [1, [2]], "o": {}}"#)
        #expect(value["i"] == .int(16))
        if case .double(let d) = value["d"] { #expect(d == 16) } else { Issue.record("16.0 is a double") }
        #expect(value["e"] == .double(1e-8) && value["n"] == .double(-0.5))
        #expect(value["b"] == .bool(true) && value["z"] == .null)
        #expect(value["s"] == .string("한\"\\\né😀"))
        #expect(value["a"] == .array([.int(1), .array([.int(2)])]) && value["o"] == .object([]))
        // Equality: member order does not matter, 16 == 16.0, true != 1.
        #expect(try JSONValue.parse(#"{"b": 1, "a": 2.0}"#) == JSONValue.parse(#"{"a": 2, "b": 1}"#))
        #expect(JSONValue.bool(true) != .int(1))
    }

    @Test func refusesWhatIsNotJSON() {
        let cases: [(String, Int, Int, String)] = [
            ("{\"a\": NaN}", 1, 7, "NaN"),
            ("{\"a\": 1,\n \"a\": 2}", 2, 2, "appears twice"),
            ("[1, 2", 1, 6, "inside an array"),
            ("{\"a\": 01}", 1, 7, "start with 0"),
            ("\"tab\there\"", 1, 5, "control character"),
            ("{} x", 1, 4, "after the JSON value"),
            ("", 1, 1, "end of the text"),
            ("1e999", 1, 1, "out of range"),
        ]
        for (text, line, column, reason) in cases {
            #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(text) }
            do {
                _ = try JSONValue.parse(text)
            } catch {
                #expect(
                    error.line == line && error.column == column && error.reason.contains(reason), "\(text): \(error)")
            }
        }
    }

    @Test func formatting() throws {
        let value = JSONValue.object([
            JSONMember("name", .string("a\"b")), JSONMember("list", .array([.int(1), .double(0.0001), .null])),
            JSONMember("nested", .object([JSONMember("x", .bool(false))])), JSONMember("empty", .object([])),
            JSONMember("objects", .array([.object([JSONMember("k", .int(1))])])),
        ])
        #expect(
            value.formatted() == """
                {
                  "name": "a\\"b",
                  "list": [1, 0.0001, null],
                  "nested": {
                    "x": false
                  },
                  "empty": {},
                  "objects": [
                    {
                      "k": 1
                    }
                  ]
                }

                """)
        #expect(
            value.compact() == #"{"name": "a\"b", "list": [1, 0.0001, null], "nested": "#
                + #"{"x": false}, "empty": {}, "objects": [{"k": 1}]}"#)
        #expect(try JSONValue.parse(value.formatted()) == value)
        #expect(JSONValue.double(.nan).compact() == "null" && JSONValue.double(1e-8).compact() == "1e-08")
    }
}
