"""How on-call screens, the exam and its report write a duration (no imports: the CLI loads it
at start)."""

from __future__ import annotations


def clock(seconds: float | None) -> str:
    """``4m 05s``, ``1h 02m 03s``; ``-`` for none."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
