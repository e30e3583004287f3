"""LLDP for link discovery: the glue's side of sdnscent.discovery (signed frames).

Frames are built and checked by the pure module; this only keeps the names the
app used before.
"""

from __future__ import annotations

from sdnscent.discovery import Discovery, LldpAuth, parse

__all__ = ["Discovery", "LldpAuth", "parse"]
