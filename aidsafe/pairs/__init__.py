"""Belief-augmented preference pairs (AIDSAFE's DPO data): ear-whisperer -> rejected CoT -> judge.

`aidsafe pairs RECIPE --input RUN_DIR` takes the finished samples of a generation run as the
chosen side and, per sample, loops a LangGraph graph until a judge (an LLM judge card, or a
guard model's P(unsafe)) separates the sides (docs/pairs.md). Modules: `schemas` (the roles'
outputs and per-call schemas), `roles` (the three roles' registry and the stop rule),
`guard_judge` (the guard-model judge), `recipe`, `graph`, `records` (pair records and stats),
`runner` (the `Task` on the executor and `make_pairs`).
"""

__all__: list[str] = []
