"""What the dataset card says that depends on the kind of run: the summary, the method and its
paper (BibTeX), the counts, the dual-use note of preference data, and the intended use.

The counts come from the run's stats.json and, for guard data, from one pass over its records
(label counts per task are not in stats.json).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aidsafe.export.kinds import iter_records
from aidsafe.guard.policy_bench import HOLDOUT_SHARE
from aidsafe.kinds import KINDS

__all__ = [
    "BIBTEX",
    "counts_section",
    "dual_use",
    "dual_use_note",
    "intended_use",
    "method",
    "method_section",
    "paper",
    "split_note",
    "summary",
    "tags",
    "teacher_agents",
    "uses",
]

BIBTEX = {
    "aidsafe": """@inproceedings{kumarage2025aidsafe,
  title     = {Towards Safety Reasoning in {LLMs}: {AI}-agentic Deliberation for Policy-embedded {CoT} Data Creation},
  author    = {Kumarage, Tharindu and Mehrabi, Ninareh and Ramakrishna, Anil and Zhao, Xinyan and Zemel, Richard
               and Chang, Kai-Wei and Galstyan, Aram and Gupta, Rahul and Peris, Charith},
  booktitle = {Findings of the Association for Computational Linguistics: ACL 2025},
  year      = {2025},
  eprint    = {2505.21784},
  archivePrefix = {arXiv}
}""",
    # The authors' README spells the fourth author "Jun, Xia"; he is Jun Xia (family name Xia).
    "guardreasoner": """@article{liu2025guardreasoner,
  title   = {{GuardReasoner}: Towards Reasoning-based {LLM} Safeguards},
  author  = {Liu, Yue and Gao, Hongcheng and Zhai, Shengfang and Xia, Jun and Wu, Tianyi and Xue, Zhiwei
             and Chen, Yulin and Kawaguchi, Kenji and Zhang, Jiaheng and Hooi, Bryan},
  journal = {arXiv preprint arXiv:2501.18492},
  year    = {2025}
}""",
    "thinkguard": """@inproceedings{wen2025thinkguard,
  title     = {{ThinkGuard}: Deliberative Slow Thinking Leads to Cautious Guardrails},
  author    = {Wen, Xiaofei and Zhou, Wenxuan and Mo, Wenjie Jacky and Chen, Muhao},
  booktitle = {Findings of the Association for Computational Linguistics: ACL 2025},
  pages     = {13698--13713},
  year      = {2025},
  address   = {Vienna, Austria},
  publisher = {Association for Computational Linguistics},
  eprint    = {2502.13458},
  archivePrefix = {arXiv}
}""",
}
_LINKS = {
    "aidsafe": "[AIDSAFE](https://arxiv.org/abs/2505.21784)",
    "guardreasoner": "[GuardReasoner](https://arxiv.org/abs/2501.18492)",
    "thinkguard": "[ThinkGuard](https://arxiv.org/abs/2502.13458)",
}
_TAGS = {
    "generation": ["chain-of-thought", "policy-embedded-cot"],
    "pairs": ["chain-of-thought", "policy-embedded-cot", "dpo", "preference"],
    "guardreasoner": ["guardreasoner", "guard-model", "reasoning"],
    "hard-samples": ["guardreasoner", "guard-model", "dpo", "preference"],
    "policy-guard": ["guard-model", "policy-conditioned", "reasoning"],
}
_METHOD = {
    "generation": "Per prompt: an agent decomposes the user's explicit and implicit intents; another writes an "
    "initial chain of thought and response over the policies; agents deliberate in turns, correcting and "
    "adding thoughts, until one agrees with the previous or the round budget runs out; near-duplicate "
    "thoughts are dropped by embedding similarity; a refiner removes repetitive, redundant, deceptive and "
    "policy-inconsistent thoughts and writes the final response.",
    "pairs": "Belief augmentation (AIDSAFE's supplemental DPO recipe). The chosen side is a finished sample of an "
    "AIDSAFE generation run (deliberated chain of thought and response). For the rejected side an "
    "ear-whisperer agent writes a short false or harmful belief, which is put before the user's prompt only "
    "when the generator writes the rejected chain of thought, steering it into a policy violation. A judge "
    "(which never sees the belief) scores both sides; the belief is rewritten over a few iterations until the "
    "rejected side violates, the chosen side does not, and their faithfulness scores differ by the recipe's "
    "margin. Samples never separated are left out (`no_separation`). The belief is never part of the "
    "training prompt.",
    "guardreasoner": "Label-conditioned rationalisation (GuardReasonerTrain's method): a teacher sees a "
    "conversation and its gold labels for three tasks (is the request harmful, is the response a refusal, "
    "is the response harmful) and explains them in 1 to 10 reasoning steps per task, ending with an answer "
    "block equal to the gold labels. The `instruction` is the released classifier instruction, byte for "
    "byte, so the data trains models compatible with the released GuardReasoner ones (R-SFT).",
    "policy-guard": "Policy-conditioned guard data (aidsafe's `policy-guard` stage). Each row's content (a user "
    "request and, where present, an assistant response) is judged against a written policy set by LLM judges "
    "that answer in JSON pinned to the set's rule ids. Where the row has a gold verdict, one judge explains it "
    "(label-conditioned rationalisation, as GuardReasoner's teacher does); where it has none, two judges judge "
    "on their own (one reading the content as a whole, one rule by rule) and the row is kept only when they "
    "agree on the verdict and the violated rule ids. For a share of the rows the policy set is edited (a "
    "violated rule dropped or relaxed, or a new rule the content breaks added; an editor agent writes the "
    "relaxed or added rule) and both judges judge the same content again under it: such a counterfactual "
    "variant is its own record, its verdict judged, not assumed. Each record keeps the policy text it was "
    "judged under.",
    "hard-samples": "Hard-sample mining for HS-DPO (GuardReasoner): R-SFT models sampled several outputs per "
    "training input; an input is hard when its samples are mixed (at least one right and one wrong answer "
    "for a task, checked Request, then Response, then Completion). Chosen = the longest correct sample, "
    "rejected = the longest wrong one; `weight` = #wrong - #right, min-max scaled per predictions file into "
    "[0.8, 1.2] (harder inputs weigh more).",
}


def paper(kind: str) -> str:
    return KINDS[kind].paper if kind in KINDS else "aidsafe"


def tags(kind: str) -> list[str]:
    return ["aidsafe", "synthetic", "safety", *_TAGS.get(kind, [])]


def summary(kind: str) -> str:
    link = _LINKS[paper(kind)]
    if kind == "pairs":
        return (
            "Synthetic safety preference pairs for DPO: for each user prompt, a chosen chain of thought and "
            f"response that follow a written safety policy set and a rejected one steered into violating it, "
            f"made by LLM agents ({link} belief augmentation), generated with the aidsafe framework. "
            "The rejected sides are harmful by construction."
        )
    if kind == "guardreasoner":
        return (
            "Synthetic guard-model training data: conversations (a user request and, where present, an AI "
            f"response) with step-by-step reasoning that ends in three labels, in the {link} format, "
            "generated with the aidsafe framework. The conversations may contain harmful requests and responses."
        )
    if kind == "policy-guard":
        return (
            "Synthetic training data for policy-conditioned guard models: content judged against a written "
            "policy set that each example carries, with the verdict (allowed or violation), the violated rule "
            "ids, a full reasoning and a one-sentence rationale, including counterfactual examples judged under "
            "an edited policy, generated with the aidsafe framework. The content may contain harmful requests "
            "and responses."
        )
    if kind == "hard-samples":
        return (
            f"Hard-sample preference pairs for {link} HS-DPO: guard-model outputs on one input, a correct one "
            "(chosen) and a wrong one (rejected), with a per-pair weight, mined with the aidsafe framework."
        )
    return (
        "Synthetic safety-reasoning data: for each user prompt, a chain of thought that reasons over a written "
        f"safety policy set, and a final response that follows it, made by LLM agents deliberating ({link}), "
        "generated with the aidsafe framework. "
        "The prompts may be harmful requests; the responses are meant to be safe and helpful where allowed."
    )


def split_note(kind: str) -> str:
    """How the export split its records (aidsafe.export.formats.record_in_test_split)."""
    if kind == "policy-guard":
        return (
            "The train/test split is by a hash of each record's `source_id`, so a row and its counterfactual "
            "variants are on the same side: the same in every config and on every re-export. The rows that "
            "`aidsafe eval guard` scores as the run's held-out share (a fixed hash of `source_id`, about "
            f"{HOLDOUT_SHARE:.0%} of the rows, with their variants) are always in the test split, whatever the "
            "test size, so a guard trained on the train split is never scored on what it trained on."
        )
    return "The train/test split is by a hash of each sample's id: the same in every config and on every re-export."


def method(kind: str) -> str:
    """How the records of a `kind` run were made, in a paragraph."""
    return _METHOD.get(kind, _METHOD["generation"])


def method_section(kind: str) -> str:
    return f"## Method\n\n{method(kind)}\n\n```bibtex\n{BIBTEX[paper(kind)]}\n```"


def dual_use_note(kind: str) -> str:
    return f"## Dual use\n\n{dual_use(kind)}" if dual_use(kind) else ""


def dual_use(kind: str) -> str:
    """What makes the data of a `kind` run dangerous to reuse ("" when nothing beyond the intended use)."""
    if kind != "pairs":
        return ""
    return (
        "This is preference data built with a jailbreak writer. The ear-whisperer agent writes "
        "beliefs meant to elicit policy violations, and every rejected side is harmful by construction: "
        "reasoning and responses that a model steered past its safety policies wrote. The beliefs are left "
        "out of this export unless it was made with `--keep-beliefs` (then a `belief` column holds them, for "
        "audit). Intended use: preference training (DPO and similar), where the rejected side is what the "
        "model learns not to write; never supervised fine-tuning on the rejected side, and do not reuse the "
        "beliefs or rejected texts as prompts or targets elsewhere."
    )


def intended_use(kind: str) -> str:
    return f"## Intended use\n\n{uses(kind)}"


def uses(kind: str) -> str:
    """What the data of a `kind` run is for, and not for."""
    if kind == "pairs":
        text = (
            "Preference training only (DPO and similar) of models for policy-grounded safety reasoning, and research "
            "on synthetic safety data. Not for training models to produce harmful content: see the dual-use note."
        )
    elif kind == "hard-samples":
        text = (
            "Preference training (HS-DPO) of GuardReasoner-style guard models from their R-SFT checkpoint. The "
            "rejected outputs are wrong verdicts by construction: never train on them as targets."
        )
    elif kind == "policy-guard":
        text = (
            "Training and evaluating guard models that read the policy they are given and judge content "
            "against it, with their reasoning. Not for training models to produce the harmful content some "
            "rows hold; the reasoning was written by LLMs (told the gold verdict where there was one), so "
            "review it before use. A counterfactual variant's policy is an edited one, not a policy to deploy."
        )
    elif kind == "guardreasoner":
        text = (
            "Training and evaluating guard models (classifiers of harmful requests, refusals and harmful "
            "responses) that explain their verdicts. Not for training models to produce the harmful content "
            "some conversations hold; the reasoning was written by an LLM told the labels, so review it before use."
        )
    else:
        text = (
            "Fine-tuning and evaluating models for policy-grounded safety reasoning, and research on "
            "synthetic safety data. Not for training models to produce harmful content; review the responses "
            "before use, as an LLM wrote every one of them."
        )
    return text


def counts_section(run: Any) -> str:
    stats = run.stats
    if run.kind == "pairs":
        judge = stats.get("judge", {}).get("pairs", {}) if isinstance(stats.get("judge"), dict) else {}
        every = stats.get("judge", {}).get("all_attempts", {}) if isinstance(stats.get("judge"), dict) else {}
        iterations = stats.get("iterations", {}) if isinstance(stats.get("iterations"), dict) else {}
        lines = [
            ("chosen samples read", stats.get("inputs")),
            ("pairs", stats.get("pairs")),
            ("no_separation (no belief separated the sides)", stats.get("no_separation")),
            ("rejected by reason", _table(stats.get("rejected_by_reason"))),
            ("iterations per pair (iterations: pairs)", _table(iterations.get("histogram"))),
            ("mean iterations", iterations.get("mean")),
            ("judge score gap of the pairs, chosen minus rejected faithfulness (gap: pairs)",
             _table(judge.get("gap", {}).get("histogram"))),
            ("mean gap", judge.get("gap", {}).get("mean")),
            ("faithfulness mean, chosen / rejected", _pair(*(judge.get(side, {}).get("faithfulness_mean")
                                                             for side in ("chosen", "rejected")))),
            ("judged attempts (kept or not)", every.get("attempts")),
            ("mean gap over every attempt", every.get("gap", {}).get("mean")),
        ]  # fmt: skip
        return _section(lines, stats)
    if run.kind == "guardreasoner":
        lines = [
            ("labelled rows read", stats.get("inputs")),
            ("repeated inputs skipped", stats.get("repeated_inputs")),
            ("traces", stats.get("samples")),
            ("rejected", stats.get("rejected")),
            ("rejected by reason", _table(stats.get("rejected_by_reason"))),
        ]
        labels: dict[str, Counter] = {"prompt": Counter(), "refusal": Counter(), "response": Counter()}
        for record in iter_records(run.records_path, run.kind):
            for task, label in (record.get("labels") or {}).items():
                labels.setdefault(task, Counter())[str(label)] += 1
        lines += [(f"task `{task}` labels", _table(dict(sorted(c.items())))) for task, c in labels.items()]
        return _section(lines, stats)
    if run.kind == "policy-guard":
        section = stats.get("policy_guard", {}) if isinstance(stats.get("policy_guard"), dict) else {}
        originals, variants = (
            {} if not isinstance(section.get(k), dict) else section[k] for k in ("originals", "variants")
        )
        lines = [
            ("rows read", stats.get("rows")),
            ("repeated rows skipped", stats.get("repeated_inputs")),
            ("records (originals + variants)", stats.get("samples")),
            ("rejected by reason", _table(stats.get("rejected_by_reason"))),
            ("original verdicts", _table(originals.get("verdicts"))),
            ("original labels from", _table(originals.get("label_sources"))),
            ("violated rule ids (originals)", _table(originals.get("rules"))),
            ("counterfactual variants by edit", _table(variants.get("by_edit"))),
            ("variant verdicts", _table(variants.get("verdicts"))),
        ]
        return _section(lines, stats)
    if run.kind == "hard-samples":
        tasks: Counter = Counter()
        weights: list[float] = []
        for record in iter_records(run.records_path, run.kind):
            tasks[f"{record.get('task')} (gold {record.get('gold')})"] += 1
            weights.append(float(record["weight"]))
        files = stats.get("files", {}) if isinstance(stats.get("files"), dict) else {}
        per_file = [f for f in files.values() if isinstance(f, dict)]
        lines = [
            ("pairs", stats.get("pairs")),
            ("pairs by task", _table(dict(sorted(tasks.items())))),
            ("weight min / mean / max",
             f"{min(weights):.3f} / {sum(weights) / len(weights):.3f} / {max(weights):.3f}" if weights else None),
            ("predictions files mined", len(files)),
            ("inputs read", sum(f.get("inputs", 0) for f in per_file)),
            ("duplicate pairs dropped", sum(f.get("duplicates_dropped", 0) for f in per_file)),
        ]  # fmt: skip
        return _section(lines)
    rounds = stats.get("rounds_used", {}) if isinstance(stats.get("rounds_used"), dict) else {}
    tokens = stats.get("tokens", {}) if isinstance(stats.get("tokens"), dict) else {}
    lines = [
        ("prompts read", stats.get("inputs")),
        ("samples", stats.get("samples")),
        ("rejected", stats.get("rejected")),
        ("rejected by reason", _table(stats.get("rejected_by_reason"))),
        ("deliberation rounds used (rounds: samples)", _table(rounds.get("histogram"))),
        ("mean rounds", rounds.get("mean")),
        ("stop reasons", _table(stats.get("stop_reasons"))),
        ("thoughts kept", stats.get("thoughts_kept")),
        ("thoughts removed by reason", _table(stats.get("thoughts_removed_by_reason"))),
        ("teacher prompt tokens in kept samples", tokens.get("prompt")),
        ("teacher completion tokens in kept samples", tokens.get("completion")),
    ]
    return _section(lines, stats)


def _section(lines: list[tuple[str, Any]], stats: Any = None) -> str:
    total = stats.get("spent") if isinstance(stats, dict) else None
    if isinstance(total, dict):  # every attempt of every run, rejected samples included
        lines += [("teacher tokens spent, every call of every run (prompt / completion)",
                   _pair(total.get("prompt_tokens"), total.get("completion_tokens"))),
                  ("teacher calls made", total.get("calls"))]  # fmt: skip
    return "## Counts (from the run's stats.json)\n\n" + "\n".join(f"- {k}: {v}" for k, v in lines if v is not None)


def _table(counter: Any) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counter.items()) if isinstance(counter, dict) and counter else "none"


def _pair(a: Any, b: Any) -> str | None:
    return None if a is None or b is None else f"{a} / {b}"


def teacher_agents(run: Any) -> dict[str, Any]:
    """The teacher per role as the card's table reads it (`resolved.agents`; a one-call stage's recipe,
    traces or critiques, has one card: `resolved.card`, its teacher the recipe's)."""
    recipe = run.recipe
    resolved = recipe.get("resolved", {}) if isinstance(recipe.get("resolved"), dict) else {}
    if isinstance(resolved.get("card"), dict):
        card = resolved["card"]
        sampling = {**(card.get("sampling") or {}), **(recipe.get("sampling") or {})}
        model = (recipe.get("teacher") or {}).get("model")
        return {f"{run.kind}_teacher": {"name": card.get("name"), "model": model, "sampling": sampling}}
    agents = resolved.get("agents", {})
    return agents if isinstance(agents, dict) else {}
