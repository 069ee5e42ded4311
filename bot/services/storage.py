"""Where the municipality keeps the files residents and clerks send: a local directory
(FILES_DIR, the default) or an S3-compatible bucket (FILES_S3_*: AWS S3, MinIO, Ceph …).

A store knows only keys and bytes; what a key means (`2026/VRS-2026-000042/17.jpg`) and the
record of each file (size, SHA-256, where) are the attachments table's (bot.services.files).
Writes are atomic: a reader never sees half a file (a rename within FILES_DIR; S3 makes an
object visible only once it is whole). Problems are `StorageError`s whose message names the
setting to look at.

An object in a bucket carries `Content-Disposition: attachment` with its original name: opened
from its URL, it is downloaded, never shown, so a sender's HTML or SVG does not run in the
browser of the clerk who opens it. FILES_S3_SSE has the storage encrypt every object.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from bot.settings import ConfigError, Settings

STAGING_PREFIX = "petent-incoming-"  # S3FileStore's folders in the temporary directory, one per process
DOWNLOAD_PREFIX = "download-"  # a download in progress in staging() (bot.services.files)
STALE_DOWNLOAD = 3600  # seconds: older, it was left by a bot that died mid-download (one takes at most 300 s)
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class StorageError(Exception):
    """The store refused or could not be reached; the message names the setting."""


def _checked(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"not a storage key: {key!r}")
    return key


class FileStore(Protocol):
    kind: str  # "local" | "s3": recorded with each file (attachments.storage)

    def staging(self) -> Path:
        """A directory for a download in progress (on the same disk as the files, for a local store)."""

    async def check(self) -> None:
        """At start-up: raise StorageError unless files can be written."""

    async def put(self, key: str, source: Path, content_type: str, file_name: str | None = None) -> None:
        """Keep `source` (a finished download) under `key`; `source` is moved or copied. `file_name`:
        the sender's, for a download from the store (the key's last part when there is none)."""

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None:
        """Remove the file; nothing happens if it is not there."""

    def where(self, key: str) -> str:
        """The file's place for people: a path, or s3://bucket/key."""

    def free_bytes(self) -> int | None:
        """Free space where the files go, in bytes (blocking: call it in a thread); None if unknown (a bucket)."""


class LocalFileStore:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def staging(self) -> Path:
        path = self.root / ".incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def where(self, key: str) -> str:
        return str(self.root / _checked(key))

    def free_bytes(self) -> int | None:
        place = self.root
        while not place.exists() and place != place.parent:  # not made yet: the disk it will be on
            place = place.parent
        return shutil.disk_usage(place).free

    async def check(self) -> None:
        try:
            with tempfile.NamedTemporaryFile(dir=self.staging(), prefix="probe-"):
                pass
        except OSError as exc:
            raise StorageError(f"FILES_DIR: cannot write to {self.root}: {exc.strerror or exc}") from None
        remove_stale_downloads(self.staging())

    async def put(self, key: str, source: Path, content_type: str, file_name: str | None = None) -> None:
        target = self.root / _checked(key)
        try:
            await asyncio.to_thread(self._move, source, target)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            reason = "the disk is full" if full else exc.strerror or str(exc)
            raise StorageError(f"FILES_DIR: cannot write {key} to {self.root}: {reason}") from None

    @staticmethod
    def _move(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)  # atomic within one file system (staging is inside the root)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename survives a power loss
        finally:
            os.close(directory)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread((self.root / _checked(key)).read_bytes)

    async def delete(self, key: str) -> None:
        target = self.root / _checked(key)
        try:
            await asyncio.to_thread(self._remove, target)
        except OSError as exc:
            raise StorageError(
                f"FILES_DIR: cannot delete {key} from {self.root}: {exc.strerror or exc}"
            ) from None

    def _remove(self, target: Path) -> None:
        target.unlink(missing_ok=True)
        for parent in target.parents:  # the case's and the year's directories, once empty
            if parent == self.root or self.root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break


class S3FileStore:
    """An S3-compatible bucket, through the MinIO client (a small, well-kept S3 library; its calls
    block, so they run in a thread)."""

    kind = "s3"

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        sse: str | None = None,
    ) -> None:
        import certifi
        import urllib3
        from minio import Minio
        from minio.sse import SseKMS, SseS3

        # FILES_S3_SSE (checked in bot.config): AES256, or the KMS key to encrypt with.
        self.sse = None if not sse else SseS3() if sse == "AES256" else SseKMS(sse, {})

        url = urlsplit(endpoint)
        self.endpoint, self.bucket = endpoint, bucket
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=120),
            retries=urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504]),
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        self.client = Minio(
            url.netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=url.scheme == "https",
            region=region,
            http_client=http,
        )

    _staging: Path | None = None

    def staging(self) -> Path:
        """This process's own folder in the temporary directory (tempfile.mkdtemp: a fresh name,
        readable by the bot alone, so that nobody can prepare it or a link in its place)."""
        if self._staging is None or not self._staging.is_dir():
            self._staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX))
        return self._staging

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{_checked(key)}"

    def free_bytes(self) -> int | None:
        return (
            None  # the storage's own affair: it refuses when full (StorageError), and the download is retried
        )

    async def _call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except S3Error as exc:
            if exc.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StorageError(
                    f"FILES_S3_ACCESS_KEY / FILES_S3_SECRET_KEY: {what} refused by {self.endpoint} ({exc.code})"
                ) from None
            if exc.code == "NoSuchBucket":
                raise StorageError(
                    f"FILES_S3_BUCKET: there is no bucket {self.bucket} at {self.endpoint}"
                ) from None
            if exc.code in ("EntityTooLarge", "QuotaExceeded", "XMinioStorageFull"):
                raise StorageError(
                    f"FILES_S3_BUCKET: {what}: the storage is full or refuses files this large ({exc.code})"
                ) from None
            raise StorageError(f"FILES_S3_ENDPOINT: {what}: {exc.code} {exc.message}") from None
        except (MinioException, HTTPError, OSError) as exc:
            raise StorageError(
                f"FILES_S3_ENDPOINT: {what}: cannot reach {self.endpoint} ({type(exc).__name__})"
            ) from None

    async def check(self) -> None:
        if not await self._call("checking the bucket", self.client.bucket_exists, self.bucket):
            raise StorageError(f"FILES_S3_BUCKET: there is no bucket {self.bucket} at {self.endpoint}")
        self.staging()
        remove_stale_staging()

    async def put(self, key: str, source: Path, content_type: str, file_name: str | None = None) -> None:
        disposition = content_disposition(file_name or PurePosixPath(key).name)
        await self._call(
            f"storing {key}",
            self.client.fput_object,
            self.bucket,
            _checked(key),
            str(source),
            content_type=content_type,
            metadata={"Content-Disposition": disposition},
            sse=self.sse,
        )
        source.unlink(missing_ok=True)  # noqa: ASYNC240  # a local temporary file: microseconds

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket, _checked(key))
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        data: bytes = await self._call(f"reading {key}", read)
        return data

    async def delete(self, key: str) -> None:
        await self._call(
            f"deleting {key}", self.client.remove_object, self.bucket, _checked(key)
        )  # S3: absent is no error


def content_disposition(file_name: str) -> str:
    """`attachment` with the name (RFC 6266): in ASCII for old clients, and exactly in UTF-8
    (RFC 5987's filename*) so that "Zaświadczenie Łukasza.pdf" or "Prašymas.pdf" survive."""
    name = "".join(c for c in file_name if c.isprintable()).strip() or "file"  # no line breaks: one header
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))  # ś → s
    plain = re.sub(r'[^ -~]|["\\%]', "_", plain)  # ł → _; no quote, backslash or escape to misread
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def remove_stale_downloads(staging: Path) -> None:
    """At start-up: partial downloads a bot that died left behind. No attachment records them, so
    the retention purge would never delete these copies of residents' files."""
    cutoff = time.time() - STALE_DOWNLOAD
    for path in staging.glob(DOWNLOAD_PREFIX + "*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass  # gone meanwhile, or not ours to remove


def remove_stale_staging() -> None:
    """remove_stale_downloads in every staging folder of S3FileStore's (this process's and those of
    processes before it, each made with mkdtemp) that belongs to this user."""
    for folder in Path(tempfile.gettempdir()).glob(STAGING_PREFIX + "*"):
        if folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid():
            remove_stale_downloads(folder)


def file_stores(settings: Settings) -> tuple[FileStore, dict[str, FileStore]]:
    """The store new files go to, and every store files may be in (by kind): the local directory
    stays reachable after a switch to S3, so that retention can still delete what it holds."""
    local = LocalFileStore(settings.files_dir)
    if not settings.files_s3_endpoint:
        return local, {local.kind: local}
    try:
        s3 = S3FileStore(
            settings.files_s3_endpoint,
            settings.files_s3_bucket or "",
            settings.files_s3_access_key or "",
            settings.files_s3_secret_key.get_secret_value() if settings.files_s3_secret_key else "",
            settings.files_s3_region,
            settings.files_s3_sse,
        )
    except ImportError:
        raise ConfigError(
            "FILES_S3_ENDPOINT: the S3 client is not installed: pip install 'petent[s3]'"
        ) from None
    except ValueError as exc:  # the client's own check of the endpoint or region
        raise ConfigError(f"FILES_S3_ENDPOINT: {exc}") from None
    return s3, {local.kind: local, s3.kind: s3}


async def check_store(store: FileStore) -> None:
    """At start-up: a store that cannot take files stops the bot with one line naming the setting."""
    try:
        await store.check()
    except StorageError as exc:
        raise ConfigError(str(exc)) from None
