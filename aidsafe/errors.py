"""User-facing errors.

Every problem a user can fix (a bad file, a wrong key, an unreachable teacher) is raised as
`AidsafeError` with a one-line message that names the file, line or key and what was expected.
The CLI prints that line and exits non-zero, with no traceback.
"""

from __future__ import annotations

__all__ = ["AidsafeError", "RunSetupError", "TeacherUnreachable"]


class AidsafeError(Exception):
    """A problem with the user's input or environment, described in one line."""


class TeacherUnreachable(AidsafeError):
    """The teacher endpoint did not pass the pre-flight check. `failed` says which part, for
    `aidsafe check`'s table: "reachable" (no OpenAI-compatible answer, or an outage), "key" (HTTP
    401/403), "served" (the model is not listed), "answers" (a chat request was rejected),
    "mode" (the structured-output mode was refused) or "schema" (the schema was ignored)."""

    def __init__(self, message: str, failed: str = "reachable") -> None:
        super().__init__(message)
        self.failed = failed


class RunSetupError(AidsafeError):
    """Something every sample needs is broken (e.g. the dedup model cannot load): stop the run
    rather than reject samples one by one; unfinished samples keep their checkpoints."""
