"""A loopback stand-in for the Hugging Face Hub's write API, so `aidsafe export --push-to-hub` runs
huggingface_hub's real client (create_repo, create_branch, create_commit) with no network.

It answers the endpoints one commit of a dataset folder uses (huggingface_hub 1.x/2.x):

    POST /api/repos/create                          {name, organization, visibility, type}
    POST /api/validate-yaml                         the README's metadata
    POST /api/{type}s/{owner}/{name}/branch/{rev}   a new branch
    POST /api/{type}s/{owner}/{name}/preupload/{rev}  every file answered "regular", so file
                                                     bytes arrive inline in the commit (no LFS)
    POST /api/{type}s/{owner}/{name}/commit/{rev}   the NDJSON commit: header + base64 files

Requests must carry `Authorization: Bearer <token>` with the server's token; what was created and
committed is kept in `hub.repos` and `hub.commits` for tests to read. Point the client at it with
`HfApi(endpoint=hub.url)` or `HF_ENDPOINT=hub.url`.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote, urlsplit

__all__ = ["HubCommit", "HubRepo", "LoopbackHub"]


@dataclass
class HubRepo:
    repo_id: str
    repo_type: str
    private: bool
    branches: set[str] = field(default_factory=lambda: {"main"})


@dataclass
class HubCommit:
    repo_id: str
    revision: str
    summary: str
    files: dict[str, bytes]


class LoopbackHub:
    """Start with `with LoopbackHub(token="hf_test") as hub:`; `hub.url` is the endpoint."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, HubRepo] = {}
        self.commits: list[HubCommit] = []
        self.unauthorized = 0  # requests refused for a missing or wrong token
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def handle(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """One POST: (status, JSON reply). Runs under the lock: requests may arrive concurrently."""
        parts = [unquote(p) for p in path.strip("/").split("/")]
        with self._lock:
            if parts == ["api", "repos", "create"]:
                return self._create(json.loads(body))
            if parts == ["api", "validate-yaml"]:
                return 200, {"errors": [], "warnings": []}
            if len(parts) == 6 and parts[0] == "api" and parts[1].endswith("s"):
                repo_type, repo_id, action, revision = parts[1][:-1], f"{parts[2]}/{parts[3]}", parts[4], parts[5]
                repo = self.repos.get(repo_id)
                if repo is None or repo.repo_type != repo_type:
                    return 404, {"error": f"Repository Not Found: {repo_id}"}
                return self._on_repo(repo, action, revision, body)
        return 404, {"error": f"no such endpoint: {path}"}

    def _create(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this dataset repo"}
        repo_type = payload.get("type") or "model"
        self.repos[repo_id] = HubRepo(repo_id, repo_type, payload.get("visibility") == "private")
        return 200, {"url": f"{self.url}/{repo_type}s/{repo_id}"}

    def _on_repo(self, repo: HubRepo, action: str, revision: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if action == "branch":
            if revision in repo.branches:
                return 409, {"error": f"Reference already exists: {revision}"}
            repo.branches.add(revision)
            return 200, {}
        if revision not in repo.branches:
            return 404, {"error": f"Revision Not Found: {revision}"}
        if action == "preupload":
            files = json.loads(body)["files"]
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        if action == "commit":
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            files = {
                line["value"]["path"]: base64.b64decode(line["value"]["content"])
                for line in lines
                if line["key"] == "file"
            }
            self.commits.append(HubCommit(repo.repo_id, revision, header["summary"], files))
            oid = f"{len(self.commits):040x}"
            return 200, {"commitUrl": f"{self.url}/{repo.repo_type}s/{repo.repo_id}/commit/{oid}", "commitOid": oid}
        return 404, {"error": f"no such endpoint: {action}"}


def _handler(hub: LoopbackHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Authorization") != f"Bearer {hub.token}":
                with hub._lock:
                    hub.unauthorized += 1
                status, reply = 401, {"error": "Invalid credentials in Authorization header"}
            else:
                try:
                    status, reply = hub.handle(urlsplit(self.path).path, body)
                except (ValueError, KeyError, StopIteration) as exc:
                    status, reply = 400, {"error": f"bad request: {exc}"}
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # quiet: tests read hub.commits, not a log
            pass

    return Handler
