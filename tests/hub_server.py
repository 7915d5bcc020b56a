"""A Hugging Face Hub look-alike on loopback, backed by local git repositories.

Fixtures: ``hub_server``, ``hf_env``, ``recording_hub`` (import them into a ``conftest.py``).

Only the standard library and the ``git`` executable are needed.  The server implements
the subset of the Hub HTTP API that ``huggingface_hub`` (checked with 2.4.0) uses for:

* downloads: ``hf_hub_download``, ``snapshot_download``, ``HfApi.model_info`` /
  ``repo_info`` / ``list_repo_files`` / ``list_repo_tree`` / ``list_repo_refs`` /
  ``list_repo_commits`` / ``get_paths_info`` / ``file_exists`` / ``repo_exists``;
* pushes: ``create_repo``, ``delete_repo``, ``create_commit``, ``upload_file``,
  ``upload_folder``, ``delete_file``, ``create_branch``, ``create_tag``.

Repositories are bare git repos under ``<root>/<type>s/<org>/<name>`` (``models``,
``datasets``, ``spaces``).  Pushed commits are applied to those repos with git plumbing,
so what was pushed can be downloaded again, and each push is also recorded in
``LocalHub.commits`` for assertions.

Hub behaviour reproduced:

* ``HEAD/GET /{repo}/resolve/{rev}/{path}`` answers with ``X-Repo-Commit``, ``ETag`` (git
  blob sha1) and ``Content-Length``.  Files matching ``lfs_patterns`` (``*.safetensors``,
  ``*.bin``, ...) are answered like LFS files on the Hub: ``302`` to a second loopback
  listener (a different origin, like the Hub's CDN, so the client does not follow the
  redirect on HEAD) with ``X-Linked-Etag`` = sha256 and ``X-Linked-Size``.
* errors carry ``X-Error-Code`` so that the client raises the same exceptions as with the
  real Hub: ``RepoNotFound`` -> ``RepositoryNotFoundError``, ``RevisionNotFound`` ->
  ``RevisionNotFoundError``, ``EntryNotFound`` -> ``RemoteEntryNotFoundError`` (a subclass of
  ``EntryNotFoundError``).
* ``/preupload`` always answers ``"uploadMode": "regular"`` (the client obeys the server
  whatever the size), so every added file arrives base64-encoded in the NDJSON ``/commit``
  payload; no LFS/Xet upload protocol is needed.  ``oid`` is the git blob sha1 of the file
  already in the revision, so the client skips unchanged files like it does with the Hub.
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
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

__all__ = ["LocalHub", "CommitRecord", "HfEnv", "point_huggingface_hub_at", "hub_server", "hf_env", "recording_hub"]

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_ZERO_SHA = "0" * 40
_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
DEFAULT_LFS_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.onnx", "*.h5", "*.npz", "*.msgpack")
TEST_USER = "declip-test-user"


class _HubError(Exception):
    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})
        self.extra = dict(extra or {})  # more keys for the JSON body


@dataclasses.dataclass
class CommitRecord:
    """One ``/commit`` call as the server understood it."""

    repo_id: str
    repo_type: str
    revision: str  # the revision in the URL (unquoted), e.g. "main"
    ref: str  # the git ref that was updated, e.g. "refs/heads/main" or "refs/pr/1"
    summary: str
    description: str
    parent_commit: str | None
    operations: list[dict[str, Any]]  # {"key": "file"|"deletedFile"|"deletedFolder", "path": ..., "content": bytes}
    oid: str  # the new commit hash
    create_pr: bool

    @property
    def files(self) -> dict[str, bytes]:
        return {op["path"]: op["content"] for op in self.operations if op["key"] == "file"}

    @property
    def deleted(self) -> list[str]:
        return [op["path"] for op in self.operations if op["key"] in ("deletedFile", "deletedFolder")]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "declip-local-hub/1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
        self.server.hub._dispatch(self, method, body)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class LocalHub:
    """Hub-compatible HTTP server on 127.0.0.1 serving bare git repos under ``root``."""

    def __init__(self, root: str | os.PathLike, *, lfs_patterns: Sequence[str] = DEFAULT_LFS_PATTERNS):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lfs_patterns = tuple(lfs_patterns)
        self.requests: list[dict[str, Any]] = []  # every request: method, path, query, headers, body
        self.commits: list[CommitRecord] = []  # every successful /commit
        self.created_repos: list[dict[str, Any]] = []  # every successful /api/repos/create payload
        self.unhandled: list[str] = []  # requests that matched no route ("METHOD /path")
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

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests
    def new_repo_id(self, name: str = "repo", org: str = "declip-test") -> str:
        """A repo id not used yet on this server (handy with a session-scoped server)."""
        return f"{org}/{name}-{next(self._counter)}"

    def repo_path(self, repo_id: str, repo_type: str = "model") -> Path:
        org, name = _split_repo_id(repo_id)
        return self.root / f"{repo_type}s" / org / name

    def create_repo(
        self,
        repo_id: str,
        commits: Iterable[Mapping[str, bytes | str | None]] = (),
        *,
        repo_type: str = "model",
        tags: Mapping[str, int | str] | None = None,
        branch: str = "main",
        messages: Sequence[str] | None = None,
    ) -> list[str]:
        """Create a repo from a list of commits and return their hashes (oldest first).

        Each commit maps ``path -> content`` on top of the previous commit (``str`` is UTF-8
        encoded, ``None`` deletes the path).  ``tags`` maps a tag name to a commit index in
        ``commits`` or to any revision.
        """
        with self._lock:
            path = self.repo_path(repo_id, repo_type)
            if path.exists():
                raise FileExistsError(f"{repo_type} repo {repo_id} already exists at {path}")
            self._init_bare(path)
            shas = []
            for i, files in enumerate(commits):
                ops = [
                    {"key": "deletedFile", "path": p}
                    if c is None
                    else {"key": "file", "path": p, "content": c.encode() if isinstance(c, str) else bytes(c)}
                    for p, c in files.items()
                ]
                msg = messages[i] if messages else f"commit {i}"
                shas.append(self._write_commit(path, f"refs/heads/{branch}", ops, msg))
            for tag, target in (tags or {}).items():
                self.tag(repo_id, tag, shas[target] if isinstance(target, int) else target, repo_type=repo_type)
            return shas

    def add_commit(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str | None],
        *,
        message: str = "update",
        branch: str = "main",
        repo_type: str = "model",
    ) -> str:
        ops = [
            {"key": "deletedFile", "path": p}
            if c is None
            else {"key": "file", "path": p, "content": c.encode() if isinstance(c, str) else bytes(c)}
            for p, c in files.items()
        ]
        with self._lock:
            return self._write_commit(self.repo_path(repo_id, repo_type), f"refs/heads/{branch}", ops, message)

    def tag(self, repo_id: str, tag: str, revision: str = "main", *, repo_type: str = "model") -> str:
        path = self.repo_path(repo_id, repo_type)
        sha = self._resolve(path, revision)
        if sha is None:
            raise ValueError(f"unknown revision {revision!r} in {repo_id}")
        self._git(path, "update-ref", f"refs/tags/{tag}", sha, "")
        return sha

    def head(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str | None:
        return self._resolve(self.repo_path(repo_id, repo_type), revision)

    def read_file(self, repo_id: str, path: str, revision: str = "main", *, repo_type: str = "model") -> bytes:
        return self._git(self.repo_path(repo_id, repo_type), "cat-file", "blob", f"{revision}:{path}").stdout

    def list_files(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> list[str]:
        repo = self.repo_path(repo_id, repo_type)
        sha = self._resolve(repo, revision)
        return [e["path"] for e in self._tree(repo, sha, "", recursive=True) if e["type"] == "file"]

    def clear_log(self) -> None:
        self.requests.clear()
        self.commits.clear()
        self.created_repos.clear()
        self.unhandled.clear()

    def requests_to(self, fragment: str, method: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if fragment in r["path"] and (method is None or r["method"] == method)]

    # ------------------------------------------------------------------ git plumbing
    def _git(
        self,
        repo: Path,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["git", f"--git-dir={repo}", *args],
            input=input,
            capture_output=True,
            env={**self._git_env, **(env or {})},
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

    def _tree(self, repo: Path, commit: str | None, path: str, recursive: bool) -> list[dict[str, Any]]:
        if commit is None:
            return []
        args = ["ls-tree", "-l", "-z", "--full-tree"]
        if recursive:
            args += ["-r", "-t"]
        target = f"{commit}:{path}" if path else commit
        proc = self._git(repo, *args, target, check=False)
        if proc.returncode != 0:
            return []
        entries = []
        for raw in proc.stdout.split(b"\0"):
            if not raw:
                continue
            meta, name = raw.split(b"\t", 1)
            mode, kind, oid, size = meta.split()
            full = f"{path}/{name.decode()}" if path else name.decode()
            if kind == b"tree":
                entries.append({"type": "directory", "oid": oid.decode(), "size": 0, "path": full})
            elif kind == b"blob":
                entry: dict[str, Any] = {"type": "file", "oid": oid.decode(), "size": int(size), "path": full}
                if self._is_lfs(full):
                    content = self._git(repo, "cat-file", "blob", oid.decode()).stdout
                    entry["lfs"] = {
                        "oid": hashlib.sha256(content).hexdigest(),
                        "size": len(content),
                        "pointerSize": 134,
                    }
                entries.append(entry)
        return entries

    def _entry(self, repo: Path, commit: str, path: str) -> dict[str, Any] | None:
        path = path.strip("/")
        if not path:
            return None
        parent, _, _name = path.rpartition("/")
        for entry in self._tree(repo, commit, parent, recursive=False):
            if entry["path"] == path:
                return entry
        return None

    def _is_lfs(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(name, pat) for pat in self.lfs_patterns)

    def _write_commit(
        self, repo: Path, ref: str, ops: list[dict[str, Any]], message: str, parent: str | None = None
    ) -> str:
        """Apply ``ops`` on top of ``ref`` (or ``parent``) with a temporary index; return the new commit."""
        current = self._resolve(repo, ref)
        base = parent if parent is not None else current
        index = repo / f"declip-index-{threading.get_ident()}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            index.unlink(missing_ok=True)
            self._git(repo, "read-tree", *([base] if base else ["--empty"]), env=env)
            lines = []
            for op in ops:
                path = op["path"].strip("/")
                if op["key"] == "file":
                    blob = self._git(repo, "hash-object", "-w", "--stdin", input=op["content"]).stdout.decode().strip()
                    lines.append(f"100644 {blob}\t{path}")
                elif op["key"] in ("deletedFile", "deletedFolder"):
                    spec = path + "/" if op["key"] == "deletedFolder" else path
                    listed = self._git(repo, "ls-files", "-z", "--", spec, env=env).stdout.split(b"\0")
                    matches = [p.decode() for p in listed if p]
                    if op["key"] == "deletedFile":
                        matches = [p for p in matches if p == path]
                    if not matches:
                        raise _HubError(404, "EntryNotFound", f"A file with this name doesn't exist: {path}")
                    lines.extend(f"0 {_ZERO_SHA}\t{p}" for p in matches)
                else:
                    raise _HubError(
                        422,
                        None,
                        f"LocalHub: unsupported commit operation {op['key']!r} "
                        "(LFS/Xet uploads are not emulated; /preupload always answers 'regular')",
                    )
            if lines:
                self._git(repo, "update-index", "--index-info", input=("\n".join(lines) + "\n").encode(), env=env)
            tree = self._git(repo, "write-tree", env=env).stdout.decode().strip()
            parents = ["-p", base] if base else []
            commit = (
                self._git(repo, "commit-tree", tree, *parents, input=message.encode(), env=env).stdout.decode().strip()
            )
            self._git(repo, "update-ref", ref, commit, current or "")
            return commit
        finally:
            index.unlink(missing_ok=True)

    # ------------------------------------------------------------------ HTTP layer
    def _dispatch(self, handler: _Handler, method: str, body: bytes) -> None:
        split = urlsplit(handler.path)
        query = parse_qs(split.query)
        self.requests.append(
            {
                "method": method,
                "path": split.path,
                "query": query,
                "headers": {k.lower(): v for k, v in handler.headers.items()},
                "body": body,
            }
        )
        try:
            result = self._route(method, split.path, query, body, handler.headers)
        except _HubError as err:
            headers = dict(err.headers)
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = err.message.encode("ascii", "replace").decode()
            result = (err.status, {"error": err.message, **err.extra}, headers)
        except Exception:
            tb = traceback.format_exc()
            self.errors.append(tb)
            result = (500, {"error": tb}, {})
        status, payload, headers = result
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            data = payload or b""
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if "Content-Length" not in headers:
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if method != "HEAD" and data:
            handler.wfile.write(data)

    def _route(self, method: str, path: str, query: dict, body: bytes, headers: Any):
        seg = path.split("/")[1:]
        if path == "/api/health":
            return 200, {"ok": True}, {}
        if path == "/api/agent-harnesses":  # fetched by huggingface_hub>=2 for its user-agent
            return 200, {"standardEnvVars": [], "harnesses": {}}, {}
        if path == "/api/whoami-v2":
            return (
                200,
                {
                    "type": "user",
                    "name": TEST_USER,
                    "fullname": TEST_USER,
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
                },
                {},
            )
        if path == "/api/validate-yaml" and method == "POST":  # model-card metadata check before a commit
            return self._api_validate_yaml(json.loads(body or b"{}"))
        if seg[:3] == ["api", "repos", "create"] and method == "POST":
            return self._api_create_repo(json.loads(body or b"{}"))
        if seg[:3] == ["api", "repos", "delete"] and method == "DELETE":
            return self._api_delete_repo(json.loads(body or b"{}"))
        if len(seg) >= 4 and seg[0] == "api" and seg[1] in _TYPES:
            repo_type, repo_id = _TYPES[seg[1]], f"{unquote(seg[2])}/{unquote(seg[3])}"
            return self._route_repo_api(method, repo_type, repo_id, seg[4:], query, body, headers)
        if seg and seg[0] == "__cdn__" and len(seg) >= 6 and method in ("GET", "HEAD"):
            repo_type, repo_id, commit = _TYPES[seg[1]], f"{unquote(seg[2])}/{unquote(seg[3])}", seg[4]
            return self._serve_file(
                repo_type, repo_id, commit, "/".join(unquote(s) for s in seg[5:]), headers, cdn=True
            )
        prefix = seg[0] if seg and seg[0] in ("datasets", "spaces") else None
        rest = seg[1:] if prefix else seg
        if len(rest) >= 5 and rest[2] == "resolve" and method in ("GET", "HEAD"):
            repo_type = _TYPES[prefix] if prefix else "model"
            repo_id = f"{unquote(rest[0])}/{unquote(rest[1])}"
            return self._serve_file(
                repo_type, repo_id, unquote(rest[3]), "/".join(unquote(s) for s in rest[4:]), headers, cdn=False
            )
        self.unhandled.append(f"{method} {path}")
        return 404, {"error": f"LocalHub: no route for {method} {path}"}, {}

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

    def _repo_or_404(self, repo_type: str, repo_id: str) -> Path:
        path = self.repo_path(repo_id, repo_type)
        if not path.is_dir():
            raise _HubError(404, "RepoNotFound", "Repository not found")
        return path

    def _commit_or_404(self, repo: Path, rev: str) -> str:
        sha = self._resolve(repo, rev)
        if sha is None:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return sha

    def _serve_file(self, repo_type: str, repo_id: str, rev: str, path: str, req_headers: Any, cdn: bool):
        repo = self._repo_or_404(repo_type, repo_id)
        commit = self._commit_or_404(repo, rev)
        entry = self._entry(repo, commit, path)
        if entry is None or entry["type"] != "file":
            raise _HubError(404, "EntryNotFound", f'{path} does not exist on "{rev}"', {"X-Repo-Commit": commit})
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if self._is_lfs(path) and not cdn:
            sha256, size = entry["lfs"]["oid"], entry["lfs"]["size"]
            location = f"{self.cdn_endpoint}/__cdn__/{repo_type}s/{repo_id}/{commit}/{quote(path, safe='/')}"
            headers.update(
                {
                    "Location": location,
                    "ETag": f'"{entry["oid"]}"',
                    "X-Linked-Etag": f'"{sha256}"',
                    "X-Linked-Size": str(size),
                    "Content-Type": "text/plain",
                }
            )
            return 302, f"Found. Redirecting to {location}".encode(), headers
        content = self._git(repo, "cat-file", "blob", entry["oid"]).stdout
        etag = hashlib.sha256(content).hexdigest() if self._is_lfs(path) else entry["oid"]
        headers.update({"ETag": f'"{etag}"', "Content-Type": "application/octet-stream"})
        status = 200
        match = re.match(r"bytes=(\d+)-(\d*)$", req_headers.get("Range", "") or "")
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            content, status = content[start : end + 1], 206
        headers["Content-Length"] = str(len(content))
        return status, content, headers

    def _info(self, repo_type: str, repo_id: str, repo: Path, commit: str) -> dict[str, Any]:
        files = [e["path"] for e in self._tree(repo, commit, "", recursive=True) if e["type"] == "file"]
        date = (
            self._git(repo, "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%S.000Z", commit)
            .stdout.decode()
            .strip()
        )
        return {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit,
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": date,
            "createdAt": date,
            "siblings": [{"rfilename": f} for f in files],
        }

    def _route_repo_api(
        self, method: str, repo_type: str, repo_id: str, rest: list[str], query: dict, body: bytes, headers: Any
    ):
        repo = self._repo_or_404(repo_type, repo_id)
        verb = rest[0] if rest else ""
        arg = unquote(rest[1]) if len(rest) > 1 else None
        if method == "GET" and (not rest or (verb == "revision" and arg)):
            return 200, self._info(repo_type, repo_id, repo, self._commit_or_404(repo, arg or "main")), {}
        if method == "GET" and verb == "tree" and arg:
            commit = self._commit_or_404(repo, arg)
            sub = "/".join(unquote(s) for s in rest[2:]).strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            if sub:
                entry = self._entry(repo, commit, sub)
                if entry is None or entry["type"] != "directory":
                    raise _HubError(404, "EntryNotFound", f'{sub} does not exist on "{arg}"')
            return 200, self._tree(repo, commit, sub, recursive), {}
        if method == "POST" and verb == "paths-info" and arg:
            commit = self._commit_or_404(repo, arg)
            form = parse_qs(body.decode()) if body and not body.lstrip().startswith(b"{") else json.loads(body or b"{}")
            paths = form.get("paths", [])
            return 200, [e for p in paths if (e := self._entry(repo, commit, p)) is not None], {}
        if method == "GET" and verb == "refs":
            return 200, self._refs(repo, with_prs=query.get("include_prs", ["0"])[0] in ("1", "true")), {}
        if method == "GET" and verb == "commits" and arg:
            return 200, self._log(repo, self._commit_or_404(repo, arg)), {}
        if method == "POST" and verb == "preupload" and arg:
            return self._api_preupload(repo, arg, json.loads(body or b"{}"))
        if method == "POST" and verb == "commit" and arg:
            create_pr = query.get("create_pr", ["0"])[0] in ("1", "true")
            return self._api_commit(repo_type, repo_id, repo, arg, body, create_pr)
        if verb == "branch" and arg and method in ("POST", "DELETE"):
            return self._api_branch(repo, method, arg, json.loads(body or b"{}"))
        if verb == "tag" and arg and method in ("POST", "DELETE"):
            return self._api_tag(repo, method, arg, json.loads(body or b"{}"))
        self.unhandled.append(f"{method} /api/{repo_type}s/{repo_id}/{'/'.join(rest)}")
        return 404, {"error": f"LocalHub: no route for {method} {'/'.join(rest)}"}, {}

    def _refs(self, repo: Path, with_prs: bool) -> dict[str, Any]:
        out = self._git(repo, "for-each-ref", "--format=%(refname) %(*objectname) %(objectname)").stdout.decode()
        result: dict[str, Any] = {"branches": [], "tags": [], "converts": []}
        if with_prs:
            result["pullRequests"] = []
        for line in out.splitlines():
            parts = line.split()
            ref, target = parts[0], parts[-2] if len(parts) == 3 else parts[-1]
            for prefix, group in (
                ("refs/heads/", "branches"),
                ("refs/tags/", "tags"),
                ("refs/convert/", "converts"),
                ("refs/pr/", "pullRequests"),
            ):
                if ref.startswith(prefix) and group in result:
                    result[group].append({"name": ref[len(prefix) :], "ref": ref, "targetCommit": target})
        return result

    def _log(self, repo: Path, commit: str) -> list[dict[str, Any]]:
        out = self._git(
            repo,
            "log",
            "-z",
            "--format=%H%x01%s%x01%b%x01%an%x01%cd",
            "--date=format-local:%Y-%m-%dT%H:%M:%S.000Z",
            commit,
        ).stdout.decode()
        items = []
        for record in filter(None, out.split("\0")):
            sha, title, message, author, date = record.strip("\n").split("\x01")
            items.append(
                {"id": sha, "title": title, "message": message.strip(), "authors": [{"user": author}], "date": date}
            )
        return items

    def _api_create_repo(self, payload: dict[str, Any]):
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or TEST_USER}/{payload['name']}"
        url = f"{self.endpoint}/{_URL_PREFIX[repo_type]}{repo_id}"
        with self._lock:
            path = self.repo_path(repo_id, repo_type)
            if path.exists():
                # huggingface_hub's create_repo(exist_ok=True) reads "url" from this 409 body.
                raise _HubError(409, None, f"You already created this {repo_type} repo", extra={"url": url})
            self._init_bare(path)
            attrs = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in self.lfs_patterns)
            self._write_commit(
                path,
                "refs/heads/main",
                [{"key": "file", "path": ".gitattributes", "content": attrs.encode()}],
                "initial commit",
            )
            self.created_repos.append(dict(payload))
        return 200, {"url": url, "name": repo_id, "id": repo_id}, {}

    def _api_delete_repo(self, payload: dict[str, Any]):
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or TEST_USER}/{payload['name']}"
        path = self._repo_or_404(repo_type, repo_id)
        with self._lock:
            shutil.rmtree(path)
        return 200, {}, {}

    def _api_preupload(self, repo: Path, rev: str, payload: dict[str, Any]):
        commit = self._resolve(repo, rev)
        files = []
        for item in payload.get("files", []):
            entry = self._entry(repo, commit, item["path"]) if commit else None
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": entry["oid"] if entry and entry["type"] == "file" else None,
                }
            )
        return 200, {"files": files, "commitOid": commit}, {}

    def _api_commit(self, repo_type: str, repo_id: str, repo: Path, rev: str, body: bytes, create_pr: bool):
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, None, "commit payload must start with a header line")
        header = lines[0]["value"]
        ops = []
        for line in lines[1:]:
            value = line["value"]
            op: dict[str, Any] = {"key": line["key"], "path": value["path"]}
            if line["key"] == "file":
                if value.get("encoding", "base64") != "base64":
                    raise _HubError(400, None, f"unsupported encoding {value.get('encoding')!r}")
                op["content"] = base64.b64decode(value["content"])
            elif line["key"] not in ("deletedFile", "deletedFolder"):
                raise _HubError(
                    422,
                    None,
                    f"LocalHub: unsupported commit operation {line['key']!r} "
                    "(LFS/Xet uploads are not emulated; /preupload always answers 'regular')",
                )
            ops.append(op)
        message = header.get("summary", "")
        if header.get("description"):
            message += "\n\n" + header["description"]
        with self._lock:
            if rev.startswith("refs/pr/"):
                ref = rev
            elif self._git(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{rev}", check=False).returncode:
                raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            else:
                ref = f"refs/heads/{rev}"
            base = self._resolve(repo, ref)
            if base is None:
                raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            parent = header.get("parentCommit")
            if parent and parent != base:
                raise _HubError(412, None, "A commit has happened since. Please refresh and try again.")
            pr_url = None
            if create_pr:
                number = len(self._refs(repo, with_prs=True)["pullRequests"]) + 1
                ref = f"refs/pr/{number}"
                pr_url = f"{self.endpoint}/{_URL_PREFIX[repo_type]}{repo_id}/discussions/{number}"
            oid = self._write_commit(repo, ref, ops, message, parent=base)
            self.commits.append(
                CommitRecord(
                    repo_id=repo_id,
                    repo_type=repo_type,
                    revision=rev,
                    ref=ref,
                    summary=header.get("summary", ""),
                    description=header.get("description", ""),
                    parent_commit=parent,
                    operations=ops,
                    oid=oid,
                    create_pr=create_pr,
                )
            )
        result = {
            "success": True,
            "commitOid": oid,
            "hookOutput": "",
            "commitUrl": f"{self.endpoint}/{_URL_PREFIX[repo_type]}{repo_id}/commit/{oid}",
        }
        if pr_url:
            result["pullRequestUrl"] = pr_url
        return 200, result, {}

    def _api_branch(self, repo: Path, method: str, branch: str, payload: dict[str, Any]):
        ref = f"refs/heads/{branch}"
        exists = self._resolve(repo, ref) is not None
        with self._lock:
            if method == "DELETE":
                if not exists:
                    raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {branch}")
                self._git(repo, "update-ref", "-d", ref)
                return 200, {}, {}
            if exists:
                raise _HubError(409, None, f"Reference already exists: {ref}")
            start = self._commit_or_404(repo, payload.get("startingPoint") or "main")
            self._git(repo, "update-ref", ref, start, "")
        return 200, {}, {}

    def _api_tag(self, repo: Path, method: str, arg: str, payload: dict[str, Any]):
        with self._lock:
            if method == "DELETE":
                if self._resolve(repo, f"refs/tags/{arg}") is None:
                    raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {arg}")
                self._git(repo, "update-ref", "-d", f"refs/tags/{arg}")
                return 200, {}, {}
            target = self._commit_or_404(repo, arg)
            ref = f"refs/tags/{payload['tag']}"
            if self._resolve(repo, ref) is not None:
                raise _HubError(409, None, f"Tag already exists: {payload['tag']}")
            self._git(repo, "update-ref", ref, target, "")
        return 200, {}, {}


def _split_repo_id(repo_id: str) -> tuple[str, str]:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"LocalHub needs repo ids of the form 'org/name', got {repo_id!r}")
    return parts[0], parts[1]


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
