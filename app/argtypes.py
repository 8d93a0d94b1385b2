"""Argument types for the command line: a number out of range is a one-line usage error, not a traceback later."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def path_text(text: str) -> str:
    """A file or folder argument: an empty one (an unset shell variable, say) is refused rather than read as the
    current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a file or folder")
    return text


path_text.__name__ = "path"
