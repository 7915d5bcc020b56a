"""Where a packed corpus lives: a local folder or ``s3://bucket/prefix`` on any S3-compatible store.

The endpoint and credentials come from the standard AWS settings (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``), never
from a config file. Every storage failure becomes one :class:`~declip.errors.ConfigError` line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from declip.errors import ConfigError

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "403"}
_CREDENTIALS_FIX = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for this endpoint"


def is_remote(uri: str) -> bool:
    return "://" in uri


class Location:
    """A folder, local or ``s3://bucket/prefix``, that files are read from and written to by name."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.client = None
        if not is_remote(uri):
            self.root = Path(uri)
            return
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigError(f"{uri}: not a folder or an s3://bucket/prefix URI; give one of those")
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        try:
            import boto3
            from botocore.config import Config
        except ImportError as error:
            raise ConfigError(f"{uri}: reading object storage needs boto3: pip install 'declip[stream]'") from error

        config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 2, "mode": "standard"})
        self.client = boto3.session.Session().client("s3", config=config)  # the environment as it is now
        self.endpoint = self.client.meta.endpoint_url

    def url(self, name: str) -> str:
        """The full URI (or path) of the file ``name`` inside this location."""
        return f"{self.uri}/{name}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @contextlib.contextmanager
    def errors(self, name: str = "") -> Iterator[None]:
        """Turn storage failures while handling ``name`` into one clear line."""
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        where = self.url(name) if name else self.uri
        try:
            yield
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as error:
            raise ConfigError(
                f"{where}: cannot reach the object store at {self.endpoint} ({type(error).__name__}); "
                "check AWS_ENDPOINT_URL and the network"
            ) from error
        except NoCredentialsError as error:
            raise ConfigError(f"{where}: no credentials for the object store; {_CREDENTIALS_FIX}") from error
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                raise ConfigError(
                    f"{where}: the bucket {self.bucket!r} does not exist at {self.endpoint}; create it or fix the URI"
                ) from error
            if code in _CREDENTIAL_CODES:
                raise ConfigError(
                    f"{where}: the object store refused the credentials ({code}); {_CREDENTIALS_FIX}"
                ) from error
            raise ConfigError(f"{where}: the object store answered {code or error}; check the URI") from error

    def read_json(self, name: str) -> dict | None:
        """The JSON file ``name``, or ``None`` when it does not exist."""
        if self.client is None:
            path = self.root / name
            return json.loads(path.read_text()) if path.is_file() else None
        with self.errors(name):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None
        return json.loads(body)

    def write_json(self, name: str, value: dict) -> None:
        text = json.dumps(value, indent=1, sort_keys=True)
        if self.client is None:
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(path)
            return
        with self.errors(name):
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=text.encode())

    def put_file(self, local: Path, name: str) -> None:
        """Move the local file ``local`` to ``name`` here."""
        if self.client is None:
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(local, self.root / name)
            return
        with self.errors(name):
            self.client.upload_file(str(local), self.bucket, self._key(name))
        local.unlink()


def allow_plain_http_endpoint() -> None:
    """Let litdata's fast downloader (obstore) talk to an ``http://`` endpoint, as boto3 does.

    Needed for S3-compatible servers without TLS (a MinIO on the cluster network, a test server);
    obstore refuses plain HTTP unless told. Call it in every process before the first download."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    if endpoint.startswith("http://"):
        from litdata.streaming import downloader

        options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
        if isinstance(options, dict):
            options["allow_http"] = True
