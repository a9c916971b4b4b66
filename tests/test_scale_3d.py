"""benchmarks.scale_3d's pure parts: the fitted growth of each stage and the targets it derives."""

import pytest

from benchmarks.scale_3d import merged, scaling, targets


def _row(fine, dofs, classical_s, learned_s, l2_ratio=1.0, peak=1.0):
    classical = {"case": f"{fine}^3/5^3", "dofs": dofs, "samples": 3, "ranks": 2, "N_v": 216,
                 "classical_l2_pct": 2.0, "classical_h1_pct": 15.0, "classical_peak_rss_gib": peak,
                 "classical_peak_rss_gib_after": {"online": peak}}
    for stage in ("mesh", "geometry", "fine_solve", "online"):
        classical[f"classical_{stage}_s"] = classical[f"classical_{stage}_cpu_s"] = 1e-3 * dofs
    classical["classical_offline_s"] = classical["classical_offline_cpu_s"] = classical_s
    learned = {"learned_offline_s": learned_s, "learned_offline_cpu_s": learned_s, "learned_l2_pct": 2.0 * l2_ratio,
               "learned_h1_pct": 15.0, "learned_peak_rss_gib": 0.5, "verify": "fallback", "verification": []}
    return merged(classical, learned)


def test_scaling_recovers_a_power_law():
    rows = [_row(n, n**3, 2e-6 * n**4.5, 1.0) for n in (25, 50, 100)]
    fit = scaling(rows)
    assert fit["fine_solve"]["exponent_wall"] == pytest.approx(1.0)
    assert fit["classical_offline"]["exponent_wall"] == pytest.approx(1.5)
    assert fit["classical_offline"]["exponent_cpu_last_two"] == pytest.approx(1.5)
    assert fit["learned_offline"]["exponent_wall"] == pytest.approx(0.0, abs=1e-12)


def test_targets_are_judged_at_the_largest_size():
    payload = {"checkpoint": {"trained_on": "test"},
               "cases": [_row(50, 1e5, 100.0, 1.0, peak=20.0), _row(100, 1e6, 100.0, 10.0, l2_ratio=1.05)]}
    memory, speed, error = targets(payload)
    assert "100^3" in speed["name"] and speed["measured"] == pytest.approx(10.0) and speed["met"] is False
    assert error["measured"] == pytest.approx(1.05) and error["met"] is True
    assert memory["measured"] == 1.0 and memory["met"] is True


def test_the_speed_target_is_judged_in_cpu_seconds():
    """The two paths run in their own processes, possibly at different loads: a classical run
    slowed in wall seconds by other processes must not make the learned path look faster."""
    row = _row(100, 1e6, 100.0, 10.0)
    row.update(classical_offline_s=400.0, speedup_learned=40.0)  # 4x the wall time: a loaded machine
    speed = targets({"checkpoint": {"trained_on": "test"}, "cases": [row]})[1]
    assert speed["measured"] == pytest.approx(10.0) and speed["met"] is False
    assert any("wall seconds" in c and "40.00×" in c for c in speed["caveats"])


def test_a_size_not_run_is_missing_from_the_targets_and_the_fit():
    stub = {"case": "100^3/10^3", "dofs": 101**3, "samples": 3, "ranks": 2, "N_v": 1331, "missing": True}
    rows = [_row(n, n**3, 2e-6 * n**4.5, 1.0) for n in (25, 50)] + [merged(None, None, stub)]
    payload = {"checkpoint": None, "notes": ["killed"], "cases": rows}
    assert all(t["measured"] is None and t["met"] is None and "killed" in t["caveats"] for t in targets(payload))
    assert scaling(rows)["classical_offline"]["exponent_wall"] == pytest.approx(1.5)
