"""Text from outside (file names) made safe to print and store: control characters shown as escapes."""

from __future__ import annotations

import os
import unicodedata

#: Control, format, surrogate and separator characters: escape sequences, newlines, bidi overrides, and the lone
#: surrogates that undecodable file names hold.
CONTROL_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")


def printable(text: str) -> str:
    """`text` with each control character written as its Python escape (`\\x1b`, `\\n`, `\\u202e`): a file name
    can then neither drive a terminal (title, clear screen) nor forge a line of a report."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in CONTROL_CATEGORIES else ch
        for ch in text
    )


def shown_path(path) -> str:
    """A path for a terminal: relative to the working folder when it lies inside it (as the user most likely
    typed it; results keep absolute paths to resume from anywhere), with control characters escaped."""
    text = os.fspath(path)
    try:
        relative = os.path.relpath(text)
    except ValueError:  # another drive (Windows)
        relative = text
    return printable(text if relative.startswith(os.pardir) else relative)
