"""The report's summary table: recipe, policies, teacher models, counts, tokens, time."""

from __future__ import annotations

from typing import Any

from aidsafe.report.run import RunView

__all__ = ["summary"]


def _models(recipe: dict[str, Any]) -> list[str]:
    resolved = recipe.get("resolved") or {}
    found = []
    agents = resolved.get("agents")
    if isinstance(agents, dict):
        for role, slots in agents.items():
            for slot in slots if isinstance(slots, list) else []:
                found.append(f"{slot.get('name', role)}: {slot.get('model', '?')}")
    if not found and isinstance(recipe.get("teacher"), dict) and recipe["teacher"].get("model"):
        found.append(str(recipe["teacher"]["model"]))
    return found


def _policies(recipe: dict[str, Any]) -> str:
    policy_set = (recipe.get("resolved") or {}).get("policy_set")
    if isinstance(policy_set, dict):
        return f"{policy_set.get('id')} {policy_set.get('version', '')}".strip()
    return str(recipe.get("policies", ""))


def _spent(stats: dict[str, Any]) -> str:
    """Every call of every run into the directory (rejected samples and failed calls included)."""
    total = stats.get("spent")
    if isinstance(total, dict):
        return (f"{total.get('prompt_tokens', 0):,} prompt + {total.get('completion_tokens', 0):,} completion "
                f"in {total.get('calls', 0):,} calls over {total.get('runs', 0)} run(s), every attempt")  # fmt: skip
    last = stats.get("last_run")
    if isinstance(last, dict):  # written before totals were kept
        return (
            f"{last.get('prompt_tokens', 0):,} prompt + {last.get('completion_tokens', 0):,} completion (last run only)"
        )
    return "?"


def summary(view: RunView, samples: int, rejected: int, tokens: tuple[int, int]) -> list[tuple[str, str]]:
    """(label, value) rows; counts and tokens are counted from the journal (stats.json may be stale)."""
    stats, recipe = view.stats, view.recipe
    last = stats.get("last_run") if isinstance(stats.get("last_run"), dict) else {}
    wall = last.get("wall_s", stats.get("wall_s"))
    rows = [
        ("run", str(view.path)),
        ("kind", view.kind),
        ("recipe", str(recipe.get("name") or recipe.get("kind") or "?")),
        ("recipe hash", str((recipe.get("resolved") or {}).get("recipe_hash") or recipe.get("recipe_hash") or "?")),
        ("policies", _policies(recipe) or "?"),
        ("teacher models", ", ".join(_models(recipe)) or "?"),
        ("inputs", str(stats.get("inputs", "?"))),
        ("finished", str(samples)),
        ("rejected", str(rejected)),
        ("pending", str(stats.get("pending", "?"))),
        ("tokens in kept samples", f"{tokens[0]:,} prompt + {tokens[1]:,} completion"),
        ("tokens spent", _spent(stats)),
        ("last run", f"{wall} s wall, {last.get('calls', '?')} calls" if wall is not None else "?"),
    ]
    return rows
