"""The download cache: where pretrained weights live on disk and how they get there intact.

``fetch_pretrained("ghostnetv2_100")`` returns the path of a ghostnp ``.npz`` for a registered set of
weights: a verified cache hit, or else the published file is downloaded, checked, converted once with
``weights_converter`` and cached. ``download`` is the safe transfer underneath, usable for any URL.

Safety, as in torch.hub, huggingface_hub and pooch: each transfer streams into a unique temporary file
beside its target, is fsync'ed and checked, then moved into place with ``os.replace``, so no partial file
ever carries the final name. A per-file lock (``<file>.lock``) makes a second process wait and then reuse
the first one's file. The full sha256 is checked where the publisher gives one; where none is published
the computed hash is printed and recorded beside the file (``<file>.sha256``, ``sha256sum -c`` format).
Every later cache hit is checked against the known or recorded hash; a file that no longer matches is
removed and fetched again.

Cache layout (``cache_dir()``)::

    <tag>.npz                  converted weights, what ghostnp loads       e.g. ghostnetv2_100.in1k.npz
    <tag>.npz.sha256           its recorded hash
    <tag>/<file name>          a downloaded source file                    e.g. ghostnetv2_100.in1k/model.safetensors
    <tag>/<file name>.sha256   its recorded hash (when none is published)
    *.lock                     lock files (empty)

Environment variables:

``GHOSTNP_HOME``
    The cache folder. Default ``$XDG_CACHE_HOME/ghostnp``, else ``~/.cache/ghostnp``.
``GHOSTNP_OFFLINE=1``
    Make no network request at all; only files already in the cache are used.
``GHOSTNP_WEIGHTS_URL``
    Base URL of a mirror laid out like the cache folder: ``<base>/<tag>/<file name>`` is fetched instead
    of the publishers' URLs (``https``, ``http`` or ``file``). The tag is part of the path because the
    Hugging Face copies of all widths share the file name ``model.safetensors``; so a copy of a filled
    cache folder, served by any web server, is a working mirror.
"""

import contextlib
import glob
import hashlib
import os
import secrets
import shutil
import sys
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from ..errors import CheckpointError, DownloadError
from ..progress import progress_bar
from .pretrained import PretrainedConfig, get_pretrained_config, list_pretrained

TIMEOUT_SECONDS = 30.0
"""Seconds a connection attempt or a single read may block before the attempt fails."""

ATTEMPTS = 2
"""Tries per URL: a dropped connection, a timeout or a 5xx answer is retried once, from byte zero."""

CHUNK_BYTES = 1 << 20

_TRUE_WORDS = ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """The cache folder: ``$GHOSTNP_HOME``, else ``$XDG_CACHE_HOME/ghostnp``, else ``~/.cache/ghostnp``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG Base Directory specification says. The folder is
    not created here; downloads create it.
    """
    home = os.environ.get("GHOSTNP_HOME")
    if home:
        return Path(home).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    if xdg_cache and os.path.isabs(xdg_cache):
        return Path(xdg_cache) / "ghostnp"
    return Path.home() / ".cache" / "ghostnp"


def is_offline() -> bool:
    """True when ``GHOSTNP_OFFLINE`` is set to 1 / true / yes / on: no network request will be made."""
    return os.environ.get("GHOSTNP_OFFLINE", "").strip().lower() in _TRUE_WORDS


def file_sha256(path) -> str:
    """The sha256 of a file's bytes, in lower-case hex, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str, dest, *, sha256: str | None = None, progress: bool = True, timeout: float = TIMEOUT_SECONDS
) -> Path:
    """Make sure ``dest`` holds the file published at ``url``, downloading it if needed.

    A present, verified ``dest`` is returned without a request. Otherwise the file is streamed into a
    unique temporary file beside ``dest``, checked, fsync'ed and moved into place. Concurrent callers for
    the same ``dest`` wait for each other's lock, then reuse the file the first one wrote.

    Parameters
    ----------
    url : str
        ``https``, ``http`` or ``file`` URL; redirects are followed.
    dest : str or os.PathLike
        The final path. Its folder is created if needed.
    sha256 : str, optional
        The expected full sha256 (hex). Without it the computed hash is printed and recorded in
        ``<dest>.sha256``, and later calls check ``dest`` against that record.
    progress : bool
        Report on stderr: a progress bar when stderr is a terminal, single lines otherwise. Warnings about
        corrupted files are issued either way.
    timeout : float
        Seconds any connect or read may block before the attempt fails.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        Offline (``GHOSTNP_OFFLINE``), an HTTP error, a connection that failed twice, or bytes whose
        sha256 differs from ``sha256``. No partial file is left under ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(dest, progress):
        if _cached_file_is_valid(dest, sha256, progress):
            return dest
        _remove_stale_temporaries(dest)
        if is_offline():
            raise DownloadError(f"{dest} is not in the cache, and GHOSTNP_OFFLINE is set: {url} was not requested")
        actual = _fetch_with_retry(url, dest, sha256=sha256, progress=progress, timeout=timeout)
        if sha256 is None:
            _write_sidecar(dest, actual)
            _say(progress, f"sha256 {actual}  {dest.name} (none is published: recorded in {_sidecar(dest).name})")
    return dest


def fetch_pretrained(name: str, *, progress: bool = True) -> Path:
    """The path of the cached ghostnp ``.npz`` for registered weights, downloading and converting if needed.

    Parameters
    ----------
    name : str
        A tag from ``ghostnp.weights.pretrained.list_pretrained()`` (``"ghostnetv2_100.in1k"``) or an
        architecture name meaning its ``.in1k`` weights (``"ghostnetv2_100"``).
    progress : bool
        Report downloads on stderr (see ``download``).

    Returns
    -------
    Path
        ``cache_dir() / "<tag>.npz"``, written by ``weights_converter.convert`` on first use.

    Raises
    ------
    DownloadError
        No source could be downloaded (or ``GHOSTNP_OFFLINE`` is set and nothing is cached). The message
        says which file is needed, where to download it, and where to put it.
    CheckpointError
        The downloaded file is not a valid checkpoint for the architecture (from ``weights_converter``).
        A file with no published hash is then removed from the cache, so that the next call fetches it anew.
    """
    config = get_pretrained_config(name)
    target = cache_dir() / f"{config.tag}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target, progress):
        if _cached_file_is_valid(target, None, progress):
            return target
        _remove_stale_temporaries(target)
        checkpoint, published_sha256 = _obtain_checkpoint(config, progress)
        try:
            _convert_into(checkpoint, target, config.architecture)
        except CheckpointError:
            if published_sha256 is None:  # unverifiable bytes that are no checkpoint: do not keep them
                _forget(checkpoint)
            raise
    return target


def source_path(config: PretrainedConfig, file_name: str) -> Path:
    """Where a source file of ``config`` is kept in the cache: ``cache_dir() / tag / file_name``."""
    return cache_dir() / config.tag / file_name


@dataclass(frozen=True)
class CacheEntry:
    """One file in the cache, as listed by ``ghostnp cache``.

    Attributes
    ----------
    name : str
        Path relative to ``cache_dir()`` (``"ghostnetv2_100.in1k.npz"``).
    size : int
        Bytes.
    sha256 : str
        The hash of the file's current bytes.
    """

    name: str
    size: int
    sha256: str


def cache_entries() -> list[CacheEntry]:
    """The weights files in the cache (converted ``.npz`` and downloaded sources), sorted by name.

    Only files belonging to registered tags are listed; lock files, hash records and temporaries are not.
    """
    root = cache_dir()
    files = []
    for path in (path for tag in list_pretrained() for path in _tag_paths(tag)):
        if not _is_bookkeeping(path):  # skips a temporary folder with everything in it
            files.extend(path.rglob("*") if path.is_dir() else [path])
    entries = [
        CacheEntry(file.relative_to(root).as_posix(), file.stat().st_size, file_sha256(file))
        for file in files
        if file.is_file() and not _is_bookkeeping(file)
    ]
    return sorted(entries, key=lambda entry: entry.name)


def clear_cache(name: str | None = None) -> list[Path]:
    """Delete the cached files of one registered tag, or of all of them; return what was removed.

    Only ghostnp's own files (``<tag>.npz*`` and ``<tag>/``) are touched, whatever ``GHOSTNP_HOME``
    points at. Do not run it while another process is downloading.
    """
    tags = list_pretrained() if name is None else [get_pretrained_config(name).tag]
    removed = []
    for path in sorted(path for tag in tags for path in _tag_paths(tag)):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    return removed


# ----------------------------------------------------------------------------------------------- internals


def _tag_paths(tag: str) -> list[Path]:
    """The existing top-level cache paths belonging to a tag: ``<tag>.npz*`` and the folder ``<tag>/``."""
    root = cache_dir()
    folder = root / tag
    return [Path(path) for path in glob.glob(glob.escape(str(root / f"{tag}.npz")) + "*")] + (
        [folder] if folder.is_dir() else []
    )


def _is_bookkeeping(path: Path) -> bool:
    """Lock files, hash records and temporaries: cache machinery, not weights."""
    return path.suffix in (".lock", ".sha256") or ".part" in path.suffixes


def _obtain_checkpoint(config: PretrainedConfig, progress: bool) -> tuple[Path, str | None]:
    """A verified local copy of one of the config's sources (cached ones first, then downloads in order).

    Returns the path and the source's published sha256 (None where none is published).
    """
    mirror = os.environ.get("GHOSTNP_WEIGHTS_URL", "").rstrip("/")
    candidates = [
        (
            f"{mirror}/{config.tag}/{source.file_name}" if mirror else source.url,
            source_path(config, source.file_name),
            source.sha256,
        )
        for source in config.sources
    ]
    candidates.sort(key=lambda candidate: not candidate[1].is_file())  # a cached file before any download
    failures = []
    for url, path, sha256 in candidates:
        try:
            return download(url, path, sha256=sha256, progress=progress), sha256
        except DownloadError as error:
            failures.append(str(error))
    reason = "GHOSTNP_OFFLINE is set" if is_offline() else "; ".join(failures)
    raise DownloadError(_unavailable_message(config, reason))


def _unavailable_message(config: PretrainedConfig, reason: str) -> str:
    """One paragraph: which file is needed, where to download it, where to put it, and the alternative."""
    downloads = " or ".join(config.urls)
    places = " or ".join(str(source_path(config, source.file_name)) for source in config.sources)
    several = len(config.sources) > 1
    return (
        f"The pretrained weights {config.tag} are not in the cache and could not be downloaded ({reason}). "
        f"Download {'one of these files' if several else 'this file'} on a machine with internet access: "
        f"{downloads}; then save it as {places}{' respectively' if several else ''}. ghostnp checks and "
        "converts it on first use (GHOSTNP_HOME moves the cache folder, GHOSTNP_WEIGHTS_URL points at a "
        "mirror). Or use a weights file you already have: pass --weights PATH on the command line, or "
        f"ghostnp.create_model({config.architecture!r}, weights=PATH) in Python."
    )


def _convert_into(checkpoint: Path, target: Path, architecture: str) -> None:
    """Convert a checkpoint to ghostnp's ``.npz`` at ``target`` via a temporary folder; record its hash."""
    from .files import convert_weights  # the converter is imported lazily: needed once per set of weights

    scratch = _temporary_beside(target)
    scratch.mkdir()
    try:
        written = convert_weights(checkpoint, out=scratch / target.name, arch=architecture)
        with open(written, "rb") as file:
            os.fsync(file.fileno())
        sha256 = file_sha256(written)
        os.replace(written, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _write_sidecar(target, sha256)


def _cached_file_is_valid(path: Path, sha256: str | None, progress: bool) -> bool:
    """True when ``path`` exists and matches the known hash or its recorded one.

    A file with neither (put there by hand) has its hash recorded now. A file that does not match is
    corrupted or was changed: it and its record are removed (with a warning) so that it is fetched again.
    """
    if not path.is_file():
        return False
    expected = sha256 or _read_sidecar(path)
    actual = file_sha256(path)
    if expected is None:
        _write_sidecar(path, actual)
        _say(progress, f"sha256 {actual}  {path.name} (found in the cache without a record: recorded now)")
        return True
    if actual == expected.lower():
        return True
    warnings.warn(
        f"{path} is corrupted or was changed since it was cached: its sha256 is {actual}, expected {expected}. "
        "It has been removed and will be fetched again.",
        RuntimeWarning,
        stacklevel=3,
    )
    _forget(path)
    return False


def _forget(path: Path) -> None:
    """Remove a cached file and its recorded hash."""
    path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)


def _fetch_with_retry(url: str, dest: Path, *, sha256: str | None, progress: bool, timeout: float) -> str:
    """``_fetch_once``, retried from byte zero after a dropped connection, a timeout or a 5xx answer."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _fetch_once(url, dest, sha256=sha256, progress=progress, timeout=timeout)
        except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError) as error:
            if isinstance(error, urllib.error.HTTPError):
                error.close()
                reason, transient = f"HTTP {error.code} {error.reason}", error.code >= 500
            else:
                reason, transient = str(getattr(error, "reason", None) or error) or type(error).__name__, True
            if not transient or attempt == ATTEMPTS:
                raise DownloadError(f"could not download {url} ({attempt} attempt(s)): {reason}") from error
            _say(progress, f"download of {url} failed ({reason}); retrying from the start")


def _fetch_once(url: str, dest: Path, *, sha256: str | None, progress: bool, timeout: float) -> str:
    """Stream ``url`` into a new temporary beside ``dest``, check it, move it to ``dest``; return its sha256."""
    temporary = _temporary_beside(dest)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "ghostnp"})
        with open(temporary, "xb") as file, urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            _say(progress, f"Downloading {url} to {dest}")
            digest, received = hashlib.sha256(), 0
            bar = progress_bar(total, desc=dest.name, unit="B", enabled=progress, unit_scale=True, unit_divisor=1024)
            with bar:
                while chunk := response.read1(CHUNK_BYTES):  # whatever has arrived, up to a chunk
                    file.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise ConnectionError(f"the connection closed after {received} of {total} bytes")
            file.flush()
            os.fsync(file.fileno())
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise DownloadError(
                f"{url} sent a file whose sha256 is {actual}, but {sha256} is expected: the server sent "
                "different bytes (a changed release, a proxy error page or tampering). Nothing was saved."
            )
        os.replace(temporary, dest)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(dest.parent)
    return actual


def _remove_stale_temporaries(dest: Path) -> None:
    """Delete temporaries of ``dest`` left by a killed process (safe: the caller holds ``dest``'s lock)."""
    for leftover in glob.glob(glob.escape(str(dest)) + ".*.part"):
        if os.path.isdir(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            Path(leftover).unlink(missing_ok=True)


@contextlib.contextmanager
def _file_lock(path: Path, progress: bool):
    """Hold an exclusive ``flock`` on ``<path>.lock`` (released by the OS if the process dies).

    Where ``fcntl`` does not exist (Windows) no lock is taken: every write is still atomic, so concurrent
    processes can only duplicate work, never corrupt a file.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(f"{path}.lock", "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(progress, f"waiting for another process working on {path.name}")
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_sidecar(path: Path) -> str | None:
    """The hash recorded for ``path`` (first word of ``<path>.sha256``), or None without a record."""
    try:
        words = _sidecar(path).read_text(encoding="ascii", errors="replace").split()
    except FileNotFoundError:
        return None
    return words[0] if words else ""


def _write_sidecar(path: Path, sha256: str) -> None:
    """Record ``sha256`` in ``<path>.sha256`` (``sha256sum -c`` format), atomically."""
    sidecar = _sidecar(path)
    temporary = _temporary_beside(sidecar)
    temporary.write_text(f"{sha256}  {path.name}\n", encoding="ascii")
    os.replace(temporary, sidecar)


def _temporary_beside(path: Path) -> Path:
    """A fresh name ``<path>.<random>.part`` in the same folder (same file system, so ``os.replace`` is atomic).

    Created with the process umask, unlike ``tempfile.mkstemp``'s owner-only mode, so that a shared cache
    folder stays readable.
    """
    return path.with_name(f"{path.name}.{secrets.token_hex(8)}.part")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, as on Windows)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)
