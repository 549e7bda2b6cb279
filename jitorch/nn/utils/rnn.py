"""Sequence helpers: pad_sequence, PackedSequence, pack_padded_sequence, pad_packed_sequence,
pack_sequence, unpad_sequence, unpack_sequence."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...tensor import Tensor

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
           "unpad_sequence", "unpack_sequence", "invert_permutation"]


def _j():
    import jitorch
    return jitorch


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack variable-length tensors (L_i, *) into (max_L, B, *) (or (B, max_L, *)), padding with a value."""
    t = _j()
    if isinstance(sequences, Tensor):
        sequences = sequences.unbind(0)
    sequences = list(sequences)
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    max_len = max(s.shape[0] for s in sequences)
    trailing = tuple(sequences[0].shape[1:])
    padded = []
    for s in sequences:
        n = s.shape[0]
        if tuple(s.shape[1:]) != trailing:
            raise RuntimeError(f"The size of tensor a ({trailing}) must match the size of tensor b "
                               f"({tuple(s.shape[1:])}) at non-singleton dimension 1")
        if n < max_len:
            fill = t.full((max_len - n,) + trailing, padding_value, dtype=s.dtype)
            s = t.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        padded.append(s)
    return t.stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    lens = [int(v) for v in (lengths.tolist() if isinstance(lengths, Tensor) else lengths)]
    return [seq[:n] for seq, n in zip(padded_sequences.unbind(0), lens)]


def invert_permutation(permutation):
    if permutation is None:
        return None
    t = _j()
    p = np.asarray(permutation._data, np.int64)
    out = np.empty_like(p)
    out[p] = np.arange(p.size)
    return t.from_numpy(out)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """Time-major packed batch: ``data`` (sum of lengths, *), ``batch_sizes`` per step (int64)."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        return type(self)(self.data.to(*args, **kwargs), self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def is_pinned(self):
        return False


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) (or (B, T, *)) of sequences with the given lengths."""
    t = _j()
    lens = np.asarray(lengths._data if isinstance(lengths, Tensor) else lengths, np.int64).reshape(-1)
    if enforce_sorted:
        if lens.size > 1 and np.any(np.diff(lens) > 0):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You "
                               "can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
                               "sidestep this requirement if you do not need ONNX exportability.")
        sorted_idx = None
        order = np.arange(lens.size)
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_idx = t.from_numpy(order.astype(np.int64))
    if np.any(lens <= 0):
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' that "
                           "is <= 0")
    x = input.transpose(0, 1) if batch_first else input  # (T, B, *)
    if lens.max() > x.shape[0]:
        raise RuntimeError(f"pack_padded_sequence: a length ({int(lens.max())}) exceeds the padded sequence length "
                           f"({x.shape[0]})")
    slens = lens[order]
    T = int(slens[0]) if slens.size else 0
    batch_sizes = np.array([(slens > s).sum() for s in range(T)], np.int64)
    pieces = []
    for s in range(T):
        bs = int(batch_sizes[s])
        rows = order[:bs]
        step = x[s]
        if bs == x.shape[1] and np.array_equal(rows, np.arange(bs)):
            pieces.append(step)
        else:
            pieces.append(t.stack([step[int(r)] for r in rows], 0))
    data = t.cat(pieces, 0)
    return PackedSequence(data, t.from_numpy(batch_sizes), sorted_idx, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of pack_padded_sequence: (padded (T, B, *), lengths int64)."""
    t = _j()
    data, batch_sizes = sequence.data, np.asarray(sequence.batch_sizes._data, np.int64)
    T = batch_sizes.size
    B = int(batch_sizes[0]) if T else 0
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"Expected total_length to be at least the length of the longest sequence in input, but "
                             f"got total_length={total_length} and max sequence length being {T}")
    else:
        total_length = T
    trailing = tuple(data.shape[1:])
    steps, off = [], 0
    for s in range(total_length):
        bs = int(batch_sizes[s]) if s < T else 0
        chunk = data[off:off + bs]
        off += bs
        if bs < B:
            chunk = t.cat([chunk, t.full((B - bs,) + trailing, padding_value, dtype=data.dtype)], 0)
        steps.append(chunk)
    padded = t.stack(steps, 0)  # (T, B, *) in sorted order
    lengths = np.array([(batch_sizes > i).sum() for i in range(B)], np.int64)
    if sequence.unsorted_indices is not None:
        inv = np.asarray(sequence.unsorted_indices._data, np.int64)
        padded = t.stack([padded[:, int(i)] for i in inv], 1)
        lengths = lengths[inv]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, t.from_numpy(lengths)


def pack_sequence(sequences, enforce_sorted=True):
    t = _j()
    lengths = t.tensor([v.size(0) for v in sequences], dtype=t.int64)
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
