"""The job queue between the UI thread and the worker: newest-wins per key, removal, closing."""

from __future__ import annotations

from app.jobs import Job, JobQueue, ModelSpec

SPEC = ModelSpec("fake", "a", "cpu", "fp32")


def test_job_queue_keeps_only_the_newest_job_per_key():
    queue = JobQueue()
    first, other, second = Job(1, "run", SPEC, key="live"), Job(2, "run", SPEC), Job(3, "run", SPEC, key="live")
    assert queue.put(first) == []
    assert queue.put(other) == []
    assert queue.put(second) == [first]
    assert [queue.take().id, queue.take().id] == [3, 2]  # the newest took the old one's place
    queue.put(Job(4, "run", SPEC))
    assert queue.remove(4).id == 4 and queue.remove(4) is None
    queue.put(Job(5, "run", SPEC))
    assert [j.id for j in queue.close()] == [5]
    assert queue.take() is None
