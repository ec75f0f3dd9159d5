"""A review of generated code before it reaches the user: what plotting code never needs.

The model's code is treated as hostile (steered by text in the user's data, or a compromised
model). The child kernel's sandbox contains it while it is tried; the cell the magic inserts and
the code the sidebar proposes run in the user's own kernel, so they are reviewed here first.
Each finding names a line and why it is there: network, other programs, file writes and
deletes, code built at run time, the environment and credentials, IPython escapes, probes of
the machine. Plotting code needs none of them, so a finding is never normal.

Saving a figure (`savefig`, `write_image`) counts as a file write: it can overwrite any file
the user may write (`savefig('~/.bashrc', format='png')`), and the figure is shown inline
anyway; the repairs (codeblocks.repair_code) already drop a plain `plt.savefig(...)` line,
so the review meets one only where the model hid it or repairs are off.

Pure `ast` over the text: nothing here runs the code or imports IPython.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from .errors import FigureProblem

#: Category -> how the header and the model's feedback name it.
CATEGORIES = {
    "network": "reaches the network",
    "process": "runs other programs",
    "file": "writes or deletes files",
    "dynamic": "runs code built at run time",
    "secrets": "reads the environment or credentials",
    "ipython": "uses an IPython escape",
    "probe": "probes the machine it runs on",
    "unreviewed": "could not be reviewed",
}

_MODULES = {  # importing these is a finding by itself
    "network": {
        "socket", "ssl", "urllib", "urllib2", "urllib3", "http", "requests", "httpx", "aiohttp", "ftplib",
        "smtplib", "telnetlib", "poplib", "imaplib", "xmlrpc", "websocket", "websockets", "paramiko",
        "webbrowser", "socketserver", "asyncssh", "pycurl", "grpc",
    },
    "process": {"subprocess", "pty", "pexpect", "sh", "multiprocessing", "signal", "resource"},
    "file": {"shutil", "tempfile"},
    "dynamic": {"importlib", "ctypes", "cffi", "marshal", "pickle", "dill", "cloudpickle", "code", "codeop",
                "runpy", "builtins", "types", "inspect", "gc", "pkgutil"},
    "secrets": {"getpass", "keyring", "pwd", "spwd", "netrc", "secretstorage"},
    "probe": {"platform", "psutil"},
}  # fmt: skip
_IPYTHON_OK = ("IPython.display",)  # showing a figure is what plotting code does

_CALLS = {  # qualified call -> category; a trailing "*" matches every name that starts so
    "process": (
        "os.system", "os.popen", "os.exec*", "os.spawn*", "os.posix_spawn*", "os.fork", "os.forkpty", "os.kill",
        "os.killpg", "os.startfile", "os.setuid", "os.setgid",
    ),
    "file": (
        "open", "io.open", "os.open", "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.rename",
        "os.renames", "os.replace", "os.mkdir", "os.makedirs", "os.chmod", "os.chown", "os.truncate", "os.link",
        "os.symlink", "os.write", "os.mkfifo", "numpy.save*", "numpy.tofile", "plotly.io.write_*",
    ),
    "dynamic": ("eval", "exec", "compile", "__import__", "breakpoint", "globals", "vars", "locals"),
    "secrets": ("os.getenv", "os.putenv", "os.unsetenv", "os.getlogin", "os.path.expanduser", "pathlib.Path.home"),
    "probe": (
        "os.uname", "os.listdir", "os.scandir", "os.walk", "os.getuid", "os.geteuid", "os.getpid", "os.getppid",
        "os.getcwd", "os.chdir", "socket.gethostname", "platform.node", "platform.uname", "glob.glob", "glob.iglob", "sys._getframe", "sys.settrace", "sys.setprofile",
        "sys.addaudithook",
    ),
}  # fmt: skip

# Methods whose name alone says what they do, whatever object they are called on.
_METHODS = {
    "file": {
        "write_text", "write_bytes", "unlink", "rmdir", "touch", "symlink_to", "hardlink_to", "chmod", "mkdir",
        "to_pickle", "to_excel", "to_parquet", "to_feather", "to_hdf", "to_sql", "to_stata", "to_clipboard",
        "to_gbq", "savefig", "write_image", "write_html", "write_json", "tofile",
    },
    "probe": {"iterdir", "rglob", "expanduser"},
    "ipython": {"run_line_magic", "run_cell_magic"},
}  # fmt: skip
# DataFrame writers that return text when given no destination (df.to_csv() is a string).
_WRITERS_WITH_DESTINATION = {"to_csv", "to_json", "to_html", "to_latex", "to_markdown", "to_string", "to_xml", "to_orc"}
_DESTINATION_KEYWORDS = {"path_or_buf", "path", "buf", "excel_writer", "fname", "file"}
_WRITE_MODE = re.compile(r"[wax+]")

_NAMES = {  # names and attributes
    "secrets": {"environ", "environb"},
    "dynamic": {"__builtins__", "__subclasses__", "__globals__", "__code__", "__closure__", "__bases__", "__mro__",
                "__getattribute__", "__loader__", "__spec__", "f_globals", "f_locals", "f_back", "gi_frame"},
    "ipython": {"get_ipython"},
}  # fmt: skip
_OWNED_ATTRIBUTES = {"sys.modules": "probe"}  # what else is loaded in the process

# Text that is a path to a secret or the home folder, to the system's own files, or names this
# package (words like "password" are left alone: they are column names as often as not).
_SECRET_TEXT = re.compile(
    r"(^~|\.ssh\b|id_rsa|id_ed25519|\.aws\b|\.netrc|\.gnupg|\.kube\b|\.docker\b|\.git-credentials|\.pypirc|"
    r"_history\b|\.jupyter\b|\.config/|/etc/shadow|/etc/passwd|keyring)",
    re.I,
)
_PROBE_TEXT = re.compile(r"(^/(proc|sys|dev|etc|root|home|run|var|boot|usr|tmp)(/|$)|viscoder|bwrap|bubblewrap)", re.I)
_URL_TEXT = re.compile(r"^\s*(https?|ftp|wss?|file)://", re.I)
# An IPython escape at the start of a line: `!ls`, `%env`, `x = !cmd` (looked for only in code
# that does not parse, where they are; `%matplotlib inline` only picks how figures show).
_ESCAPE_LINE = re.compile(r"^\s*([!%]|[\w.,\s]+=\s*[!%])")
_HARMLESS_ESCAPE = re.compile(r"^\s*%matplotlib(\s+\w+)?\s*$")


@dataclass(frozen=True)
class Finding:
    """One flagged line: its number (1-based), its text, and why it is flagged."""

    line: int
    text: str
    why: str
    category: str

    def describe(self) -> str:
        return f"line {self.line}: `{self.text}` {self.why}"


class FlaggedCode(FigureProblem):
    """The code drew, but does what plotting code never needs: fed back so a clean version
    comes first; if none does, the figure is still the answer and the result carries the
    findings (a soft failure, like a figure that fails a check)."""

    def __init__(self, findings: list[Finding], lib: str = "matplotlib"):
        super().__init__("FlaggedCode", feedback_text(findings, lib))
        self.findings = list(findings)
        self.lib = lib

    def __reduce__(self):
        return (type(self), (self.findings, self.lib))


def review_code(code: str) -> list[Finding]:
    """What in `code` plotting code never needs, in line order; [] when nothing is."""
    lines = code.splitlines()
    try:
        tree = ast.parse(code)
    except SyntaxError:
        tree = None
    findings: list[Finding] = []
    if tree is None:  # perhaps IPython escapes (`!ls`, `%env`, `x = !cmd`), which are not Python
        escapes = [i for i, line in enumerate(lines) if _ESCAPE_LINE.match(line)]
        for i in escapes:
            if not _HARMLESS_ESCAPE.match(lines[i]):
                findings.append(_finding(lines, i + 1, _escape_words(lines[i]), "ipython"))
        blanked = [_indent(line) + "pass" if i in escapes else line for i, line in enumerate(lines)]
        try:
            tree = ast.parse("\n".join(blanked))
        except SyntaxError as exc:
            # IPython rewrites more than `!` and `%` before it runs a cell: what is not Python
            # cannot be reviewed, so it is not passed as clean.
            number = min(max(exc.lineno or 1, 1), max(len(lines), 1))
            why = f"does not parse as Python ({exc.msg}), so the code could not be reviewed"
            return _in_order(findings + [_finding(lines, number, why, "unreviewed")])
    _Reviewer(lines, findings).visit(tree)
    return _in_order(findings)


def feedback_text(findings: list[Finding], lib: str = "matplotlib") -> str:
    """The model's feedback turn for flagged code: what was found, and what to do instead."""
    lines = list(dict.fromkeys(f"`{f.text}` (line {f.line})" for f in findings))
    named = ", ".join(lines[:3]) + (f" and {len(lines) - 3} more" if len(lines) > 3 else "")
    kinds = ", ".join(dict.fromkeys(CATEGORIES[f.category] for f in findings))
    shown = "\n".join(f"- {f.describe()}" for f in findings[:8])
    more = f"\n- and {len(findings) - 8} more" if len(findings) > 8 else ""
    return (
        f"Do not use {named}: the code {kinds}, and plotting code needs none of that.\n{shown}{more}\n"
        "Plotting code needs no network, no other programs, no writing or deleting files (the figure is "
        "shown, not saved; the data is already loaded), no eval/exec or imports built at run time, no "
        "environment variables or credentials, no IPython `!`/`%` commands and no probing of the machine. "
        f"Write the plot again with pandas and {lib} only, and show it."
    )


def header_lines(findings: list[Finding]) -> list[str]:
    """The comment block above a cell inserted commented out: each flagged line and why."""
    return [
        "# VisCoder inserted this code commented out: the review flagged lines that plotting code",
        "# never needs. Read it; delete the flagged lines, or uncomment the code if you trust it.",
        *(f"#   {f.describe()}" for f in findings),
    ]


# ---- the walk ------------------------------------------------------------------------------


class _Reviewer(ast.NodeVisitor):
    def __init__(self, lines: list[str], findings: list[Finding]):
        self.lines = lines
        self.findings = findings
        self.imported: dict[str, str] = {}  # local name bound by an import -> what it names

    def flag(self, node: ast.AST, why: str, category: str) -> None:
        self.findings.append(_finding(self.lines, getattr(node, "lineno", 1), why, category))

    # imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.imported[alias.asname] = alias.name
            else:  # `import os.path` binds `os`
                self.imported[alias.name.split(".")[0]] = alias.name.split(".")[0]
            self._check_import(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            self.imported[alias.asname or alias.name] = f"{module}.{alias.name}"
        if self._check_import(node, module):
            return
        for alias in node.names:
            name = f"{module}.{alias.name}"
            category = _call_category(name)
            if category:
                self.flag(node, f"imports {name}: it {CATEGORIES[category]}", category)

    def _check_import(self, node: ast.AST, module: str) -> bool:
        top = module.split(".")[0]
        category = None
        if top == "IPython" and not module.startswith(_IPYTHON_OK):
            category, what = "ipython", "the notebook's own machinery"
        elif "viscoder" in module.lower():
            category, what = "probe", "this extension's own modules"
        else:
            category = next((c for c, modules in _MODULES.items() if top in modules), None)
            what = f"it {CATEGORIES[category]}" if category else ""
        if category:
            self.flag(node, f"imports {module}: {what}", category)
        return category is not None

    # calls
    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualified(node.func)
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        category = _call_category(name, modules=self._imported_root(node.func))
        if name in ("open", "io.open") and not _opens_for_writing(node):
            category = None  # reading is not flagged (reading a secret is, by the path's text)
        if category:
            self.flag(node, f"calls {name}: it {CATEGORIES[category]}", category)
        elif method in _WRITERS_WITH_DESTINATION and _has_destination(node):
            self.flag(node, f"calls .{method}(...) with a destination: it writes a file", "file")
        elif method:
            category = next((c for c, methods in _METHODS.items() if method in methods), None)
            if category:
                self.flag(node, f"calls .{method}(...): it {CATEGORIES[category]}", category)
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "delattr") and node.args:
            self._check_reflection(node)
        self.generic_visit(node)

    def _check_reflection(self, node: ast.Call) -> None:
        """`getattr(os, 'sys' + 'tem')`: the attribute's name is not in the text to review."""
        attribute = node.args[1] if len(node.args) > 1 else None
        if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
            self.flag(node, f"calls {node.func.id} with a name computed at run time", "dynamic")
            return
        owner = self.qualified(node.args[0])
        reached = f"{owner}.{attribute.value}" if owner else attribute.value
        if attribute.value.startswith("__") or _call_category(reached, modules=self._imported_root(node.args[0])):
            self.flag(node, f"reaches {reached} through {node.func.id}", "dynamic")

    # names, attributes, text
    def visit_Name(self, node: ast.Name) -> None:
        for category, names in _NAMES.items():
            if node.id in names:
                self.flag(node, f"uses {node.id}: it {CATEGORIES[category]}", category)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.qualified(node)
        for category, names in _NAMES.items():
            if node.attr in names:
                self.flag(node, f"uses {name or node.attr}: it {CATEGORIES[category]}", category)
        if name in _OWNED_ATTRIBUTES:
            category = _OWNED_ATTRIBUTES[name]
            self.flag(node, f"uses {name}: it {CATEGORIES[category]}", category)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        text = node.value
        if not isinstance(text, str) or len(text) > 500 or _looks_like_prose(text):
            return
        if _SECRET_TEXT.search(text):
            self.flag(node, f"names {_short(text)}: a credential or the home folder", "secrets")
        elif _PROBE_TEXT.search(text):
            self.flag(node, f"names {_short(text)}: the system's files or this extension", "probe")
        elif _URL_TEXT.match(text):
            self.flag(node, f"names the URL {_short(text)}: it reaches the network", "network")

    def qualified(self, node: ast.AST) -> str | None:
        """`o.path.join` after `import os as o` -> 'os.path.join'; None for anything but names."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        root = self.imported.get(node.id, _USUAL_ALIASES.get(node.id, node.id))
        return ".".join([_canonical(root), *reversed(parts)])

    def _imported_root(self, node: ast.AST) -> bool:
        """The expression starts from a name an import bound (not a variable that shares a module's name)."""
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in self.imported


# ---- helpers -----------------------------------------------------------------------------------

_USUAL_ALIASES = {"np": "numpy", "pd": "pandas", "pio": "plotly.io"}


def _call_category(name: str | None, modules: bool = True) -> str | None:
    """The category of a qualified call; with `modules`, any name under a flagged module counts."""
    if not name:
        return None
    for category, calls in _CALLS.items():
        if any(name == call or (call.endswith("*") and name.startswith(call[:-1])) for call in calls):
            return category
    if modules:
        top = name.split(".")[0]
        return next((c for c, names in _MODULES.items() if top in names), None)
    return None


def _canonical(module: str) -> str:
    """One name for one module: `posix` and `nt` are `os`."""
    top, _, rest = module.partition(".")
    return "os" + (f".{rest}" if rest else "") if top in ("posix", "nt") else module


def _opens_for_writing(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return bool(_WRITE_MODE.search(mode.value))
    return True  # a mode computed at run time may write


def _has_destination(node: ast.Call) -> bool:
    if node.args and not (isinstance(node.args[0], ast.Constant) and node.args[0].value is None):
        return True
    return any(k.arg in _DESTINATION_KEYWORDS for k in node.keywords)


def _escape_words(line: str) -> str:
    escape = line.split("=", 1)[1].strip() if not line.lstrip().startswith(("!", "%")) else line.strip()
    what = "runs a shell command" if escape.startswith("!") else "runs an IPython magic"
    return f"{what} ({_short(escape.split()[0] if escape.split() else escape)}): it is not Python"


def _looks_like_prose(text: str) -> bool:
    """A title or a label ('Trips to /home base by year'), not a path, a key or a URL."""
    stripped = text.strip()
    return " " in stripped and not stripped.startswith(("~", "/", ".")) and not _URL_TEXT.match(stripped)


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _finding(lines: list[str], number: int, why: str, category: str) -> Finding:
    text = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    return Finding(number, text if len(text) <= 120 else text[:117] + "...", why, category)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _in_order(findings: list[Finding]) -> list[Finding]:
    """In line order, each finding once."""
    return list(dict.fromkeys(sorted(findings, key=lambda f: f.line)))
