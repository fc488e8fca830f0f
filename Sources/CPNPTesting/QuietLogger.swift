// The logger that tests hand to engines and transports.
public import Logging

/// A logger labelled `label` that lets only critical messages through, so that the failures a test
/// provokes on purpose do not fill its output.
public func quietLogger(_ label: String = "cpnp-test") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .critical
    return logger
}
