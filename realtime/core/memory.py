"""Resident memory: at most ``MALLOC_ARENAS`` glibc malloc arenas for the whole process.

glibc gives each thread that allocates concurrently an arena of its own (up to 8 per core), and an
arena keeps freed memory for reuse. The live app runs about 30 threads (its loops, MediaPipe's,
onnxruntime's), so capping the arenas lowers its resident memory by about 10 MB (``bench.runtime``)
on a board that shares its memory with the GPU. Python's own small objects do not use these arenas.
"""

from __future__ import annotations

import ctypes

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (call it before threads start); False where the C library has no
    ``mallopt`` or refuses."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the process's own symbols: its C library's
    return bool(mallopt is not None and mallopt(_M_ARENA_MAX, arenas))
