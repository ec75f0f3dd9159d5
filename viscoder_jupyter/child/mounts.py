"""What the sandboxed kernel sees of the file system: what plotting code needs, and nothing else.

The sandbox starts from an empty root. Bound back read-only: the system's programs and
libraries (/usr and the /bin, /lib... links or folders), a few files of /etc that the C library,
fonts and time zones read, fontconfig's cache, the CPU topology BLAS reads, and the Python
installation that runs the kernel (its prefixes and site-packages, exactly: a pyenv under
/root brings that version's folder, not /root). Not there: home folders, the user's working
directory and project (an editable checkout included: the kernel imports nothing of ours, its
helper module arrives as source in the warm-up cell), /work, /data, /mnt, /srv, /opt (unless
Python lives there), /var, other mounts. So a traceback or a print cannot carry a project
file, a `.env` or a data folder into the model's prompt, the dialogue log or the sidebar.
"""

from __future__ import annotations

import os
import site
import sys

# The system's own programs and libraries; on merged-/usr systems all but /usr are links.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What the C library (loader, names, locale, time zone) and fontconfig read of /etc. No ssl,
# no ssh, no jupyter or application configs: none of them is needed to draw.
ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "nsswitch.conf",
    "passwd",  # getpwuid() of the kernel's uid, which some libraries ask for
    "group",
    "hosts",
    "localtime",
    "timezone",
    "locale.alias",
    "fonts",
    "alternatives",  # Debian's links, which some of /usr point through
    "mime.types",
)
EXTRA = ("/var/cache/fontconfig", "/sys/devices/system/cpu")


def python_paths() -> list[str]:
    """The Python installation the kernel runs on: its prefixes and package folders, as given
    and resolved (a venv's python links into its base installation)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable)}
    try:
        paths.update(site.getsitepackages())
    except AttributeError:  # an old virtualenv's site module
        pass
    # Package folders on the import path outside the prefixes (a Debian dist-packages); never a
    # project folder, a notebook's directory or an editable checkout, which are not packages'.
    paths.update(p for p in sys.path if os.path.isabs(p) and os.path.basename(p) in ("site-packages", "dist-packages"))
    return sorted({os.path.realpath(p) for p in paths if p} | {p for p in paths if p})


def _covered(path: str, trees: list[str]) -> bool:
    return any(path == top or path.startswith(top.rstrip("/") + "/") for top in trees)


def read_only_argv() -> list[str]:
    """bwrap options binding what the kernel may read (read-only), with readable folders on the
    way (bwrap would make them 0700, closed to the kernel's uid). They come before the private
    /tmp; what lies under /tmp is bound after it (`under_tmp`)."""
    argv: list[str] = []
    bound: list[str] = []  # trees in the sandbox as they are here
    dirs: list[str] = []  # folders made on the way to them
    for top in SYSTEM:
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
            bound.append(top)
    paths = [os.path.join("/etc", name) for name in ETC] + [*EXTRA, *python_paths()]
    for path in paths:
        if path.startswith("/tmp/") or not os.path.lexists(path) or _covered(path, bound):
            continue
        argv += _parents(path, bound, dirs) + ["--ro-bind", path, path]
        bound.append(path)
    return argv


def under_tmp() -> list[str]:
    """The Python installation's folders under /tmp (CI clones, scratch venvs), bound after the
    private /tmp is mounted over it."""
    argv: list[str] = []
    bound: list[str] = []
    dirs = ["/tmp"]
    for path in python_paths():
        if path.startswith("/tmp/") and os.path.exists(path) and not _covered(path, bound):
            argv += _parents(path, bound, dirs) + ["--ro-bind", path, path]
            bound.append(path)
    return argv


def _parents(path: str, bound: list[str], dirs: list[str]) -> list[str]:
    """`--dir` for each folder above `path` not yet in the sandbox, readable by the kernel."""
    argv: list[str] = []
    parts = path.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        folder = "/" + "/".join(parts[:i])
        if folder in dirs or _covered(folder, bound):
            continue
        argv += ["--perms", "0755", "--dir", folder]
        dirs.append(folder)
    return argv
