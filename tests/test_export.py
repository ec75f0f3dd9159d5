"""`viscoder export`: the dialogue log as fine-tuning data, each format read back and checked.

The log is written by real requests (the replay backend, a real child kernel) and real
verdict lines, then exported through the `viscoder` command's entry point.
"""

from __future__ import annotations

import json
import stat

import pandas as pd
import pytest
from helpers import GOOD_BAR, key_error, write_replies

from viscoder_jupyter import generate_plot
from viscoder_jupyter.core.dialogue_log import append_line, append_verdict, read_dialogues
from viscoder_jupyter.tools import cli
from viscoder_jupyter.tools.export import conversation_problem

SALES = pd.DataFrame({"region": ["N", "S", "W"], "revenue": [1.0, 2.0, 3.0]})
SEABORN_BAR = (
    "```python\nimport pandas as pd\nimport seaborn as sns\nimport matplotlib.pyplot as plt\n"
    "df = pd.read_csv('data.csv')\nsns.barplot(data=df, x='region', y='revenue')\nplt.show()\n```"
)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """Five logged requests: a self-debugged one (kept), the same plain request twice (identical
    conversations), a seaborn one (discarded) and one that never worked; plus a torn line."""
    folder = tmp_path_factory.mktemp("export")
    path = folder / "dialogues.jsonl"
    replies = [key_error("df"), GOOD_BAR, GOOD_BAR, GOOD_BAR, SEABORN_BAR, key_error("df")]
    options = dict(backend="replay", replay=write_replies(folder / "r.jsonl", *replies), collect=True)
    options["collect_path"] = str(path)
    for request, extra in [
        ("bar chart of revenue by region", {}),
        ("revenue by region as bars", {"retries": 0}),
        ("revenue by region as bars", {"retries": 0}),
        ("seaborn bars of revenue by region", {"retries": 0, "lib": "seaborn"}),
        ("bars, broken", {"retries": 0}),
    ]:
        generate_plot(SALES, request, **options, **extra)
    dialogues, _ = read_dialogues(path)
    assert [d["ok"] for d in dialogues] == [True, True, True, True, False]
    append_verdict(path, dialogues[0]["id"], "kept")
    append_verdict(path, dialogues[3]["id"], "discarded")
    with open(path, "a", encoding="utf-8") as file:
        file.write('{"kind": "dialogue", "messa')  # a write cut short by a crash
    append_line(path, {"kind": "verdict", "id": dialogues[1]["id"], "verdict": "inserted", "time": "x"})
    return path, dialogues


def export(capsys, path, *flags) -> tuple[list[dict], str]:
    assert cli.main(["export", "--collect-path", str(path), *flags]) == 0
    out = capsys.readouterr()
    return [json.loads(line) for line in out.out.splitlines()], out.err


def test_openai_format_is_chat_fine_tuning_jsonl(log, capsys):
    path, dialogues = log
    records, summary = export(capsys, path, "--format", "openai")
    # The broken request and the discarded one are left out; the repeated one written once.
    assert len(records) == 2 and "1 duplicates" in summary and "1 unreadable lines" in summary
    for record in records:
        assert set(record) == {"messages"}
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in record["messages"])
        assert [m["role"] for m in record["messages"]][:2] == ["system", "user"]
        assert record["messages"][-1]["role"] == "assistant" and conversation_problem(record["messages"]) is None
    self_debug, plain = records
    assert [m["role"] for m in self_debug["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert "KeyError" in self_debug["messages"][3]["content"]
    assert self_debug["messages"] == dialogues[0]["messages"] and plain["messages"] == dialogues[1]["messages"]


def test_viscode_format_has_the_datasets_layout(log, capsys, tmp_path):
    path, dialogues = log
    out = tmp_path / "viscode.jsonl"
    assert cli.main(["export", "--collect-path", str(path), "--format", "viscode", "-o", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [set(r) for r in records] == [{"uuid", "messages", "language"}] * 2
    assert [r["uuid"] for r in records] == [dialogues[0]["id"], dialogues[1]["id"]]
    assert all(r["language"] == "python" and conversation_problem(r["messages"]) is None for r in records)
    assert str(out) in capsys.readouterr().err


def test_filters_accepted_only_lib_and_since(log, capsys):
    path, dialogues = log
    records, _ = export(capsys, path, "--format", "openai", "--accepted-only")
    # Kept (the magic) and inserted (the sidebar); not the discarded seaborn one.
    assert [r["messages"] for r in records] == [dialogues[0]["messages"], dialogues[1]["messages"]]
    assert export(capsys, path, "--lib", "seaborn")[0] == []  # its only request was discarded
    assert len(export(capsys, path, "--lib", "matplotlib")[0]) == 2
    assert export(capsys, path, "--since", "2999-01-01")[0] == []
    assert len(export(capsys, path, "--since", dialogues[0]["time"][:10])[0]) == 2


def test_bad_input_is_one_line(log, capsys, tmp_path):
    path, _ = log
    assert cli.main(["export", "--collect-path", str(tmp_path / "none.jsonl")]) == 1
    assert "no dialogue log at" in capsys.readouterr().err
    assert cli.main(["export", "--collect-path", str(path), "--since", "last tuesday"]) == 2
    err = capsys.readouterr().err
    assert "is not a date" in err and "Traceback" not in err


def test_conversation_checks_name_what_is_wrong():
    assert conversation_problem([{"role": "user", "content": "x"}]) == "it does not end with the model's reply"
    assert "role" in conversation_problem([{"role": "tool", "content": "x"}])
    assert conversation_problem([{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]) == (
        "no user turn"
    )


FLAGGED_BAR = (
    "```python\nimport matplotlib.pyplot as plt\ndf.to_csv('backup.csv')\n"
    "plt.bar(df['region'], df['revenue'])\nplt.show()\n```"
)


def test_flagged_code_is_left_out_unless_asked_and_files_are_private(capsys, tmp_path):
    path = tmp_path / "dialogues.jsonl"
    replay = write_replies(tmp_path / "r.jsonl", GOOD_BAR, FLAGGED_BAR)
    options = dict(backend="replay", replay=replay, collect=True, collect_path=str(path), retries=0)
    generate_plot(SALES, "revenue by region", **options)
    with pytest.warns(UserWarning, match="review flagged"):
        generate_plot(SALES, "revenue by region, and keep a copy", **options)
    dialogues, _ = read_dialogues(path)
    assert [d["flagged"] for d in dialogues] == [False, True]

    records, summary = export(capsys, path, "--format", "openai")
    assert len(records) == 1 and "to_csv" not in json.dumps(records)
    assert "1 flagged by the review (--include-flagged exports them)" in summary
    records, _ = export(capsys, path, "--format", "openai", "--include-flagged")
    assert len(records) == 2 and "to_csv" in json.dumps(records[1])

    out = tmp_path / "out.jsonl"
    out.write_text("")
    out.chmod(0o644)  # already there, readable by all: the export makes it private
    assert cli.main(["export", "--collect-path", str(path), "-o", str(out)]) == 0
    fresh = tmp_path / "fresh.jsonl"
    assert cli.main(["export", "--collect-path", str(path), "-o", str(fresh)]) == 0
    for written in (out, fresh):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600 and len(written.read_text().splitlines()) == 1
