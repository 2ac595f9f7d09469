"""A lookup table's cells, merged from one build per assignment of transfer options (the accuracy budget).

Planning under an accuracy budget is the best, over the assignments of
transfer options whose losses fit the budget, of the plain optimum on each
assignment's rewritten cost table (:mod:`._accuracy`). A lookup table built
on one assignment's table holds, in each cell, that assignment's optimum at
every point of the cell; so the union of the assignments' lists for a cell
holds the optimum under the budget at every point, and a query evaluates one
merged list: one index lookup, as for a plain table, over longer lists.

A stored schedule is a split together with the options its uploads use; the
same one found by several assignments is stored once, and a cell lists the
schedules of smaller loss first (the index keeps the first of equal costs,
as the planner prefers the smaller loss). A schedule that downloads an
assigned tensor (priced with :data:`~._accuracy.PENALTY`) is dropped: where
it is its assignment's optimum the planner drops that assignment too, and
the optimum there is held by the assignment of exactly the options it uses.
A cell is answered by a direct solve where any assignment's cell is. A
plain table is the merge of one part, the empty assignment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import LookupTableError
from . import reference as ref
from ._accuracy import PENALTY, TransferOption, lossy_uploads
from .usage import CODEC_MS, within

__all__ = ["MergedCells", "check_lossy", "lossy_from_json", "lossy_to_json", "merge_cells"]

Key = tuple[tuple[tuple[int, int, str], ...], tuple[int, ...]]


class MergedCells(NamedTuple):
    """A lookup table's stored schedules and cell index: ``candidates`` ``(segments, usage, transfers)``;
    ``lossy`` per candidate the indices into ``options`` of the options it uses (ascending);
    ``status``, ``offsets``, ``members`` as in the file format."""

    candidates: list[tuple[tuple[tuple[int, int, str], ...], list[float], int]]
    lossy: list[tuple[int, ...]]
    options: tuple[TransferOption, ...]
    status: list[int]
    offsets: list[int]
    members: list[int]


#: Cells one call of a part's builder gets (the native core builds a chunk's cells in parallel).
CHUNK = 64


def merge_cells(
    costs: Any,
    parts: Sequence[tuple[tuple[TransferOption, ...], Callable[[list[int]], Sequence[ref.LutCell]]]],
    ncells: int,
    *,
    cloud_keeps_tensors: bool,
    report: Callable[[int], None] = lambda done: None,
) -> MergedCells:
    """The merged cells of ``parts`` (per assignment, a builder of its cells by index; see the module docs).

    A cell already answered by a direct solve is not built again for later parts. ``report`` gets the number of
    (part, cell) pairs done so far, out of ``len(parts) * ncells``.
    """
    options = tuple(sorted({o for a, _ in parts for o in a}, key=lambda o: (o.tensor, o.loss, o.bytes, o.option)))
    index = {o: i for i, o in enumerate(options)}
    seen: dict[Key, int] = {}
    found_by: list[Key] = []
    status = [ref.CELL_INFEASIBLE] * ncells
    cell_members: list[list[int]] = [[] for _ in range(ncells)]
    usage: dict[Key, tuple[list[float], int]] = {}
    for done, (assignment, build) in enumerate(parts):
        assigned = {o.tensor: o for o in assignment}
        used_by: dict[tuple[tuple[int, int, str], ...], tuple[int, ...]] = {}
        for start in range(0, ncells, CHUNK):
            todo = [c for c in range(start, min(ncells, start + CHUNK)) if status[c] != ref.CELL_SOLVE]
            for c, cell in zip(todo, build(todo) if todo else ()):
                if cell.status == "solve":
                    status[c] = ref.CELL_SOLVE
                    continue
                if cell.status == "exact" and status[c] == ref.CELL_INFEASIBLE:
                    status[c] = ref.CELL_EXACT
                for cand in cell.candidates:
                    if assignment and cand.usage[CODEC_MS] >= PENALTY / 2:
                        continue  # downloads an assigned tensor: priced wrongly, held by another assignment
                    segs = tuple((int(a), int(b), str(p)) for a, b, p in cand.segments)
                    used = used_by.get(segs)
                    if used is None:
                        ops = lossy_uploads(costs, segs, assigned, cloud_keeps_tensors) if assignment else []
                        used = used_by[segs] = tuple(sorted(index[o] for o in ops))
                    key = (segs, used)
                    k = seen.get(key)
                    if k is None:
                        k = seen[key] = len(found_by)
                        found_by.append(key)
                        usage[key] = (list(cand.usage), cand.transfers)
                    cell_members[c].append(k)
            report(done * ncells + min(ncells, start + CHUNK))

    def rank(k: int) -> tuple[float, int]:
        return (math.fsum(options[i].loss for i in found_by[k][1]), len(found_by[k][1]))

    # only the schedules some cell lists are stored, numbered in the order the cells first list them
    number: dict[int, int] = {}
    offsets, members = [0], []
    for c in range(ncells):
        if status[c] == ref.CELL_EXACT:
            for k in sorted(dict.fromkeys(cell_members[c]), key=rank):  # sorted() is stable
                members.append(number.setdefault(k, len(number)))
        offsets.append(len(members))
    stored = [found_by[k] for k in number]
    candidates = [(segs, *usage[(segs, used)]) for segs, used in stored]
    return MergedCells(candidates, [used for _, used in stored], options, status, offsets, members)


def check_lossy(
    n: int, ncandidates: int, budget: Any, options: Sequence[Any], lossy: Sequence[Sequence[Any]] | None
) -> None:
    """Raise :class:`LookupTableError` unless an accuracy-aware table's fields are consistent: a finite budget
    >= 0, options for tensors 0..n with finite bytes and losses >= 0, and per stored schedule distinct tensors'
    options whose losses sum within the budget (``lossy`` None: a plain table, with no budget and no options)."""

    def bad(msg: str) -> LookupTableError:
        return LookupTableError(f"inconsistent lookup table: {msg}")

    if lossy is None:
        if budget is not None or options:
            raise bad("transfer options without the schedules' use of them")
        return
    if not (_is_number(budget) and math.isfinite(budget)):
        raise bad(f"the accuracy budget must be a finite number >= 0, got {budget!r}")
    if budget < 0:
        raise bad(f"the accuracy budget must be >= 0, got {budget!r}")
    for o in options:
        if not (
            isinstance(o, TransferOption)
            and isinstance(o.tensor, int)
            and 0 <= o.tensor <= n
            and isinstance(o.option, str)
            and all(_is_number(x) and math.isfinite(x) and x >= 0 for x in (o.bytes, o.loss))
        ):
            raise bad(f"a transfer option must be for a tensor 0..{n} with finite bytes and loss >= 0, got {o!r}")
    if len(lossy) != ncandidates:
        raise bad(f"{len(lossy)} lists of options for {ncandidates} stored schedules")
    for used in lossy:
        if not all(isinstance(i, int) and 0 <= i < len(options) for i in used):
            raise bad("a stored schedule refers to a missing transfer option")
        if len({options[i].tensor for i in used}) != len(used):
            raise bad("a stored schedule sends a tensor with two options")
        if not within(math.fsum(options[i].loss for i in used), budget):
            raise bad("a stored schedule's options lose more than the table's accuracy budget")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) < 2.0**1023


def lossy_to_json(budget: float, options: Sequence[TransferOption], lossy: Sequence[Sequence[int]]) -> dict[str, Any]:
    """The transfer-options section of a lookup-table file (``docs/lookup-table-format.md``)."""
    return {
        "max_accuracy_loss": budget,
        "options": [[o.tensor, o.option, o.bytes, o.loss] for o in options],
        "schedules": [list(used) for used in lossy],
    }


def lossy_from_json(doc: Any) -> tuple[float, tuple[TransferOption, ...], list[tuple[int, ...]]]:
    """Inverse of :func:`lossy_to_json`, shape only (:func:`check_lossy` checks the values);
    :class:`LookupTableError` when the section is malformed."""
    try:
        if not isinstance(doc, Mapping):
            raise TypeError("the section is not an object")
        budget = doc["max_accuracy_loss"]
        options = []
        for row in doc["options"]:
            tensor, option, size, loss = row
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (tensor, size, loss)):
                raise TypeError(f"option {row!r} is not [tensor, label, bytes, loss]")
            if not isinstance(tensor, int):
                raise TypeError(f"option {row!r}: the tensor is not an integer")
            options.append(TransferOption(tensor, option, float(size), float(loss)))
        lossy = [tuple(used) for used in doc["schedules"]]
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise LookupTableError(f"the lookup table's transfer options are malformed: {type(e).__name__}: {e}") from None
    return budget, tuple(options), lossy
