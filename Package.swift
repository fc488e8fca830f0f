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
        .executable(name: "cpnpd", targets: ["cpnpd"]),
        .executable(name: "cpnp", targets: ["cpnp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
    ],
    targets: [
        // Pure protocol core: messages, codec, CPD model, order state machines. No I/O.
        .target(name: "CPNPCore", swiftSettings: swiftSettings),
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
    ],
    swiftLanguageModes: [.v6]
)
