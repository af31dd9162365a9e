"""Text from the registry made safe to print: control characters shown, not obeyed.

Names, aliases, run ids, descriptions and error messages come from users (or from a
submission written by anything). Printed raw, ``\\x1b[2J`` clears the reader's screen,
``\\r`` overwrites a line and a bidi override reorders one. Every text view passes what
it prints through :func:`printable`, on a terminal or not (a log file is read in a
terminal later); JSON output needs nothing, since ``json.dumps`` escapes them already.
"""

from __future__ import annotations

__all__ = ["printable"]


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    if short := _SHORT.get(char):
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str, keep: str = "") -> str:
    """``text`` with every non-printable character written as a Python escape
    (``\\x1b``, ``\\u202e``), as ``repr`` writes it; the characters in ``keep``
    (``"\\n"`` for a message of several lines) stay as they are.

    Non-printable is Python's ``str.isprintable``: control, format, separator (other
    than the space) and unassigned characters.
    """
    if text.isprintable():
        return text  # nearly always: no copy
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)
