"""Evaluation of what aidsafe makes: the quality of generated chains of thought (`eval cot`) and
the safety of a student trained on them (`eval safety`). Guard-model evaluation (`eval guard`)
lives with the guard formats in aidsafe.guard.

Shared here: confidence intervals (aidsafe.eval.intervals), so every table reports them the same way.
"""

__all__: list[str] = []
