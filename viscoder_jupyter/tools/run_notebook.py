"""Execute a notebook headless and apply `%%viscoder`'s inserted cells, as JupyterLab would.

    python -m viscoder_jupyter.tools.run_notebook IN.ipynb OUT.ipynb [--timeout S]

nbclient runs every cell in a real kernel; a cell that asked for a new cell below
(IPython's set_next_input payload) gets it in the written notebook, unexecuted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient


def execute(nb: nbformat.NotebookNode, timeout: float = 1800, cwd: str | None = None) -> nbformat.NotebookNode:
    """Execute in place; returns the notebook with inserted cells added below their parents."""
    inserts: list[tuple[int, str]] = []

    def on_cell_executed(cell, cell_index, execute_reply, **_):
        for payload in (execute_reply or {}).get("content", {}).get("payload", []):
            if payload.get("source") == "set_next_input" and not payload.get("replace"):
                inserts.append((cell_index, payload["text"]))

    with tempfile.TemporaryDirectory(prefix="vc-nb-") as sockets:
        # ipc, like the child kernel: no "running over TCP" warning on the terminal.
        km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "k"))
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            store_widget_state=True,
            on_cell_executed=on_cell_executed,
            resources={"metadata": {"path": cwd}} if cwd else {},
        )
        try:
            client.execute()
        finally:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
    for index, text in sorted(inserts, reverse=True):
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["viscoder"] = {"inserted_by": "%%viscoder"}
        nb.cells.insert(index + 1, cell)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a cell may run")
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    started = time.perf_counter()
    execute(nb, args.timeout, cwd=os.path.dirname(os.path.abspath(args.notebook)))
    nbformat.write(nb, args.output)
    print(f"executed {args.notebook} in {time.perf_counter() - started:.1f} s -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
