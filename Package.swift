// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        // Pure protocol core: messages, codec, CPD model, order state machines. No I/O.
        .target(name: "CPNPCore", swiftSettings: swiftSettings),
        // Durable order stores: the server's on SQLite through GRDB (embedded default) or on PostgreSQL
        // through postgres-nio (several cpnpd on one database); the client's on SQLite. Snapshots,
        // documents stored once by content hash, audit trail, reservations, provisioning outbox.
        .target(
            name: "CPNPStorage",
            dependencies: [
                "CPNPCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // What both engines need at run time: the wall clock and the deadline timers.
        .target(name: "CPNPRuntime", dependencies: ["CPNPCore"], swiftSettings: swiftSettings),
        // The provider's engine: runs server order machines over a transport, with the
        // store, the policy and timers. Transport-agnostic: cpnpd plugs the secure transport in.
        .target(
            name: "CPNPServer",
            dependencies: ["CPNPCore", "CPNPRuntime", "CPNPStorage", "CPNPPolicy", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The provider's policy: configuration model (YAML) and the decision engine (RFC 8921 §8.2, §12.2).
        .target(
            name: "CPNPPolicy",
            dependencies: ["CPNPCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "cpnpd",
            dependencies: [
                "CPNPCore", "CPNPRuntime", "CPNPServer", "CPNPPolicy", "CPNPStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "cpnp",
            dependencies: [
                "CPNPCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CPNPCoreTests",
            dependencies: [
                "CPNPCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Vectors")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CPNPCLITests", dependencies: ["CPNPCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CPNPServerTests",
            dependencies: ["CPNPServer", "CPNPRuntime", "CPNPCore", "CPNPStorage", "CPNPPolicy", .product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "CPNPStorageTests", dependencies: ["CPNPStorage", "CPNPCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings),
        .testTarget(name: "CPNPPolicyTests", dependencies: ["CPNPPolicy", "CPNPCore"], swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)

// MARK: - Secure transport: COpenSSL, CPNPDTLS, CPNPPKI, CPNPTransport
// Appended as a separate block so that it merges without touching the entries above.

package.dependencies += [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
    .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
    .package(url: "https://github.com/apple/swift-certificates.git", from: "1.10.0"),
    .package(url: "https://github.com/apple/swift-asn1.git", from: "1.3.0"),
]

package.products += [
    .library(name: "CPNPDTLS", targets: ["CPNPDTLS"]),
    .library(name: "CPNPPKI", targets: ["CPNPPKI"]),
    .library(name: "CPNPTransport", targets: ["CPNPTransport"]),
    .executable(name: "cpnp-transport-bench", targets: ["cpnp-transport-bench"]),
]

package.targets += [
    // Debian's OpenSSL 3 (DTLS 1.2), plus a static-inline shim for the macros Swift cannot import.
    .systemLibrary(
        name: "COpenSSL",
        pkgConfig: "openssl",
        providers: [.apt(["libssl-dev"])]
    ),
    // Sans-IO DTLS 1.2 association over memory BIOs (no sockets, no NIO).
    .target(name: "CPNPDTLS", dependencies: ["COpenSSL"], swiftSettings: swiftSettings),
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
    // SwiftNIO transports: DTLS/UDP (default), TLS/TCP, plain UDP.
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
    .executableTarget(
        name: "cpnp-transport-bench",
        dependencies: [
            "CPNPTransport", "CPNPPKI", "CPNPDTLS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ],
        swiftSettings: swiftSettings
    ),
    // End to end: a real cpnpd process over real DTLS on loopback.
    .testTarget(
        name: "CPNPIntegrationTests",
        dependencies: ["CPNPCore", "CPNPTransport", .product(name: "NIOCore", package: "swift-nio")],
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "CPNPDTLSTests",
        dependencies: ["CPNPDTLS", "CPNPPKI"],
        swiftSettings: swiftSettings
    ),
    .testTarget(
        name: "CPNPTransportTests",
        dependencies: [
            "CPNPTransport", "CPNPDTLS", "CPNPPKI",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ],
        swiftSettings: swiftSettings
    ),
]

// MARK: - Client (docs/client.md): the CPNPClient library and the `cpnp` CLI on it.

package.products += [
    .library(name: "CPNPClient", targets: ["CPNPClient"]),
]

package.targets += [
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
    .testTarget(
        name: "CPNPClientTests",
        dependencies: [
            "CPNPClient", "CPNPCore", "CPNPRuntime", "CPNPStorage", "CPNPTransport", "CPNPServer", "CPNPPolicy", "CPNPPKI",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ],
        swiftSettings: swiftSettings
    ),
]

if let cpnp = package.targets.first(where: { $0.name == "cpnp" }) {
    cpnp.dependencies += [
        "CPNPClient", "CPNPStorage", "CPNPTransport", "CPNPRuntime",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        // `cpnp catalog` reads the provider's catalogue over HTTPS.
        .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ]
}
if let integration = package.targets.first(where: { $0.name == "CPNPIntegrationTests" }) {
    integration.dependencies += ["CPNPClient", "CPNPStorage"]
}

// `cpnpd pki …` subcommands (Sources/cpnpd/PKICommand.swift) need the dev PKI.
if let cpnpd = package.targets.first(where: { $0.name == "cpnpd" }) {
    cpnpd.dependencies += ["CPNPPKI", "CPNPTransport", .product(name: "NIOCore", package: "swift-nio")]
}

// MARK: - Fuzzing (docs/fuzzing.md)
// libFuzzer targets (scripts/fuzz.sh builds them with `--sanitize=fuzzer -Xswiftc -DCPNP_LIBFUZZER`);
// in a normal build their `main` replays corpus files. The fuzz regression tests reuse the checks.

package.products += [
    .executable(name: "cpnp-fuzz-decoder", targets: ["cpnp-fuzz-decoder"]),
    .executable(name: "cpnp-fuzz-server", targets: ["cpnp-fuzz-server"]),
]

package.targets += [
    // The decoder's invariants and the replay runner.
    .target(name: "CPNPFuzzSupport", dependencies: ["CPNPCore"], path: "Sources/cpnp-fuzz-support", swiftSettings: swiftSettings),
    // The server engine in a fixed world, and its invariants.
    .target(
        name: "CPNPServerFuzzSupport",
        dependencies: [
            "CPNPFuzzSupport", "CPNPCore", "CPNPServer", "CPNPRuntime", "CPNPStorage", "CPNPPolicy",
            .product(name: "Logging", package: "swift-log"),
        ],
        path: "Sources/cpnp-fuzz-server-support",
        swiftSettings: swiftSettings
    ),
    .executableTarget(name: "cpnp-fuzz-decoder", dependencies: ["CPNPFuzzSupport"], swiftSettings: swiftSettings),
    .executableTarget(name: "cpnp-fuzz-server", dependencies: ["CPNPFuzzSupport", "CPNPServerFuzzSupport", "CPNPCore"], swiftSettings: swiftSettings),
]

// Fuzz/regressions/ is replayed by the core and server tests with the fuzzers' own checks.
for (tests, support) in [("CPNPCoreTests", "CPNPFuzzSupport"), ("CPNPServerTests", "CPNPServerFuzzSupport")] {
    package.targets.first { $0.name == tests }?.dependencies.append(.target(name: support))
}

// MARK: - Benchmark (docs/performance.md): `cpnp-bench`, concurrent customers negotiating with cpnpd.

package.dependencies += [
    .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
]

package.products += [
    .executable(name: "cpnp-bench", targets: ["cpnp-bench"]),
]

package.targets += [
    // Load generator: C customers running QUOTATION → OFFER → ACCEPT → ACK (→ WITHDRAW) against a
    // cpnpd child (or a running one), latency percentiles, server CPU/memory, UDP ping-pong reference.
    .executableTarget(
        name: "cpnp-bench",
        dependencies: [
            "CPNPClient", "CPNPCore", "CPNPRuntime", "CPNPStorage", "CPNPTransport", "CPNPPolicy",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ],
        swiftSettings: swiftSettings
    ),
]

// MARK: - Engine benchmark (docs/performance.md)
// `cpnp-engine-bench`: the server engine in process (real SQLite store, no sockets), time per phase.

package.targets += [
    .executableTarget(
        name: "cpnp-engine-bench",
        dependencies: [
            "CPNPServer", "CPNPCore", "CPNPPolicy", "CPNPStorage", "CPNPRuntime",
            .product(name: "Logging", package: "swift-log"),
        ],
        swiftSettings: swiftSettings
    ),
]

// MARK: - Conformance kit (docs/conformance.md): vectors in conformance/, played by `cpnp conformance`.

package.targets += [
    // The vectors' format (cases, steps, target profiles), placeholder expansion, and the player
    // that runs them against any CPNP server over DTLS.
    .target(
        name: "CPNPConformance",
        dependencies: [
            "CPNPCore", "CPNPTransport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ],
        swiftSettings: swiftSettings
    ),
]

for dependent in ["cpnp", "CPNPIntegrationTests"] {
    package.targets.first { $0.name == dependent }?.dependencies.append(.target(name: "CPNPConformance"))
}

// MARK: - Test kit: CPNPTesting
// Helpers for tests only (not a product): a throw-away PostgreSQL server in a temporary directory.

package.targets += [
    .target(name: "CPNPTesting", path: "Sources/CPNPTesting", swiftSettings: swiftSettings),
]

for tests in ["CPNPStorageTests", "CPNPServerTests", "CPNPIntegrationTests"] {
    package.targets.first { $0.name == tests }?.dependencies.append(.target(name: "CPNPTesting"))
}

// MARK: - HTTP server in cpnpd: health, readiness, Prometheus metrics, operator API.

package.dependencies += [
    .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0", traits: []),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
    .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
]

package.targets += [
    // The daemon's HTTP side: /healthz, /readyz, /metrics, authentication (docs/console.md).
    .target(
        name: "CPNPHTTP",
        dependencies: [
            "CPNPServer", "CPNPPolicy", "CPNPCore", "CPNPStorage", "CPNPRuntime", "CPNPTransport", "CPNPClient",
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
        ],
        swiftSettings: swiftSettings
    ),
]

package.targets.append(.testTarget(name: "CPNPHTTPTests", dependencies: ["CPNPHTTP", "CPNPServer", "CPNPCore"], swiftSettings: swiftSettings))
// The REST API (docs/api.md): its server is generated from Sources/CPNPHTTP/openapi.yaml at build time.
package.dependencies += [
    .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.0"),
    .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.0"),
    .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
]
// What cpnpd's REST API and `cpnp serve` share besides Sources/CPNPHTTP/openapi.yaml (which
// Sources/cpnp links to): exact JSON values in the generated types.
package.targets.append(.target(
    name: "CPNPAPI",
    dependencies: ["CPNPCore", .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"), .product(name: "HTTPTypes", package: "swift-http-types")],
    swiftSettings: swiftSettings))
if let cpnp = package.targets.first(where: { $0.name == "cpnp" }) {
    cpnp.dependencies += [
        "CPNPAPI",
        .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
        .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
        .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Crypto", package: "swift-crypto"),
    ]
    cpnp.plugins = [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
}
if let http = package.targets.first(where: { $0.name == "CPNPHTTP" }) {
    http.dependencies += [
        "CPNPAPI",
        .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
        .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
        .product(name: "Crypto", package: "swift-crypto"),
        // Webhook deliveries.
        .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOHTTP1", package: "swift-nio"),
    ]
    http.plugins = [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
}
package.targets.first { $0.name == "CPNPServer" }?.dependencies.append(.product(name: "CoreMetrics", package: "swift-metrics"))
// The console's browser tests talk WebDriver to chromedriver.
package.targets.first { $0.name == "CPNPIntegrationTests" }?.dependencies += [
    .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOHTTP1", package: "swift-nio"),
    .product(name: "NIOSSL", package: "swift-nio-ssl"),
]
// cpnpd's glue between transport and engine (DaemonService, TransportSink, signals), shared with tests.
package.targets.append(.target(
    name: "CPNPDaemon",
    dependencies: [
        "CPNPCore", "CPNPServer", "CPNPTransport", "CPNPHTTP",
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    ],
    swiftSettings: swiftSettings))
package.targets.first { $0.name == "CPNPClientTests" }?.dependencies.append("CPNPDaemon")
package.targets.first { $0.name == "cpnpd" }?.dependencies += ["CPNPDaemon", "CPNPHTTP", .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "CoreMetrics", package: "swift-metrics")]
