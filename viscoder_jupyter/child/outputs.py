"""An attempt's output, kept within caps while it arrives, and collected into images,
plotly figures, text, the first error and the figure facts."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from .plotly_safety import safe_figure

STDOUT_CAP = 20_000  # characters of stdout/stderr kept per attempt
DISPLAY_CAP = 64 * 2**20  # bytes of images and other rich output kept per attempt
TRUNCATED = "\n[... truncated]"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
FACTS_MIME = "application/vnd.viscoder.figure-facts+json"  # what the child saw in the attempt's figures
_RICH = ("display_data", "execute_result", "update_display_data")


_client_class: Any = None


def capped_client_class() -> Any:
    """A NotebookClient that stops keeping output past the caps, as messages arrive.

    A flood is still received (and the attempt's timeout still ends it) but what is kept
    stays bounded, so the notebook's memory does not grow with it.
    """
    global _client_class
    if _client_class is None:
        from nbclient import NotebookClient

        class CappedClient(NotebookClient):
            kept_text = kept_rich = 0
            truncated = False

            def reset_caps(self) -> None:
                self.kept_text = self.kept_rich = 0
                self.truncated = False

            def output(self, outs, msg, display_id, cell_index):
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    text, room = content.get("text", ""), STDOUT_CAP - self.kept_text
                    if len(text) > room:
                        self.truncated = True
                        if room <= 0:
                            return None
                        msg = {**msg, "content": {**content, "text": text[:room]}}
                    self.kept_text += min(len(text), room)
                elif kind in _RICH:
                    size = sum(
                        len(v) if isinstance(v, str) else len(json.dumps(v))
                        for v in (content.get("data") or {}).values()
                    )
                    if self.kept_rich + size > DISPLAY_CAP:
                        self.truncated = True
                        return None
                    self.kept_rich += size
                return super().output(outs, msg, display_id, cell_index)

        _client_class = CappedClient
    return _client_class


@dataclass
class Collected:
    images: list[bytes] = field(default_factory=list)  # PNG bytes, in order
    plotly_json: list[dict] = field(default_factory=list)
    stdout: str = ""
    error: dict | None = None  # the first error output
    figure_facts: list[dict] | None = None  # None: the child reported nothing


def collect(outputs: list, truncated: bool = False) -> Collected:
    """Images, plotly figures, stream text, the first error and the figure facts of one attempt."""
    images: list[bytes] = []
    plotly_json: list[dict] = []
    text: list[str] = []
    error = None
    facts = None
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text.append(out.get("text", ""))
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            if FACTS_MIME in data:
                facts = json.loads(json.dumps(data[FACTS_MIME])).get("figures", [])
                continue
            if data.get("image/png"):
                images.append(base64.b64decode(data["image/png"]))
            if data.get(PLOTLY_MIME):
                plotly_json.append(safe_figure(data[PLOTLY_MIME]))  # drawn in the user's browser: nothing that fetches
        elif kind == "error" and error is None:
            error = dict(out)
    stdout = "".join(text)
    if truncated or len(stdout) > STDOUT_CAP:
        stdout = stdout[:STDOUT_CAP] + TRUNCATED
    return Collected(images, plotly_json, stdout, error, facts)
