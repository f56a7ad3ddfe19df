"""`--set key.path=value` overrides, shared by generation and training recipes."""

from __future__ import annotations

import pytest

from aidsafe.config.overrides import apply_overrides
from aidsafe.errors import AidsafeError

BASE = {"trainer": {"max_steps": 10}, "loss": [1.0, 2.0], "name": "x"}


def test_values_are_parsed_as_yaml_and_later_ones_win():
    result = apply_overrides(
        BASE,
        [
            "trainer.max_steps=5",
            "trainer.loss_type=[sigmoid, sft]",
            "trainer.bf16=true",
            "lora=null",
            "loss.1=0.5",
            "new.deep.key=text with = sign",
            "trainer.max_steps=7",
        ],
    )
    assert result["trainer"] == {"max_steps": 7, "loss_type": ["sigmoid", "sft"], "bf16": True}
    assert result["lora"] is None and result["loss"] == [1.0, 0.5]
    assert result["new"] == {"deep": {"key": "text with = sign"}}
    assert BASE["trainer"] == {"max_steps": 10}  # the input is not modified


def test_empty_value_is_an_empty_string():
    assert apply_overrides(BASE, ["name="])["name"] == ""


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("trainer.max_steps", r"--set 'trainer.max_steps': expected key.path=value"),
        ("=5", r"expected key.path=value"),
        ("trainer..x=1", r"expected key.path=value"),
        ("loss.2=1", r"loss.2: no list item 2 \(the list has 2\)"),
        ("name.first=1", r"name holds the value 'x', not a mapping"),
        ("trainer.max_steps=[1", r"value is not valid YAML"),
    ],
)
def test_malformed_overrides_give_one_line(item, message):
    with pytest.raises(AidsafeError, match=message) as error:
        apply_overrides(BASE, [item])
    assert "\n" not in str(error.value)


def test_command_line_words_stay_words():
    """YAML 1.2 scalars: `no` is the strategy name, `1e-5` a float (PyYAML's 1.1 would differ)."""
    result = apply_overrides({}, ["save_strategy=no", "resume=yes", "lr=1e-5", "bf16=false", "steps=5", "big=2E3"])
    assert result == {"save_strategy": "no", "resume": "yes", "lr": 1e-5, "bf16": False, "steps": 5, "big": 2000.0}
