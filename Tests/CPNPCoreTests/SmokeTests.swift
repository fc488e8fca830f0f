import Testing
@testable import CPNPCore

@Test func jsonPathDescription() {
    let p = JSONPath.root.appending("cpd").appending("components").appending(index: 0)
    #expect(p.description == "cpd.components[0]")
}
