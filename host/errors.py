"""What can go wrong when the host runs a component, as exceptions a caller can tell apart.

Every failure a guest or a request can cause ends up as one of these; none of them
leaves the host unable to serve the next request.
"""

from __future__ import annotations


class EdgepopError(Exception):
    """Base of every error edgepop raises on purpose."""


class ComponentLoadError(EdgepopError):
    """The file is not a component this host can run (missing, not a component, wrong world...)."""


class GuestTrap(EdgepopError):
    """The guest trapped. Its instance is discarded; the host goes on.

    `stderr` holds what the guest wrote to standard error (a Python traceback, usually).
    """

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


class DeadlineExceeded(GuestTrap):
    """The guest ran past its CPU deadline and was interrupted."""


class MemoryLimitExceeded(GuestTrap):
    """The guest needed more linear memory than its limit allows."""
