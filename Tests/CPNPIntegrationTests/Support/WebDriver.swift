// Headless Chromium driven through chromedriver's W3C WebDriver API (Debian's `chromium` and
// `chromium-driver`; .ci/run.d/20-chromium.sh installs them): the console's browser tests.
import CPNPTesting
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

struct WebDriverError: Error, CustomStringConvertible {
    var description: String
}

/// One chromedriver process and one browser session in it.
final class Browser: @unchecked Sendable {
    private let driver: Process
    private let home: URL
    private let base: String
    private let session: String
    private static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    /// A client certificate the browser presents to `origin` without asking (a customer of the
    /// portal): `client-NAME.pem` of the PKI directory, whose CA the browser trusts.
    struct ClientCertificate {
        var pki: URL
        var name: String
        /// `https://HOST:PORT`.
        var origin: String
    }

    /// Runs `body` with a browser, and quits it afterwards whatever happens (no Chromium left behind).
    static func with<T>(clientCertificate: ClientCertificate? = nil, _ body: (Browser) async throws -> T) async throws -> T {
        let browser = try await start(clientCertificate: clientCertificate)
        do {
            let result = try await body(browser)
            await browser.quit()
            return result
        } catch {
            await browser.quit()
            throw error
        }
    }

    /// Starts chromedriver on a free port and a headless Chromium session, in a home directory of
    /// its own (Chromium keeps its NSS certificate database in `$HOME/.pki/nssdb`).
    static func start(clientCertificate: ClientCertificate? = nil) async throws -> Browser {
        let candidates = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        guard let driverPath = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw WebDriverError(description: "chromedriver not found: install Debian's chromium and chromium-driver (.ci/run.d/20-chromium.sh)")
        }
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        var preferences: [String: Any] = [:]
        if let clientCertificate {
            do { try await installCertificate(clientCertificate, home: home) } catch {
                try? FileManager.default.removeItem(at: home)
                throw error
            }
            // Chromium's AutoSelectCertificateForUrls, per profile: no certificate picker (headless has none).
            preferences["profile.content_settings.exceptions"] = [
                "auto_select_certificate": ["\(clientCertificate.origin),*": ["setting": ["filters": [[String: Any]()]]]]
            ]
        }
        let port = Int.random(in: 20_000...40_000)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: driverPath)
        process.arguments = ["--port=\(port)"]
        process.environment = ProcessInfo.processInfo.environment.merging(["HOME": home.path]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let base = "http://127.0.0.1:\(port)"
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if (try? await Self.call("GET", base + "/status")) != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    // A page waiting for a certificate nobody picks fails after 20 s instead of 300.
                    "timeouts": ["pageLoad": 20_000],
                    "goog:chromeOptions": [
                        "binary": "/usr/bin/chromium",
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"],
                        "prefs": preferences,
                    ],
                ]
            ]
        ]
        do {
            let created = try await Self.call("POST", base + "/session", capabilities)
            guard let value = created["value"] as? [String: Any], let session = value["sessionId"] as? String else {
                throw WebDriverError(description: "no session: \(created)")
            }
            return Browser(driver: process, home: home, base: base, session: session)
        } catch {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: home)
            throw error
        }
    }

    /// The customer's certificate and key (PKCS #12) and the PKI's CA, in a new NSS database of `home`.
    private static func installCertificate(_ certificate: ClientCertificate, home: URL) async throws {
        let database = "sql:" + home.appendingPathComponent(".pki/nssdb").path
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".pki/nssdb"), withIntermediateDirectories: true)
        let bundle = home.appendingPathComponent("client.p12").path
        let pem = certificate.pki.appendingPathComponent("client-\(certificate.name).pem").path
        let key = certificate.pki.appendingPathComponent("client-\(certificate.name)-key.pem").path
        for command in [
            ["certutil", "-N", "-d", database, "--empty-password"],
            ["openssl", "pkcs12", "-export", "-in", pem, "-inkey", key, "-name", certificate.name, "-passout", "pass:", "-out", bundle],
            ["pk12util", "-i", bundle, "-d", database, "-W", ""],
            ["certutil", "-A", "-n", "cpnp-ca", "-t", "C,,", "-i", certificate.pki.appendingPathComponent("ca.pem").path, "-d", database],
        ] {
            let (status, output) = try await BuiltExecutable.run(URL(fileURLWithPath: "/usr/bin/env"), command)
            guard status == 0 else {
                throw WebDriverError(
                    description:
                        "\(command.joined(separator: " ")) failed (\(status)): \(output) — certutil and pk12util are in Debian's libnss3-tools (.ci/run.d/20-chromium.sh)"
                )
            }
        }
    }

    private init(driver: Process, home: URL, base: String, session: String) {
        self.driver = driver
        self.home = home
        self.base = base
        self.session = session
    }

    func quit() async {
        _ = try? await Self.call("DELETE", "\(base)/session/\(session)")
        // SIGKILL: chromedriver inherits the test process's blocked signals, SIGTERM among them.
        kill(driver.processIdentifier, SIGKILL)
        driver.waitUntilExit()
        try? FileManager.default.removeItem(at: home)
    }

    func open(_ url: String) async throws { _ = try await command("POST", "url", ["url": url]) }

    /// The first element matching the CSS selector, waiting for it (bounded).
    func element(_ selector: String, timeout: Duration = .seconds(10)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let found = try? await command("POST", "element", ["using": "css selector", "value": selector]),
                let value = found["value"] as? [String: Any], let id = value[Self.elementKey] as? String
            {
                return id
            }
            guard ContinuousClock.now < deadline else {
                throw WebDriverError(description: "no element \(selector) on \(try await source().prefix(2_000))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func type(_ text: String, into selector: String) async throws {
        let id = try await element(selector)
        _ = try await command("POST", "element/\(id)/value", ["text": text])
    }

    func click(_ selector: String) async throws {
        let id = try await element(selector)
        _ = try await command("POST", "element/\(id)/click", [:])
    }

    func text(of selector: String) async throws -> String {
        let id = try await element(selector)
        return (try await command("GET", "element/\(id)/text")["value"] as? String) ?? ""
    }

    func source() async throws -> String { (try await command("GET", "source")["value"] as? String) ?? "" }

    func currentURL() async throws -> String { (try await command("GET", "url")["value"] as? String) ?? "" }

    /// Evaluates the JavaScript expression `expression` in the page and returns its value.
    func evaluate(_ expression: String) async throws -> Any? {
        try await command("POST", "execute/sync", ["script": "return (\(expression));", "args": []])["value"]
    }

    /// Waits until `script` returns true in the page (no reload).
    func wait(until script: String, timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await evaluate(script) as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let url = (try? await currentURL()) ?? "?"
        let page = (try? await evaluate("document.body ? document.body.innerText : ''") as? String) ?? ""
        throw WebDriverError(description: "timed out waiting for \(script) on \(url): \(page.prefix(1_500))")
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        guard let text = try await command("GET", "screenshot")["value"] as? String, let data = Data(base64Encoded: text) else {
            throw WebDriverError(description: "no screenshot")
        }
        return data
    }

    private func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        try await Self.call(method, "\(base)/session/\(session)/\(path)", body)
    }

    /// Through AsyncHTTPClient: chromedriver writes headers without a space after the colon, which
    /// Foundation's URLSession on Linux refuses.
    private static func call(_ method: String, _ url: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        if let body {
            request.body = .bytes(ByteBuffer(bytes: [UInt8](try JSONSerialization.data(withJSONObject: body))))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let data = Data((try await response.body.collect(upTo: 32 << 20)).readableBytesView)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard response.status == .ok else {
            throw WebDriverError(description: "\(method) \(url): \(String(decoding: data, as: UTF8.self).prefix(500))")
        }
        return object
    }
}
