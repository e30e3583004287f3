"""MPLS label allocation: reserved labels, uniqueness, FIFO reuse, exhaustion, errors."""

import re

import pytest

from sdnscent.labels import MAX_LABEL, MIN_LABEL, LabelAllocator, LabelError, LabelExhausted


def test_first_label_is_16_because_0_to_15_are_reserved() -> None:
    alloc = LabelAllocator()
    assert MIN_LABEL == 16
    assert alloc.allocate() == 16
    assert alloc.allocate() == 17


def test_default_range_is_the_whole_20_bit_label_space_above_the_reserved_ones() -> None:
    alloc = LabelAllocator()
    assert (alloc.first, alloc.last) == (16, 2**20 - 1) == (MIN_LABEL, MAX_LABEL)
    assert alloc.capacity == 2**20 - 16


@pytest.mark.parametrize(("first", "last"), [(0, 100), (15, 100), (16, 2**20), (50, 49)])
def test_range_reaching_reserved_labels_or_beyond_20_bits_is_refused(first: int, last: int) -> None:
    with pytest.raises(LabelError, match=f"label range {first}..{last}"):
        LabelAllocator(first, last)


def test_never_hands_out_a_label_twice_while_it_is_in_use() -> None:
    alloc = LabelAllocator(16, 40)
    got = [alloc.allocate() for _ in range(alloc.capacity)]
    assert sorted(got) == list(range(16, 41))
    assert len(alloc) == alloc.capacity
    assert all(label in alloc for label in got)
    # Churn: release some, allocate again; the in-use set never holds a duplicate.
    held = set(got)
    for label in got[::3]:
        alloc.release(label)
        held.discard(label)
    for _ in range(len(got[::3])):
        label = alloc.allocate()
        assert label not in held
        held.add(label)
    assert len(held) == len(alloc) == alloc.capacity


def test_released_label_is_reused_only_after_fresh_ones() -> None:
    alloc = LabelAllocator(16, 20)
    first = alloc.allocate()
    alloc.release(first)
    assert [alloc.allocate() for _ in range(4)] == [17, 18, 19, 20]
    assert alloc.allocate() == first


def test_released_labels_are_reused_in_release_order() -> None:
    alloc = LabelAllocator(16, 20)
    for _ in range(5):
        alloc.allocate()
    for label in (19, 16, 18):
        alloc.release(label)
    assert [alloc.allocate() for _ in range(3)] == [19, 16, 18]


def test_exhaustion_raises_label_exhausted_naming_the_range() -> None:
    alloc = LabelAllocator(100, 102)
    for _ in range(3):
        alloc.allocate()
    with pytest.raises(LabelExhausted, match=re.escape("all 3 MPLS labels (100..102) are in use")):
        alloc.allocate()


def test_exhausted_allocator_hands_out_a_label_again_after_a_release() -> None:
    alloc = LabelAllocator(100, 102)
    for _ in range(3):
        alloc.allocate()
    alloc.release(101)
    assert alloc.allocate() == 101
    with pytest.raises(LabelExhausted):
        alloc.allocate()


def test_reserved_label_is_skipped_by_allocate() -> None:
    alloc = LabelAllocator(16, 19)
    alloc.reserve(17)
    assert 17 in alloc
    assert [alloc.allocate() for _ in range(3)] == [16, 18, 19]
    with pytest.raises(LabelExhausted):
        alloc.allocate()


@pytest.mark.parametrize("label", [0, 15, 21, -1, 2**20])
def test_reserve_outside_the_range_names_the_label(label: int) -> None:
    alloc = LabelAllocator(16, 20)
    with pytest.raises(LabelError, match=re.escape(f"label {label} is outside 16..20")):
        alloc.reserve(label)


def test_reserving_a_label_in_use_is_refused() -> None:
    alloc = LabelAllocator(16, 20)
    label = alloc.allocate()
    with pytest.raises(LabelError, match=f"label {label} is already in use"):
        alloc.reserve(label)


def test_double_release_is_refused_and_does_not_queue_the_label_twice() -> None:
    alloc = LabelAllocator(16, 17)
    a, b = alloc.allocate(), alloc.allocate()
    alloc.release(a)
    with pytest.raises(LabelError, match=f"label {a} is not allocated"):
        alloc.release(a)
    assert alloc.allocate() == a
    with pytest.raises(LabelExhausted):  # a was queued once, b is still held
        alloc.allocate()
    assert b in alloc


def test_release_of_a_never_allocated_or_out_of_range_label_is_refused() -> None:
    alloc = LabelAllocator(16, 20)
    with pytest.raises(LabelError, match="label 18 is not allocated"):
        alloc.release(18)
    with pytest.raises(LabelError, match=re.escape("label 3 is outside 16..20")):
        alloc.release(3)
    assert alloc.allocate() == 16  # the failed calls changed nothing


def test_restored_label_released_early_is_reused_only_after_fresh_ones() -> None:
    # A restarted controller reserves the labels of trails it restores; one of those
    # trails is removed before the fresh counter reaches its label.
    alloc = LabelAllocator(16, 30)
    alloc.reserve(20)
    alloc.release(20)
    fresh = [alloc.allocate() for _ in range(14)]
    assert 20 not in fresh
    assert alloc.allocate() == 20


def test_label_released_last_is_reused_last() -> None:
    alloc = LabelAllocator(16, 20)
    alloc.reserve(20)
    alloc.release(20)
    for _ in range(5):
        alloc.allocate()
    alloc.release(16)
    alloc.release(20)
    assert [alloc.allocate(), alloc.allocate()] == [16, 20]
