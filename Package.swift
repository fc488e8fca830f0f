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
        .library(name: "CPNPServer", targets: ["CPNPServer"]),
        .executable(name: "cpnpd", targets: ["cpnpd"]),
        .executable(name: "cpnp", targets: ["cpnp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.5.0"),
    ],
    targets: [
        // Pure protocol core: messages, codec, CPD model, order state machines. No I/O.
        .target(name: "CPNPCore", swiftSettings: swiftSettings),
        // Durable order stores (server and client) on SQLite through GRDB: snapshots, audit trail,
        // reservations, provisioning outbox.
        .target(
            name: "CPNPStorage",
            dependencies: ["CPNPCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        // The provider's engine (issue 4): runs server order machines over a transport, with the
        // store, the policy and timers. Transport-agnostic: cpnpd plugs the secure transport in.
        .target(
            name: "CPNPServer",
            dependencies: ["CPNPCore", "CPNPStorage", "CPNPPolicy", .product(name: "Logging", package: "swift-log")],
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
                "CPNPCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
        .testTarget(name: "CPNPServerTests", dependencies: ["CPNPServer", "CPNPCore", "CPNPStorage", "CPNPPolicy"], swiftSettings: swiftSettings),
        .testTarget(name: "CPNPStorageTests", dependencies: ["CPNPStorage", "CPNPCore"], swiftSettings: swiftSettings),
        .testTarget(name: "CPNPPolicyTests", dependencies: ["CPNPPolicy", "CPNPCore"], swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)
