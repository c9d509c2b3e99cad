"""Critical-path scheduling: with several jobs, the longest chain of work left starts first."""

from __future__ import annotations

import shutil

import pytest

from genai_report.pipeline import Pipeline, RunOptions, schedule
from genai_report.pipeline.registry import Node, Registry
from genai_report.pipeline.store import CacheStore


def _noop(ctx, p):
    return None


def _nodes(*spec):
    """``("name", deps...)`` tuples -> nodes in the given (dependency) order."""
    params = {"smoke": None, "quick": None, "full": None}
    return [Node(name, _noop, "figure", params, ("x.svg",), deps=tuple(deps), alt="x")
            for name, *deps in spec]


def test_bottom_level_adds_the_longest_chain_after_a_node():
    nodes = _nodes(("model",), ("plot-a", "model"), ("plot-b", "model"), ("tiny",))
    level = schedule.bottom_levels(nodes, {"model": 100.0, "plot-a": 5.0, "plot-b": 20.0,
                                           "tiny": 1.0})
    assert level == {"model": 120.0, "plot-a": 5.0, "plot-b": 20.0, "tiny": 1.0}


def test_unknown_times_take_the_median_of_the_known_ones():
    nodes = _nodes(("a",), ("b",), ("c",), ("d", "c"))
    level = schedule.bottom_levels(nodes, {"a": 1.0, "b": 9.0, "c": None})
    assert level["c"] == pytest.approx(5.0 + 5.0)  # itself and its dependent d, both unknown
    assert schedule.bottom_levels(nodes, {})["d"] == schedule.DEFAULT_SECONDS


def test_a_long_chain_starts_before_short_independent_nodes():
    # Registry order would start "short-1" and "short-2" first and leave the 200 s chain
    # to the end; critical-path order starts the chain's head first.
    nodes = _nodes(("short-1",), ("short-2",), ("model",), ("figure", "model"))
    times = {"short-1": 10.0, "short-2": 10.0, "model": 150.0, "figure": 50.0}
    order = [n.name for n in schedule.critical_path_first(nodes, times)]
    assert order == ["model", "figure", "short-1", "short-2"]
    # Equal levels keep the given order.
    same = {n.name: 1.0 for n in nodes if n.name != "figure"} | {"figure": 0.0}
    assert [n.name for n in schedule.critical_path_first(nodes, same)] == [
        "short-1", "short-2", "model", "figure"]


def test_simulate_runs_ready_nodes_on_free_workers_in_the_given_order():
    nodes = _nodes(("model",), ("plot", "model"), ("a",), ("b",))
    times = {"model": 100.0, "plot": 50.0, "a": 60.0, "b": 60.0}
    assert schedule.simulate(nodes, times, 1) == 270.0  # node after node
    # Two workers: model and a start; b takes a's worker at 60; plot waits for model.
    assert schedule.simulate(nodes, times, 2) == 150.0
    # Registry order with the chain last: a and b first, model at 60, plot ends at 210.
    late = _nodes(("a",), ("b",), ("model",), ("plot", "model"))
    assert schedule.simulate(late, times, 2) == 210.0
    assert schedule.simulate(schedule.critical_path_first(late, times), times, 2) == 150.0
    # However many workers, the chain model -> plot is the floor.
    assert schedule.simulate(nodes, times, 8) == 150.0
    # A dependency outside the nodes counts as done.
    assert schedule.simulate(nodes[1:], times, 1) == 170.0


def test_simulate_names_what_it_cannot_schedule():
    nodes = _nodes(("a",), ("b", "a"))
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        schedule.simulate(nodes, {"a": 1.0, "b": 1.0}, 0)
    with pytest.raises(ValueError, match="No time for b"):
        schedule.simulate(nodes, {"a": 1.0}, 1)
    loop = _nodes(("a", "b"), ("b", "a"))
    with pytest.raises(ValueError, match="a, b wait on each other"):
        schedule.simulate(loop, {"a": 1.0, "b": 1.0}, 2)


def test_run_order_reads_the_checkouts_records_for_an_empty_scratch_cache(
        fake_project, tmp_path):
    reg: Registry = fake_project.registry()
    checkout = tmp_path / "checkout"
    Pipeline(reg, cache_dir=checkout / "figures", root=checkout).run(
        RunOptions(profile="smoke", device="cpu", show_progress=False))
    committed = CacheStore(checkout / "figures")
    times = {n: committed.read_record("smoke", n).wall_time_s for n in ("base", "plot")}
    assert all(t is not None for t in times.values())

    scratch = CacheStore(tmp_path / "scratch")
    order = reg.topological()
    found = schedule.expected_seconds([n.name for n in order], "smoke",
                                      [scratch, committed])
    assert found["base"] == times["base"] and found["plot"] == times["plot"]
    # From the scratch cache alone nothing is known: the dependency order is kept.
    assert schedule.run_order(order, "smoke", scratch, tmp_path / "elsewhere") == order
    ranked = schedule.run_order(order, "smoke", scratch, checkout)
    assert sorted(n.name for n in ranked) == sorted(n.name for n in order)
    level = schedule.bottom_levels(order, found)
    assert [level[n.name] for n in ranked] == sorted(level.values(), reverse=True)


def test_a_parallel_run_in_critical_path_order_builds_every_node(fake_project, tmp_path):
    reg = fake_project.registry()
    checkout = tmp_path / "checkout"
    first = Pipeline(reg, cache_dir=checkout / "figures", root=checkout).run(
        RunOptions(profile="smoke", device="cpu", show_progress=False, jobs=2))
    assert sorted(first.ran) == ["base", "other", "plot"]
    # A scratch cache beside the same checkout: ordered by the committed times, and the
    # dependency "base" still runs before "plot".
    scratch = Pipeline(reg, cache_dir=tmp_path / "scratch", root=checkout)
    again = scratch.run(RunOptions(profile="smoke", device="cpu", show_progress=False, jobs=2))
    assert sorted(again.ran) == ["base", "other", "plot"]
    assert again.ran.index("base") < again.ran.index("plot")
    shutil.rmtree(tmp_path / "scratch")
