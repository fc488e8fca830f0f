// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The reference implementation of CPNP (RFC 8921): the protocol core, the provider's server `cpnpd`,
/// the customer's client `cpnp`, and their tools. One declaration: the layers first, then the
/// executables, the tools, the tests.
let package = Package(
    name: "cpnp",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CPNPCore", targets: ["CPNPCore"]),
        .library(name: "CPNPStorage", targets: ["CPNPStorage"]),
        .library(name: "CPNPPolicy", targets: ["CPNPPolicy"]),
        .library(name: "CPNPRuntime", targets: ["CPNPRuntime"]),
        .library(name: "CPNPServer", targets: ["CPNPServer"]),
        .executable(name: "cpnpd", targets: ["cpnpd"]),
        .executable(name: "cpnp", targets: ["cpnp"]),
        .library(name: "CPNPDTLS", targets: ["CPNPDTLS"]),
        .library(name: "CPNPPKI", targets: ["CPNPPKI"]),
        .library(name: "CPNPTransport", targets: ["CPNPTransport"]),
        .executable(name: "cpnp-transport-bench", targets: ["cpnp-transport-bench"]),
        .library(name: "CPNPClient", targets: ["CPNPClient"]),
        .executable(name: "cpnp-fuzz-decoder", targets: ["cpnp-fuzz-decoder"]),
        .executable(name: "cpnp-fuzz-server", targets: ["cpnp-fuzz-server"]),
        .executable(name: "cpnp-bench", targets: ["cpnp-bench"]),
        .executable(name: "cpnp-engine-bench", targets: ["cpnp-engine-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.3.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", "0.2.0"..<"1.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
    ],
    targets: [
        // MARK: The protocol and its layers

        // Pure protocol core: messages, codec, CPD model, order state machines. No I/O.
        .target(
            name: "CPNPCore",
            swiftSettings: swiftSettings
        ),
        // What both engines need at run time: the wall clock and the deadline timers.
        .target(
            name: "CPNPRuntime",
            dependencies: ["CPNPCore"],
            swiftSettings: swiftSettings
        ),
        // Durable order stores: the server's on SQLite (GRDB) or PostgreSQL (postgres-nio), the client's
        // on SQLite; snapshots, documents stored once, audit trail, reservations, outboxes (docs/design/storage.md).
        .target(
            name: "CPNPStorage",
            dependencies: [
                "CPNPCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The provider's policy: configuration model (YAML) and the decision engine (RFC 8921 §8.2, §12.2).
        .target(
            name: "CPNPPolicy",
            dependencies: ["CPNPCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // Debian's OpenSSL 3 (DTLS 1.2), plus a static-inline shim for the macros Swift cannot import.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // Sans-IO DTLS 1.2 association over memory BIOs (no sockets, no NIO).
        .target(
            name: "CPNPDTLS",
            dependencies: ["COpenSSL"],
            swiftSettings: swiftSettings
        ),
        // Development PKI (P-256 CA, server and client certificates) in pure Swift.
        .target(
            name: "CPNPPKI",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // SwiftNIO transports: DTLS/UDP (default), TLS/TCP, plain UDP; ChaosTransport for fault injection.
        .target(
            name: "CPNPTransport",
            dependencies: [
                "CPNPDTLS", "CPNPCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The provider's engine: server order machines over a sink, with the store, the policy and timers.
        .target(
            name: "CPNPServer",
            dependencies: [
                "CPNPCore", "CPNPRuntime", "CPNPStorage", "CPNPPolicy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The customer's engine: client order machines over a transport, client store, strategies, discovery.
        .target(
            name: "CPNPClient",
            dependencies: [
                "CPNPCore", "CPNPRuntime", "CPNPStorage", "CPNPTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // What cpnpd's REST API and `cpnp serve` share besides Sources/CPNPHTTP/openapi.yaml (which
        // Sources/CPNPCustomerAPI links to): exact JSON values in the generated types, problem details.
        .target(
            name: "CPNPAPI",
            dependencies: [
                "CPNPCore",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        // `cpnp serve`'s side of the REST API: quotes negotiated by the customer's engine (docs/api.md).
        .target(
            name: "CPNPCustomerAPI",
            dependencies: [
                "CPNPAPI", "CPNPClient", "CPNPCore", "CPNPStorage", "CPNPTransport",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // The daemon's HTTP side: probes, metrics, console, customer portal, REST API generated from
        // Sources/CPNPHTTP/openapi.yaml, webhooks (docs/console.md, docs/api.md).
        .target(
            name: "CPNPHTTP",
            dependencies: [
                "CPNPServer", "CPNPPolicy", "CPNPCore", "CPNPStorage", "CPNPRuntime", "CPNPTransport", "CPNPClient", "CPNPAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // cpnpd's glue between transport and engine (DaemonService, TransportSink, signals) and the child orders' coordinator, shared with tests.
        .target(
            name: "CPNPDaemon",
            dependencies: [
                "CPNPCore", "CPNPServer", "CPNPTransport", "CPNPHTTP", "CPNPClient", "CPNPPolicy", "CPNPStorage", "CPNPPKI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The conformance vectors' format and the player that runs them against any CPNP server (docs/conformance.md).
        .target(
            name: "CPNPConformance",
            dependencies: [
                "CPNPCore", "CPNPTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: The executables

        // The provider's server (docs/configuration.md).
        .executableTarget(
            name: "cpnpd",
            dependencies: [
                "CPNPCore", "CPNPRuntime", "CPNPServer", "CPNPPolicy", "CPNPStorage", "CPNPPKI", "CPNPTransport", "CPNPDaemon", "CPNPHTTP",
                "CPNPClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The customer's CLI (docs/client.md); `cpnp serve` compiles the REST API from the linked document.
        .executableTarget(
            name: "cpnp",
            dependencies: [
                "CPNPCore", "CPNPClient", "CPNPStorage", "CPNPTransport", "CPNPRuntime", "CPNPConformance", "CPNPCustomerAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Benchmarks (Benchmarks/), fuzzers (Fuzz/Sources/) and the test kit (docs/performance.md, docs/fuzzing.md)

        // Load generator: customers negotiating with a cpnpd child, figures as ratios to a UDP ping-pong.
        .executableTarget(
            name: "cpnp-bench",
            dependencies: [
                "CPNPClient", "CPNPCore", "CPNPRuntime", "CPNPStorage", "CPNPTransport", "CPNPPolicy",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/cpnp-bench",
            swiftSettings: swiftSettings
        ),
        // The server engine in process (real SQLite store, no sockets), time per phase.
        .executableTarget(
            name: "cpnp-engine-bench",
            dependencies: [
                "CPNPServer", "CPNPCore", "CPNPPolicy", "CPNPStorage", "CPNPRuntime",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/cpnp-engine-bench",
            swiftSettings: swiftSettings
        ),
        // The transports alone.
        .executableTarget(
            name: "cpnp-transport-bench",
            dependencies: [
                "CPNPTransport", "CPNPPKI", "CPNPDTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/cpnp-transport-bench",
            swiftSettings: swiftSettings
        ),
        // libFuzzer targets (scripts/fuzz.sh); in a normal build their `main` replays corpus files.
        .target(
            name: "CPNPFuzzSupport",
            dependencies: ["CPNPCore"],
            path: "Fuzz/Sources/cpnp-fuzz-support",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CPNPServerFuzzSupport",
            dependencies: [
                "CPNPFuzzSupport", "CPNPCore", "CPNPServer", "CPNPRuntime", "CPNPStorage", "CPNPPolicy",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/Sources/cpnp-fuzz-server-support",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "cpnp-fuzz-decoder",
            dependencies: ["CPNPFuzzSupport"],
            path: "Fuzz/Sources/cpnp-fuzz-decoder",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "cpnp-fuzz-server",
            dependencies: ["CPNPFuzzSupport", "CPNPServerFuzzSupport", "CPNPCore"],
            path: "Fuzz/Sources/cpnp-fuzz-server",
            swiftSettings: swiftSettings
        ),
        // The test kit: a manual clock, a collecting sink, CPD fixtures, the test certificates, a DNS
        // responder on loopback, a quiet logger, the repository's examples and fuzz corpora, a
        // throw-away PostgreSQL server in a temporary directory, a provider in process, a real cpnpd
        // process, a DTLS test client, and one test body for either provider.
        .target(
            name: "CPNPTesting",
            dependencies: [
                "CPNPCore", "CPNPClient", "CPNPRuntime", "CPNPServer", "CPNPPKI", "CPNPDTLS", "CPNPTransport", "CPNPDaemon", "CPNPPolicy",
                "CPNPStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/CPNPTesting",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests

        .testTarget(
            name: "CPNPCoreTests",
            dependencies: [
                "CPNPCore", "CPNPFuzzSupport", "CPNPTesting",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Vectors")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPCLITests",
            dependencies: ["CPNPCore", "CPNPTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPStorageTests",
            dependencies: [
                "CPNPStorage", "CPNPCore", "CPNPTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPPolicyTests",
            dependencies: ["CPNPPolicy", "CPNPCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPServerTests",
            dependencies: [
                "CPNPServer", "CPNPRuntime", "CPNPCore", "CPNPStorage", "CPNPPolicy", "CPNPServerFuzzSupport", "CPNPTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPDTLSTests",
            dependencies: ["CPNPDTLS", "CPNPTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPTransportTests",
            dependencies: [
                "CPNPTransport", "CPNPDTLS", "CPNPPKI", "CPNPTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPClientTests",
            dependencies: [
                "CPNPClient", "CPNPCore", "CPNPRuntime", "CPNPStorage", "CPNPTransport", "CPNPServer", "CPNPPolicy", "CPNPPKI", "CPNPDaemon",
                "CPNPTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPHTTPTests",
            dependencies: ["CPNPHTTP", "CPNPServer", "CPNPCore", "CPNPStorage"],
            swiftSettings: swiftSettings
        ),
        // End to end: real cpnpd processes over real DTLS on loopback, browsers, PostgreSQL.
        .testTarget(
            name: "CPNPIntegrationTests",
            dependencies: [
                "CPNPCore", "CPNPTransport", "CPNPClient", "CPNPStorage", "CPNPConformance", "CPNPTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
