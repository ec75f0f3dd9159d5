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
    return add_missing_imports(replace_data_loading(code, frame_names))


def replace_data_loading(code: str, frame_names: list[str]) -> str:
    """Drop `df = pd.read_csv(...)`; with one frame, `data = pd.read_csv(...)` becomes `data = df`."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code  # let it fail in the kernel: the traceback is the model's best feedback
    lines = code.splitlines()
    for node in reversed(tree.body):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and _is_reader_call(node.value)):
            continue
        target = node.targets[0]
        name = target.id if isinstance(target, ast.Name) else None
        if name in frame_names:
            replacement = []
        elif name and len(frame_names) == 1:
            indent = lines[node.lineno - 1][: node.col_offset]
            replacement = [f"{indent}{name} = {frame_names[0]}"]
        else:
            continue
        lines[node.lineno - 1 : node.end_lineno] = replacement
    return "\n".join(lines)


def _is_reader_call(value: ast.AST) -> bool:
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in _READERS
    )


def add_missing_imports(code: str) -> str:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    bound: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else used).add(node.id)
    missing = [stmt for alias, stmt in _USUAL_IMPORTS.items() if alias in used and alias not in bound]
    return "\n".join(missing + [code]) if missing else code
