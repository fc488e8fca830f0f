// A server message sink that keeps what the engine sends, for in-process engine tests.
public import CPNPCore
public import CPNPServer
public import Synchronization

/// A ``ServerMessageSink`` that collects every encoded message the engine sends, with its session.
public final class CollectingSink: ServerMessageSink {
    /// Everything sent and not yet taken, in order.
    public let sent = Mutex<[(bytes: [UInt8], session: CPNPSession)]>([])

    public init() {}

    public func send(_ bytes: [UInt8], on session: CPNPSession) async {
        sent.withLock { $0.append((bytes, session)) }
    }

    /// Removes and decodes (RFC 8921 §5) everything sent to `remote`.
    public func take(for remote: CPNPEndpoint) -> [CPNPMessage] {
        sent.withLock { list in
            let mine = list.filter { $0.session.remote == remote }
            list.removeAll { $0.session.remote == remote }
            return mine.map { try! CPNPCodec.decode($0.bytes) }
        }
    }
}
