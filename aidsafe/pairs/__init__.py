"""Belief-augmented preference pairs (AIDSAFE's DPO data): ear-whisperer -> rejected CoT -> judge.

`aidsafe pairs RECIPE --input RUN_DIR` takes the finished samples of a generation run as the
chosen side and, per sample, loops a LangGraph graph until an LLM judge separates the sides
(docs/pairs.md). Modules: `schemas` (the roles' outputs and per-call schemas), `roles` (the three
roles' registry and the stop rule), `recipe`, `graph`, `records` (pair records and stats),
`runner` (the `Task` on the executor and `make_pairs`).
"""

__all__: list[str] = []
