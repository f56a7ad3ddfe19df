"""The first requests of a run, watched for a teacher that fails them all the same way.

Transient failures are retried with backoff (retry.py), as an outage needs. But a server that
answers HTTP 500 to every request (a handler that crashes on this request shape, a broken model
load) made each call sit through all its retries, about a minute, before its item was rejected
as "transient"; a run of 6 pairs took 55 s to say nothing useful, and the advice to rerun failed
the same way. The client sees every request, so it watches the run's first ones:

- counted: an answer of the 500 kind (500, 501, 505, ...: the server took the request and
  failed it) without Retry-After, keyed by status and message;
- never counted (outages, ridden out as before): 502/503/504 (a gateway, a server restarting),
  429 and anything with Retry-After, refused or reset connections, a proxy's page, timeouts;
- tripped: `TRIP_AFTER` counted answers in a row were the same, one of them to a retry (so it
  is not a passing fault of one request);
- ended for good by the first reply: the server has shown it can answer, and later failures
  are the items' own.

The pre-flight's requests are not watched: a run started during an outage must wait for it.
"""

from __future__ import annotations

from aidsafe.teacher.retry import describe_failure, retry_after_s
from aidsafe.teacher.wire import StatusError

__all__ = ["TRIP_AFTER", "FirstRequests"]

TRIP_AFTER = 4
_OUTAGE_STATUSES = frozenset({502, 503, 504})


class FirstRequests:
    """What the run's requests got until the first reply. Touched on the event loop only."""

    def __init__(self) -> None:
        self.open = True
        self.answer: str | None = None  # the failure every counted answer in the streak was
        self.streak = 0
        self.retried = False  # a retry got the streak's answer too
        self.tripped: str | None = None

    def replied(self) -> None:
        self.open = False

    def failed(self, failure: Exception, tries: int) -> str | None:
        """Count one failed request (`tries`: its attempts so far); the answer that trips the
        watch, or None. Once tripped it stays tripped."""
        if self.tripped is not None or not self.open or not _counted(failure):
            return self.tripped
        answer = describe_failure(failure)
        if answer != self.answer:
            self.answer, self.streak, self.retried = answer, 0, False
        self.streak += 1
        self.retried = self.retried or tries > 1
        if self.streak >= TRIP_AFTER and self.retried:
            self.tripped = answer
        return self.tripped


def _counted(failure: Exception) -> bool:
    return (
        isinstance(failure, StatusError)
        and failure.status >= 500
        and failure.status not in _OUTAGE_STATUSES
        and retry_after_s(failure) is None
    )
