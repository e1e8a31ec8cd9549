"""The class of every pixel once per-class score maps are upsampled bilinearly to the original
size and the best class is taken: the map `post_process_semantic_segmentation` makes
(`F.interpolate(..., mode="bilinear", align_corners=False)`, then argmax, ties to the lower
class), without upsampling every class everywhere.

A bilinear value is a weighted mean of at most a 2x2 window of grid values. Within a window,
class c scores at most its largest value there, and the winner at least the largest over
classes of each class's smallest value; c can win only where the first reaches the second.
So, per window of the grid:

1. where a single class can win (most of a trained model's map), its pixels take that class
   with no arithmetic at all;
2. elsewhere only the window's candidates are weighed, with torch's own interpolation weights
   (read off `F.interpolate` itself, on the device in use); where the best leads the next by
   more than float rounding could move either, it is the class `F.interpolate` would give;
3. the few pixels closer than that are settled by `F.interpolate` of the classes involved.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

#: Values computed from the same weights but in another order differ from torch's by a few
#: units in the last place of the largest score (1.2e-7 of it); calls closer than this share
#: of it go to step 3.
_ROUNDING = 2e-6


class Taps(NamedTuple):
    """Per output row (or column): the first grid row it reads, and the weights of that row and
    of the next (0 where only one row is read)."""

    first: torch.Tensor  # (n_out,) int64
    weight0: torch.Tensor  # (n_out,) float32
    weight1: torch.Tensor  # (n_out,) float32


def taps(n_in: int, n_out: int, device: torch.device) -> Taps:
    """The rows `F.interpolate` reads for each output row, and their weights: upsampling the
    identity puts source row r's weight for output row i at [r, i]."""
    identity = torch.eye(n_in, device=device)[None, :, :, None]  # (1, n_in channels, n_in, 1)
    weights = F.interpolate(identity, size=(n_out, 1), mode="bilinear", align_corners=False)[0, :, :, 0]
    first = (weights != 0).int().argmax(0)  # (n_out,): argmax gives the first nonzero row
    columns = torch.arange(n_out, device=device)
    following = weights[(first + 1).clamp(max=n_in - 1), columns]
    return Taps(first, weights[first, columns], torch.where(first + 1 < n_in, following, 0.0))


def class_map(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(height, width) int32: the best class at each pixel of `logits` (C, h, w) upsampled
    bilinearly to `size`, exactly as `F.interpolate` followed by argmax picks it."""
    height, width = size
    device = logits.device
    rows, columns = taps(logits.shape[1], height, device), taps(logits.shape[2], width, device)
    # (C, h, w) -> (h, w, C): a position's classes side by side (free for channels-last logits)
    scores = logits.permute(1, 2, 0).contiguous()
    low, high = torch.aminmax(scores)
    slack = _ROUNDING * max(float(high), -float(low))
    highest, lowest = _window_extremes(scores)  # (h', w', C) each
    floor = lowest.max(-1, keepdim=True).values  # (h', w', 1): what the winner scores at least
    can_win = highest >= floor - slack  # (h', w', C)
    flags = can_win.view(torch.uint8)  # summed and searched as bytes: several times faster
    count = flags.sum(-1, dtype=torch.int32).long()  # (h', w')
    only = flags.argmax(-1)  # (h', w'): the first class that can win
    # each pixel's window: the one whose rows and columns hold every tap it reads
    row_window = rows.first.clamp(max=count.shape[0] - 1)  # (H,)
    column_window = columns.first.clamp(max=count.shape[1] - 1)  # (W,)
    # (h', w') -> (H, w') -> (H, W): the window's value at each pixel
    best = only[row_window][:, column_window].long()  # right wherever a single class can win
    contested = (count[row_window][:, column_window] > 1).flatten().nonzero().squeeze(1)
    if len(contested):
        y, x = contested // width, contested % width
        windows = row_window[y] * count.shape[1] + column_window[x]
        best.view(-1)[contested] = _weigh(
            logits, scores, rows, columns, can_win.flatten(0, 1), count.flatten(), y, x, windows, slack
        )
    return best.to(torch.int32)


def _window_extremes(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each class's largest and smallest value over every 2x2 window of the (h, w, C) grid
    (or 1x2, 2x1, 1x1 when the grid is a single row or column): (h-1, w-1, C) each."""
    height, width, _ = scores.shape
    top, bottom = (scores[:-1], scores[1:]) if height > 1 else (scores, scores)
    highest, lowest = torch.maximum(top, bottom), torch.minimum(top, bottom)
    if width > 1:
        highest = torch.maximum(highest[:, :-1], highest[:, 1:])
        lowest = torch.minimum(lowest[:, :-1], lowest[:, 1:])
    return highest, lowest


def _weigh(
    logits: torch.Tensor,
    scores: torch.Tensor,
    rows: Taps,
    columns: Taps,
    can_win: torch.Tensor,
    count: torch.Tensor,
    y: torch.Tensor,
    x: torch.Tensor,
    windows: torch.Tensor,
    slack: float,
) -> torch.Tensor:
    """The winning class at the contested pixels (y, x), each weighing its window's candidates
    (`can_win`: (windows, C), `count` of them) in class order, from the (h, w, C) `scores`.
    Pixels are sorted by how many candidates they have, so the k-th round weighs a prefix of
    them: those with more than k."""
    grid_height, grid_width, classes = scores.shape
    candidates = can_win.nonzero()[:, 1]  # every window's candidates, window by window
    starts = count.cumsum(0) - count
    order = torch.argsort(count[windows], descending=True, stable=True)
    y, x, windows = y[order], x[order], windows[order]
    first, per_pixel = starts[windows], count[windows]
    # per pixel: where its top-left tap's scores start, the steps to the other taps, and the
    # four weights
    y0, x0 = rows.first[y], columns.first[x]
    corner = (y0 * grid_width + x0) * classes
    down = (y0 + 1 < grid_height).long() * (grid_width * classes)
    right = (x0 + 1 < grid_width).long() * classes
    wy0, wy1, wx0, wx1 = rows.weight0[y], rows.weight1[y], columns.weight0[x], columns.weight1[x]
    flat = scores.view(-1)
    best = torch.full_like(wy0, float("-inf"))
    runner_up = torch.full_like(wy0, float("-inf"))
    winner = torch.zeros_like(corner)
    # pixels with more than k candidates, k = 0, 1, ...: a prefix of the sorted pixels
    remaining = torch.bincount(per_pixel).flip(0).cumsum(0).flip(0)  # [k]: pixels with >= k
    for k in range(1, len(remaining)):
        n = int(remaining[k])
        cls = candidates[first[:n] + (k - 1)]
        at = corner[:n] + cls
        value = wy0[:n] * (wx0[:n] * flat[at] + wx1[:n] * flat[at + right[:n]]) + wy1[:n] * (
            wx0[:n] * flat[at + down[:n]] + wx1[:n] * flat[at + down[:n] + right[:n]]
        )
        # strictly greater: on a tie the earlier, lower class stays ahead
        winner[:n] = torch.where(value > best[:n], cls, winner[:n])
        runner_up[:n] = torch.maximum(runner_up[:n], torch.minimum(best[:n], value))
        best[:n] = torch.maximum(best[:n], value)
    close = (best - runner_up < slack).nonzero().squeeze(1)
    if len(close):
        winner[close] = _settle(logits, (len(rows.first), len(columns.first)), y[close], x[close],
                                candidates, first[close], per_pixel[close])
    out = torch.empty_like(winner)
    out[order] = winner
    return out


def _settle(
    logits: torch.Tensor,
    size: tuple[int, int],
    y: torch.Tensor,
    x: torch.Tensor,
    candidates: torch.Tensor,
    first: torch.Tensor,
    count: torch.Tensor,
) -> torch.Tensor:
    """The winner at the close calls (y, x) among their windows' candidates (`count` of them
    from `first` in `candidates`), from `F.interpolate` of each class involved, one at a
    time: the very values the full upsampling gives."""
    rank = torch.arange(int(count.max()), device=y.device)
    slots = first[:, None] + rank[None, :]  # (N, K): each pixel's candidates, in class order
    valid = rank[None, :] < count[:, None]
    classes = torch.where(valid, candidates[slots.clamp(max=len(candidates) - 1)], -1)
    values = torch.full(classes.shape, float("-inf"), device=logits.device)
    for cls in classes[valid].unique().tolist():
        # one class, laid out as the reference upsamples it (channels first)
        grid = logits[None, cls : cls + 1].contiguous()
        upsampled = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)
        mine = classes == cls  # (N, K)
        pixel = mine.any(1)
        values[mine] = upsampled[0, 0, y[pixel], x[pixel]]
    return classes.gather(1, values.argmax(1, keepdim=True)).squeeze(1)  # argmax: first of the ties
