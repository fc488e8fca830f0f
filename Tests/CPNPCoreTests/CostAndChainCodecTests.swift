import Foundation
import Testing
@testable import CPNPCore

/// Cost amounts written with the currency's minor-unit digits (docs/protocol.md §4.1), exact
/// rounding to them, and the `provider-chain` negotiation option of cascaded requests (RFC 8921 §8.8).
struct CostAndChainCodecTests {
    static func d(_ s: String) -> CPNPDecimal { CPNPDecimal(parsing: s)! }

    static func offer(_ cost: Cost?, options: NegotiationOptions? = nil) -> CPNPMessage {
        .offer(
            OfferMessage(
                sequenceNumber: SequenceNumber(7), transactionID: GoldenVectorSource.tid, customerOrderID: GoldenVectorSource.coid,
                providerOrderID: GoldenVectorSource.poid, nonce: GoldenVectorSource.nonce,
                validityOfferTime: GoldenVectorSource.time("2026-11-22T10:00:00Z"), offeredCPD: .empty,
                informationElements: InformationElements(negotiationOptions: options, cost: cost)))
    }

    static func text(_ m: CPNPMessage) -> String { String(decoding: CPNPCodec.encode(m), as: UTF8.self) }

    @Test(arguments: [
        ("1250", "EUR", "1250.00"), ("2860.5", "EUR", "2860.50"), ("1250", "JPY", "1250"), ("3.5", "KWD", "3.500"), ("0.123456", "EUR", "0.123456"),
    ])
    func amountsCarryTheCurrencysMinorUnitDigits(amount: String, currency: String, written: String) throws {
        let message = Self.offer(Cost(amount: Self.d(amount), currency: currency, period: "month"))
        let text = Self.text(message)
        #expect(text.contains(#""amount":"\#(written)""#), "\(text)")
        #expect(try CPNPCodec.decode(Array(text.utf8)) == message)
    }

    @Test(arguments: [
        ("2.345", 2, "2.35"), ("2.344", 2, "2.34"), ("9.995", 2, "10"), ("-1.005", 2, "-1.01"), ("0.004", 2, "0"),
        ("0.005", 2, "0.01"), ("1250", 2, "1250"), ("1210.000", 2, "1210"), ("999.5", 0, "1000"), ("0.4", 0, "0"),
    ])
    func roundingIsHalfAwayFromZero(value: String, digits: Int, expected: String) {
        #expect(Self.d(value).rounded(fractionDigits: digits) == Self.d(expected))
    }

    @Test func pricesAreRoundedToTheMinorUnit() {
        #expect(Cost(amount: Self.d("1650"), currency: "EUR").description == "1650.00 EUR")
        #expect(Cost.minorUnitDigits("JPY") == 0 && Cost.minorUnitDigits("BHD") == 3 && Cost.minorUnitDigits("USD") == 2)
    }

    @Test func theProviderChainRoundTripsAndIsBounded() throws {
        let options = NegotiationOptions(costRequested: true, providerChain: ["provider-a", "provider-b"])
        let message = Self.offer(nil, options: options)
        let text = Self.text(message)
        #expect(text.contains(#""provider-chain":["provider-a","provider-b"]"#), "\(text)")
        #expect(try CPNPCodec.decode(Array(text.utf8)) == message)
        // Absent when empty: receivers that do not know it see nothing new.
        #expect(!Self.text(Self.offer(nil, options: NegotiationOptions(costRequested: true))).contains("provider-chain"))
        let long = text.replacingOccurrences(
            of: #""provider-chain":["provider-a","provider-b"]"#,
            with: #""provider-chain":["# + (0..<17).map { "\"p\($0)\"" }.joined(separator: ",") + "]")
        #expect { try CPNPCodec.decode(Array(long.utf8)) } throws: { error in
            "\(error)".contains("provider-chain")
        }
        let notText = text.replacingOccurrences(of: #""provider-chain":["provider-a","provider-b"]"#, with: #""provider-chain":[1]"#)
        #expect { try CPNPCodec.decode(Array(notText.utf8)) } throws: { error in "\(error)".contains("provider-chain[0]") }
    }
}
