"""One content-addressed cache for everything expensive.

An entry is addressed by the hash of the full config that produced it (plus the code
version of its kind and the library versions), so notebooks share work: the Medium
network trained for the width notebook is the file the layer notebook loads.

Each entry is a payload file and a manifest holding the payload's SHA-256. Both are
written atomically (write to a temporary file, then rename), the manifest last, so a
killed writer leaves no manifest and a truncated or corrupt payload fails its checksum:
either way the entry is recomputed, never silently used.

An entry is computed once even when several processes want it at the same time (two
runners, or the workers of a Dask cluster): `get_or_compute` holds a lock file per key
(flock, released by the kernel if its holder dies) while it computes, and whoever waited
for the lock loads what the holder stored. $TRANSFERLAB_CACHE_LOG names a file to which
each computed entry appends one line: `kind key pid seconds peak_mib` (the computing
process's peak resident memory while it computed that entry, entries inside it included;
on a system without Linux's resettable peak, its peak so far).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__

log = logging.getLogger(__name__)

# Bump a kind's number when the code that produces it changes its output.
# scores 2: bootstrap replicates; scores 3: one scoring path (transferlab.scoring), the
# classification PCA through pca.fit_pca (eigh, not SVD: equal up to rounding);
# network 1: identity-initialised inserted layers; network 2: a depth's inserted layers laid
# out as VGG's (architecture._STAGES)
CODE_VERSIONS: dict[str, int] = {"scores": 3, "network": 2}

CODECS = ("arrays", "torch", "json")


def default_root() -> Path:
    """The cache folder: $TRANSFERLAB_CACHE, else `.cache/` of the source checkout."""
    env = os.environ.get("TRANSFERLAB_CACHE")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").exists():
        return repo / ".cache"
    return Path.home() / ".cache" / "transferlab"


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "__dataclass_fields__"):
        return _canonical({f: getattr(obj, f) for f in obj.__dataclass_fields__})
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    raise TypeError(f"cache config value {obj!r} of type {type(obj).__name__} is not hashable")


@functools.cache
def _torch_version() -> str:
    # From the installed package's metadata: naming a key must not import torch (1.2 s).
    return importlib.metadata.version("torch").split("+")[0]


def config_key(kind: str, config: Mapping[str, Any]) -> str:
    """Hash of `config`, the kind's code version and the versions of the libraries."""
    ident = {
        "kind": kind,
        "code": CODE_VERSIONS.get(kind, 0),
        "transferlab": __version__,
        "torch": _torch_version(),
        "config": _canonical(config),
    }
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


class CorruptEntry(Exception):
    """A cache entry that failed its checksum or could not be decoded."""


class CacheError(OSError):
    """The cache folder cannot be written (read-only, full, missing permission)."""


def _unwritable(root: Path, path: Path, err: OSError) -> CacheError:
    how = "set by TRANSFERLAB_CACHE" if os.environ.get("TRANSFERLAB_CACHE") else (
        "the default; set TRANSFERLAB_CACHE to use another folder"
    )
    reason = err.strerror or str(err)
    return CacheError(
        err.errno, f"cannot write the cache at {root} ({how}): {path}: {reason}"
    )


def check_writable(root: str | os.PathLike | None = None) -> Path:
    """The cache folder, after writing and removing a probe file in it; CacheError if it can't."""
    folder = Path(root) if root is not None else default_root()
    probe = folder / f".probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(probe, b"probe")
        probe.unlink()
    except OSError as err:
        raise _unwritable(folder, probe, err) from None
    return folder


class Cache:
    """A folder of content-addressed entries, one sub-folder per kind."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def _paths(self, kind: str, key: str, codec: str) -> tuple[Path, Path]:
        ext = {"arrays": "npz", "torch": "pt", "json": "json"}[codec]
        folder = self.root / kind
        return folder / f"{key}.{ext}", folder / f"{key}.manifest.json"

    def contains(self, kind: str, config: Mapping[str, Any], codec: str = "arrays") -> bool:
        return self.has_key(kind, config_key(kind, config), codec)

    def has_key(self, kind: str, key: str, codec: str = "arrays") -> bool:
        """Whether the entry of cache key `key` (a `config_key`) is stored."""
        payload, manifest = self._paths(kind, key, codec)
        return payload.exists() and manifest.exists()

    @contextlib.contextmanager
    def lock(self, kind: str, key: str) -> Iterator[None]:
        """Hold the lock of one entry (blocking). Lock files stay: removing one while another
        process waits on it would let a third take a fresh lock beside them."""
        path = self.root / "locks" / kind / f"{key}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+b")  # closed below, after the unlock
        except OSError as err:
            raise _unwritable(self.root, path, err) from None
        try:
            _flock(fh, True)
            yield
        finally:
            _flock(fh, False)
            fh.close()

    def load(self, kind: str, config: Mapping[str, Any], codec: str = "arrays") -> Any:
        """The stored value; KeyError if absent, CorruptEntry if it fails its checksum."""
        _check_codec(codec)
        payload, manifest = self._paths(kind, config_key(kind, config), codec)
        if not manifest.exists() or not payload.exists():
            raise KeyError(f"{kind}: no cache entry for this config")
        try:
            meta = json.loads(manifest.read_text())
            digest = _sha256(payload)
        except (OSError, ValueError) as err:
            raise CorruptEntry(f"{manifest}: unreadable manifest ({err})") from err
        if digest != meta.get("sha256"):
            raise CorruptEntry(f"{payload}: checksum mismatch (truncated or corrupt)")
        try:  # decoded from the file: its bytes and its arrays are not both held at once
            return _decode(codec, payload)
        except Exception as err:  # a payload that hashes right but will not decode
            raise CorruptEntry(f"{payload}: cannot decode ({err})") from err

    def store(self, kind: str, config: Mapping[str, Any], value: Any, codec: str = "arrays") -> None:
        _check_codec(codec)
        key = config_key(kind, config)
        payload, manifest = self._paths(kind, key, codec)
        data = _encode(codec, value)
        meta = {
            "kind": kind,
            "key": key,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "config": _canonical(config),
        }
        try:
            payload.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(payload, data)
            atomic_write(manifest, json.dumps(meta, indent=1).encode())
        except OSError as err:
            raise _unwritable(self.root, payload, err) from None

    def get_or_compute(
        self,
        kind: str,
        config: Mapping[str, Any],
        compute: Callable[[], Any],
        codec: str = "arrays",
    ) -> Any:
        """The cached value for `config`, computing and storing it if absent or corrupt.

        One process computes a missing entry; the others wait for its lock, then load it.
        """
        try:
            return self.load(kind, config, codec)
        except KeyError:
            pass
        except CorruptEntry as err:
            log.warning("recomputing corrupt cache entry: %s", err)
        key = config_key(kind, config)
        with self.lock(kind, key):
            if self.has_key(kind, key, codec):  # stored while this process waited
                try:
                    return self.load(kind, config, codec)
                except CorruptEntry:
                    pass
            start = time.perf_counter()
            with _peak_window() as peak:
                value = compute()
                self.store(kind, config, value, codec)
                _record(kind, key, time.perf_counter() - start, peak)
        return value


def _flock(fh, take: bool) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: one process per cache, as before
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX if take else fcntl.LOCK_UN)


def _record(kind: str, key: str, seconds: float, peak_mib: Callable[[], float]) -> None:
    """Append `kind key pid seconds peak_mib` to $TRANSFERLAB_CACHE_LOG: what a run computed,
    and the computing process's peak resident memory while it did (`_peak_window`; read
    only when logging)."""
    path = os.environ.get("TRANSFERLAB_CACHE_LOG")
    if path:
        with open(path, "a") as fh:  # one short write in append mode: lines do not interleave
            fh.write(f"{kind} {key} {os.getpid()} {seconds:.2f} {peak_mib():.0f}\n")


# Per entry being computed, outermost first: the largest peak seen in it before an entry
# inside it restarted the count. One stack per process: a worker computes one unit at a
# time (threads_per_worker=1); concurrent entries in threads would share one count.
_open_peaks: list[float] = []


@contextlib.contextmanager
def _peak_window() -> Iterator[Callable[[], float]]:
    """Yields what gives the process's peak memory since this entry began.

    A Dask worker (or a kernel) computes many entries in a row, some inside others (a score
    computes its features, which train their network); a peak since the process started
    would credit each with the largest one before it. Linux restarts the count (VmHWM) on
    writing 5 to /proc/self/clear_refs: each entry restarts it and hands the peak it had
    seen to the entry around it. Elsewhere the peak stays cumulative. Only while the log is
    on: a restart also hides the earlier peak from getrusage (`time -v`).
    """
    if not os.environ.get("TRANSFERLAB_CACHE_LOG"):
        yield peak_mib
        return
    if _open_peaks:
        _open_peaks[-1] = max(_open_peaks[-1], peak_mib())
    restart_peak()
    _open_peaks.append(0.0)
    try:
        yield lambda: max(_open_peaks[-1], peak_mib())
    finally:
        own = max(_open_peaks.pop(), peak_mib())
        if _open_peaks:
            _open_peaks[-1] = max(_open_peaks[-1], own)


def restart_peak() -> None:
    """Restart this process's peak-memory count (Linux; elsewhere nothing happens)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_mib() -> float:
    """This process's peak resident memory (MiB): since `restart_peak` where Linux keeps
    the count, else since it started."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / (2**20 if sys.platform == "darwin" else 2**10)  # bytes on macOS


def _check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise ValueError(f"codec={codec!r} is not one of {CODECS}")


def _encode(codec: str, value: Any) -> bytes:
    buf = io.BytesIO()
    if codec == "arrays":
        if not isinstance(value, Mapping):
            raise TypeError("the 'arrays' codec stores a mapping of name -> numpy array")
        np.savez(buf, **{k: np.asarray(v) for k, v in value.items()})
    elif codec == "torch":
        import torch

        torch.save(value, buf)
    else:
        buf.write(json.dumps(value).encode())
    return buf.getvalue()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decode(codec: str, path: Path) -> Any:
    if codec == "arrays":
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    if codec == "torch":
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    return json.loads(path.read_bytes())


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
