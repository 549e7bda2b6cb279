"""``JITORCH_LOGS``: comma-separated kinds of debug output, e.g. ``JITORCH_LOGS=graph``.

Kinds used so far: ``graph`` (the IR after tracing and after each pass that changed it). The
variable is read on every call, so it can be set from within a running program; output goes to
stderr, one header line per entry.
"""
from __future__ import annotations

import os
import sys


def enabled(kind):
    kinds = {k.strip() for k in os.environ.get("JITORCH_LOGS", "").split(",")}
    return kind in kinds or "all" in kinds


def log(kind, title, text):
    sys.stderr.write(f"[jitorch {kind}] {title}\n{text}")
    if not text.endswith("\n"):
        sys.stderr.write("\n")
