"""`aidsafe schema` and the committed schemas/: equal to the models, named by every built-in YAML."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from aidsafe.config.schemas import SCHEMAS, builtin_schema_kind, schema_line, schema_text
from tests.conftest import REPO


def _builtin_yaml() -> list[Path]:
    found = [
        p.relative_to(REPO) for folder in ("agents", "policies", "recipes") for p in (REPO / folder).rglob("*.yaml")
    ]
    return sorted(found)


def _load(relative: Path, kind: str) -> object:
    """Each file through the loader aidsafe itself uses for it."""
    from aidsafe.agents.cards import load_card
    from aidsafe.agents.policies import load_policies
    from aidsafe.generation.recipe import load_recipe
    from aidsafe.guard.critiques import load_critique_recipe
    from aidsafe.guard.policy_recipe import load_policy_guard_recipe
    from aidsafe.guard.traces import load_trace_recipe
    from aidsafe.pairs.recipe import load_pairs_pipeline
    from aidsafe.train.recipe import load_train_recipe

    path = str(REPO / relative)
    loaders = {
        "recipe": load_recipe, "pairs-recipe": load_pairs_pipeline, "guardreasoner-recipe": load_trace_recipe,
        "train-recipe": load_train_recipe, "policies": load_policies, "card": load_card,
        "thinkguard-recipe": load_critique_recipe, "policy-guard-recipe": load_policy_guard_recipe,
        # A guard card loads through the recipe that names it.
        "guard-card": lambda p: {"guardreasoner_teacher": load_trace_recipe("guardreasoner").card,
                                 "thinkguard_teacher": load_critique_recipe("thinkguard").loaded.card,
                                 **{slot.card.name: slot.card
                                    for slot in load_policy_guard_recipe("policy-guard").slots.values()}}[Path(p).stem],
    }  # fmt: skip
    return loaders[kind](path)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_committed_schema_is_what_the_model_says(run_cli, name):
    committed = (REPO / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(name), "schemas/ is stale: run `aidsafe schema --write schemas`"
    code, out, err = run_cli("schema", name)
    assert code == 0, err
    assert out == committed and json.loads(out)["additionalProperties"] is False  # extra="forbid" says so


def test_schemas_folder_holds_nothing_else():
    assert sorted(p.name for p in (REPO / "schemas").iterdir()) == sorted(f"{n}.schema.json" for n in SCHEMAS)


@pytest.mark.parametrize("relative", _builtin_yaml(), ids=str)
def test_builtin_yaml_names_its_schema_validates_and_loads(relative):
    kind = builtin_schema_kind(relative)
    text = (REPO / relative).read_text(encoding="utf-8")
    if kind is None:  # Accelerate's own config files: not ours to describe
        assert relative.parts[:2] == ("recipes", "accelerate") and "yaml-language-server" not in text
        return
    first = text.split("\n", 1)[0]
    assert first == schema_line(relative, kind)
    target = (REPO / relative).parent / first.split("$schema=", 1)[1]
    schema = json.loads(target.read_text(encoding="utf-8"))  # the relative path resolves to the file
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(text), schema, cls=jsonschema.Draft202012Validator)
    assert _load(relative, kind) is not None


def test_a_schema_flags_what_the_model_refuses():
    """The schema is not a rubber stamp: an unknown key and a wrong type fail validation."""
    schema = json.loads(schema_text("policies"))
    good = yaml.safe_load((REPO / "policies" / "aidsafe.yaml").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "surplus": 1}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "policies": "P1"}, schema)


def test_unknown_schema_is_one_line(run_cli):
    code, _, err = run_cli("schema", "nonsense")
    assert code == 2 and "unknown schema 'nonsense'; expected one of: recipe" in err
