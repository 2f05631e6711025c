"""Build a C source shipped with the package into a shared library, once, and load it with ctypes.

Used by the optional compiled kernels (``wnet/window_kernel.c``, ``wnet/bsds/ssp.c``). The library
is compiled on first use with the system C compiler (``$CC``, else cc, gcc or clang) and kept in
``~/.cache/wnet`` (or ``$XDG_CACHE_HOME/wnet``, or ``$WNET_CACHE_DIR``; an empty
``WNET_CACHE_DIR`` disables the cache) under a key of the source, compiler, flags and CPU, so a
changed source or another machine never loads a stale build. The cached file is written
atomically: processes building at once (DDP ranks, benchmark workers) never load a partial file.
Callers catch :data:`BUILD_ERRORS` and fall back to their Python path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

FLAGS = ["-std=gnu99", "-O3", "-funroll-loops", "-ffp-contract=fast", "-fPIC", "-shared"]
BUILD_ERRORS = (OSError, RuntimeError, subprocess.SubprocessError)


def _compile(cc: str, source: Path, out: str, flags: list[str], native: bool) -> None:
    flags = flags + (["-march=native"] if native else [])
    subprocess.run([cc, *flags, "-o", out, str(source)], check=True, capture_output=True, timeout=300)


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU model and feature flags (Linux), else the platform."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(dict.fromkeys(lines))  # the first of each, in order
    except OSError:
        return platform.platform() + platform.processor()


def cache_path(source: Path, cc: str, flags: list[str]) -> Path | None:
    """Where this source, compiler and CPU's library is kept (None: $WNET_CACHE_DIR='' disables)."""
    root = os.environ.get("WNET_CACHE_DIR")
    if root == "":
        return None
    if root is None:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wnet"
    key = hashlib.sha256()
    for part in (source.read_bytes(), os.path.realpath(cc).encode(), " ".join(flags).encode(),
                 _cpu_signature().encode(), platform.machine().encode()):  # fmt: skip
        key.update(part + b"\0")
    return Path(root) / f"{source.stem}-{key.hexdigest()[:20]}.so"


def load(source: Path, flags: list[str] = FLAGS) -> ctypes.CDLL:
    """The loaded library of ``source``: from the cache, or compiled now (seconds) and cached.

    Raises:
        RuntimeError when no compiler is found or the source is missing; subprocess errors when
        the compiler fails; OSError when the library cannot be loaded.
    """
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RuntimeError("no C compiler found (cc, gcc or clang on PATH, or $CC)")
    if not source.is_file():
        raise RuntimeError(f"C source {source} is missing")
    cached = cache_path(source, cc, flags)
    if cached is not None and cached.is_file():
        return ctypes.CDLL(str(cached))
    tmp = tempfile.mkdtemp(prefix=f"wnet_{source.stem}_")
    try:
        so = os.path.join(tmp, f"{source.stem}.so")
        try:
            _compile(cc, source, so, flags, native=True)  # this CPU's vector width (in the cache key)
        except subprocess.CalledProcessError:
            _compile(cc, source, so, flags, native=False)  # compilers that reject -march=native
        lib = ctypes.CDLL(so)
        if cached is not None:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                part = cached.with_suffix(f".{os.getpid()}.part")
                shutil.copyfile(so, part)
                os.replace(part, cached)
            except OSError:
                pass  # an unwritable cache only costs the next process a build
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a loaded library stays mapped after its file is gone
    return lib


def load_once(state: dict, lock, env: str, build, what: str, fallback: str):
    """``state["lib"] = build()`` on the first call, else the cached outcome (thread-safe).

    ``$env=0`` disables the library on purpose (no warning); a failed build is remembered in
    ``state["error"]`` and reported in one RuntimeWarning naming ``what`` and its ``fallback``.
    Returns the library or None.
    """
    with lock:
        if "lib" not in state and "error" not in state:
            if os.environ.get(env, "1") == "0":
                state["error"] = f"disabled by {env}=0"
            else:
                try:
                    state["lib"] = build()
                except BUILD_ERRORS as err:
                    detail = getattr(err, "stderr", b"") or b""
                    state["error"] = f"{err} {detail.decode(errors='replace')[-500:]}".strip()
                    warnings.warn(
                        f"{what}: compiled kernel unavailable ({state['error']}); {fallback}",
                        RuntimeWarning,
                        stacklevel=4,
                    )
        return state.get("lib")
