"""Each peer framework in a venv of its own, made on first use and reused after.

    ~/.cache/aidsafe-bench/distilabel-1.5.3/   (AIDSAFE_BENCH_CACHE moves the root)

The peers are never installed into the environment aidsafe runs in: their pins (openai,
pydantic, datasets ...) would fight aidsafe's. A venv counts as made only once its `installed`
marker names the exact requirements it was made with, so an interrupted install is redone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

__all__ = ["PeerEnv", "PEERS", "cache_root", "ensure_venv", "InstallError"]


class InstallError(RuntimeError):
    """A peer's venv could not be made (the message ends with pip's last lines)."""


@dataclass(frozen=True)
class PeerEnv:
    name: str  # the framework, as --frameworks names it
    version: str  # the framework's own pinned version
    requirements: tuple[str, ...]  # pip install arguments, every one pinned
    script: str  # the runner, beside this file, executed by the venv's python
    constraints: str  # a pip freeze beside this file: every dependency pinned, so installs repeat

    def pip_arguments(self) -> list[str]:
        return [*self.requirements, "-c", str(HERE / self.constraints)]

    def fingerprint(self) -> str:
        """What the venv was made from; a change makes it again."""
        return "\n".join(self.requirements) + "\n" + (HERE / self.constraints).read_text()

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


# Pinned to what resolved on 2026-12-01 (the constraints files hold the whole resolution; neither
# pulls torch). distilabel's OpenAILLM does structured output through
# instructor (its documented way), so that extra is part of the workload, not an option.
PEERS: dict[str, PeerEnv] = {
    "distilabel": PeerEnv(
        name="distilabel",
        version="1.5.3",
        requirements=("distilabel[openai,instructor]==1.5.3",),
        script="run_distilabel.py",
        constraints="constraints-distilabel.txt",
    ),
    "curator": PeerEnv(
        name="curator",
        version="0.1.31",
        requirements=("bespokelabs-curator==0.1.31",),
        script="run_curator.py",
        constraints="constraints-curator.txt",
    ),
}


def cache_root() -> Path:
    return Path(os.environ.get("AIDSAFE_BENCH_CACHE", Path.home() / ".cache" / "aidsafe-bench"))


def ensure_venv(peer: PeerEnv, *, root: Path | None = None, log=print) -> Path:
    """The venv's python for `peer`, making the venv first if it is missing or incomplete."""
    home = (root or cache_root()) / peer.key
    python = home / "bin" / "python"
    marker = home / "installed"
    wanted = peer.fingerprint()
    if marker.is_file() and marker.read_text() == wanted and python.exists():
        return python
    log(f"[{peer.name}] making its venv at {home} (once; pip install {' '.join(peer.requirements)})")
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    pip_log = home / "pip.log"
    with pip_log.open("w") as out:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *peer.pip_arguments()],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = "".join(pip_log.read_text().splitlines(keepends=True)[-15:])
        raise InstallError(f"pip install {' '.join(peer.requirements)} failed (log: {pip_log}):\n{tail}")
    marker.write_text(wanted)
    return python


if __name__ == "__main__":  # python benchmarks/peers/venvs.py distilabel curator: make them ahead of a run
    for name in sys.argv[1:] or list(PEERS):
        print(ensure_venv(PEERS[name]))
