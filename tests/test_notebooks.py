"""Every notebook in notebooks/ runs under papermill with fast parameters and records sane metrics.

Each notebook writes its key numbers as JSON at ``metrics_path``; the checks below read them. A new
notebook is picked up by the glob and must at least record its name, its parameters and a finite
log-likelihood.
"""

import json
import math
from pathlib import Path

import numpy as np
import papermill as pm
import pytest
import xarray as xr

from workbench import Experiment, load_run, run
from workbench.cli import find_notebook, main, parse_value

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: Keys each known notebook must record (besides ``notebook`` and ``parameters``).
EXPECTED = {
    "00_start_here": {"loglik", "loglik_strict", "orbit_error_strict"},
    "01_symmetry_and_equivariance": {
        "orbit_error_untrained",
        "orbit_error_strict",
        "loglik",
        "oracle_loglik",
        "gap_split",
    },
    "02_breaking_symmetry_1d": {
        "loglik",
        "loglik_se",
        "ceilings",
        "paired_difference",
        "gap_split",
        "strength_sweep",
        "paper_case",
        "oracle_loglik",
        "delta_equiv",
        "orbit_error",
        "orbit_error_strict",
    },
    "03_mountains_colorado": {
        "loglik",
        "breaking_elevation_corr",
        "map_breaking_elevation_corr",
        "orbit_error",
        "orbit_error_strict",
    },
    "04_rotations_and_reflections": {
        "loglik",
        "oracle_loglik",
        "relative_orbit_error_untrained",
        "orbit_error_trained_fixed_inputs",
        "orbit_error_strict",
    },
    "05_relaxation_sweep": {"loglik", "loglik_strict", "orbit_error_strict", "results_path", "results_dims"},
    "06_does_equivariance_matter_at_scale": {"loglik", "answers", "ceilings", "power_laws", "seeds"},
}
STRICT = 1e-4  # an exactly equivariant model: float rounding only


def _execute(path: Path, tmp_path: Path, **parameters) -> dict:
    """Run a notebook with fast parameters (plus those it declares: run_dir, results_path); its metrics."""
    declared = pm.inspect_notebook(str(path))
    given = {"fast": True, "metrics_path": str(tmp_path / "metrics.json")}
    optional = {
        "run_dir": str(tmp_path / "runs"),
        "results_path": str(tmp_path / "results.nc"),
        "results_dir": str(tmp_path / "study"),
    }
    given.update({k: v for k, v in optional.items() if k in declared})
    given.update(parameters)
    pm.execute_notebook(
        str(path),
        str(tmp_path / path.name),
        parameters=given,
        kernel_name="python3",
        language="python",
        progress_bar=False,
        cwd=str(tmp_path),  # anything a notebook writes by a relative path lands here, not in the repo
    )
    return json.loads((tmp_path / "metrics.json").read_text())


def _logliks(record: dict) -> list[float]:
    """Every number recorded under a key that names a log-likelihood, however deeply nested."""
    found = []

    def walk(obj, under_loglik: bool) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, under_loglik or "loglik" in str(k))
        elif isinstance(obj, list):
            for v in obj:
                walk(v, under_loglik)
        elif under_loglik and obj is not None:
            found.append(obj)

    walk(record, False)
    return found


def _check_01(m: dict, tmp_path: Path) -> None:
    t, flips = (
        m["orbit_error_untrained"]["translations (T)"],
        m["orbit_error_untrained"]["translations + flips (T+flip)"],
    )
    assert t["strict (T)"] < STRICT and t["strict (T+flip)"] < STRICT and flips["strict (T+flip)"] < STRICT
    # The free model and a T model under flips are measurably not equivariant, even untrained.
    assert t["none"] > 100 * max(t["strict (T)"], 1e-8)
    assert flips["strict (T)"] > 100 * max(flips["strict (T+flip)"], 1e-8)
    # The strict model trained on the default world (mountain-1d) is charged a symmetry headroom,
    # and the three parts of its gap add up to the gap.
    assert m["dataset"] == "mountain-1d"
    split = m["gap_split"]
    assert split["symmetry_headroom"] > 0.1
    assert sum(split.values()) == pytest.approx(m["oracle_loglik"] - m["loglik"]["strict"])


def _check_02(m: dict, tmp_path: Path) -> None:
    assert m["oracle_loglik"] > max(m["loglik"].values())  # the oracle is the ceiling
    assert set(m["loglik"]) == {"none", "strict", "fixed-inputs", "fixed-inputs (strict component)"}
    assert m["orbit_error"]["fixed-inputs, t off"] < STRICT < m["orbit_error"]["fixed-inputs, t on"]
    assert m["delta_equiv"] > 0
    # Results over seeds, never one seed: a standard error per model and per paired difference.
    assert m["seeds"] == 2
    assert all(len(v) == m["seeds"] for v in m["loglik_by_seed"].values())
    assert all(math.isfinite(v) and v >= 0 for v in m["loglik_se"].values())
    for diff in m["paired_difference"].values():
        assert math.isfinite(diff["mean"]) and diff["se_seeds"] >= 0 and diff["se_tasks"] > 0
    # The ceilings come in order A >= B >= D, and the default world has a large headroom.
    for c in (m["ceilings"], m["paper_case"]):
        assert c["oracle_loglik"] >= c["gaussian_loglik"] - 1e-9 >= c["equivariant_loglik"] - 2e-9
        assert c["symmetry_headroom"] == pytest.approx(c["gaussian_loglik"] - c["equivariant_loglik"])
    assert m["dataset"] == "mountain-1d" and m["ceilings"]["symmetry_headroom"] >= 0.2
    assert m["paper_case"]["symmetry_headroom"] < 0.1  # gibbs-1d: the paper's case, small
    # The gap split adds up to the gap, and only strict models are charged the headroom.
    for name, parts in m["gap_split"].items():
        assert (parts["symmetry_headroom"] > 0) == (name in ("strict", "fixed-inputs, t off")), name
    strict = m["gap_split"]["strict"]
    assert sum(strict.values()) == pytest.approx(m["oracle_loglik"] - m["loglik"]["strict"])
    # The check of whether the strict model stays below D is recorded (it need not, see the notebook).
    assert m["strict_minus_equivariant"]["se_tasks"] > 0 and m["target_set_dependence"] >= 0
    # The strength sweep: one entry per strength, each with a standard error; no headroom at 0.
    sweep = m["strength_sweep"]
    assert [e["strength"] for e in sweep] == m["parameters"]["world_strengths"]
    assert all(math.isfinite(e["gain"]) and e["gain_se"] >= 0 and e["gain_se_tasks"] > 0 for e in sweep)
    assert abs(sweep[0]["symmetry_headroom"]) < 1e-6
    headroom = [e["symmetry_headroom"] for e in sweep]
    assert headroom == sorted(headroom) and headroom[-1] >= 0.2


def _check_03(m: dict, tmp_path: Path) -> None:
    for key in ("breaking_elevation_corr", "map_breaking_elevation_corr"):
        assert -1.0 <= m[key] <= 1.0
    assert m["orbit_error"]["fixed inputs off"] < STRICT < m["orbit_error"]["fixed inputs on"]


def _check_04(m: dict, tmp_path: Path) -> None:
    rel = m["relative_orbit_error_untrained"]
    assert rel["T+C4"]["rot90"] < STRICT < rel["T"]["rot90"]
    assert rel["T+D4"]["flip+rot0"] < STRICT < rel["T+C4"]["flip+rot0"]
    assert rel["T+C8"]["rot45"] * 10 < rel["T"]["rot45"]  # interpolated filters: close, not exact
    trained = m["orbit_error_trained_fixed_inputs"]
    assert max(trained["fixed inputs off"].values()) < STRICT
    assert trained["fixed inputs on"]["rot90"] > 100 * max(trained["fixed inputs off"]["rot90"], 1e-8)
    assert m["oracle_loglik"] > max(m["loglik"].values())


def _check_05(m: dict, tmp_path: Path) -> None:
    p = m["parameters"]
    with xr.open_dataset(m["results_path"]) as ds:
        sizes = {"group": len(p["groups"]), "strength": len(p["strengths"]), "seed": m["seeds"]}
        assert dict(ds.sizes) == sizes and m["seeds"] == 2
        assert list(ds["group"].values) == p["groups"]
        assert np.allclose(ds["strength"].values, p["strengths"])
        for name in ("loglik", "loglik_strict", "orbit_error", "delta_equiv", "equivariant_loglik"):
            assert ds[name].dims == ("group", "strength", "seed"), name
            assert np.isfinite(ds[name].values).all(), name
        assert ds["loglik"].attrs["units"] == "nats/target"
        assert ds["loglik_none"].dims == ("seed",)
        # Strength 0 is the strict model itself: same log-likelihood with fixed inputs on or off.
        at0 = ds.sel(strength=0.0)
        assert np.allclose(at0["loglik"], at0["loglik_strict"])
        assert float(at0["orbit_error"].max()) < STRICT
    # Every point has a mean and a standard error over seeds; the ceilings of the default world
    # (mountain-1d) come in order A >= B >= D, with room between B and D.
    assert set(m["loglik"]) == set(m["loglik_se"]) and len(m["loglik"]) == len(p["groups"]) * len(
        p["strengths"]
    )
    assert all(v >= 0 for v in m["loglik_se"].values())
    c = m["ceilings"]
    assert c["oracle_loglik"] >= c["gaussian_loglik"] - 1e-9 >= c["equivariant_loglik"] + 0.1


def _check_06(m: dict, tmp_path: Path) -> None:
    p = m["parameters"]
    assert p["datasets"] == ["mountain-1d", "colorado-temperature"] and m["seeds"] == 2
    for d in p["datasets"]:
        for axis, dim, values in (("data", "n_tasks", p["sizes"]), ("compute", "budget", p["budgets"])):
            with xr.open_dataset(Path(p["results_dir"]) / f"{d}_{axis}.nc") as ds:
                assert ds["loglik"].dims == ("method", dim, "seed")
                assert list(ds["method"].values) == p["methods"]
                assert np.allclose(ds[dim].values, values)
                assert np.isfinite(ds["loglik"].values).all() and ds["loglik"].attrs["units"] == "nats/target"
                if axis == "data":
                    # The recorded answer is the paired difference of these very runs.
                    per_task = ds["loglik_per_task"]
                    diff = per_task.sel({"method": "strict"}) - per_task.sel({"method": "none"})
                    diff = diff.mean(["task", "seed"])
                    got = [m["answers"][d]["data_efficiency"][str(n)] for n in p["sizes"]]
                    assert np.allclose(got, diff.values, atol=1e-9)
        winners = m["answers"][d]["winners_compute"]
        assert [w["budget"] for w in winners] == p["budgets"]
        assert all(w["best"] in p["methods"] and w["best"] != w["runner_up"] for w in winners)
    # The synthetic world has its ceilings (A >= B >= D, with headroom); Colorado none.
    c = m["ceilings"]["mountain-1d"]
    assert c["oracle_loglik"] >= c["gaussian_loglik"] - 1e-9 >= c["equivariant_loglik"] + 0.1
    assert m["ceilings"]["colorado-temperature"] is None
    assert set(m["power_laws"]) == {f"{d} / {x}" for d in p["datasets"] for x in ("n_tasks", "budget")}


CHECKS = {
    "01_symmetry_and_equivariance": _check_01,
    "02_breaking_symmetry_1d": _check_02,
    "03_mountains_colorado": _check_03,
    "04_rotations_and_reflections": _check_04,
    "05_relaxation_sweep": _check_05,
    "06_does_equivariance_matter_at_scale": _check_06,
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_fast_and_records_metrics(path, tmp_path):
    m = _execute(path, tmp_path)
    assert m["notebook"] == path.stem
    assert m["parameters"]["fast"] is True
    missing = EXPECTED.get(path.stem, {"loglik"}) - set(m)
    assert not missing, f"{path.name} did not record {sorted(missing)}"
    values = _logliks(m)
    assert values and all(isinstance(v, float) and math.isfinite(v) for v in values), values
    if m.get("orbit_error_strict") is not None:
        assert 0 <= m["orbit_error_strict"] < STRICT
    if path.stem in CHECKS:
        CHECKS[path.stem](m, tmp_path)


def test_cli_runs_a_notebook_that_loads_a_saved_run(tmp_path, monkeypatch):
    exp = Experiment(dataset="gp-eq-1d", group="T", relaxation="strict", steps=2, test_tasks=16)
    saved = run(exp, progress=False)
    saved.save(tmp_path / "run")
    monkeypatch.chdir(tmp_path)  # the default output NN_out.ipynb goes to the working directory
    metrics = tmp_path / "m.json"
    args = [
        "notebook",
        "1",
        "-p",
        "fast",
        "True",
        "-p",
        "train",
        "False",
        "-p",
        "run_dir",
        str(tmp_path / "run"),
    ]
    assert main([*args, "-p", "metrics_path", str(metrics), "--no-progress"]) == 0
    assert (tmp_path / "01_out.ipynb").is_file()
    m = json.loads(metrics.read_text())
    assert m["parameters"]["train"] is False and m["parameters"]["fast"] is True
    assert m["loglik"]["strict"] == pytest.approx(saved.metrics["loglik"])  # the loaded run's metrics
    assert m["orbit_error_strict"] < STRICT


def test_cli_notebook_errors_list_the_choices(capsys):
    assert main(["notebook", "99"]) == 2
    err = capsys.readouterr().err
    assert "choose one of" in err and "01 (01_symmetry_and_equivariance)" in err
    with pytest.raises(ValueError, match="05_relaxation_sweep"):
        find_notebook("nonsense")
    assert find_notebook("3").name == "03_mountains_colorado.ipynb"
    assert find_notebook("03_mountains_colorado").name == "03_mountains_colorado.ipynb"


def test_cli_values_are_read_like_papermill():
    assert parse_value("3000") == 3000 and isinstance(parse_value("3000"), int)
    assert parse_value("0.5") == 0.5
    assert parse_value("True") is True and parse_value("False") is False and parse_value("None") is None
    assert parse_value("T+C4") == "T+C4" and parse_value("1990-07") == "1990-07"
    assert parse_value('["T", "T+C4"]') == ["T", "T+C4"]
    assert parse_value("[not json") == "[not json"


def test_train_or_load_trains_saves_and_loads(tmp_path, monkeypatch):
    """The notebooks' train-or-load switch (workbench.cache): a cache by default, or forced either way."""
    from workbench import cache

    tiny = dict(steps=2, test_tasks=8, width=8, depth=2)
    exp = Experiment(dataset="gp-eq-1d", group="T", relaxation="strict", **tiny)
    folder = tmp_path / "run"
    trained = cache.train_or_load(exp, folder, progress=False)
    assert cache.holds_run(folder)

    calls = []
    real_run = cache.run
    monkeypatch.setattr(cache, "run", lambda e, **kw: calls.append(e) or real_run(e, **kw))
    # The same experiment (another device aside) is loaded, not trained again.
    again = cache.train_or_load(exp.replace(device="cpu"), folder, progress=False)
    assert calls == [] and again.metrics["loglik"] == pytest.approx(trained.metrics["loglik"])
    # train=False loads whatever is there; it never trains.
    assert cache.train_or_load(exp.replace(steps=3), folder, train=False).experiment.steps == 2
    # Another experiment is trained and replaces the saved run (whether or not Run.save refuses by default).
    other = exp.replace(seed=1)
    cache.train_or_load(other, folder, progress=False)
    assert calls == [other] and load_run(folder).experiment.seed == 1
    # train=True always trains, even when the folder holds the same experiment.
    cache.train_or_load(other, folder, train=True, progress=False)
    assert calls == [other, other]
    # Without a folder: trained, nothing saved; train=False needs a folder.
    assert cache.train_or_load(exp, None, progress=False).experiment == exp
    with pytest.raises(ValueError, match="train=False"):
        cache.train_or_load(exp, None, train=False)
    with pytest.raises(FileNotFoundError):
        cache.train_or_load(exp, tmp_path / "empty", train=False)
