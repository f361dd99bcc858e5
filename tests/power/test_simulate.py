"""The physical load generators: deterministic, exact on any grid, and inside their stated ranges."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from minewatch.power import simulate as sim
from minewatch.power.simulate import FloatArray, TimeGrid

START = "2025-06-02T00:00:00+08:00"


@pytest.fixture(scope="module")
def grid() -> TimeGrid:
    return TimeGrid.regular(START, days=14, interval_min=15)


GENERATORS: dict[str, Callable[[TimeGrid, np.random.Generator], FloatArray]] = {
    "asic": lambda g, r: sim.asic_farm(g, 120, r, model="S21"),
    "gpu": lambda g, r: sim.gpu_rig_farm(g, 40, r, algorithm="kawpow"),
    "cpu": lambda g, r: sim.cpu_randomx_servers(g, 300, r),
    "chia": lambda g, r: sim.chia_farm(g, 20_000.0, r, plotters=6),
    "ai": lambda g, r: sim.ai_training_cluster(g, 50, r),
    "chemical": lambda g, r: sim.continuous_process_industry(g, 3000.0, r),
    "steel": lambda g, r: sim.continuous_process_industry(
        g, 20_000.0, r, process="eaf_steel", avoid_peak=sim.SICHUAN_PEAK_HOURS
    ),
    "cold": lambda g, r: sim.cold_storage(g, r),
    "node": lambda g, r: sim.blockchain_node_hosting(g, 6, r),
    "aux": lambda g, r: sim.farm_auxiliaries(g, 1000.0, r),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_deterministic_for_a_seed(grid: TimeGrid, name: str) -> None:
    make = GENERATORS[name]
    first = make(grid, np.random.default_rng(11))
    again = make(grid, np.random.default_rng(11))
    other = make(grid, np.random.default_rng(12))
    assert first.shape == (grid.n,)
    assert first.dtype == np.float64
    assert np.all(np.isfinite(first))
    assert np.all(first >= 0)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_time_grid_clock_and_iso_strings() -> None:
    grid = TimeGrid.regular(START, days=1, interval_min=15)
    assert grid.n == 96
    assert str(grid.timestamps[0]) == "2025-06-01T16:00:00.000000"  # UTC
    assert grid.local_hour(grid.edges[:-1])[:5].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert int(grid.local_weekday()[0]) == 0  # a Monday
    iso = sim.format_local_iso(grid.timestamps[[0, 33]])
    assert iso.tolist() == ["2025-06-02T00:00:00+08:00", "2025-06-02T08:15:00+08:00"]
    again = TimeGrid.from_timestamps(grid.timestamps)
    assert (again.start, again.step_s, again.n) == (grid.start, grid.step_s, grid.n)
    assert grid.seconds_of("2025-06-02T01:00:00+08:00") == 3600.0
    with pytest.raises(ValueError, match="1 to 60"):
        TimeGrid.regular(START, days=1, interval_min=90)


def test_box_means_integrate_exactly(grid: TimeGrid) -> None:
    # A 4-minute 100 kW pulse inside one quarter hour costs exactly 4/15 of it there.
    inside = sim.box_means(grid, [60.0], [240.0], [100.0])
    assert inside[0] == pytest.approx(100.0 * 4 / 15)
    assert np.count_nonzero(inside) == 1
    # Straddling a boundary splits the energy; energy is conserved overall.
    starts = np.array([840.0, 5000.0, 20_000.0])
    lengths = np.array([120.0, 7200.0, 30.0])
    amps = np.array([10.0, -3.0, 50.0])
    means = sim.box_means(grid, starts, lengths, amps)
    assert means[0] == pytest.approx(10.0 * 60 / 900)
    assert means[1] == pytest.approx(10.0 * 60 / 900)
    assert means.sum() * grid.step_s == pytest.approx(float((lengths * amps).sum()))


def test_asic_units_draw_their_rated_power_within_thermal_drift(grid: TimeGrid) -> None:
    for model, (lo, hi) in sim.ASIC_UNIT_KW.items():
        assert 3.25 <= lo < hi <= 3.5
        units = 250
        kw = sim.asic_farm(
            grid,
            units,
            np.random.default_rng(3),
            model=model,  # type: ignore[arg-type]
            drift_pct=3.0,
            reboots_per_unit_day=0.0,
            failovers_per_week=0.0,
            mode_changes_per_30d=0.0,
        )
        per_unit = kw / units
        jitter = 4 * 0.004 / np.sqrt(units)
        assert per_unit.min() >= 3.25 * (1 - 0.03 - jitter)
        assert per_unit.max() <= 3.5 * (1 + 0.03 + jitter)
        assert lo * 0.97 <= float(np.median(per_unit)) <= hi * 1.03


def test_asic_drift_follows_ambient_and_events_only_lower_the_load(grid: TimeGrid) -> None:
    rng = np.random.default_rng(5)
    ambient = sim.ambient_temperature(grid, rng)
    quiet = sim.asic_farm(
        grid,
        400,
        np.random.default_rng(6),
        ambient_c=ambient,
        drift_pct=2.0,
        reboots_per_unit_day=0.0,
        failovers_per_week=0.0,
        mode_changes_per_30d=0.0,
    )
    assert np.corrcoef(quiet, ambient)[0, 1] > 0.9
    busy = sim.asic_farm(
        grid,
        400,
        np.random.default_rng(6),
        ambient_c=ambient,
        drift_pct=2.0,
        reboots_per_unit_day=0.5,
        failovers_per_week=3.0,
        mode_changes_per_30d=0.0,
    )
    # Reboots and failovers draw fresh random numbers after the shared ones, so the
    # running level is the same and events can only take power away.
    assert np.all(busy <= quiet + 1e-9)
    assert busy.min() < 0.95 * quiet.max()


def test_chia_harvesting_watts_per_terabyte(grid: TimeGrid) -> None:
    tb = 30_000.0
    for seed in range(5):
        kw = sim.chia_farm(grid, tb, np.random.default_rng(seed))
        w_per_tb = kw * 1000.0 / tb
        assert w_per_tb.min() >= 0.5 * 0.98 and w_per_tb.max() <= 1.3 * 1.02
    fixed = sim.chia_farm(grid, tb, np.random.default_rng(1), w_per_tb=0.9)
    assert float(fixed.mean()) * 1000 / tb == pytest.approx(0.9, rel=0.01)
    plotting = sim.chia_farm(
        grid, tb, np.random.default_rng(1), w_per_tb=0.9, plotters=10, campaigns_per_30d=6.0
    )
    extra = plotting - fixed
    assert extra.min() >= 10 * 0.3 * 0.25 - 1e-6  # plotters idle between campaigns
    assert extra.max() > 10 * 0.3 * 0.8  # and run flat out during one
    assert plotting[-1] > fixed[-1]  # new disks filled by the campaigns stay powered


@pytest.mark.parametrize("interval_min", [1, 15, 60])
def test_curtailment_is_zero_in_peak_hours(interval_min: int) -> None:
    grid = TimeGrid.regular(START, days=7, interval_min=interval_min)
    farm = sim.asic_farm(grid, 100, np.random.default_rng(9))
    curtailed = sim.curtail_peak_hours(grid, farm)
    begin = grid.local_hour(grid.edges[:-1])
    end = begin + grid.step_s / 3600.0
    in_peak = np.zeros(grid.n, dtype=bool)
    for lo, hi in sim.SICHUAN_PEAK_HOURS:
        in_peak |= (begin >= lo) & (end <= hi)
    assert in_peak.any()
    assert np.all(curtailed[in_peak] == 0.0)
    off_peak = (end <= 10.0) | ((begin >= 12.0) & (end <= 15.0)) | (begin >= 21.0)
    np.testing.assert_array_equal(curtailed[off_peak], farm[off_peak])
    # Any other tariff's windows, also across midnight, and a wider stop.
    other = sim.curtail_peak_hours(grid, farm, [(8, 11), (18, 23), (23.5, 0.5)], lead_minutes=15)
    hours = grid.local_hour()
    assert np.all(other[(hours > 7.75) & (hours < 11.0)] < farm.max())


def test_hidden_mining_starts_at_its_onset(grid: TimeGrid) -> None:
    rng = np.random.default_rng(4)
    base = sim.continuous_process_industry(grid, 2000.0, rng)
    mining = sim.cpu_randomx_servers(grid, 1000, rng)
    onset = "2025-06-07T13:07:00+08:00"
    total = sim.hidden_mining(grid, base, mining, onset)
    t0 = grid.seconds_of(onset)
    before = grid.edges[1:] <= t0
    after = grid.edges[:-1] >= t0
    np.testing.assert_array_equal(total[before], base[before])
    np.testing.assert_allclose(total[after], base[after] + mining[after])
    [partial] = np.flatnonzero(~before & ~after)
    share = (grid.edges[partial + 1] - t0) / grid.step_s
    assert total[partial] == pytest.approx(base[partial] + share * mining[partial])
    ramped = sim.hidden_mining(grid, base, mining, onset, ramp_hours=6.0)
    np.testing.assert_array_equal(ramped[before], base[before])
    late = grid.edges[:-1] >= t0 + 6 * 3600
    np.testing.assert_allclose(ramped[late], total[late])
    assert np.all(ramped <= total + 1e-9)


def test_fine_grid_averages_to_the_coarse_grid() -> None:
    """Events are integrated exactly, so 1-minute readings average to the 15-minute ones."""
    fine = TimeGrid.regular(START, days=3, interval_min=1)
    coarse = TimeGrid.regular(START, days=3, interval_min=15)
    makers: list[Callable[[TimeGrid], FloatArray]] = [
        lambda g: sim.gpu_rig_farm(g, 30, np.random.default_rng(2)),
        lambda g: sim.ai_training_cluster(g, 20, np.random.default_rng(2)),
        lambda g: sim.cold_storage(g, np.random.default_rng(2)),
    ]
    for make in makers:
        averaged = make(fine).reshape(-1, 15).mean(axis=1)
        np.testing.assert_allclose(averaged, make(coarse), rtol=0.01)


def test_look_alikes_stay_within_their_physics(grid: TimeGrid) -> None:
    servers = 80
    ai = sim.ai_training_cluster(grid, servers, np.random.default_rng(8))
    nameplate = servers * 10.2
    assert ai.max() <= nameplate * 0.95 * (1.35 + 0.01 * 30)
    assert ai.min() >= nameplate * 0.18 * 1.15 * 0.99
    node = sim.blockchain_node_hosting(grid, 10, np.random.default_rng(8))
    assert node.max() < 10 * 0.55 * 1.8
    gpu = sim.gpu_rig_farm(
        grid, 50, np.random.default_rng(8), crashes_per_rig_day=0.0, failovers_per_week=0.0
    )
    assert gpu.min() >= 50 * 1.0 * 0.97 and gpu.max() <= 50 * 2.0 * 1.03
    cpu = sim.cpu_randomx_servers(
        grid, 200, np.random.default_rng(8), restarts_per_server_day=0.0, failovers_per_week=0.0
    )
    assert cpu.min() >= 200 * 0.2 * 0.98 and cpu.max() <= 200 * 0.5 * 1.02
    assert float(cpu.std() / cpu.mean()) < 0.01  # near-flat
