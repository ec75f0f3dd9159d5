"""From a model reply to code that runs against the user's frames."""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_READERS = {"read_csv", "read_excel", "read_parquet", "read_json", "read_table", "read_pickle", "read_feather"}

# Aliases the model takes for granted; added when used but not imported, so the
# inserted cell also runs in a kernel that never imported them.
_USUAL_IMPORTS = {
    "np": "import numpy as np",
    "pd": "import pandas as pd",
    "plt": "import matplotlib.pyplot as plt",
    "sns": "import seaborn as sns",
    "px": "import plotly.express as px",
    "go": "import plotly.graph_objects as go",
}


def extract_code(reply: str) -> str | None:
    """The first ```python block (closed or cut off), else the whole reply if it parses.

    None when the reply holds no code at all.
    """
    match = _FENCE.search(reply)
    if match:
        code = match.group(1).strip("\n")
        return code if code.strip() else None
    text = reply.strip()
    if not text:
        return None
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    # A bare name or string is prose that happens to parse, not a program.
    if all(isinstance(node, ast.Expr) and isinstance(node.value, (ast.Name, ast.Constant)) for node in tree.body):
        return None
    return text


def prepare_code(code: str, frame_names: list[str]) -> str:
    """Use the live frames instead of reading files, and add the usual imports."""
    return repair_code(code, frame_names)[0]


def repair_code(code: str, frame_names: list[str], *, only_frame_reads: bool = False) -> tuple[str, list[str]]:
    """Mend, without the model, what would fail for reasons beside the plot itself.

    Reading the data from a file (the frames are live variables), missing imports of the
    usual aliases, and saving instead of showing (`savefig`, `write_image`, `plt.close`,
    `matplotlib.use`). Returns the code and one note per repair, for the attempt history.
    `only_frame_reads`: just drop the lines that read a frame from its file, which the prompt
    asks for (as PandasPlotBench's harness drops `df = pd.read_csv(...)`), with repairs off.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code, []  # let it fail in the kernel: the traceback is the model's best feedback
    lines = code.splitlines()
    notes: list[str] = []
    for node in sorted(_statements(tree), key=lambda n: n.lineno, reverse=True):
        if only_frame_reads:
            replacement = _frame_read(node, lines, frame_names) if isinstance(node, ast.Assign) else None
        else:
            replacement = (
                _data_loading(node, lines, frame_names) if isinstance(node, ast.Assign) else _file_output(node, lines)
            )
        if replacement is None:
            continue
        new_lines, note = replacement
        old = ast.get_source_segment(code, node) or lines[node.lineno - 1].strip()
        start = node.lineno - 1
        if not new_lines:  # a comment that introduced the removed line ("# Load the data") goes too
            while (
                start > 0
                and lines[start - 1].strip().startswith("#")
                and _indent(lines[start - 1]) == _indent(lines[node.lineno - 1])
            ):
                start -= 1
        lines[start : node.end_lineno] = new_lines
        if not new_lines:
            _close_gap(lines, start)
        notes.insert(0, f"{note}: `{old.strip()[:80]}`")
    code = "\n".join(lines)
    if only_frame_reads:
        return code, notes
    missing = missing_imports(code)
    if missing:
        notes.append("added " + "; ".join(f"`{stmt}`" for stmt in missing))
        code = "\n".join(missing + [code])
    return code, notes


def _close_gap(lines: list[str], at: int) -> None:
    """Where lines were dropped, the run of blank lines around the gap closes up to one blank
    line (none at the top or the bottom). Lines next to a removed statement lie between
    statements, so no blank line inside a string is touched."""
    start, end = at, at
    while start > 0 and not lines[start - 1].strip():
        start -= 1
    while end < len(lines) and not lines[end].strip():
        end += 1
    lines[start:end] = [""] if 0 < start and end < len(lines) and end > start else []


def _statements(tree: ast.AST):
    """Every statement, nested ones too (a read_csv inside `main()` counts)."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]


def _frame_read(node: ast.Assign, lines: list[str], frame_names: list[str]):
    target = node.targets[0] if len(node.targets) == 1 else None
    if isinstance(target, ast.Name) and target.id in frame_names:
        return _data_loading(node, lines, frame_names)
    return None


def _data_loading(node: ast.Assign, lines: list[str], frame_names: list[str]):
    if not (len(node.targets) == 1 and _is_reader_call(node.value)):
        return None
    target = node.targets[0]
    name = target.id if isinstance(target, ast.Name) else None
    indent = lines[node.lineno - 1][: node.col_offset]
    if name in frame_names:
        return [f"{indent}pass"] if _only_statement(node, lines) else [], "dropped reading the data from a file"
    if name and len(frame_names) == 1:
        # A copy, not an alias: code that then changes `name` must not change the user's frame.
        return [
            f"{indent}{name} = {frame_names[0]}.copy()"
        ], f"used the live frame `{frame_names[0]}` instead of a file"
    return None


_OUTPUT_CALLS = {"savefig", "write_image", "write_html", "close"}


def _file_output(node: ast.stmt, lines: list[str]):
    """`plt.savefig(...)`, `fig.write_image(...)`, `plt.close()`, `matplotlib.use('Agg')` as statements."""
    if not (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and isinstance(node.value.func.value, ast.Name)
    ):
        return None
    owner, attr = node.value.func.value.id, node.value.func.attr
    if attr == "use" and owner in ("matplotlib", "mpl"):
        note = "removed choosing a matplotlib backend (the figure is shown inline)"
    elif attr == "close" and owner == "plt":
        note = "removed closing the figure before it is shown"
    elif attr in _OUTPUT_CALLS - {"close"}:
        note = "removed saving to a file (the figure is shown, not saved)"
    else:
        return None
    indent = lines[node.lineno - 1][: node.col_offset]
    return [f"{indent}pass"] if _only_statement(node, lines) else [], note


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _only_statement(node: ast.stmt, lines: list[str]) -> bool:
    """Removing it would leave an empty block: the previous line opens one at a lower indent."""
    if node.col_offset == 0 or node.lineno < 2:
        return False
    before = lines[node.lineno - 2].rstrip()
    following = lines[node.end_lineno] if node.end_lineno < len(lines) else ""
    follow_indent = len(following) - len(following.lstrip())
    return before.endswith(":") and not (following.strip() and follow_indent >= node.col_offset)


def _is_reader_call(value: ast.AST) -> bool:
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in _READERS


def missing_imports(code: str) -> list[str]:
    """Import statements for the usual aliases the code uses but never binds."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    bound: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else used).add(node.id)
    return [stmt for alias, stmt in _USUAL_IMPORTS.items() if alias in used and alias not in bound]
