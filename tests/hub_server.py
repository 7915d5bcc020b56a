"""A Hugging Face Hub look-alike on loopback, backed by local git repositories.

Fixtures: ``hub_server``, ``hf_env``, ``recording_hub`` (registered in ``tests/conftest.py``).

Only the standard library and the ``git`` executable are needed. The server answers the requests
that declip's two Hub calls make through ``huggingface_hub`` (checked with 2.4.0), and no others:

* ``declip.zoo.hub.download`` (``hf_hub_download``): ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``;
* ``declip.zoo.hub.push`` (``HfApi.create_repo``, ``create_branch``, ``create_commit``):
  ``POST /api/repos/create``, ``POST /api/models/{repo}/branch|preupload|commit/{rev}`` and
  ``POST /api/validate-yaml`` (the client has a model card's metadata checked before committing).

Any other request gets a 404 naming it. Repositories are bare git repos under
``<root>/models/<org>/<name>``; pushed commits are written to them with git plumbing, so what was
pushed can be downloaded again, and each push is also recorded in ``LocalHub.commits``.

Hub behaviour reproduced:

* ``resolve`` answers with ``X-Repo-Commit``, ``ETag`` (git blob sha1) and ``Content-Length``.
  Files matching ``LFS_PATTERNS`` (``*.safetensors``, ``*.bin``) are answered like LFS files on
  the Hub: ``302`` to a second loopback listener (a different origin, like the Hub's CDN, so the
  client does not follow the redirect on HEAD) with ``X-Linked-Etag`` = sha256 and
  ``X-Linked-Size``.
* errors carry ``X-Error-Code`` so that the client raises what it raises with the real Hub:
  ``RepoNotFound`` -> ``RepositoryNotFoundError``, ``RevisionNotFound`` ->
  ``RevisionNotFoundError``, ``EntryNotFound`` -> ``RemoteEntryNotFoundError``.
* ``/preupload`` always answers ``"uploadMode": "regular"`` (the client obeys the server whatever
  the size), so every file arrives base64-encoded in the NDJSON ``/commit`` payload; no LFS/Xet
  upload protocol is needed.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

__all__ = ["LocalHub", "CommitRecord", "HfEnv", "point_huggingface_hub_at", "hub_server", "hf_env", "recording_hub"]

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
LFS_PATTERNS = ("*.safetensors", "*.bin")
TEST_USER = "declip-test-user"


class _HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})


@dataclasses.dataclass
class CommitRecord:
    """One ``/commit`` call as the server understood it."""

    repo_id: str
    revision: str  # the revision in the URL (unquoted), e.g. "main"
    summary: str
    files: dict[str, bytes]  # path -> content
    oid: str  # the new commit hash


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "declip-local-hub/1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self.server.hub._dispatch(self, "GET", b"")  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:
        self.server.hub._dispatch(self, "HEAD", b"")  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hub._dispatch(self, "POST", body)  # type: ignore[attr-defined]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class LocalHub:
    """Hub-compatible HTTP server on 127.0.0.1 serving bare git repos under ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[tuple[str, str]] = []  # every request: (method, path)
        self.commits: list[CommitRecord] = []  # every successful /commit
        self.validated_metadata: list[dict[str, Any]] = []  # model-card front matter checked by /api/validate-yaml
        self.errors: list[str] = []  # tracebacks of server-side crashes (HTTP 500)
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.endpoint = ""
        self.cdn_endpoint = ""
        git_home = self.root.parent / (self.root.name + ".git-home")
        git_home.mkdir(exist_ok=True)
        self._git_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(git_home),  # isolate from the user's git configuration
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": TEST_USER,
            "GIT_AUTHOR_EMAIL": f"{TEST_USER}@example.invalid",
            "GIT_COMMITTER_NAME": TEST_USER,
            "GIT_COMMITTER_EMAIL": f"{TEST_USER}@example.invalid",
            "TZ": "UTC",
            "LC_ALL": "C",
        }

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> LocalHub:
        if shutil.which("git") is None:
            raise RuntimeError("LocalHub needs the `git` executable on PATH")
        try:
            for _ in range(2):  # the Hub API and a separate origin that plays the LFS CDN
                srv = _Server(("127.0.0.1", 0), _Handler)
                srv.hub = self  # type: ignore[attr-defined]
                self._servers.append(srv)
        except OSError as exc:
            self.stop()
            raise RuntimeError(f"LocalHub could not bind a port on 127.0.0.1: {exc}") from exc
        self.endpoint = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.cdn_endpoint = f"http://127.0.0.1:{self._servers[1].server_address[1]}"
        for srv in self._servers:
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/api/health", timeout=1) as resp:
                    if resp.status == 200:
                        self.requests.clear()
                        return self
            except (urllib.error.URLError, OSError) as exc:
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"LocalHub did not answer on {self.endpoint} within {timeout}s: {last_error!r}")

    def stop(self) -> None:
        for i, srv in enumerate(self._servers):
            if i < len(self._threads):  # shutdown() would block on a server that never ran serve_forever()
                srv.shutdown()
            srv.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    # ------------------------------------------------------------------ helpers for tests
    def new_repo_id(self, name: str = "repo", org: str = "declip-test") -> str:
        """A repo id not used yet on this server (handy with a session-scoped server)."""
        return f"{org}/{name}-{next(self._counter)}"

    def create_repo(
        self, repo_id: str, commits: Iterable[Mapping[str, bytes]], *, tags: Mapping[str, int] | None = None
    ) -> list[str]:
        """Create a repo from a list of commits and return their hashes (oldest first).

        Each commit maps ``path -> content`` on top of the previous commit; ``tags`` maps a tag name
        to a commit's index in ``commits``."""
        with self._lock:
            path = self._repo_path(repo_id)
            if path.exists():
                raise FileExistsError(f"repo {repo_id} already exists at {path}")
            self._init_bare(path)
            shas = [
                self._write_commit(path, "refs/heads/main", files, f"commit {i}") for i, files in enumerate(commits)
            ]
            for tag, index in (tags or {}).items():
                self._git(path, "update-ref", f"refs/tags/{tag}", shas[index], "")
            return shas

    def head(self, repo_id: str, revision: str = "main") -> str | None:
        """The commit that ``revision`` (a branch, tag or hash) names in ``repo_id``, or None."""
        return self._resolve(self._repo_path(repo_id), revision)

    # ------------------------------------------------------------------ git plumbing
    def _repo_path(self, repo_id: str) -> Path:
        parts = repo_id.split("/")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"LocalHub needs repo ids of the form 'org/name', got {repo_id!r}")
        return self.root / "models" / parts[0] / parts[1]

    def _git(
        self,
        repo: Path,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["git", f"--git-dir={repo}", *args], input=input, capture_output=True, env={**self._git_env, **(env or {})}
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.decode(errors='replace')}")
        return proc

    def _init_bare(self, path: Path) -> None:
        path.mkdir(parents=True)
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True, capture_output=True, env=self._git_env
        )

    def _resolve(self, repo: Path, rev: str) -> str | None:
        if not repo.is_dir():
            return None
        if _HEX40.match(rev):
            ok = self._git(repo, "cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode == 0
            return rev if ok else None
        candidates = [rev] if rev.startswith("refs/") else [f"refs/heads/{rev}", f"refs/tags/{rev}"]
        for ref in candidates:
            proc = self._git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
            if proc.returncode == 0:
                return proc.stdout.decode().strip()
        return None

    def _blob(self, repo: Path, commit: str, path: str) -> str | None:
        """The git blob hash of the file ``path`` at ``commit``, or None if there is no such file."""
        listed = self._git(repo, "ls-tree", commit, "--", path.strip("/"), check=False).stdout.decode().strip()
        if not listed:
            return None
        _mode, kind, oid = listed.split("\t", 1)[0].split()
        return oid if kind == "blob" else None

    def _write_commit(self, repo: Path, ref: str, files: Mapping[str, bytes], message: str) -> str:
        """Add ``files`` on top of ``ref`` with a temporary index; return the new commit."""
        base = self._resolve(repo, ref)
        index = repo / f"declip-index-{threading.get_ident()}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            index.unlink(missing_ok=True)
            self._git(repo, "read-tree", *([base] if base else ["--empty"]), env=env)
            lines = []
            for path, content in files.items():
                blob = self._git(repo, "hash-object", "-w", "--stdin", input=content).stdout.decode().strip()
                lines.append(f"100644 {blob}\t{path.strip('/')}")
            if lines:
                self._git(repo, "update-index", "--index-info", input=("\n".join(lines) + "\n").encode(), env=env)
            tree = self._git(repo, "write-tree", env=env).stdout.decode().strip()
            parents = ["-p", base] if base else []
            commit = self._git(repo, "commit-tree", tree, *parents, input=message.encode(), env=env)
            oid = commit.stdout.decode().strip()
            self._git(repo, "update-ref", ref, oid, base or "")
            return oid
        finally:
            index.unlink(missing_ok=True)

    # ------------------------------------------------------------------ HTTP layer
    def _dispatch(self, handler: _Handler, method: str, body: bytes) -> None:
        path = urlsplit(handler.path).path
        self.requests.append((method, path))
        try:
            result = self._route(method, path, body)
        except _HubError as err:
            headers = dict(err.headers)
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = err.message.encode("ascii", "replace").decode()
            result = (err.status, {"error": err.message}, headers)
        except Exception:
            tb = traceback.format_exc()
            self.errors.append(tb)
            result = (500, {"error": tb}, {})
        status, payload, headers = result
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            data = payload
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if "Content-Length" not in headers:
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if method != "HEAD" and data:
            handler.wfile.write(data)

    def _route(self, method: str, path: str, body: bytes):
        seg = [unquote(s) for s in path.split("/")[1:]]
        if method == "GET" and path == "/api/health":  # start() waits for this
            return 200, {"ok": True}, {}
        if method == "POST" and path == "/api/validate-yaml":
            return self._api_validate_yaml(json.loads(body or b"{}"))
        if method == "POST" and path == "/api/repos/create":
            return self._api_create_repo(json.loads(body or b"{}"))
        if method == "POST" and len(seg) == 6 and seg[:2] == ["api", "models"]:  # /api/models/{org}/{name}/{verb}/{rev}
            repo_id, verb, rev = f"{seg[2]}/{seg[3]}", seg[4], seg[5]
            repo = self._repo_or_404(repo_id)
            if verb == "branch":
                return self._api_branch(repo, rev, json.loads(body or b"{}"))
            if verb == "preupload":
                return self._api_preupload(json.loads(body or b"{}"))
            if verb == "commit":
                return self._api_commit(repo_id, repo, rev, body)
        if (
            method in ("GET", "HEAD") and len(seg) >= 6 and seg[0] == "__cdn__"
        ):  # /__cdn__/models/{org}/{name}/{sha}/...
            return self._serve_file(f"{seg[2]}/{seg[3]}", seg[4], "/".join(seg[5:]), cdn=True)
        if method in ("GET", "HEAD") and len(seg) >= 5 and seg[2] == "resolve":  # /{org}/{name}/resolve/{rev}/{path}
            return self._serve_file(f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]), cdn=False)
        return 404, {"error": f"LocalHub: no route for {method} {path}"}, {}

    def _repo_or_404(self, repo_id: str) -> Path:
        path = self._repo_path(repo_id)
        if not path.is_dir():
            raise _HubError(404, "RepoNotFound", "Repository not found")
        return path

    def _commit_or_404(self, repo: Path, rev: str) -> str:
        sha = self._resolve(repo, rev)
        if sha is None:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return sha

    def _serve_file(self, repo_id: str, rev: str, path: str, cdn: bool):
        repo = self._repo_or_404(repo_id)
        commit = self._commit_or_404(repo, rev)
        blob = self._blob(repo, commit, path)
        if blob is None:
            raise _HubError(404, "EntryNotFound", f'{path} does not exist on "{rev}"', {"X-Repo-Commit": commit})
        content = self._git(repo, "cat-file", "blob", blob).stdout
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        lfs = any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern) for pattern in LFS_PATTERNS)
        if lfs and not cdn:
            location = f"{self.cdn_endpoint}/__cdn__/models/{repo_id}/{commit}/{quote(path, safe='/')}"
            headers.update({"Location": location, "ETag": f'"{blob}"', "Content-Type": "text/plain",
                            "X-Linked-Etag": f'"{hashlib.sha256(content).hexdigest()}"',
                            "X-Linked-Size": str(len(content))})  # fmt: skip
            return 302, f"Found. Redirecting to {location}".encode(), headers
        etag = hashlib.sha256(content).hexdigest() if lfs else blob
        headers.update({"ETag": f'"{etag}"', "Content-Type": "application/octet-stream"})
        return 200, content, headers

    def _api_validate_yaml(self, payload: dict[str, Any]):
        """Parse the card's YAML front matter like the Hub does; keep it in ``validated_metadata``."""
        import yaml

        content = str(payload.get("content", ""))
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        if match is None:
            return 200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}, {}
        try:
            metadata = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            return 400, {"error": "invalid YAML", "errors": [{"message": str(exc)}]}, {}
        if not isinstance(metadata, dict):
            return 400, {"error": "invalid YAML", "errors": [{"message": "metadata is not a mapping"}]}, {}
        self.validated_metadata.append(metadata)
        return 200, {"errors": [], "warnings": []}, {}

    def _api_create_repo(self, payload: dict[str, Any]):
        repo_id = f"{payload.get('organization') or TEST_USER}/{payload['name']}"
        url = f"{self.endpoint}/{repo_id}"
        with self._lock:
            path = self._repo_path(repo_id)
            if path.exists():  # create_repo(exist_ok=True) takes this answer as "already there"
                return 409, {"error": "You already created this model repo", "url": url}, {}
            self._init_bare(path)
            attrs = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS)
            self._write_commit(path, "refs/heads/main", {".gitattributes": attrs.encode()}, "initial commit")
        return 200, {"url": url, "name": repo_id, "id": repo_id}, {}

    def _api_branch(self, repo: Path, branch: str, payload: dict[str, Any]):
        ref = f"refs/heads/{branch}"
        with self._lock:
            if self._resolve(repo, ref) is not None:  # create_branch(exist_ok=True) takes 409 as "already there"
                return 409, {"error": f"Reference already exists: {ref}"}, {}
            start = self._commit_or_404(repo, payload.get("startingPoint") or "main")
            self._git(repo, "update-ref", ref, start, "")
        return 200, {}, {}

    def _api_preupload(self, payload: dict[str, Any]):
        files = [{"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                 for item in payload.get("files", [])]  # fmt: skip
        return 200, {"files": files}, {}

    def _api_commit(self, repo_id: str, repo: Path, rev: str, body: bytes):
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, None, "commit payload must start with a header line")
        header, files = lines[0]["value"], {}
        for line in lines[1:]:
            value = line["value"]
            if line["key"] != "file" or value.get("encoding", "base64") != "base64":
                raise _HubError(422, None, f"LocalHub: only base64 file additions are emulated, got {line['key']!r}")
            files[value["path"]] = base64.b64decode(value["content"])
        message = header.get("summary", "") + (f"\n\n{header['description']}" if header.get("description") else "")
        with self._lock:
            self._commit_or_404(repo, f"refs/heads/{rev}")
            oid = self._write_commit(repo, f"refs/heads/{rev}", files, message)
            self.commits.append(CommitRecord(repo_id, rev, header.get("summary", ""), files, oid))
        return 200, {"success": True, "commitOid": oid, "commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}"}, {}


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory):
    """Session-wide local Hub.  Use ``hub_server.new_repo_id()`` for names unique to a test."""
    hub = LocalHub(tmp_path_factory.mktemp("local-hub") / "repos")
    try:
        hub.start()
    except RuntimeError as exc:
        pytest.fail(f"could not start the local Hub server: {exc}", pytrace=False)
    yield hub
    hub.stop()
    assert not hub.errors, "local Hub server crashed:\n" + "\n".join(hub.errors)


@pytest.fixture
def recording_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh local Hub per test (empty ``commits``/``requests`` logs, no repos), with
    huggingface_hub pointed at it and at an empty per-test HF_HOME (as ``hf_env`` does)."""
    hub = LocalHub(tmp_path / "hub-repos")
    try:
        hub.start()
    except RuntimeError as exc:
        pytest.fail(f"could not start the local Hub server: {exc}", pytrace=False)
    point_huggingface_hub_at(monkeypatch, hub.endpoint, tmp_path / "hf-home")
    yield hub
    hub.stop()
    assert not hub.errors, "local Hub server crashed:\n" + "\n".join(hub.errors)


@dataclasses.dataclass
class HfEnv:
    endpoint: str
    hf_home: Path
    cache_dir: Path

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """Environment for a fresh Python process that should see the same Hub and cache."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
        env.update(
            HF_ENDPOINT=self.endpoint,
            HF_HOME=str(self.hf_home),
            HF_HUB_CACHE=str(self.cache_dir),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
        )
        env.update(extra)
        return env


def point_huggingface_hub_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: Path) -> HfEnv:
    cache_dir = hf_home / "hub"
    cache_dir.mkdir(parents=True, exist_ok=True)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_XET_CACHE", str(hf_home / "xet"))  # hf_xet (Rust) writes its logs there
    # huggingface_hub reads these variables once, at import time, into `huggingface_hub.constants`;
    # the functions read the constants at call time, so patching the constants redirects an
    # already-imported huggingface_hub.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_XET_CACHE", str(hf_home / "xet"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    return HfEnv(endpoint=endpoint, hf_home=hf_home, cache_dir=cache_dir)


@pytest.fixture
def hf_env(hub_server: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HfEnv:
    """Point huggingface_hub (already imported or not) at ``hub_server`` with an empty per-test cache."""
    return point_huggingface_hub_at(monkeypatch, hub_server.endpoint, tmp_path / "hf-home")
