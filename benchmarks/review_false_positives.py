"""How often the review of generated code (core/code_review.py) flags real plotting replies.

Runs the review over every reply in a reply cache (default: the llama.cpp cache the bench
wrote, benchmarks/replies/llamacpp-q4km.jsonl): the code as extracted, and the code as it runs
and is inserted (after the repairs, which drop the line reading the frame from its file and
plain `savefig` lines). Prints the share of replies flagged and each flagged line.

    .venv/bin/python benchmarks/review_false_positives.py [replies.jsonl ...]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from viscoder_jupyter.core.code_review import review_code
from viscoder_jupyter.core.codeblocks import extract_code, repair_code

DEFAULT = Path(__file__).parent / "replies" / "llamacpp-q4km.jsonl"


def replies(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            yield record.get("text") or record.get("reply") or ""


def main(paths: list[Path]) -> None:
    for path in paths:
        codes = [code for code in map(extract_code, replies(path)) if code]
        for label, prepared in (
            ("as extracted", codes),
            ("as run and inserted (repaired)", [repair_code(code, ["df"])[0] for code in codes]),
        ):
            reviews = [review_code(code) for code in prepared]
            # Code that does not parse (a reply cut off at the token limit) fails in the child and is
            # never inserted; the review calls it unreviewed, which is counted apart.
            unparsed = sum(1 for found in reviews if any(f.category == "unreviewed" for f in found))
            parsed = [found for found in reviews if not any(f.category == "unreviewed" for f in found)]
            flagged = [found for found in parsed if found]
            kinds = Counter(f.category for found in flagged for f in found)
            share = 100 * len(flagged) / max(1, len(parsed))
            print(
                f"{path.name}, {label}: {len(flagged)} of {len(parsed)} replies that parse flagged ({share:.1f}%) "
                f"{dict(kinds)}; {unparsed} more do not parse (unreviewed)"
            )
            for found in flagged:
                for finding in found:
                    print("    " + finding.describe())


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or [DEFAULT])
