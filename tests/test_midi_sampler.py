"""MidiDatasetSampler invariants (hypothesis) and MidiDataset splitting/summary."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from midi_helpers import chorales, scale_track, smf
from notewise.midi import MidiDataset, MidiDatasetSampler
from notewise.midi.dataset import split_at_bars

pytestmark = pytest.mark.timeout(120)

lengths_st = st.lists(st.integers(1, 3000), min_size=0, max_size=60)
budget_st = st.integers(1, 4_000_000)


def coverage(batches) -> dict[int, list[tuple[int, int]]]:
    spans = defaultdict(list)
    for batch in batches:
        for index, start, stop in batch:
            spans[index].append((start, stop))
    return spans


@settings(max_examples=150, deadline=None)
@given(lengths_st, budget_st, st.integers(0, 2**31), st.integers(0, 50),
       st.none() | st.integers(1, 600), st.booleans())
def test_budget_and_every_token_exactly_once(lengths, budget, seed, epoch, window, offsets):
    sampler = MidiDatasetSampler(lengths, budget, seed=seed, window=window, offsets=offsets)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    for batch in batches:
        assert batch and sum((stop - start) ** 2 for _, start, stop in batch) <= budget
    spans = coverage(batches)
    assert set(spans) == set(range(len(lengths)))
    for index, pieces in spans.items():
        pieces.sort()
        assert pieces[0][0] == 0 and pieces[-1][1] == lengths[index]
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))  # contiguous, no overlap
        assert all(b - a <= sampler.max_span for a, b in pieces)
        if lengths[index] <= sampler.max_span:
            assert len(pieces) == 1  # split only when it cannot fit alone
        if not offsets:
            assert all(b - a == sampler.max_span for a, b in pieces[:-1])


def test_offsets_vary_span_starts_by_epoch_and_cover_the_window():
    """With offsets, the first cut of a long sequence moves from epoch to epoch, over the whole
    window, so window boundaries (and a piece's bar lines) meet every position of the context."""
    cuts = set()
    for epoch in range(200):
        sampler = MidiDatasetSampler([1000, 50], 10**6, seed=3, window=64, offsets=True)
        sampler.set_epoch(epoch)
        spans = sorted(sampler.spans())
        assert (1, 0, 50) in spans  # a sequence that fits one span is never cut
        cuts.add(spans[0][2])
    assert len(cuts) > 55 and min(cuts) >= 1 and max(cuts) <= 64
    fixed = MidiDatasetSampler([1000], 10**6, window=64)
    assert [stop for _, _, stop in fixed.spans()][:3] == [64, 128, 192]


@settings(max_examples=100, deadline=None)
@given(lengths_st, budget_st, st.integers(0, 2**31), st.integers(0, 50))
def test_deterministic_for_seed_and_epoch(lengths, budget, seed, epoch):
    def run(s, e):
        sampler = MidiDatasetSampler(lengths, budget, seed=s)
        sampler.set_epoch(e)
        return list(sampler)

    assert run(seed, epoch) == run(seed, epoch)


def test_epochs_shuffle_differently():
    lengths = list(range(100, 400))
    a, b = (MidiDatasetSampler(lengths, 600**2, seed=1) for _ in range(2))
    b.set_epoch(1)
    assert list(a) != list(b)


@settings(max_examples=100, deadline=None)
@given(lengths_st, budget_st, st.integers(1, 5), st.integers(0, 2**31))
def test_ddp_shards_are_disjoint_complete_and_balanced(lengths, budget, world_size, seed):
    full = MidiDatasetSampler(lengths, budget, seed=seed).all_batches()
    shards = [list(MidiDatasetSampler(lengths, budget, seed=seed, rank=r, world_size=world_size))
              for r in range(world_size)]
    merged = [b for shard in shards for b in shard]
    assert sorted(map(sorted, merged)) == sorted(map(sorted, full))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert [len(s) for s in shards] == [
        len(MidiDatasetSampler(lengths, budget, seed=seed, rank=r, world_size=world_size))
        for r in range(world_size)]


def test_batches_group_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, 2000)
    batches = list(MidiDatasetSampler(lengths, 200_000, seed=0))
    spreads = [max(s - a for _, a, s in b) / min(s - a for _, a, s in b) for b in batches]
    assert np.median(spreads) < 1.3


@given(st.lists(st.sampled_from([3, 7, 8, 9]), min_size=1, max_size=300), st.integers(2, 50))
def test_split_at_bars_keeps_every_token_and_the_limit(tokens, max_len):
    ids = np.array(tokens)
    chunks = split_at_bars(ids, max_len, bar_id=3)
    assert np.array_equal(np.concatenate(chunks), ids)
    assert all(1 <= len(c) <= max_len for c in chunks)
    start = 0
    for chunk in chunks[:-1]:  # every cut is before a Bar, unless no Bar was within reach
        end = start + len(chunk)
        assert ids[end] == 3 or 3 not in ids[start + 1:start + max_len + 1]
        start = end


def test_dataset_summary_split_and_min_length(tmp_path_factory, tmp_path):
    files = chorales(tmp_path_factory, 3)
    (tmp_path / "empty.mid").write_bytes(b"")
    (tmp_path / "drums_only.mid").write_bytes(smf(scale_track().replace(b"\x90", b"\x99")
                                                  .replace(b"\x80", b"\x89")))
    full = MidiDataset(files, min_sequence_length=2, max_sequence_length=10**6, workers=2)
    assert full.summary["sequences"] == 3 and full.summary["split"] == 0
    ds = MidiDataset(files + [tmp_path], min_sequence_length=64, max_sequence_length=256,
                     workers=2)
    s = ds.summary
    assert s["files"] == 5 and s["files_read"] == 3
    assert s["skipped"] == {str(tmp_path / "drums_only.mid"): "no notes (drums dropped)",
                            str(tmp_path / "empty.mid"): "empty file (0 bytes)"}
    assert max(ds.lengths) <= 256 and min(ds.lengths) >= 64 and s["split"] == 3
    assert s["tokens"] + s["dropped_short"] * 0 <= full.summary["tokens"]
    assert s["tokens"] == int(ds.lengths.sum()) and s["sequences"] == len(ds)
    assert ds[(0, 2, 5)].tolist() == ds[0][2:5].tolist()
