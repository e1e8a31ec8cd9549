"""Mask2Former's post-processing against transformers' own on the same class and mask logits:
the segment maps must be equal to the pixel and the segments the same, for all three subtasks,
with stuff classes fused, and with the thresholds moved."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from transformers import Mask2FormerImageProcessorPil

from engine.tasks.query_segments import query_postprocess

LABELS = {i: f"class{i}" for i in range(70)}


def logits(seed, queries=15, grid=(24, 32)):
    """Class logits with a few confident queries of a few classes (so some repeat), and masks
    that are discs here and there, overlapping a little, with noise."""
    torch.manual_seed(seed)
    classes = torch.randn(queries, len(LABELS) + 1)
    confident = torch.randperm(queries)[: queries * 2 // 3]
    classes[confident, torch.randint(0, 4, (len(confident),))] += 9
    y, x = torch.meshgrid(torch.arange(grid[0]).float(), torch.arange(grid[1]).float(), indexing="ij")
    centres = torch.rand(queries, 2) * torch.tensor(grid)
    radii = 3 + 5 * torch.rand(queries)
    distance = ((y - centres[:, 0, None, None]) ** 2 + (x - centres[:, 1, None, None]) ** 2).sqrt()
    masks = 6 * (1 - distance / radii[:, None, None])
    return classes, masks + 0.5 * torch.randn(queries, *grid)


def theirs(subtask, classes, masks, size, **options):
    processor = Mask2FormerImageProcessorPil()
    outputs = SimpleNamespace(class_queries_logits=classes[None], masks_queries_logits=masks[None])
    if subtask == "semantic":
        return processor.post_process_semantic_segmentation(outputs, target_sizes=[size])[0], None
    call = getattr(processor, f"post_process_{subtask}_segmentation")
    done = call(outputs, target_sizes=[size], **options)[0]
    return done["segmentation"], done["segments_info"]


def ours(subtask, classes, masks, size, **options):
    settings = {"subtask": subtask, "threshold": 0.5, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.8,
                **options}
    return query_postprocess(LABELS)({"class_logits": classes, "mask_logits": masks}, size, settings)


@pytest.mark.parametrize("seed, size", [(0, (300, 451)), (1, (97, 131))])
@pytest.mark.parametrize(
    "subtask, options",
    [
        ("panoptic", {"threshold": 0.9, "overlap_mask_area_threshold": 0.5}),
        ("panoptic", {"threshold": 0.5, "mask_threshold": 0.3, "overlap_mask_area_threshold": 0.8}),
        ("panoptic", {"threshold": 0.5, "overlap_mask_area_threshold": 0.5, "label_ids_to_fuse": {0, 1, 2}}),
        ("instance", {"threshold": 0.9}),
        ("instance", {"threshold": 0.2}),
        ("semantic", {}),
    ],
)
def test_segments_equal_transformers_on_the_same_logits(seed, size, subtask, options):
    classes, masks = logits(seed)
    expected_map, expected = theirs(subtask, classes, masks, size, **options)
    segmentation, segments = ours(subtask, classes, masks, size, **options)
    if subtask == "semantic":
        assert torch.equal(segmentation.long(), expected_map)
        assert [s.label_id for s in segments] == torch.unique(expected_map).tolist()
        return
    assert [(s.id, s.label_id, s.score) for s in segments] == [(e["id"], e["label_id"], e["score"]) for e in expected]
    if expected:
        assert torch.equal(segmentation, expected_map.to(torch.int32))
        for segment in segments:
            mask = segmentation == segment.id
            assert segment.area == int(mask.sum())
    assert all(s.query is not None for s in segments)


def test_fused_classes_share_an_id_as_in_transformers():
    classes, masks = logits(0)
    _, fused = ours("panoptic", classes, masks, (120, 160), overlap_mask_area_threshold=0.5,
                    label_ids_to_fuse={0, 1, 2, 3})
    _, apart = ours("panoptic", classes, masks, (120, 160), overlap_mask_area_threshold=0.5)
    assert len({s.id for s in fused}) < len(fused) and len({s.id for s in apart}) == len(apart)


def test_nothing_kept_gives_no_segment():
    classes, masks = logits(3)
    classes[:, -1] += 100  # every query says "no object"
    for subtask in ("panoptic", "instance"):
        segmentation, segments = ours(subtask, classes, masks, (50, 60))
        assert segments == [] and segmentation.shape == (50, 60)


def test_queries_taken_a_few_at_a_time_give_the_same_map_ties_included(monkeypatch):
    from engine.tasks import query_segments

    g = torch.Generator().manual_seed(5)
    mask_logits = torch.randn(9, 24, 32, generator=g) * 4
    mask_logits[4] = mask_logits[1]  # a tie everywhere: the earlier query must win it
    scores = torch.rand(9, generator=g)
    scores[4] = scores[1]
    whole = query_segments._winners(mask_logits, scores, (61, 83), 0.5)
    monkeypatch.setattr(query_segments, "CHUNK_BYTES", 2 * 4 * 61 * 83)  # two queries at a time
    grouped = query_segments._winners(mask_logits, scores, (61, 83), 0.5)
    assert torch.equal(whole[0], grouped[0]) and torch.equal(whole[1], grouped[1])
    assert not (whole[0] == 4).any() and (whole[0] == 1).any()
    probabilities = F.interpolate(
        F.interpolate(mask_logits[None], size=(384, 384), mode="bilinear", align_corners=False).sigmoid(),
        size=(61, 83), mode="bilinear", align_corners=False,
    )[0] * scores.view(-1, 1, 1)
    assert torch.equal(whole[0], probabilities.argmax(0))
    assert torch.equal(whole[1], (probabilities >= 0.5).flatten(1).sum(1))


def test_instances_taken_a_few_at_a_time_equal_transformers(monkeypatch):
    """The candidates' full-size masks go through in small groups; later instances still cover
    earlier ones across the groups' edges, as in transformers' all-at-once loop."""
    from engine.tasks import query_segments

    classes, masks = logits(0)
    size = (97, 131)
    expected_map, expected = theirs("instance", classes, masks, size, threshold=0.2)
    monkeypatch.setattr(query_segments, "CHUNK_BYTES", 2 * 4 * size[0] * size[1])  # two masks at a time
    segmentation, segments = ours("instance", classes, masks, size, threshold=0.2)
    assert len(expected) > 4
    assert [(s.id, s.label_id, s.score) for s in segments] == [(e["id"], e["label_id"], e["score"]) for e in expected]
    assert torch.equal(segmentation, expected_map.to(torch.int32))
