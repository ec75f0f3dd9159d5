"""How often the allowlist review of generated code (core/code_review.py) flags real plotting replies.

Runs the review over every reply of every reply cache in benchmarks/replies/ (or the files
named), on the code as the loop reviews it: extracted from the reply, repaired as the loop
repairs it (the line reading the frame from its file and plain `savefig` lines dropped, the
usual imports added), with the frame the prompt names (`df`) given.

A flagged reply is one of two kinds, told apart without running it:
- broken anyway: a statement at the top level of the code reads a name the code never defines
  (not a frame, not a builtin), or imports a module or a name that does not exist; that line
  raises in the child kernel, so the attempt fails and is never inserted (the review's finding
  only names the cause again);
- a false positive: code that may run and draw, flagged. Each is printed with its findings.
The share that counts is false positives over the replies that parse (at most 1%).

With `--run DATA` (a PandasPlotBench folder with csv/data-N.csv), each flagged reply that is not
broken anyway is also run, in a child Python with no display, against each task's data in turn:
one that raises on every task does not draw either, and is counted with the broken ones.

    .venv/bin/python benchmarks/review_false_positives.py [--run DATA] [replies.jsonl ...]
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from viscoder_jupyter.core.code_review import review_code
from viscoder_jupyter.core.codeblocks import extract_code, repair_code

REPLIES = Path(__file__).parent / "replies"
FRAMES = ["df"]  # PandasPlotBench's prompt names its frame `df`


def replies(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            yield record.get("text") or record.get("reply") or ""


def as_the_loop_reviews(reply: str) -> str | None:
    code = extract_code(reply)
    return repair_code(code, FRAMES)[0] if code else None


def broken_anyway(code: str) -> str | None:
    """Why the code surely raises before it could be inserted, or None."""
    tree = ast.parse(code)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    bound |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    bound |= {
        (a.asname or a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    for statement in tree.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            missing = _missing_import(statement)
            if missing:
                return f"line {statement.lineno}: {missing} does not exist"
            continue
        for node in _evaluated_now(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id not in bound and node.id not in FRAMES and not hasattr(builtins, node.id):
                    return f"line {node.lineno}: `{node.id}` is never defined (NameError)"
    return None


def _evaluated_now(statement: ast.stmt):
    """The nodes of a top-level statement that run when it runs (not bodies of defs or lambdas)."""
    if isinstance(
        statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Try, ast.If, ast.For, ast.While)
    ):
        return  # a body that may not run, or runs later
    stack = [statement]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(ast.iter_child_nodes(node))


def _missing_import(statement) -> str | None:
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            if not _module_exists(alias.name):
                return alias.name
        return None
    if statement.level or not statement.module:
        return None
    if not _module_exists(statement.module):
        return statement.module
    module = importlib.import_module(statement.module)
    for alias in statement.names:
        if (
            alias.name != "*"
            and not hasattr(module, alias.name)
            and not _module_exists(f"{statement.module}.{alias.name}")
        ):
            return f"{statement.module}.{alias.name}"
    return None


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_RUN = """
import sys, warnings, matplotlib
matplotlib.use("Agg")
warnings.simplefilter("ignore")
import pandas as pd, matplotlib.pyplot as plt
code = open(sys.argv[1]).read()
for csv in sys.argv[2:]:
    plt.close("all")
    try:
        exec(compile(code, "<reply>", "exec"), {"df": pd.read_csv(csv), "__name__": "__main__"})
    except BaseException:
        continue
    if plt.get_fignums():
        print("DREW", csv)
        break
"""


def draws_on_some_task(code: str, data: Path) -> bool:
    """Run the code (a cached reply of our own model, reviewed) against each task's data in a child."""
    tables = sorted(str(p) for p in (data / "csv").glob("*.csv"))
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "reply.py"
        source.write_text(code, encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-c", _RUN, str(source), *tables],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            return True  # not shown to fail
    return "DREW" in done.stdout


def main(paths: list[Path], data: Path | None = None) -> int:
    parsed = flagged = broken = 0
    kinds: Counter[str] = Counter()
    false_positives: list[tuple[str, str, list]] = []
    for path in paths:
        for reply in replies(path):
            code = as_the_loop_reviews(reply)
            if code is None:
                continue
            findings = review_code(code, FRAMES)
            # Code that does not parse (a reply cut off at the token limit) fails in the child and is
            # never inserted; the review calls it unreviewed, which is counted apart.
            if any(f.category == "unreviewed" for f in findings):
                continue
            parsed += 1
            if not findings:
                continue
            flagged += 1
            kinds.update(f.category for f in findings)
            if broken_anyway(code) or (data is not None and not draws_on_some_task(code, data)):
                broken += 1
            else:
                false_positives.append((path.name, code, findings))
    share = 100 * len(false_positives) / max(1, parsed)
    print(
        f"{parsed} replies that parse ({', '.join(p.name for p in paths)}): {flagged} flagged {dict(kinds)}; "
        f"{broken} of them raise anyway (a name never defined or an import that does not exist, at the top "
        f"level{', or do not draw on any task' if data else ''}); false positives: {len(false_positives)} ({share:.1f}%)"
    )
    for name, _code, findings in false_positives:
        print(f"--- false positive ({name}):")
        for finding in findings:
            print("    " + finding.describe())
    return 0 if share <= 1.0 else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    data = Path(args.pop(args.index("--run") + 1)) if "--run" in args else None
    args = [a for a in args if a != "--run"]
    sys.exit(main([Path(p) for p in args] or sorted(REPLIES.glob("*.jsonl")), data))
