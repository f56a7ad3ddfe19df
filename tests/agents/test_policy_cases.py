"""Policy sets may carry worked cases; sets without them dump (and so hash) exactly as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidsafe.agents.policies import load_policies
from aidsafe.errors import AidsafeError

HEAD = 'id: x\nversion: "1"\npolicies:\n  - id: A\n    title: a\n    rule: r\n'


def test_builtin_set_has_cases_and_a_rule_case_defaults_to_its_rule():
    policies = load_policies("aidsafe")
    assert len(policies.all_cases()) >= 5
    p2 = next(p for p in policies.policies if p.id == "P2")
    assert all(case.rules == ["P2"] for case in p2.cases)


def test_without_cases_dumps_as_a_set_written_before_cases(tmp_path: Path):
    dumped = load_policies("aidsafe").without_cases().model_dump(mode="json")
    assert "cases" not in dumped and all("cases" not in p for p in dumped["policies"])


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        (
            "    cases:\n      - {content: c, verdict: allowed, rules: [Q], rationale: r}\n",
            "FILE:8: policies.0.cases.0.rules: rule id 'Q' is not in this set; expected one of: A",
        ),
        (
            "cases:\n  - {content: c, verdict: violation, rationale: r}\n",
            "FILE:8: cases.0.rules: a violation case names the rule ids it breaks",
        ),
        (
            "cases:\n  - {content: c, verdict: maybe, rules: [A], rationale: r}\n",
            "FILE:8: cases.0.verdict: Input should be 'allowed' or 'violation'",
        ),
    ],
)
def test_a_bad_case_is_one_line_naming_its_key(tmp_path: Path, cases: str, message: str):
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + cases)
    with pytest.raises(AidsafeError) as caught:
        load_policies(path)
    assert str(caught.value) == message.replace("FILE", str(path))
