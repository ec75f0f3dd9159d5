"""What the running program knew when the code failed, for the feedback turn.

The traceback is VisCoder's own feedback; the model, shown only that, mostly writes the same
code again. The child kernel adds short facts read from the live objects at the error (the
object's real type and attribute names, the callee's real keywords, the shapes on the failing
line, the names a colormap or marker may take: child/_viscoder_error_facts.py). Here the loop
adds what only it can see: a reply cut at the token limit.
"""

from __future__ import annotations

from .errors import NoCodeInReply


def error_facts(attempt, max_new_tokens: int) -> str:
    """Lines for the feedback turn ('' when there is nothing to add)."""
    facts = list(getattr(attempt.error, "runtime_facts", ()))
    cut = _cut_at_limit(attempt, max_new_tokens)
    if cut:
        facts.insert(0, cut)
    return "\n".join(f"- {fact}" for fact in facts)


def _cut_at_limit(attempt, max_new_tokens: int) -> str:
    """The reply ended because it reached the token limit, and its code does not end."""
    tokens = attempt.completion_tokens or 0
    if not max_new_tokens or tokens < max_new_tokens:
        return ""
    unfinished = isinstance(attempt.error, NoCodeInReply) or getattr(attempt.error, "ename", "") == "SyntaxError"
    if not unfinished:
        return ""
    return (
        f"The reply was cut at the limit of {max_new_tokens} tokens before the code ended, so the code is "
        "incomplete. Write shorter code: no comments or explanations, only the steps the plot needs."
    )
