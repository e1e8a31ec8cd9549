"""CPU threads: the count live work runs on, and running a block on a given count."""

import torch

from engine.runtime import live_threads, threads


def test_live_audio_runs_on_one_thread_and_video_on_half():
    assert [live_threads("audio", n) for n in (1, 2, 16)] == [1, 1, 1]
    assert [live_threads("video", n) for n in (1, 2, 3, 16)] == [1, 1, 1, 8]


def test_threads_sets_the_count_for_the_block_and_restores_it():
    before = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads(None):
        assert torch.get_num_threads() == before
    try:
        with threads(1):
            raise KeyError("a failing job")
    except KeyError:
        pass
    assert torch.get_num_threads() == before
