"""Small helpers shared by tests: replay files and frame fingerprints."""

from __future__ import annotations

import json

import pandas as pd

GOOD_BAR = (
    "Here is the plot.\n```python\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
    "df = pd.read_csv('data.csv')\n"
    "totals = df.groupby('region')['revenue'].sum()\n"
    "plt.bar(totals.index, totals.values)\nplt.title('Revenue by region')\nplt.show()\n```\n"
)


def key_error(frame: str = "sales") -> str:
    """A reply whose code asks for a column that does not exist."""
    return (
        f"```python\nimport matplotlib.pyplot as plt\nplt.bar({frame}['Region'], {frame}['revenue'])\nplt.show()\n```"
    )


def sales_frame() -> pd.DataFrame:
    return pd.DataFrame({"region": ["North", "South", "West", "North"], "revenue": [10.0, 7.5, 3.0, 4.0]})


def write_replies(path, *replies) -> str:
    path.write_text("".join(json.dumps({"reply": r}) + "\n" for r in replies), encoding="utf-8")
    return str(path)


def fingerprint(df: pd.DataFrame) -> tuple:
    """Values, index, column names and dtypes: changes if anything about the frame changes."""
    return (
        tuple(pd.util.hash_pandas_object(df, index=True)),
        tuple(map(str, df.columns)),
        tuple(map(str, df.dtypes)),
    )


def magics_of(ip):
    """The VisCoderMagics instance registered on an IPython shell."""
    return ip.magics_manager.registry["VisCoderMagics"]


def processes_gone(pids, seconds: float = 30) -> bool:
    """Whether every process in `pids` has ended within `seconds`."""
    import time

    from viscoder_jupyter.child.processes import alive

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(map(alive, pids)):
            return True
        time.sleep(0.1)
    return False


def empty_offline_hub_cache(monkeypatch, tmp_path):
    """An empty Hugging Face cache under `tmp_path` (returned), with HF_HUB_OFFLINE set."""
    import huggingface_hub.constants as constants

    hub = tmp_path / "hf" / "hub"
    hub.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    return hub


async def cancel_while_streaming(backend, messages, chunks: list, stamps: list, after: int, timeout: float) -> float:
    """Start a generation, cancel it once `after` chunks have streamed (into `chunks`, with
    their times in `stamps`), and return the seconds from the cancel to the task's end."""
    import asyncio
    import time

    import pytest

    streaming = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_text(chunk):  # called on the backend's worker thread
        chunks.append(chunk)
        stamps.append(time.perf_counter())
        if len(chunks) >= after:
            loop.call_soon_threadsafe(streaming.set)

    task = asyncio.create_task(backend.async_generate(messages, on_text))
    await asyncio.wait_for(streaming.wait(), timeout=timeout)
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.perf_counter() - started


def record_requests(backend) -> list[list[dict]]:
    """The backend, unchanged, keeping the messages of every request it is sent (in order)."""
    sent: list[list[dict]] = []
    generate = backend.async_generate

    async def recording(messages, on_text=None, **kw):
        sent.append(list(messages))
        return await generate(messages, on_text, **kw)

    backend.async_generate = recording
    return sent
