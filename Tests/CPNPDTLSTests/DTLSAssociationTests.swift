import CPNPDTLS
import CPNPTesting
import Foundation
import Testing

@Suite("DTLS association in memory (RFC 8921 §8.1, §13)")
struct DTLSAssociationTests {
    @Test func handshakeAndApplicationDataBothWays() throws {
        let h = try Harness()
        h.pump()
        #expect(h.established)
        #expect(h.helloVerifyRequests == 1)
        #expect(h.client.protocolVersion == "DTLSv1.2")
        let cipher = try #require(h.client.cipherSuite)
        #expect(cipher.hasPrefix("ECDHE-") && (cipher.contains("GCM") || cipher.contains("CHACHA20")))
        #expect(h.client.peerCertificateDER != nil)
        #expect(h.server?.peerCertificateDER != nil)

        let request = Array(#"{"method":1}"#.utf8)
        let datagrams = try h.client.write(request)
        #expect(datagrams.count == 1)
        h.toServer.append(contentsOf: datagrams)
        h.pump()
        #expect(h.serverMessages == [request])

        let reply = Array(#"{"method":2}"#.utf8)
        h.toClient.append(contentsOf: try #require(h.server).write(reply))
        h.pump()
        #expect(h.clientMessages == [reply])
    }

    @Test func handshakeDatagramsRespectMTU() throws {
        let h = try Harness()
        var sizes: [Int] = []
        h.pump { _, _, batch in
            sizes.append(contentsOf: batch.map(\.count))
            return batch
        }
        #expect(h.established)
        #expect(sizes.allSatisfy { $0 <= 1400 })
    }

    @Test func largestMessageFitsOneDatagramAndLargerIsRejected() throws {
        let h = try Harness()
        h.pump()
        let big = [UInt8](repeating: 0x41, count: DTLSConfiguration.maximumMessageSize)
        let datagrams = try h.client.write(big)
        #expect(datagrams.count == 1)
        h.toServer.append(contentsOf: datagrams)
        h.pump()
        #expect(h.serverMessages == [big])
        #expect(throws: DTLSError(.messageTooLarge, detail: "16385 bytes > 16384")) {
            _ = try h.client.write(big + [0])
        }
    }

    @Test func duplicatedHandshakeDatagramsAreHarmless() throws {
        let h = try Harness()
        h.pump { _, _, batch in batch.flatMap { [$0, $0] } }
        #expect(h.established)
    }

    @Test func reorderedHandshakeDatagramsAreHarmless() throws {
        let h = try Harness()
        h.pump { _, _, batch in batch.reversed() }
        #expect(h.established)
    }

    @Test func lostServerFlightIsRetransmittedAfterTimeout() async throws {
        let h = try Harness()
        var dropped = false
        // Deliver the cookie exchange, then drop the server's first real flight.
        h.pump { toServer, _, batch in
            if !toServer && h.server != nil && !dropped {
                dropped = true
                return []
            }
            return batch
        }
        #expect(dropped)
        #expect(!h.established)
        let timeout = try #require(h.client.timeout)
        #expect(timeout <= .milliseconds(260))
        try await Task.sleep(for: timeout + .milliseconds(20))
        h.record(h.client.handleTimeout(), server: false)
        h.pump()
        #expect(h.established)
    }

    @Test func replayedApplicationRecordIsDropped() throws {
        let h = try Harness()
        h.pump()
        let datagrams = try h.client.write(Array("once".utf8))
        h.toServer.append(contentsOf: datagrams + datagrams)
        h.pump()
        #expect(h.serverMessages == [Array("once".utf8)])
    }

    @Test func cookieFromAnotherAddressIsNotAccepted() throws {
        let h = try Harness()
        // First ClientHello -> HelloVerifyRequest bound to the harness address.
        h.pump(rounds: 1)
        #expect(h.helloVerifyRequests == 1)
        // The client now sends ClientHello+cookie; present it as coming from another address.
        let hello = h.toServer
        #expect(!hello.isEmpty)
        for datagram in hello {
            let result = h.listener.receive(datagram: datagram, peerAddress: [10, 0, 0, 9, 0, 1])
            if case .accepted = result { Issue.record("cookie accepted from another address") }
        }
    }

    @Test func cookieSurvivesOneRotationButNotTwo() throws {
        let h = try Harness()
        h.pump(rounds: 1)
        let hello = h.toServer
        h.listener.rotateCookieSecret()
        h.listener.rotateCookieSecret()
        for datagram in hello {
            if case .accepted = h.listener.receive(datagram: datagram, peerAddress: h.peerAddress) {
                Issue.record("stale cookie accepted")
            }
        }
        let h2 = try Harness()
        h2.pump(rounds: 1)
        h2.listener.rotateCookieSecret()
        h2.pump()
        #expect(h2.established)
    }

    @Test func garbageNeverCreatesState() throws {
        let h = try Harness()
        for n in 0..<200 {
            var junk = (0..<(n % 90 + 1)).map { _ in UInt8.random(in: 0...255) }
            if n % 2 == 0 && junk.count > 5 { junk[0] = 22; junk[1] = 0xFE; junk[2] = 0xFD; junk[3] = 0; junk[4] = 0 }
            if case .accepted = h.listener.receive(datagram: junk, peerAddress: h.peerAddress) {
                Issue.record("garbage accepted")
            }
        }
        // The listener still works afterwards.
        h.pump()
        #expect(h.established)
    }

    // MARK: rejections

    @Test func clientFromAnotherCAIsRejected() throws {
        let h = try Harness(clientCredentials: DTLSCredentials(TestCertificates.shared.clientOtherCA))
        h.pump()
        #expect(h.server?.state == .failed(DTLSError(.unknownCA, detail: failureDetail(h.server))))
        #expect(code(h.serverEvents) == .unknownCA)
        #expect(code(h.clientEvents) == .unknownCA)
        #expect(peerReported(h.clientEvents))
    }

    @Test func serverFromAnotherCAIsRejected() throws {
        let h = try Harness(clientTrust: TestCertificates.shared.otherCAPEM)
        h.pump()
        #expect(code(h.clientEvents) == .unknownCA)
        #expect(!peerReported(h.clientEvents))
        #expect(!h.established)
    }

    @Test func clientWithoutCertificateIsRejected() throws {
        let h = try Harness(clientCredentials: nil)
        h.pump()
        #expect(code(h.serverEvents) == .noClientCertificate)
        #expect(code(h.clientEvents) == .noClientCertificate)
    }

    @Test func expiredClientCertificateIsRejected() throws {
        let h = try Harness(clientCredentials: DTLSCredentials(TestCertificates.shared.clientExpired))
        h.pump()
        #expect(code(h.serverEvents) == .certificateExpired)
        #expect(code(h.clientEvents) == .certificateExpired)
        #expect(peerReported(h.clientEvents))
    }

    @Test func expiredServerCertificateIsRejected() throws {
        let h = try Harness(serverCredentials: DTLSCredentials(TestCertificates.shared.serverExpired))
        h.pump()
        #expect(code(h.clientEvents) == .certificateExpired)
        #expect(!h.established)
    }

    @Test func wrongServerNameIsRejected() throws {
        let h = try Harness(serverCredentials: DTLSCredentials(TestCertificates.shared.serverWrongName))
        h.pump()
        #expect(code(h.clientEvents) == .nameMismatch)
        #expect(!h.established)
    }

    @Test func ipAddressIdentityIsChecked() throws {
        let ok = try Harness(serverName: "127.0.0.1")
        ok.pump()
        #expect(ok.established)
        let wrong = try Harness(serverName: "127.0.0.2")
        wrong.pump()
        #expect(code(wrong.clientEvents) == .nameMismatch)
    }

    @Test func closeNotifyReachesPeer() throws {
        let h = try Harness()
        h.pump()
        h.toServer.append(contentsOf: h.client.close())
        h.pump()
        #expect(h.server?.state == .closed)
        #expect(h.serverEvents.last == .closed)
    }

    @Test func recordPackingSplitsAtRecordBoundaries() {
        func record(type: UInt8, length: Int) -> [UInt8] {
            [type, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF)] + [UInt8](repeating: 1, count: length)
        }
        let bytes =
            record(type: 22, length: 500) + record(type: 22, length: 500) + record(type: 22, length: 500)
            + record(type: 23, length: 10) + record(type: 23, length: 10)
        let datagrams = DTLSRecords.pack(bytes[...], mtu: 1100)
        #expect(datagrams.map(\.count) == [1026, 513, 23, 23])
    }
}

func code(_ events: [DTLSAssociation.Event]) -> DTLSError.Code? {
    for event in events { if case .failed(let error) = event { return error.code } }
    return nil
}

func peerReported(_ events: [DTLSAssociation.Event]) -> Bool {
    for event in events { if case .failed(let error) = event { return error.reportedByPeer } }
    return false
}

func failureDetail(_ association: DTLSAssociation?) -> String {
    if case .failed(let error) = association?.state { return error.detail }
    return ""
}

@Suite("DTLS retransmission races")
struct DTLSRetransmissionRaceTests {
    /// The client's ClientHello is retransmitted before the HelloVerifyRequest arrives, so the
    /// server answers twice and the client sees two HelloVerifyRequests (seen under load).
    @Test func retransmittedClientHelloBeforeHelloVerifyRequest() async throws {
        let h = try Harness()
        let first = h.toServer
        try await Task.sleep(for: .milliseconds(270))
        h.record(h.client.handleTimeout(), server: false)  // CH retransmitted
        let retransmitted = h.toServer
        h.toServer = []
        #expect(retransmitted.count > first.count)
        for datagram in retransmitted { h.serverReceive(datagram) }  // two HVRs
        #expect(h.helloVerifyRequests == 2)
        h.pump()
        #expect(h.established, "client \(h.client.state), server \(String(describing: h.server?.state))")
    }

    /// The ClientHello with cookie is retransmitted while the server is slow, and the copies
    /// arrive after the association exists.
    @Test func retransmittedCookieHelloAfterAssociation() async throws {
        let h = try Harness()
        h.pump(rounds: 1)  // CH -> HVR -> client sends CH+cookie (queued toServer)
        let cookieHello = h.toServer
        try await Task.sleep(for: .milliseconds(270))
        h.record(h.client.handleTimeout(), server: false)
        h.pump()
        for datagram in cookieHello { h.serverReceive(datagram) }
        h.pump()
        #expect(h.established, "client \(h.client.state), server \(String(describing: h.server?.state))")
    }

    /// Server flight lost twice, client flight lost once: timers on both sides recover.
    @Test func repeatedLossRecoversThroughTimers() async throws {
        let h = try Harness()
        var dropsLeft = 3
        for _ in 0..<12 where !h.established {
            h.pump { toServer, _, batch in
                if h.server != nil && dropsLeft > 0 && !batch.isEmpty {
                    dropsLeft -= 1
                    return []
                }
                return batch
            }
            try await Task.sleep(for: .milliseconds(300))
            h.record(h.client.handleTimeout(), server: false)
            if let server = h.server { h.record(server.handleTimeout(), server: true) }
        }
        h.pump()
        #expect(h.established, "client \(h.client.state), server \(String(describing: h.server?.state))")
    }
}
