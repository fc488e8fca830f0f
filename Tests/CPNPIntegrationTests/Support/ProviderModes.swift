// The provider modes' names in test reports: `inProcess`, `live`.
public import CPNPTesting
public import Testing

extension ProviderMode: CustomTestStringConvertible {
    public var testDescription: String { rawValue }
}
