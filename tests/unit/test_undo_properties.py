"""Property tests of LabelMap editing with undo/redo: random paint / replace / set_region / undo /
redo sequences against a plain model of the expected arrays (locked labels never change; without
`overwrite`, painting leaves other labels alone and set_region never turns one label into another)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from medviewer.core.labels import LabelMap

SHAPE = (3, 4, 5)
LOCKED = 3
VALUES = st.integers(0, 4)


def _axis(n):
    return st.integers(0, n - 1).flatmap(lambda a: st.integers(a + 1, n).map(lambda b: slice(a, b)))


REGIONS = st.tuples(*[_axis(n) for n in SHAPE])
SEEDS = st.integers(0, 2**32 - 1)
OPS = st.one_of(
    st.tuples(st.just("paint"), REGIONS, SEEDS, VALUES, st.none() | VALUES, st.booleans()),
    st.tuples(st.just("replace"), VALUES, VALUES),
    st.tuples(st.just("set_region"), REGIONS, SEEDS, st.booleans()),
    st.just(("undo",)),
    st.just(("redo",)),
)


def initial_map(max_undo=200):
    data = np.random.default_rng(0).integers(0, 4, SHAPE).astype(np.uint8)  # holds 0..3, 3 locked
    lm = LabelMap(SHAPE, data=data, max_undo=max_undo)
    lm.table.labels[LOCKED].locked = True
    return lm


def expected_after(op, cur):
    """The model: what the op should leave (locked voxels never change)."""
    free = cur != LOCKED
    new = cur.copy()
    if op[0] == "paint":
        _, region, seed, value, only, overwrite = op
        mask = np.random.default_rng(seed).random(cur[region].shape) < 0.5
        if only is not None:
            target = cur[region] == only
        elif value and not overwrite:
            target = cur[region] == 0  # other labels are not painted over
        else:
            target = True
        allowed = mask & free[region] & target
        new[region] = np.where(allowed, value, cur[region])
    elif op[0] == "replace":
        _, old, value = op
        new[(cur == old) & free] = value
    else:
        _, region, seed, overwrite = op
        values = np.random.default_rng(seed).integers(0, 5, cur[region].shape).astype(np.uint8)
        allowed = free[region] & (True if overwrite else (cur[region] == 0) | (values == 0))
        new[region] = np.where(allowed, values, cur[region])
    return new


def apply(lm, op):
    if op[0] == "paint":
        _, region, seed, value, only, overwrite = op
        mask = np.random.default_rng(seed).random(lm.data[region].shape) < 0.5
        return lm.paint(region, mask, value, "paint", only=only, overwrite=overwrite)
    if op[0] == "replace":
        return lm.replace(op[1], op[2])
    _, region, seed, overwrite = op
    values = np.random.default_rng(seed).integers(0, 5, lm.data[region].shape).astype(np.uint8)
    return lm.set_region(region, values, "set region", overwrite=overwrite)


def check_edits(lm):
    """Each stored edit holds exactly its region, before and after."""
    for edit in lm.undo_stack._done + lm.undo_stack._undone:
        shape = lm.data[edit.region].shape
        assert edit.before.shape == shape and edit.after.shape == shape
        assert edit.nbytes == 2 * int(np.prod(shape))


@settings(max_examples=80, deadline=None)
@given(st.lists(OPS, max_size=25))
def test_random_edit_sequences_follow_the_model(ops):
    lm = initial_map()
    initial = lm.data.copy()
    done, undone = [initial.copy()], []  # states: done[-1] is the current one
    for op in ops:
        if op[0] == "undo":
            region = lm.undo()
            assert (region is None) == (len(done) == 1)
            if region is not None:
                undone.append(done.pop())
        elif op[0] == "redo":
            region = lm.redo()
            assert (region is None) == (not undone)
            if region is not None:
                done.append(undone.pop())
        else:
            want = expected_after(op, done[-1])
            changed = apply(lm, op)
            assert changed == int((want != done[-1]).sum())
            if changed:
                done.append(want)
                undone.clear()  # a new edit drops the redo branch
        assert np.array_equal(lm.data, done[-1])
        assert lm.undo_stack.can_undo == (len(done) > 1) and lm.undo_stack.can_redo == bool(undone)
    check_edits(lm)
    final, n = lm.data.copy(), len(done) - 1
    for k in range(1, n + 1):  # the state after k undos is the one recorded after step n - k
        assert lm.undo() is not None
        assert np.array_equal(lm.data, done[n - k])
    assert lm.undo() is None and np.array_equal(lm.data, initial)
    for k in range(1, n + 1):  # redo replays exactly
        assert lm.redo() is not None
        assert np.array_equal(lm.data, done[k])
    assert np.array_equal(lm.data, final)
    assert (lm.data[initial == LOCKED] == LOCKED).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(OPS.filter(lambda op: op[0] not in ("undo", "redo")), min_size=1, max_size=15))
def test_locked_voxels_survive_everything_and_the_undo_limit_keeps_the_latest_steps(ops):
    lm = initial_map(max_undo=3)
    locked = lm.data == LOCKED
    states = [lm.data.copy()]
    for op in ops:
        if apply(lm, op):
            states.append(lm.data.copy())
        assert (lm.data[locked] == LOCKED).all()
    check_edits(lm)
    kept = min(3, len(states) - 1)
    for _ in range(kept):
        lm.undo()
    assert lm.undo() is None
    assert np.array_equal(lm.data, states[-1 - kept])


@settings(max_examples=50, deadline=None)
@given(REGIONS, SEEDS, st.integers(1, 4))
def test_paint_then_erase_only_that_label_then_undo_both(region, seed, value):
    lm = initial_map()
    start = lm.data.copy()
    mask = np.random.default_rng(seed).random(lm.data[region].shape) < 0.7
    lm.paint(region, mask, value)
    painted = lm.data.copy()
    lm.paint(region, mask, 0, "erase", only=value)
    # erasing `value` clears it from the mask's voxels (unless it is the locked one), nothing else
    assert value == LOCKED or not (lm.data[region][mask] == value).any()
    assert np.array_equal(lm.data[region][~mask], start[region][~mask])
    assert (lm.data[start == LOCKED] == LOCKED).all()
    assert len(lm.undo_stack.descriptions()) <= 2
    if lm.undo_stack.descriptions()[-1:] == ["erase"]:
        lm.undo()
    assert np.array_equal(lm.data, painted)
    if lm.undo_stack.can_undo:
        lm.undo()
    assert np.array_equal(lm.data, start) and not lm.undo_stack.can_undo


@settings(max_examples=60, deadline=None)
@given(st.lists(OPS.filter(lambda op: op[0] not in ("undo", "redo")), min_size=1, max_size=12),
       st.integers(1, 6))
def test_an_edit_block_is_one_undo_step_even_with_a_full_stack(ops, max_undo):
    """A brush stroke is one step through the model itself, also once the stack holds its limit
    (the old stroke merge counted the stack's length, which the trim keeps constant)."""
    lm = initial_map(max_undo=max_undo)
    for k in range(max_undo):  # fill the stack to its limit with single-voxel edits
        lm.set_region((slice(0, 1), slice(0, 1), slice(k % 5, k % 5 + 1)),
                      np.array([[[5 + k % 2]]], np.uint8), "fill", overwrite=True)
    before = lm.data.copy()
    steps = len(lm.undo_stack)
    with lm.edit_block("stroke"):
        for op in ops:
            apply(lm, op)
        assert lm.in_edit_block
    after = lm.data.copy()
    changed = not np.array_equal(before, after)
    assert len(lm.undo_stack) == min(max_undo, steps + changed)
    if changed:
        assert lm.undo_stack.descriptions()[-1] == "stroke"
        lm.undo()
        assert np.array_equal(lm.data, before)  # one undo takes the whole stroke back
        lm.redo()
        assert np.array_equal(lm.data, after)
    check_edits(lm)


def test_undo_in_the_middle_of_a_block_closes_it_first():
    lm = LabelMap(SHAPE)
    start = lm.data.copy()
    lm.begin_edit_block("stroke")
    lm.paint((slice(0, 1),) * 3, np.ones((1, 1, 1), bool), 4, overwrite=True)
    lm.paint((slice(1, 2),) * 3, np.ones((1, 1, 1), bool), 4, overwrite=True)
    assert lm.undo() is not None and not lm.in_edit_block
    assert np.array_equal(lm.data, start)
    assert lm.redo() is not None and lm.data[0, 0, 0] == 4 and lm.data[1, 1, 1] == 4
