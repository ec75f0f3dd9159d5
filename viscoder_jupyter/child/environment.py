"""The child kernel's environment: an allowlist of what it keeps of ours.

A denylist of secret-looking names misses too much (a URL with a token as its user name,
`*_PWD`, a webhook URL, a DSN), so the kernel gets only what Python, the C library and the
math libraries read to run and to format, and what we set for it; everything else stays out,
whatever its name. HOME is the kernel's scratch folder (set by the wrapper, which knows it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

KEEP = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TZDIR",
        "USER",  # getpass.getuser() without a passwd entry (the sandbox's throwaway uid)
        "LOGNAME",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONHASHSEED",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "LD_LIBRARY_PATH",  # conda and CUDA installs find their shared libraries by it
        "FONTCONFIG_FILE",
        "FONTCONFIG_PATH",
        "TMPDIR",  # a plain child's; the sandbox's is its private /tmp
        # What the Python on Windows needs to start at all.
        "SYSTEMROOT",
        "WINDIR",
        "COMSPEC",
        "PATHEXT",
        "TEMP",
        "TMP",
        # The math libraries' threads (set below when missing) and malloc's arenas.
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "NUMEXPR_MAX_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "MALLOC_ARENA_MAX",
    }
)
KEEP_PREFIXES = ("LC_",)
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def kept(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` the kernel may see."""
    return {k: v for k, v in environ.items() if k in KEEP or k.startswith(KEEP_PREFIXES)}


def kernel_env(environ: Mapping[str, str], sandbox_rw_dir: str | None) -> dict[str, str]:
    """The kernel's environment: the allowlisted part of ours, inline figures, few threads; in
    the sandbox, caches in its private /tmp and matplotlib's in `sandbox_rw_dir`; in a plain
    child, matplotlib's cache where ours is (its font list takes seconds to build)."""
    env = kept(environ)
    env.update(
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONUNBUFFERED="1",
        PLOTLY_RENDERER="plotly_mimetype",  # fig.show() emits the JSON we capture
        PYDEVD_DISABLE_FILE_VALIDATION="1",  # debugpy's frozen-modules warning
    )
    # Few BLAS threads and malloc arenas: each reserves address space that RLIMIT_AS counts
    # (32+ MiB an OpenBLAS thread, 64 MiB an arena), and plotting needs little parallelism.
    threads = str(min(4, os.cpu_count() or 1))
    for name in BLAS_THREADS:
        env.setdefault(name, threads)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    if sandbox_rw_dir:
        env.update(
            TMPDIR="/tmp",
            IPYTHONDIR="/tmp/.ipython",
            XDG_CACHE_HOME="/tmp/.cache",
            MPLCONFIGDIR=os.path.join(sandbox_rw_dir, "mpl"),
        )
    else:
        env["MPLCONFIGDIR"] = matplotlib_cache(environ)
    return env


def matplotlib_cache(environ: Mapping[str, str]) -> str:
    """Where matplotlib keeps its font list for us (without importing it)."""
    home = environ.get("HOME") or os.path.expanduser("~")
    return environ.get("MPLCONFIGDIR") or os.path.join(
        environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "matplotlib"
    )
