"""The working code as a collapsed, copyable block under the result.

Front ends that ignore IPython's `set_next_input` (VS Code, some others) insert no cell, so the
code would be lost; the block keeps it in the output either way. The code is the model's and
untrusted: it only ever appears HTML-escaped, as the text of a <pre>, never as markup or script.
"""

from __future__ import annotations

import html

SUMMARY = "Working code"

# Ours, fixed: reads the <pre>'s text back (unescaped), so nothing of the code reaches a script.
_COPY_SCRIPT = "navigator.clipboard.writeText(this.closest('details').querySelector('pre').textContent)"


def code_block_bundle(code: str) -> dict[str, str]:
    """A display bundle: the HTML block (closed; click to open, Copy or select all) and the
    plain text that front ends without HTML show instead."""
    lines = code.count("\n") + (0 if code.endswith("\n") else 1)
    block = (
        '<details class="viscoder-code">'
        f"<summary>{SUMMARY} ({lines} line{'s' if lines != 1 else ''})</summary>"
        f'<button type="button" title="Copy the code" onclick="{_COPY_SCRIPT}">Copy</button>'
        f'<pre style="user-select: all">{html.escape(code, quote=True)}</pre>'
        "</details>"
    )
    return {"text/html": block, "text/plain": f"{SUMMARY}:\n{code}"}


def show_code_block(code: str) -> None:
    from IPython.display import display

    display(code_block_bundle(code), raw=True)
