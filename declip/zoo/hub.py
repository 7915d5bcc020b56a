"""The Hugging Face Hub: download a model folder at a revision, push one as a single commit."""

from __future__ import annotations

import re
from pathlib import Path

from declip.errors import ConfigError
from declip.zoo.layout import CONFIG, WEIGHTS

REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``ORG/NAME[@REVISION]`` -> ``(repo_id, revision)``."""
    repo_id, _, revision = ref.partition("@")
    if not REPO_ID.match(repo_id) or (revision == "" and "@" in ref):
        raise ConfigError(f"{ref!r} is not a Hub reference ORG/NAME[@REVISION]")
    return repo_id, revision or None


def download(repo_id: str, revision: str | None = None, files: tuple[str, ...] = (CONFIG, WEIGHTS)) -> Path:
    """Fetch ``files`` of ``repo_id`` at ``revision`` into the Hugging Face cache; returns their folder.

    Only the safetensors weights are fetched: no pickle is ever loaded from the network. Works offline
    from the cache (``HF_HUB_OFFLINE=1``)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision or 'main'}"
    folder = None
    for name in files:
        try:
            folder = Path(hf_hub_download(repo_id, name, revision=revision)).parent
        except RevisionNotFoundError as error:
            raise ConfigError(
                f"{where}: no such revision on the Hub; give a branch, tag or full commit hash"
            ) from error
        except RepositoryNotFoundError as error:
            raise ConfigError(f"{repo_id}: no such model repository on the Hub (or it is private: log in)") from error
        except LocalEntryNotFoundError as error:  # a subclass of EntryNotFoundError: first
            raise ConfigError(
                f"{where}: cannot reach the Hub and the files are not in the Hugging Face cache; connect once "
                "(later runs work offline with HF_HUB_OFFLINE=1), or pass a local model folder"
            ) from error
        except EntryNotFoundError as error:
            if name == WEIGHTS:
                raise ConfigError(
                    f"{where} has no {WEIGHTS}; declip loads safetensors weights only, never pickled files"
                ) from error
            raise ConfigError(
                f"{where} has no {name}; it is not a declip model (export one with declip zoo export)"
            ) from error
    assert folder is not None
    return folder


def push(
    folder: Path, repo_id: str, revision: str | None = None, private: bool = False, message: str | None = None
) -> str:
    """Create ``repo_id`` if needed and commit every file of ``folder`` in one commit; returns its hash."""
    from huggingface_hub import CommitOperationAdd, HfApi

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not any(p.name == WEIGHTS for p in files):
        raise ConfigError(f"{folder}: no {WEIGHTS} to push; export the model first (declip zoo export)")
    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision not in (None, "main"):
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=p.relative_to(folder).as_posix(), path_or_fileobj=p) for p in files]
    info = api.create_commit(
        repo_id, operations, commit_message=message or f"Upload {folder.name} with declip", revision=revision
    )
    return info.oid
