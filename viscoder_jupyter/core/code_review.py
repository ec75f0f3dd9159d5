"""A review of generated code before it reaches the user: an allowlist of what plotting code uses.

The model's code is treated as hostile (steered by text in the user's data, or a compromised
model). The child kernel's sandbox contains it while it is tried; the cell the magic inserts and
the code the sidebar proposes run in the user's own kernel, so they are reviewed here first,
against the small world plotting code lives in (core/allowlist.py says what it holds and why):
the allowed modules and their public API, the frames the code was given, the names it defines
itself and safe builtins. What leaves that world is a finding, named by line and why: an import
from outside, `from x import *`, a name the code reads but has not set (in the user's kernel it
would be the session's own; core/review_names.py), dunder attributes and reflection with names
built at run time, `eval`/`exec`/`open`/... referenced at all, a module reached through an
allowed one (`matplotlib.os`), the libraries' own file and network I/O (`to_csv` to a path,
`read_pickle` of a URL, `savefig`, `np.memmap`, `fig.write_html`, `query(engine='python')`),
raw HTML or JavaScript shown in the notebook, and IPython escapes. Plotting code needs none of
them, so a finding is never normal.

Saving a figure (`savefig`, `write_image`) counts as a file write: it can overwrite any file
the user may write (`savefig('~/.bashrc', format='png')`), and the figure is shown inline
anyway; the repairs (codeblocks.repair_code) already drop a plain `plt.savefig(...)` line,
so the review meets one only where the model hid it or repairs are off.

Nothing here runs the code; the only imports are allowed libraries the code itself imports
(to look their attributes up, core/allowlist.py).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .allowlist import REFLECTION, SAFE_BUILTINS, UNSAFE_BUILTINS
from .errors import FigureProblem
from .review_names import check_names
from .review_rules import Reviewer
from .review_text import review_text

#: Category -> how the header and the model's feedback name it.
CATEGORIES = {
    "network": "reaches the network",
    "process": "runs other programs",
    "file": "reads or writes files",
    "dynamic": "runs code built at run time or reaches Python's internals",
    "secrets": "reads the environment or credentials",
    "ipython": "uses an IPython escape",
    "probe": "probes the machine it runs on",
    "outside": "reaches outside what plotting code uses",
    "undefined": "reads names it never defines",
    "display": "shows raw HTML or JavaScript in the notebook",
    "unreviewed": "could not be reviewed",
}

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


def review_code(code: str, frames: Iterable[str] = ()) -> list[Finding]:
    """What in `code` leaves the world plotting code lives in, in line order; [] when nothing does.

    `frames`: the names of the frames the code was given (it may read them without defining them)."""
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

    def flag(node: ast.AST, why: str, category: str) -> None:
        findings.append(_finding(lines, getattr(node, "lineno", 1), why, category))

    given = {name for name in frames if isinstance(name, str)}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound |= {
        a.asname or a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    bound |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    Reviewer(flag, bound, given).review(tree)

    def undefined(node: ast.Name, set_somewhere: bool) -> None:
        if node.id in UNSAFE_BUILTINS or node.id in REFLECTION:
            return  # flagged with its own reason
        if isinstance(node.ctx, ast.Del):
            flag(node, f"deletes `{node.id}`, which the code did not set: it is your session's own", "undefined")
        elif set_somewhere:
            flag(
                node,
                f"reads `{node.id}` where the code may not have set it yet: your session's own `{node.id}` would be used",
                "undefined",
            )
        else:
            flag(
                node,
                f"reads `{node.id}`, which the code never defines: in your kernel it would be your session's own",
                "undefined",
            )

    check_names(tree, SAFE_BUILTINS | given, undefined)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            review_text(node, flag)
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
        "Plotting code uses only pandas, numpy, matplotlib, seaborn, plotly, scipy/statsmodels and pure "
        "helpers (math, datetime, collections, ...), the frames it was given and names it defines itself: "
        "no other modules, no files (the figure is shown, not saved; the data is already loaded), no "
        "eval/exec/getattr tricks or dunder attributes, no raw HTML, no IPython `!`/`%` commands. "
        f"Write the plot again with pandas and {lib} only, and show it."
    )


def header_lines(findings: list[Finding]) -> list[str]:
    """The comment block above a cell inserted commented out: each flagged line and why."""
    return [
        "# VisCoder inserted this code commented out: the review flagged lines that plotting code",
        "# never needs. Read it; delete the flagged lines, or uncomment the code if you trust it.",
        *(f"#   {f.describe()}" for f in findings),
    ]


# ---- helpers -----------------------------------------------------------------------------------


def _escape_words(line: str) -> str:
    escape = line.split("=", 1)[1].strip() if not line.lstrip().startswith(("!", "%")) else line.strip()
    what = "runs a shell command" if escape.startswith("!") else "runs an IPython magic"
    return f"{what} ({_short(escape.split()[0] if escape.split() else escape)}): it is not Python"


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
