"""The report of `aidsafe eval cot`, from the judges' per-sample records, and its tables.

- Grading: per judge and criterion, the mean score with a bootstrap 95% interval
  (aidsafe.eval.intervals.bootstrap_mean, seed 0: the same records give the same interval).
- Comparing: per judge, wins / ties / losses of the evaluated run against the other, counts and
  rates with Wilson 95% intervals; `run_as_a` says how often the run was shown first.
- Agreement (two or more judges), per pair of judges over the items both judged:
  grading: per criterion, the mean absolute difference of their scores (bootstrap interval),
  Spearman's rank correlation (average ranks for ties; null where a judge gave one score to
  every item, which has no ranking) and the exact-agreement rate (Wilson);
  comparing: the rate at which they name the same winner (Wilson).
Intervals of nothing (NaN) are written as null, so report.json is strict JSON.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

from aidsafe.eval.cot_judge import CRITERIA
from aidsafe.eval.intervals import Interval, bootstrap_mean, wilson

__all__ = ["build_report", "grade_summary", "compare_summary", "agreement", "spearman", "report_tables"]


def build_report(request: Any, judged: list[dict[str, Any]], policies: Any, matching: dict | None) -> dict[str, Any]:
    """The whole report: one entry per judge (records already filtered to this run's items)."""
    mode = "compare" if request.compare else "grade"
    summary = compare_summary if mode == "compare" else grade_summary
    judges = []
    for entry in judged:
        about = {"model": entry["model"].model, "base_url": entry["model"].base_url, "agent": entry["agent"].name,
                 "output": str(entry["dir"]), "rejected": entry.get("rejected", 0)}  # fmt: skip
        judges.append({**about, **summary(entry["records"])})
    pairs = [
        {"judges": [a["model"].model, b["model"].model], **agreement(a["records"], b["records"], mode)}
        for a, b in combinations(judged, 2)
    ]
    return {
        "mode": mode,
        "run": str(request.run),
        "compare": str(request.compare) if request.compare else None,
        "policy_set": {"id": policies.id, "version": policies.version},
        "matching": matching,
        "judges": judges,
        "agreement": pairs,
    }


def grade_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    criteria = {c: _interval(bootstrap_mean([r["scores"][c] for r in records])) for c in CRITERIA}
    return {"samples": len(records), "criteria": criteria}


def compare_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(records)
    counts = {w: sum(r["winner"] == w for r in records) for w in ("run", "tie", "other")}
    return {
        "pairs": n,
        "wins": counts["run"],
        "ties": counts["tie"],
        "losses": counts["other"],
        "win_rate": _interval(wilson(counts["run"], n)),
        "tie_rate": _interval(wilson(counts["tie"], n)),
        "loss_rate": _interval(wilson(counts["other"], n)),
        "run_as_a": sum(r["run_position"] == "A" for r in records),
    }


def agreement(first: list[dict[str, Any]], second: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """How two judges agree on the items both judged (see the module docstring)."""
    theirs = {r["id"]: r for r in second}
    common = [(r, theirs[r["id"]]) for r in first if r["id"] in theirs]
    if mode == "compare":
        same = sum(a["winner"] == b["winner"] for a, b in common)
        return {"common": len(common), "exact": _interval(wilson(same, len(common)))}
    criteria = {}
    for c in CRITERIA:
        xs = [a["scores"][c] for a, _ in common]
        ys = [b["scores"][c] for _, b in common]
        criteria[c] = {
            "mean_abs_diff": _interval(bootstrap_mean([abs(x - y) for x, y in zip(xs, ys, strict=True)])),
            "spearman": spearman(xs, ys),
            "exact": _interval(wilson(sum(x == y for x, y in zip(xs, ys, strict=True)), len(common))),
        }
    return {"common": len(common), "criteria": criteria}


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rho: Pearson's correlation of the average ranks; None when undefined."""
    if len(xs) < 2:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):  # ties share the mean of the ranks they span (1-based)
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _interval(interval: Interval) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in interval.as_dict().items()}


# Tables ----------------------------------------------------------------------------------------


def report_tables(report: dict[str, Any], width: int | None = None) -> list[Any]:
    """rich Tables for the terminal: the judges' results, then their agreement; with `width`, each
    made to fit that many columns (aidsafe.terminal.fit_table)."""
    from rich.table import Table

    from aidsafe.terminal import fit_table

    tables = []
    if report["mode"] == "grade":
        table = Table(title=f"CoT quality (1-5, mean [95% bootstrap]): {report['run']}")
        table.add_column("Criterion")
        for judge in report["judges"]:
            table.add_column(f"{judge['model']} (n={judge['samples']})", justify="right")
        for c in CRITERIA:
            table.add_row(c, *(_show(j["criteria"][c]) for j in report["judges"]))
    else:
        m = report["matching"]
        table = Table(
            title=f"{report['run']} vs {report['compare']}: {m['matched']} prompts matched "
            f"({m['only_in_run']} only in the run, {m['only_in_other']} only in the other)"
        )
        for column in ("Judge", "Pairs", "Wins", "Ties", "Losses", "Win rate [95% Wilson]", "Loss rate"):
            table.add_column(column, justify="left" if column == "Judge" else "right")
        for j in report["judges"]:
            table.add_row(j["model"], str(j["pairs"]), str(j["wins"]), str(j["ties"]), str(j["losses"]),
                          _show(j["win_rate"]), _show(j["loss_rate"]))  # fmt: skip
    tables.append(table)
    if report["agreement"]:
        tables.append(_agreement_table(report))
    return tables if width is None else [fit_table(table, width) for table in tables]


def _agreement_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="Judge agreement")
    if report["mode"] == "grade":
        for column in ("Judges", "Criterion", "Items", "Mean |diff|", "Spearman", "Exact"):
            table.add_column(column, justify="left" if column in ("Judges", "Criterion") else "right")
        for pair in report["agreement"]:
            for c in CRITERIA:
                row = pair["criteria"][c]
                rho = "-" if row["spearman"] is None else f"{row['spearman']:.3f}"
                table.add_row(" / ".join(pair["judges"]), c, str(pair["common"]), _show(row["mean_abs_diff"]), rho,
                              _show(row["exact"]))  # fmt: skip
    else:
        for column in ("Judges", "Items", "Same winner [95% Wilson]"):
            table.add_column(column, justify="left" if column == "Judges" else "right")
        table.columns[0].overflow = "fold"  # "judge-a / judge-b" may wrap
        for pair in report["agreement"]:
            table.add_row(" / ".join(pair["judges"]), str(pair["common"]), _show(pair["exact"]))
    return table


def _show(interval: dict[str, Any]) -> str:
    if interval["value"] is None:
        return "-"
    return f"{interval['value']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]"
