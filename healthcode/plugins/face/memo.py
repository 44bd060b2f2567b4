"""What this plugin already found in an image, while the image is alive.

An enrollment looks at the same frame more than once through separate hooks:
the liveness check detects and embeds every frame, then core asks again for
the first frame's face and template to bind the capture to the person who
answered the challenge. The memo answers the second look from the first:
landmarks once per frame, an embedding once per face.

Entries are keyed by the identity of the image's pixel array and dropped when
that array is freed (a weak reference) or when more than ``MEMO_SIZE`` images
are remembered. ``Image`` is frozen and its pixels are treated as immutable; as
a guard against an array edited in place after a detection, each entry also
keeps a sparse fingerprint (a 64 x 64 grid of pixels, a few microseconds) and a
changed fingerprint misses. Nothing is kept beyond faces and embeddings: no
pixels.
"""

from __future__ import annotations

import threading
import weakref
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

from healthcode.core.models import Face, Image

MEMO_SIZE = 32
"""Images remembered at once: a few requests' frames (an enrollment has five)."""


def fingerprint(pixels: npt.NDArray[Any]) -> tuple[Any, ...]:
    """Shape, data address and a checksum of a 64 x 64 grid of the pixels."""
    rows = max(pixels.shape[0] // 64, 1)
    cols = max(pixels.shape[1] // 64, 1) if pixels.ndim > 1 else 1
    sample = np.ascontiguousarray(pixels[::rows, ::cols] if pixels.ndim > 1 else pixels[::rows])
    address = pixels.__array_interface__["data"][0]
    return (pixels.shape, pixels.dtype.str, address, zlib.crc32(sample.tobytes()))


class _Entry:
    __slots__ = ("embeddings", "faces", "fingerprint", "ref")

    def __init__(
        self, ref: weakref.ref[npt.NDArray[Any]], mark: tuple[Any, ...], faces: list[Face]
    ) -> None:
        self.ref = ref
        self.fingerprint = mark
        self.faces = faces
        self.embeddings: dict[int, npt.NDArray[np.float32]] = {}


class FaceMemo:
    """Faces and embeddings per live image (thread-safe, bounded)."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        # Re-entrant: a weak reference's callback (``forget``) can run inside a
        # locked block when a garbage collection frees some other image there.
        self._lock = threading.RLock()
        self.hits = 0
        """Detections answered from the memo."""
        self.misses = 0
        """Detections the memo could not answer (each one ran the landmarker)."""
        self.embedding_hits = 0
        self.embedding_misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _entry(self, pixels: npt.NDArray[Any]) -> _Entry | None:
        entry = self._entries.get(id(pixels))
        if entry is None or entry.ref() is not pixels or entry.fingerprint != fingerprint(pixels):
            return None
        self._entries.move_to_end(id(pixels))
        return entry

    def faces(self, image: Image) -> list[Face] | None:
        """The faces found earlier in ``image``, or ``None``."""
        pixels = image.pixels
        if not isinstance(pixels, np.ndarray):
            return None
        with self._lock:
            entry = self._entry(pixels)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            return list(entry.faces)

    def remember_faces(self, image: Image, faces: list[Face]) -> None:
        pixels = image.pixels
        if not isinstance(pixels, np.ndarray):
            return
        key = id(pixels)
        memo_ref = weakref.ref(self)

        def forget(ref: weakref.ref[npt.NDArray[Any]]) -> None:
            memo = memo_ref()
            if memo is not None:
                with memo._lock:
                    entry = memo._entries.get(key)
                    if entry is not None and entry.ref is ref:
                        del memo._entries[key]

        with self._lock:
            self._entries[key] = _Entry(weakref.ref(pixels, forget), fingerprint(pixels), faces)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def embedding(self, image: Image, face: Face) -> npt.NDArray[np.float32] | None:
        """The embedding computed earlier for this very ``face`` of ``image``."""
        pixels = image.pixels
        if not isinstance(pixels, np.ndarray):
            return None
        with self._lock:
            entry = self._entry(pixels)
            found = None
            if entry is not None and any(f is face for f in entry.faces):
                found = entry.embeddings.get(id(face))
            if found is None:
                self.embedding_misses += 1
            else:
                self.embedding_hits += 1
            return found

    def remember_embedding(
        self, image: Image, face: Face, embedding: npt.NDArray[np.float32]
    ) -> None:
        """Keep ``embedding`` when ``face`` is one of the remembered faces of ``image``
        (their ids stay valid: the entry holds the faces)."""
        pixels = image.pixels
        if not isinstance(pixels, np.ndarray):
            return
        with self._lock:
            entry = self._entry(pixels)
            if entry is not None and any(f is face for f in entry.faces):
                entry.embeddings[id(face)] = embedding


memo = FaceMemo()
