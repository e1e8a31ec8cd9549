"""A segmentation task that stands in for what the tab cannot load yet: the real tiny SegFormer,
counting its runs, its results dressed as a checkpoint with panoptic segments (scored, so that
thresholds and the subtask change what the tab shows) and, asked with `explain=True`, carrying
the decoder layers Mask2Former's results will carry."""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.tasks.segments import Segment


class Counted:
    """The real task, counting its runs. `panoptic=True` dresses its results as a checkpoint
    offering panoptic segments, scored by class (class k: 0.5 + 0.1 k), so that thresholds and
    the subtask change what the tab shows, as they will with Mask2Former."""

    def __init__(self, task, panoptic: bool = False) -> None:
        self.task, self.panoptic, self.runs, self.options = task, panoptic, 0, []

    def __getattr__(self, name):
        return getattr(self.task, name)

    def info(self):
        info = self.task.info()
        return {**info, "subtasks": ["panoptic", "semantic"]} if self.panoptic else info

    def run(self, input, **options):
        self.runs += 1
        self.options.append(options)
        if not self.panoptic:
            return self.task.run(input, **options)
        result = self.task.run(input)
        semantic = result.postprocess
        dressed = dataclasses.replace(result, subtasks=("panoptic", "semantic"),
                                      postprocess=lambda *args: scored(semantic, *args))
        dressed = dressed.with_options(**{k: v for k, v in options.items() if k != "explain"})
        if options.get("explain"):
            with_queries(dressed)
        return dressed


def with_queries(result, layers: int = 3, queries: int = 8) -> None:
    """What Mask2Former's result carries with `explain=True`: each decoder layer's query masks,
    their class scores (the last column "no object"), and each segment's query (its position
    times 2, here)."""
    rng = np.random.default_rng(0)
    result.query_layers = [rng.random((queries, 16, 24)).astype(np.float16) for _ in range(layers)]
    result.query_layer_logits = rng.normal(size=(layers, queries, 7)).astype(np.float32)
    result.segments = [dataclasses.replace(s, query=2 * i) for i, s in enumerate(result.segments)]
    result.outputs = {}  # Mask2Former keeps query outputs, no per-class score maps


def scored(semantic, outputs, size, options):
    """The semantic segments scored by class, those at or under the threshold dropped; the map
    holds segment ids (class + 1), 0 where a dropped segment was."""
    classes, segments = semantic(outputs, size, options)
    if options["subtask"] == "semantic":
        return classes, segments
    kept = [Segment(s.id + 1, s.label_id, s.label, 0.5 + 0.1 * s.label_id, s.area, s.bbox)
            for s in segments if 0.5 + 0.1 * s.label_id > options["threshold"]]
    ids = (classes + 1) * sum(classes == s.label_id for s in kept)
    return ids, kept
