"""The peers' venvs are reused while what they were made from is unchanged (benchmarks/peers/venvs.py).
Nothing here runs pip: making a venv needs the package index, which tests never reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.peers import venvs


def _made(root: Path, peer: venvs.PeerEnv, marker: str) -> Path:
    python = root / peer.key / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    (root / peer.key / "installed").write_text(marker)
    return python


@pytest.mark.parametrize("name", sorted(venvs.PEERS))
def test_a_complete_venv_is_reused_without_pip(tmp_path, monkeypatch, name):
    peer = venvs.PEERS[name]
    python = _made(tmp_path, peer, peer.fingerprint())
    monkeypatch.setattr(venvs.venv, "EnvBuilder", None)  # making one would fail loudly
    assert venvs.ensure_venv(peer, root=tmp_path, log=lambda _: None) == python


def test_a_venv_made_from_other_pins_is_made_again(tmp_path, monkeypatch):
    peer = venvs.PEERS["curator"]
    _made(tmp_path, peer, "bespokelabs-curator==0.1.30\n")
    made = []

    class Builder:
        def __init__(self, **kwargs):
            made.append(kwargs)

        def create(self, home):
            raise RuntimeError("stop before pip")

    monkeypatch.setattr(venvs.venv, "EnvBuilder", Builder)
    with pytest.raises(RuntimeError, match="stop before pip"):
        venvs.ensure_venv(peer, root=tmp_path, log=lambda _: None)
    assert made == [{"with_pip": True, "clear": True}]


def test_every_peer_is_pinned_and_its_constraints_exist():
    for peer in venvs.PEERS.values():
        assert all("==" in requirement for requirement in peer.requirements)
        constraints = (venvs.HERE / peer.constraints).read_text().splitlines()
        pins = [line for line in constraints if line and not line.startswith("#")]
        assert pins and all("==" in line for line in pins)
        assert not any(line.lower().startswith("torch==") for line in pins)
