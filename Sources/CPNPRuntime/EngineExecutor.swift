/// Where an engine actor runs (`CPNPServerEngine`, `CPNPClientEngine`): an executor it is given,
/// such as the event loop that reads and writes its transport's socket, so that messages reach it and
/// leave it without a thread switch; or, without one, an executor of its own, as any actor has.
public struct EngineExecutor: Sendable {
    /// The executor given, kept alive for ``unowned``.
    public let given: (any SerialExecutor)?
    /// Without one: an actor that does nothing else, whose executor is a default actor's.
    private let owner: Owner?
    /// What the engine's `unownedExecutor` returns.
    public let unowned: UnownedSerialExecutor

    actor Owner {}

    public init(_ given: (any SerialExecutor)?) {
        self.given = given
        let owner = given == nil ? Owner() : nil
        self.owner = owner
        unowned = given?.asUnownedSerialExecutor() ?? owner!.unownedExecutor
    }
}
