"""One mapping of failed model calls to rejections (aidsafe.run.task.rejection_for), for every
stage, in the one vocabulary the circuit breaker counts."""

from __future__ import annotations

import pytest

from aidsafe.run.task import SETUP_FAILURES, rejection_for
from aidsafe.teacher.types import InvalidOutputError, TeacherError, TransientTeacherError


@pytest.mark.parametrize(
    ("exc", "reason", "transient"),
    [
        (InvalidOutputError("no JSON of the right shape after 3 attempts"), "invalid_output", False),
        (TeacherError("HTTP 400: bad request"), "teacher_error", False),
        (TransientTeacherError("HTTP 503 after 6 attempts"), "teacher_unavailable", True),
        (KeyError("verdict"), "error", False),
    ],
)
def test_every_failure_maps_to_a_reason_the_breaker_counts(exc, reason, transient):
    rejection = rejection_for("safety_judge", exc)
    assert (rejection.stage, rejection.reason, rejection.transient) == ("safety_judge", reason, transient)
    assert rejection.signals_setup and reason in SETUP_FAILURES


def test_a_bug_keeps_its_type_and_a_stage_may_word_the_error():
    try:
        {}["verdict"]
    except KeyError as exc:
        assert rejection_for("grade", exc).error.startswith("KeyError: 'verdict' at test_rejections.py:")
    worded = rejection_for("predict", TeacherError("agent: teacher m at u rejected: HTTP 400"), "HTTP 400: bad")
    assert (worded.reason, worded.error) == ("teacher_error", "HTTP 400: bad")
