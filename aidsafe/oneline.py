"""Long texts (server messages, errors, rejections) as one bounded line for a summary.

A cut mid-word hides what the text was about (`(known: AidsafePreflight, Deliberatio`), and the
end of an error is often the part that says what to do or closes what the start opened. So a
text past its limit keeps its beginning and its end, each cut at a word boundary, with " ... "
where the middle was.
"""

from __future__ import annotations

__all__ = ["one_line"]

_GAP = " ... "
# The end keeps about a third of the room: enough for a closing clause or the last names of a list.
_TAIL_SHARE = 3
# A word longer than this is cut inside rather than dropped whole (a URL, a base64 blob).
_LONGEST_WORD = 40


def one_line(text: str, limit: int = 300) -> str:
    """`text` with its whitespace collapsed to single spaces, at most `limit` characters long."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    room = limit - len(_GAP)
    if room < 8:  # too little room for two readable parts
        return text[:limit].rstrip()
    tail_start = len(text) - room // _TAIL_SHARE
    if text[tail_start - 1] != " ":  # the tail would start inside a word: start at a whole one
        after = text.find(" ", tail_start, tail_start + _LONGEST_WORD)
        before = text.rfind(" ", 0, tail_start)
        if 0 <= after < len(text) - 1:
            tail_start = after + 1
        elif before >= 0 and len(text) - before - 1 <= 2 * room // 3:  # a long last word, kept whole
            tail_start = before + 1
    head_end = room - (len(text) - tail_start)
    if text[head_end] != " ":  # the head would end inside a word: end it at the word before
        space = text.rfind(" ", max(0, head_end - _LONGEST_WORD), head_end)
        head_end = space if space > 0 else head_end
    return text[:head_end].rstrip(" ,;:") + _GAP + text[tail_start:]
