"""Packing: token pieces -> the packed decoder-only features of DESIGN.md ("seqio output"), the last
step before "per-host slice of the global batch" in the data flow.

`RowPacker` fills rows of `seq_len` with pieces (each piece is a chunk of a document, or the part
of a chunk that fits; see loader.py), giving each piece its own segment id (1, 2, ...; 0 = padding)
and positions that restart at 0. `features` turns the filled arrays into the five model inputs,
exactly what seqio's `LMFeatureConverter(pack=True)` produces for the same segments:

- `decoder_target_tokens`: the tokens;
- `decoder_input_tokens`: the targets shifted right by one *within each segment*, 0 at a segment's
  first position (no token of one document is visible from another);
- `decoder_loss_weights`: 1 where a token is real (segment id > 0), else 0 — by segment id, not by
  token id, because id 0 is a real token in some vocabularies;
- `decoder_segment_ids`, `decoder_positions`.
"""

from __future__ import annotations

import numpy as np

FEATURE_KEYS = ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
                "decoder_segment_ids", "decoder_positions")


class RowPacker:
    """Accumulates one batch `[batch_size, seq_len]`, row by row."""

    def __init__(self, batch_size: int, seq_len: int):
        if batch_size <= 0 or seq_len <= 1:
            raise ValueError(f"need batch_size > 0 and seq_len > 1, got {batch_size}, {seq_len}")
        self.batch_size, self.seq_len = batch_size, seq_len
        self.targets = np.zeros((batch_size, seq_len), np.int32)
        self.segments = np.zeros((batch_size, seq_len), np.int32)
        self.positions = np.zeros((batch_size, seq_len), np.int32)
        self.row, self.fill, self._segment = 0, 0, 0

    @property
    def full(self) -> bool:
        return self.row == self.batch_size

    @property
    def empty(self) -> bool:
        return self.row == 0 and self.fill == 0

    @property
    def space(self) -> int:
        """Tokens that still fit in the current row."""
        return self.seq_len - self.fill

    def add(self, piece: np.ndarray) -> None:
        """Appends a piece of at most `space` tokens as a new segment of the current row."""
        n = len(piece)
        if not 0 < n <= self.space:
            raise ValueError(f"piece of {n} tokens does not fit the {self.space} left in the row")
        end = self.fill + n
        self._segment += 1
        self.targets[self.row, self.fill:end] = piece
        self.segments[self.row, self.fill:end] = self._segment
        self.positions[self.row, self.fill:end] = np.arange(n, dtype=np.int32)
        self.fill = end
        if self.fill == self.seq_len:
            self.next_row()

    def next_row(self) -> None:
        """Closes the current row (the rest stays padding)."""
        self.row, self.fill, self._segment = self.row + 1, 0, 0

    def features(self) -> dict[str, np.ndarray]:
        return features(self.targets, self.segments, self.positions)


def features(targets: np.ndarray, segments: np.ndarray, positions: np.ndarray
             ) -> dict[str, np.ndarray]:
    """The five packed decoder features from targets, segment ids and positions."""
    inputs = np.zeros_like(targets)
    inputs[:, 1:] = targets[:, :-1]
    inputs[positions == 0] = 0
    inputs[segments == 0] = 0
    return {
        "decoder_input_tokens": inputs,
        "decoder_target_tokens": targets,
        "decoder_loss_weights": (segments > 0).astype(np.int32),
        "decoder_segment_ids": segments,
        "decoder_positions": positions,
    }
