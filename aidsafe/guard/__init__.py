"""Guard models: GuardReasoner and ThinkGuard formats, prediction over benchmarks, and metrics.

- `formats`: build and parse the exact prompt and output text of both guard models.
- `metrics`: F1 (strict and paper modes), weighted averages, AUPRC, category accuracy/macro-F1.
- `evaluate`: score one predictions file; `suite`: the GuardReasoner 13-benchmark table.
- `predict`: run a served guard model over a benchmark (OpenAI-compatible completions endpoint).
- `policy_guard`: policy-conditioned guard data (`aidsafe generate policy-guard`), with its recipe
  (`policy_recipe`), rows (`policy_rows`), judges' schema and agreement (`policy_judgement`),
  counterfactual policies (`policy_variants`) and records (`policy_records`); `policy_format`:
  the policy, prompt and answer text a policy-conditioned guard reads and writes.
- `policy_bench`, `policy_predict`, `policy_metrics`: policy-conditioned benchmarks (each row brings
  its policy: DynaBench, CoSApien, a policy-guard run's held-out share), prediction over chat, and
  scores; `harmony`: gpt-oss-safeguard's policy prompt beside `policy_format`'s generic one.
- `judge`: a served Llama Guard 3 / ShieldGemma as a judge: P(unsafe) of one (prompt, response).
- `sources`: the four GuardReasonerTrain sources (WildGuardMix, Aegis 1.0, ToxicChat, BeaverTails)
  as labelled rows for `traces` (GuardReasoner reasoning traces).
"""

from __future__ import annotations

from aidsafe.guard.evaluate import evaluate_file, evaluate_thinkguard_file, read_predictions
from aidsafe.guard.formats import (
    GUARDREASONER_INSTRUCTION,
    UNPARSEABLE,
    answer_block,
    guardreasoner_prompt,
    parse_answers,
    parse_gold,
    parse_guardreasoner,
    parse_thinkguard,
    thinkguard_prompt,
)
from aidsafe.guard.metrics import (
    MODES,
    average_precision,
    binary_f1,
    category_scores,
    guard_f1,
    weighted_average,
)
from aidsafe.guard.predict import load_benchmark, predict_guard
from aidsafe.guard.suite import GUARDREASONER_SUITE, evaluate_suite

__all__ = [
    "GUARDREASONER_INSTRUCTION",
    "GUARDREASONER_SUITE",
    "MODES",
    "UNPARSEABLE",
    "answer_block",
    "average_precision",
    "binary_f1",
    "category_scores",
    "evaluate_file",
    "evaluate_suite",
    "evaluate_thinkguard_file",
    "guard_f1",
    "guardreasoner_prompt",
    "load_benchmark",
    "parse_answers",
    "parse_gold",
    "parse_guardreasoner",
    "parse_thinkguard",
    "predict_guard",
    "read_predictions",
    "thinkguard_prompt",
    "weighted_average",
]
