"""Segments from a model that predicts a class and a mask per query (Mask2Former), equal to
transformers' `post_process_semantic_segmentation`, `post_process_instance_segmentation` and
`post_process_panoptic_segmentation` as its image-segmentation pipeline calls them.

transformers resizes every query's mask to 384x384 first, whatever the model's input size, and
the arithmetic below does the same so the answers agree. Where it then upsamples all the
queries' masks to the picture's size, only those of the queries that can still be kept are
upsampled here: for panoptic segments, the queries whose class is confident enough; for
instances, the (query, class) candidates whose class score reaches the threshold (a candidate's
final score is its class score times a mean probability below 1, so no other can reach it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from engine.tasks.class_map import class_map
from engine.tasks.labels import label_name
from engine.tasks.segments import Postprocess, Segment, extents, segments_of

#: The size transformers' Mask2Former post-processing resizes every mask to before anything else.
REFERENCE_SIZE = (384, 384)


def query_postprocess(labels: Mapping[int, str]) -> Postprocess:
    """The post-processing of `{"class_logits": (Q, num_labels + 1), "mask_logits": (Q, h, w)}`
    for the subtask the options name (`engine.tasks.segments.check_options`); the options may
    also carry `label_ids_to_fuse`, the classes whose panoptic segments merge into one (none,
    as the pipeline passes)."""

    def postprocess(
        outputs: Mapping[str, torch.Tensor], size: tuple[int, int], options: Mapping[str, Any]
    ) -> tuple[torch.Tensor, list[Segment]]:
        class_logits, mask_logits = outputs["class_logits"], outputs["mask_logits"]
        subtask = options["subtask"]
        if subtask == "semantic":
            classes = class_map(semantic_scores(class_logits, mask_logits), size)
            return classes.cpu(), segments_of(classes, labels)
        if subtask == "instance":
            segmentation, found = instances(class_logits, mask_logits, size, options["threshold"])
        else:
            segmentation, found = panoptic(
                class_logits, mask_logits, size, options["threshold"], options["mask_threshold"],
                options["overlap_mask_area_threshold"], options.get("label_ids_to_fuse") or (),
            )
        return segmentation.cpu(), _segments(segmentation, found, labels)

    return postprocess


def semantic_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """(num_labels, 384, 384): each class's score at each position, the sum over queries of the
    class's probability times the query's mask probability."""
    probabilities = _at_reference_size(mask_logits).sigmoid()  # (Q, 384, 384)
    classes = class_logits.softmax(-1)[:, :-1]  # (Q, C) without "no object"
    # (C, Q) @ (Q, 384*384) -> (C, 384, 384)
    return (classes.t() @ probabilities.flatten(1)).view(-1, *probabilities.shape[1:])


def _at_reference_size(mask_logits: torch.Tensor) -> torch.Tensor:
    """(K, h, w) -> (K, 384, 384), bilinear as transformers resizes them."""
    return F.interpolate(mask_logits[None], size=REFERENCE_SIZE, mode="bilinear", align_corners=False)[0]


#: Bytes of full-size masks held at once: the panoptic map's probabilities, the instances' masks.
CHUNK_BYTES = 64 * 2**20

#: (query, label id, score, segment id) of each segment, in the pipeline's order
Found = list[tuple[int, int, float, int]]


def instances(
    class_logits: torch.Tensor, mask_logits: torch.Tensor, size: tuple[int, int], threshold: float
) -> tuple[torch.Tensor, Found]:
    """The instance map at `size` (segment ids from 0, -1 elsewhere; a later instance covers an
    earlier one where they overlap) and its segments. Candidates are the best (query, class)
    pairs, as many as there are queries, in the order `topk` gives them."""
    queries, classes = class_logits.shape[0], class_logits.shape[1] - 1
    scores = class_logits.softmax(-1)[:, :-1].flatten()  # (Q*C,)
    best, index = scores.topk(queries, sorted=False)
    hopeful = [j for j, score in enumerate(best.tolist()) if score >= threshold]
    segmentation = torch.full(size, -1, dtype=torch.int32, device=class_logits.device)
    if not hopeful:
        return segmentation, []
    chosen = torch.tensor(hopeful, device=index.device)
    candidate_queries = torch.div(index[chosen], classes, rounding_mode="floor")
    logits = _at_reference_size(mask_logits[candidate_queries])  # (K, 384, 384)
    binary = (logits > 0).float()
    mean_probability = (logits.sigmoid().flatten(1) * binary.flatten(1)).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
    final = best[chosen] * mean_probability
    found: Found = []
    # each candidate's mask at full size, a group of about CHUNK_BYTES at a time and in order
    # (a later instance covers an earlier one): a low threshold lets up to a query count of
    # candidates through, and all of them at once at a photo's size would be gigabytes
    step = max(1, CHUNK_BYTES // (4 * size[0] * size[1]))
    for start in range(0, len(binary), step):
        full = F.interpolate(binary[None, start : start + step], size=size, mode="nearest")[0] == 1
        for k, present in enumerate(full.flatten(1).any(1).tolist(), start=start):
            score = float(final[k])
            if present and score >= threshold:
                segmentation[full[k - start]] = len(found)
                found.append((int(candidate_queries[k]), int(index[chosen[k]]) % classes, round(score, 6), len(found)))
    return segmentation, found


def panoptic(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    size: tuple[int, int],
    threshold: float,
    mask_threshold: float,
    overlap_threshold: float,
    label_ids_to_fuse: Collection[int] = (),
) -> tuple[torch.Tensor, Found]:
    """The panoptic map at `size` (segment ids from 1, 0 where no segment is) and its segments.
    Each pixel goes to the kept query with the highest score-weighted mask probability; a query
    keeps its segment where that share of its own mask (probability at least `mask_threshold`)
    exceeds `overlap_threshold`. Queries of a class in `label_ids_to_fuse` share one id."""
    scores, labels = class_logits.softmax(-1).max(-1)
    keep = (labels != class_logits.shape[1] - 1) & (scores > threshold)
    kept = keep.nonzero().flatten()
    segmentation = torch.zeros(size, dtype=torch.int32, device=class_logits.device)
    if not len(kept):
        return segmentation, []
    winner, own = _winners(mask_logits[kept], scores[kept], size, mask_threshold)
    won = torch.bincount(winner.flatten(), minlength=len(kept))
    # the share as transformers computes it: a float32 quotient, compared in Python
    shares = (won / own.clamp(min=1)).tolist()
    large_enough = [w > 0 and o > 0 and share > overlap_threshold
                    for w, o, share in zip(won.tolist(), own.tolist(), shares)]
    ids = torch.zeros(len(kept), dtype=torch.int32)
    found: Found = []
    fused: dict[int, int] = {}
    current = 0
    for k, (query, label, score) in enumerate(zip(kept.tolist(), labels[kept].tolist(), scores[kept].tolist())):
        if not large_enough[k]:
            continue
        # transformers' numbering: a fused class's id is reused, and the count carries on from it
        current = fused[label] if label in fused else current + 1
        ids[k] = current
        found.append((query, label, round(score, 6), current))
        if label in label_ids_to_fuse:
            fused[label] = current
    segmentation = ids.to(winner.device)[winner]
    return segmentation, found


def _winners(
    mask_logits: torch.Tensor, scores: torch.Tensor, size: tuple[int, int], mask_threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W) the query with the highest score-weighted mask probability at each pixel (the
    first of a tie), and (K,) how many pixels of each query's own mask reach `mask_threshold`,
    for the K queries' (K, h, w) mask logits resized as transformers resizes them. The
    queries go through in groups of about `CHUNK_BYTES` at full size rather than all at once:
    each query's resize is its own, so the answer is the same, with a fraction of the memory."""
    height, width = size
    step = max(1, CHUNK_BYTES // (4 * height * width))
    best = torch.full(size, float("-inf"), device=mask_logits.device)
    winner = torch.zeros(size, dtype=torch.long, device=mask_logits.device)
    own = torch.empty(len(mask_logits), dtype=torch.long, device=mask_logits.device)
    for start in range(0, len(mask_logits), step):
        part = _at_reference_size(mask_logits[start : start + step]).sigmoid()
        part = F.interpolate(part[None], size=size, mode="bilinear", align_corners=False)[0]
        part *= scores[start : start + step].view(-1, 1, 1)
        value, index = part.max(0)  # the first of a tie within the group
        better = value > best  # and an earlier group keeps a tie
        best = torch.where(better, value, best)
        winner = torch.where(better, index + start, winner)
        own[start : start + len(part)] = (part >= mask_threshold).flatten(1).sum(1)
    return winner, own


def _segments(segmentation: torch.Tensor, found: Found, labels: Mapping[int, str]) -> list[Segment]:
    """Each found segment with its area and box in `segmentation` (ids of -1 allowed)."""
    if not found:
        return []
    areas, boxes = extents(segmentation + 1)  # shifted: extents counts ids from 0
    areas_list, boxes_list = areas.tolist(), boxes.tolist()
    return [
        Segment(id=segment_id, label_id=label, label=label_name(labels, label), score=score,
                area=areas_list[segment_id + 1], bbox=tuple(boxes_list[segment_id + 1]), query=query)
        for query, label, score, segment_id in found
    ]
