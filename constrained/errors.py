"""Errors a user can act on. Each names the bad input."""


class ConstrainedError(Exception):
    """Base class of the project's errors."""


class InvalidProblem(ConstrainedError, ValueError):
    """A problem that cannot be encoded: wrong shape, illegal symbol, broken givens."""


class ModelMismatch(ConstrainedError, ValueError):
    """A model whose vocabulary, layout or task does not fit the task it is used with."""


class ConfigError(ConstrainedError, ValueError):
    """A recipe or setting that is unknown or out of range."""


class SandboxUnavailable(ConstrainedError, RuntimeError):
    """Code would have to run, but no operating-system sandbox (bubblewrap) works on this host."""
