import SomaTrain

/// A user-facing failure: ArgumentParser prints its description as one line and exits 1.
typealias CLIError = TrainError
