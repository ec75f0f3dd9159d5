"""An attempt's output, kept within caps while it arrives, and collected into images,
plotly figures, text, the first error and the figure facts.

Everything here comes from the child, which runs hostile code: a payload of the wrong
shape ends the attempt with an error (`Collected.problem`), never with our traceback.
Bytes are bounded earlier, before decoding, in channels.py.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from .plotly_safety import safe_figure

STDOUT_CAP = 20_000  # characters of stdout/stderr kept per attempt
DISPLAY_CAP = 64 * 2**20  # bytes of images and other rich output kept per attempt
MESSAGE_CAP = 64 * 2**20  # bytes of one frame from the child (zmq drops the connection past it)
ATTEMPT_BYTES_CAP = 4 * DISPLAY_CAP  # bytes of iopub messages decoded per attempt
REPLY_CAP = 2**20  # bytes of one shell reply
ERROR_CAP = 8_000  # characters of one traceback kept: the model's prompt and the printed history
ERROR_VALUE_CAP = 2_000  # characters of an exception's message kept
TOO_BIG_ENAME = "OutputTooLarge"
TRUNCATED = "\n[... truncated]"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
FACTS_MIME = "application/vnd.viscoder.figure-facts+json"  # what the child saw in the attempt's figures
FRAMES_MIME = "application/vnd.viscoder.frame-prints+json"  # the frames' fingerprints, after loading or an attempt
ERROR_FACTS_MIME = "application/vnd.viscoder.error-facts+json"  # what the child saw where the code raised
_RICH = ("display_data", "execute_result", "update_display_data")
_OURS = (FACTS_MIME, FRAMES_MIME, ERROR_FACTS_MIME)


_client_class: Any = None


def capped_client_class() -> Any:
    """A NotebookClient that stops keeping output past the caps, as messages arrive.

    A flood is still received (and the attempt's timeout still ends it) but what is kept
    stays bounded, so the notebook's memory does not grow with it. Widgets are ignored
    (no comm is answered or stored); a message nbclient cannot read becomes `problem`.
    """
    global _client_class
    if _client_class is None:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionComplete

        from .channels import DROPPED

        class CappedClient(NotebookClient):
            kept_text = kept_rich = 0
            truncated = False
            problem: str | None = None
            last_reply: dict | None = None
            errors_seen = 0

            def reset_caps(self) -> None:
                self.kept_text = self.kept_rich = self.errors_seen = 0
                self.truncated = False
                self.problem = None
                for channel in self.kc.bounded_channels() if self.kc is not None else []:
                    channel.reset()

            def process_message(self, msg, cell, cell_index):
                try:
                    if msg["msg_type"] == DROPPED:
                        self.truncated = True
                        return None
                    if not isinstance(msg["content"], dict):
                        raise TypeError("content is not an object")
                    return super().process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    raise
                except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                    self.problem = (
                        self.problem or f"a {str(msg.get('msg_type'))[:40]} message nbclient cannot read ({exc!r:.80})"
                    )
                    return None

            def handle_comm_msg(self, outs, msg, cell_index):
                pass  # no widgets in the child: nothing stored, no Output widget capturing output

            def _update_display_id(self, display_id, msg):
                size = _rich_size(msg["content"])
                if self.kept_rich + size > DISPLAY_CAP:
                    self.truncated = True
                    return None
                self.kept_rich += size
                return super()._update_display_id(display_id, msg)

            def output(self, outs, msg, display_id, cell_index):
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    text, room = content.get("text", ""), STDOUT_CAP - self.kept_text
                    if not isinstance(text, str):
                        raise TypeError("stream text is not a string")
                    if len(text) > room:
                        self.truncated = True
                        if room <= 0:
                            return None
                        msg = {**msg, "content": {**content, "text": text[:room]}}
                    self.kept_text += min(len(text), room)
                elif kind in _RICH:
                    size = _rich_size(content)
                    if self.kept_rich + size > DISPLAY_CAP:
                        self.truncated = True
                        return None
                    self.kept_rich += size
                elif kind == "error":
                    self.errors_seen += 1
                    if self.errors_seen > 1:  # showtraceback() in a loop: the first one is the error
                        self.truncated = True
                        return None
                    msg = {**msg, "content": cap_error(content)}
                return super().output(outs, msg, display_id, cell_index)

        _client_class = CappedClient
    return _client_class


def _rich_size(content: dict) -> int:
    data = content.get("data") or {}
    if not isinstance(data, dict):
        raise TypeError("display data is not an object")
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data.values())


def cap_error(content: dict) -> dict:
    """An error's name, message and traceback within the caps (the traceback's end is kept:
    it names the failing line and the exception)."""
    ename, evalue = str(content.get("ename", "Error"))[:200], str(content.get("evalue", ""))
    tb = content.get("traceback") or []
    lines = [str(line)[:ERROR_VALUE_CAP] for line in (tb if isinstance(tb, list) else [tb])]
    kept, room = [], ERROR_CAP
    for line in reversed(lines):
        if len(line) + 1 > room:
            break
        kept.append(line)
        room -= len(line) + 1
    if len(kept) < len(lines):
        kept.append(f"[... {len(lines) - len(kept)} traceback lines cut]")
    if len(evalue) > ERROR_VALUE_CAP:
        evalue = evalue[:ERROR_VALUE_CAP] + TRUNCATED
    return {**content, "ename": ename, "evalue": evalue, "traceback": kept[::-1]}


@dataclass
class Collected:
    images: list[bytes] = field(default_factory=list)  # PNG bytes, in order
    plotly_json: list[dict] = field(default_factory=list)
    stdout: str = ""
    error: dict | None = None  # the first error output
    figure_facts: list[dict] | None = None  # None: the child reported nothing
    frame_prints: dict | None = None  # name -> fingerprint (None: deleted), as the child reported them
    problem: str | None = None  # a payload of the wrong shape: the attempt fails with it
    error_facts: list[str] = field(default_factory=list)  # short lines on the live objects at the error


def collect(outputs: list, truncated: bool = False) -> Collected:
    """Images, plotly figures, stream text, the first error and the figure facts of one attempt."""
    got = Collected()
    text: list[str] = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text.append(out.get("text", ""))
        elif kind in ("display_data", "execute_result"):
            try:
                _collect_display(out.get("data", {}), got)
            except (TypeError, ValueError, binascii.Error) as exc:
                got.problem = got.problem or str(exc)
        elif kind == "error" and got.error is None:
            got.error = dict(out)
    got.stdout = "".join(text)
    if truncated or len(got.stdout) > STDOUT_CAP:
        got.stdout = got.stdout[:STDOUT_CAP] + TRUNCATED
    return got


def _collect_display(data: dict, got: Collected) -> None:
    if FACTS_MIME in data:
        got.figure_facts = checked_facts(data[FACTS_MIME])
        return
    if FRAMES_MIME in data:
        got.frame_prints = checked_prints(data[FRAMES_MIME])
        return
    if ERROR_FACTS_MIME in data:
        got.error_facts = checked_error_facts(data[ERROR_FACTS_MIME])
        return
    if data.get("image/png"):
        png = data["image/png"]
        if not isinstance(png, str):
            raise TypeError("an image/png output is not a base64 string")
        image = base64.b64decode(png, validate=True)
        if not image.startswith(PNG_MAGIC):
            raise ValueError("an image/png output is not a PNG image")
        got.images.append(image)
    if data.get(PLOTLY_MIME):
        fig = json.loads(json.dumps(data[PLOTLY_MIME]))
        if not isinstance(fig, dict) or not isinstance(fig.get("data", []), list):
            raise TypeError("a plotly figure is not an object with a list of traces")
        if not all(isinstance(trace, dict) for trace in fig.get("data", [])) or not isinstance(
            fig.get("layout", {}), dict
        ):
            raise TypeError("a plotly figure's traces or layout are not objects")
        got.plotly_json.append(safe_figure(fig))  # drawn in the user's browser: nothing that fetches


# ---- the child's reports, checked against what it sends when it is not tampered with -------------
_TEXT, _ITEMS = 200, 1000  # characters of a string, items of a list, kept from a report
_PAIR = ("pair",)
_BAR_SET = {
    "orientation": (str, None),
    "count": int,
    "positions": [float],
    "lengths": [float],
    "distinct_positions": int,
    "shared_positions": int,
    "overlapping": int,
}
_LINE_ORDER = {
    "points": int,
    "distinct_x": int,
    "back": int,
    "forward": int,
    "big_back": int,
    "reversals": int,
    "mean_step": float,
    "straight": bool,
}
_AXES = {
    "marks": int,
    "visible": bool,
    "title": str,
    "crowded_x": _PAIR,
    "crowded_y": _PAIR,
    "lines": int,
    "points": int,
    "bars": int,
    "bar_sets": [_BAR_SET],
    "orientation": (str, None),
    "ticks_x": [str],
    "ticks_y": [str],
    "legend": [str],
    "legend_empty": bool,
    "unordered_lines": [_LINE_ORDER],
    "shape_error": str,
}
_FIGURE = {"axes": [_AXES], "texts": int, "legend": [str], "legend_empty": bool, "error": str}


def checked_facts(report: Any) -> list[dict]:
    if not isinstance(report, dict) or not isinstance(report.get("figures"), list):
        raise TypeError("the figure facts are not an object with a list of figures")
    return _checked(report["figures"], [_FIGURE], "figure facts")


def checked_error_facts(report: Any) -> list[str]:
    """At most 6 lines of at most 240 characters: a hint for the model, never more room than that."""
    facts = _checked(report, {"facts": [str]}, "error facts").get("facts", [])
    return [fact[:240] for fact in facts[:6]]


def checked_prints(report: Any) -> dict:
    if not isinstance(report, dict):
        raise TypeError("the frames' fingerprints are not an object")
    return _checked(report, {"prints": {}, "changes": {}}, "frame fingerprints")


def _checked(value: Any, schema: Any, where: str) -> Any:
    """`value` as `schema` describes it (types, lists of a schema, objects of known keys), with
    strings and lists cut to size and unknown keys left out; TypeError when a type is wrong."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise TypeError(f"the {where} hold {type(value).__name__} where an object belongs")
        if not schema:  # a free mapping of names to short strings or None
            return {str(k)[:_TEXT]: None if v is None else str(v)[:_TEXT] for k, v in list(value.items())[:_ITEMS]}
        return {k: _checked(value[k], sub, where) for k, sub in schema.items() if k in value}
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise TypeError(f"the {where} hold {type(value).__name__} where a list belongs")
        return [_checked(v, schema[0], where) for v in value[:_ITEMS]]
    if schema == _PAIR:
        if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value)):
            raise TypeError(f"the {where} hold {value!r:.40} where two counts belong")
        return value
    if isinstance(schema, tuple):  # str or None
        return None if value is None else _checked(value, schema[0], where)
    ok = (
        _is_int(value) or isinstance(value, float)
        if schema is float
        else (_is_int(value) if schema is int else isinstance(value, schema))
    )
    if not ok:
        raise TypeError(f"the {where} hold {type(value).__name__} where {schema.__name__} belongs")
    return value[:_TEXT] if isinstance(value, str) else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
