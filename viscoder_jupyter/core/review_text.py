"""Text inside the reviewed code that is code or names a way out: what the review reads in strings.

A string can name what the code reaches by name at run time (`getattr(x, '__globals__')`, a
format string `'{0.__self__}'`, `df.agg('to_pickle', ...)`), a matplotlib setting that runs a
program, a path to a credential or the system's files, or a URL; pandas' `query`/`eval` run their
text, calling what it names; a plotly renderer, a pandas plotting backend or a matplotlib style
are named by text too. Part of the review (core/code_review.py).
"""

from __future__ import annotations

import ast
import re

from .allowlist import INLINE_RENDERERS, PLOTTING_BACKENDS, PROGRAM_SETTINGS_KEY, TEXT_WRITERS, io_name

# Text that is a path to a secret or the home folder, to the system's own files, or names this
# package (words like "password" are left alone: they are column names as often as not).
_SECRET_TEXT = re.compile(
    r"(^~|\.ssh\b|id_rsa|id_ed25519|\.aws\b|\.netrc|\.gnupg|\.kube\b|\.docker\b|\.git-credentials|\.pypirc|"
    r"_history\b|\.jupyter\b|\.config/|/etc/shadow|/etc/passwd|keyring)",
    re.I,
)
_PROBE_TEXT = re.compile(r"(^/(proc|sys|dev|etc|root|home|run|var|boot|usr|tmp)(/|$)|viscoder|bwrap|bubblewrap)", re.I)
_URL_TEXT = re.compile(r"^\s*(https?|ftp|wss?|file)://", re.I)
# Text that names Python's internals or a display hook (`getattr(x, '__globals__')`, a format
# string `'{0.__self__}'`, `type('X', (), {'_repr_html_': ...})`), or one of the libraries' I/O
# methods (`df.agg('to_pickle', 'x.pkl')` calls it by name).
_DUNDER_TEXT = re.compile(r"__(?!main__)[A-Za-z]\w*__")
_HOOK_TEXT = re.compile(r"^_(repr_\w*|ipython_\w+)_$")
_AT_NAME = re.compile(r"@([A-Za-z_]\w*)")
_BACKTICKED = re.compile(r"`[^`]*`")


def review_text(node: ast.Constant, flag) -> None:
    text = node.value
    if len(text) > 2000:
        return
    if _DUNDER_TEXT.search(text):
        flag(node, f"names {_short(text)}: Python's internals, reached by name", "dynamic")
    elif _HOOK_TEXT.match(text):
        flag(node, f"names {_short(text)}: a hook that shows raw HTML or JavaScript", "display")
    elif PROGRAM_SETTINGS_KEY.match(text):
        flag(node, f"names the matplotlib setting {_short(text)}: it runs a program or starts a server", "process")
    elif ("_" in text and io_name(text)) or text in TEXT_WRITERS:
        flag(node, f"names the method {_short(text)}: it reads or writes outside memory", "file")
    if len(text) > 500 or _looks_like_prose(text):
        return
    if _SECRET_TEXT.search(text):
        flag(node, f"names {_short(text)}: a credential or the home folder", "secrets")
    elif _PROBE_TEXT.search(text):
        flag(node, f"names {_short(text)}: the system's files or this extension", "probe")
    elif _URL_TEXT.match(text):
        flag(node, f"names the URL {_short(text)}: it reaches the network", "network")


def review_pandas_text(
    node: ast.Call, method: str, pandas_eval: bool, flag, check_attribute, defined: set[str]
) -> None:
    """pandas' query/eval: the text calls what it names (`@name`, and in pd.eval every name)."""
    engine = next((k.value for k in node.keywords if k.arg == "engine"), None)
    if engine is not None and not (isinstance(engine, ast.Constant) and engine.value in ("numexpr", None)):
        flag(node, f"calls .{method}(..., engine=...) other than numexpr: the text runs as Python", "dynamic")
    text = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "expr"), None)
    if not (isinstance(text, ast.Constant) and isinstance(text.value, str)):
        flag(node, f"calls .{method}(...) with a text built at run time: what it runs cannot be reviewed", "dynamic")
        return
    source = _BACKTICKED.sub("_column_", text.value)
    referenced = set(_AT_NAME.findall(source))
    try:
        tree = ast.parse(_AT_NAME.sub(lambda m: m.group(1), source).strip())
    except SyntaxError:
        flag(node, f"calls .{method}(...) with a text that does not parse: it cannot be reviewed", "dynamic")
        return
    if pandas_eval:
        referenced |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    for inner in ast.walk(tree):
        if isinstance(inner, ast.Attribute):
            check_attribute(node, inner.attr, called=True)
        elif isinstance(inner, ast.Call) and not isinstance(inner.func, ast.Attribute):
            flag(node, f"calls .{method}(...) with a text that calls a function: it runs in the session", "dynamic")
    for name in sorted(referenced):
        if name not in defined and name not in ("True", "False"):
            flag(
                node,
                f"calls .{method}(...) with a text that reads `{name}`, which the code never defines",
                "undefined",
            )
        if re.search(rf"@{name}\s*[.(\[]", source) or (pandas_eval and re.search(rf"\b{name}\s*[.(]", source)):
            flag(
                node,
                f"calls .{method}(...) with a text that reaches into `{name}`: it runs in the session",
                "dynamic",
            )


def plotting_backend(flag, node, value) -> None:
    """pandas imports the plotting backend it is given by name: any module, side effects and all."""
    if not (isinstance(value, ast.Constant) and value.value in PLOTTING_BACKENDS):
        flag(node, "names a plotting backend other than matplotlib or plotly: pandas imports it", "outside")


def check_renderer(flag, node, value) -> None:
    if value is None:
        return
    names = value.value.split("+") if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
    if names is None or any(n.strip() not in INLINE_RENDERERS for n in names):
        flag(node, "shows the figure with a renderer that opens a browser or writes files", "process")


def style(flag, node: ast.Call) -> None:
    for arg in node.args:
        values = arg.elts if isinstance(arg, (ast.List, ast.Tuple)) else [arg]
        for value in values:
            if isinstance(value, ast.Dict):
                continue
            text = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
            if text is None or re.search(r"[/\\.:]", text):
                flag(node, "reads a matplotlib style from a file or URL", "file")


def _looks_like_prose(text: str) -> bool:
    """A title or a label ('Trips to /home base by year'), not a path, a key or a URL."""
    stripped = text.strip()
    return " " in stripped and not stripped.startswith(("~", "/", ".")) and not _URL_TEXT.match(stripped)


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
