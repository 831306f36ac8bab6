"""Static map figures (matplotlib + cartopy, offline) of the datasets ``workbench.maps.predict_map`` returns.

``map(ds, "breaking")`` draws one variable with state and country borders, 50m coastlines, elevation
contours, the context stations and a colour bar with units; ``breaking_vs_elevation(ds)`` puts the
breaking field beside the elevation with a scatter of one against the other; ``gap_split(models)``
draws where each model's gap to the exact oracle goes (learning shortfall, symmetry headroom,
Gaussian limit) against the ceilings A, B, D of :mod:`workbench.ceilings`. Importing this module
points cartopy at the shipped Natural Earth files, so nothing is ever downloaded.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from workbench.geo import configure_cartopy
from workbench.maps import correlation
from workbench.style import STYLES, Style
from workbench.units import pretty

configure_cartopy()

import cartopy.crs as ccrs  # noqa: E402 - cartopy must be configured before its features are used
import cartopy.feature as cfeature  # noqa: E402

__all__ = ["breaking_vs_elevation", "gap_split", "map", "projection_for"]

PLATE = ccrs.PlateCarree()


def _region(ds: xr.Dataset) -> tuple[float, float, float, float]:
    lon, lat = ds["lon"].values, ds["lat"].values
    dlon = float(np.diff(lon).mean()) / 2 if len(lon) > 1 else 0.5
    dlat = float(np.diff(lat).mean()) / 2 if len(lat) > 1 else 0.5
    return float(lon.min() - dlon), float(lon.max() + dlon), float(lat.min() - dlat), float(lat.max() + dlat)


def projection_for(ds: xr.Dataset) -> ccrs.Projection:
    """A Lambert conformal projection centred on the map for regional maps, PlateCarree for wide ones."""
    lon0, lon1, lat0, lat1 = _region(ds)
    if lon1 - lon0 > 45 or lat1 - lat0 > 45:
        # A cone over a continent fans out into a wedge; a plain lon/lat map reads better.
        return ccrs.PlateCarree(central_longitude=(lon0 + lon1) / 2)
    lat_c = (lat0 + lat1) / 2
    parallels = (lat_c - (lat1 - lat0) / 4, lat_c + (lat1 - lat0) / 4)
    if abs(lat_c) < 5:
        return ccrs.PlateCarree(central_longitude=(lon0 + lon1) / 2)
    return ccrs.LambertConformal(
        central_longitude=(lon0 + lon1) / 2, central_latitude=lat_c, standard_parallels=parallels
    )


def _units(da: xr.DataArray) -> str:
    return pretty(da.attrs.get("units", ""))


def _title(ds: xr.Dataset, var: str, channel: int) -> str:
    if var not in STYLES:
        return str(ds[var].attrs.get("long_name", var))
    return STYLES[var].heading(channel)


def _elevation_levels(e: np.ndarray) -> np.ndarray:
    lo, hi = np.nanmin(e), np.nanmax(e)
    step = 500.0 if hi - lo > 1500 else 250.0 if hi - lo > 600 else 100.0
    return np.arange(np.ceil(lo / step) * step, hi, step)


def _draw_box(ax: Any, ds: xr.Dataset, transform: Any) -> None:
    """Outline the training box when the map reaches beyond it (where fixed inputs stop acting)."""
    box = ds.attrs.get("box_lonlat")
    if box is None or "in_box" not in ds or bool(ds["in_box"].all()):
        return
    lon0, lon1, lat0, lat1 = box
    lons = np.r_[
        np.linspace(lon0, lon1, 50), np.full(50, lon1), np.linspace(lon1, lon0, 50), np.full(50, lon0)
    ]
    lats = np.r_[
        np.full(50, lat0), np.linspace(lat0, lat1, 50), np.full(50, lat1), np.linspace(lat1, lat0, 50)
    ]
    ax.plot(lons, lats, "k--", lw=1.2, transform=transform, label="training box")


def map(  # noqa: A001 - the name the API promises: workbench.plot.map
    ds: xr.Dataset,
    var: str = "mean",
    ax: Any = None,
    *,
    channel: int = 0,
    contours: bool = True,
    stations: bool = True,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    projection: Any = None,
    figsize: tuple[float, float] = (8.0, 6.0),
) -> Figure:
    """One variable of a map dataset on a cartopy map; returns the figure (``ax`` given: its figure).

    Borders: countries, US states (``cfeature.STATES``) and coastlines at '50m' (shipped offline).
    ``breaking`` and ``fixed_inputs`` use a diverging colour map centred at zero.
    """
    if var not in ds:
        names = [n for n in ds.data_vars if ds[n].dims[-2:] == ("lat", "lon")]
        raise ValueError(f"var = {var!r} is not in the map; choose one of: {', '.join(names)}")
    da = ds[var]
    if "channel" in da.dims:
        n = da.sizes["channel"]
        if not 0 <= channel < n:
            raise ValueError(f"channel = {channel} is not valid; the map has fixed-input channels 0..{n - 1}")
        da = da.isel(channel=channel)
    data = np.asarray(da.values, dtype=np.float64)
    planar = bool(ds.attrs.get("planar", 0))
    style = STYLES.get(var, Style(var, "viridis"))
    cmap, centred = cmap or style.colours, style.centred

    own = ax is None
    if own:
        fig = plt.figure(figsize=figsize, layout="constrained")
        ax = (
            fig.add_subplot(1, 1, 1)
            if planar
            else fig.add_subplot(1, 1, 1, projection=projection or projection_for(ds))
        )
    fig = ax.figure
    geo = hasattr(ax, "projection")
    kw = {"transform": PLATE} if geo else {}

    finite = data[np.isfinite(data)]
    show_values = stations and var in ("mean", "mean_strict", "truth") and "station_value" in ds
    if show_values and ds.sizes.get("station", 0):
        # One colour scale for the field and the observations drawn on it.
        finite = np.concatenate([finite, ds["station_value"].values[np.isfinite(ds["station_value"].values)]])
    if centred:
        lim = float(np.abs(finite).max()) if finite.size else 0.0
        lim = lim if lim > 0 else 1.0  # an all-zero breaking field still gets a readable colour bar
        norm: Normalize = TwoSlopeNorm(0.0, -lim if vmin is None else vmin, lim if vmax is None else vmax)
    else:
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        norm = Normalize(lo if vmin is None else vmin, hi if vmax is None else vmax)
    lon, lat = ds["lon"].values, ds["lat"].values
    mesh = ax.pcolormesh(lon, lat, np.ma.masked_invalid(data), cmap=cmap, norm=norm, shading="auto", **kw)

    if geo:
        region = _region(ds)
        ax.set_extent(region, crs=PLATE)
        # '50m' explicitly: the 10m coastline is not shipped, and 'auto' would ask for it on small maps.
        ax.coastlines("50m", linewidth=0.8)
        ax.add_feature(cfeature.BORDERS, linewidth=0.8, edgecolor="0.2")
        ax.add_feature(cfeature.STATES, linewidth=0.5, edgecolor="0.35")
        gl = ax.gridlines(
            draw_labels=True,
            x_inline=False,
            y_inline=False,
            linewidth=0.3,
            color="0.6",
            alpha=0.7,
            linestyle=":",
        )
        gl.top_labels = gl.right_labels = False
        gl.rotate_labels = False
        gl.xlabel_style = gl.ylabel_style = {"size": 8}
    else:
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_aspect("equal")

    if contours and var != "elevation" and "elevation" in ds and np.isfinite(ds["elevation"].values).any():
        e = ds["elevation"].values
        levels = _elevation_levels(e)
        if len(levels):
            cs = ax.contour(lon, lat, e, levels=levels, colors="k", linewidths=0.5, alpha=0.45, **kw)
            ax.clabel(cs, fmt="%d m", fontsize=6, inline=True)

    if stations and "station_lon" in ds and ds.sizes.get("station", 0):
        slon, slat = ds["station_lon"].values, ds["station_lat"].values
        if show_values:
            # Observed values in the same colours as the prediction: misfits stand out.
            ax.scatter(
                slon,
                slat,
                c=ds["station_value"].values,
                cmap=cmap,
                norm=norm,
                s=22,
                edgecolors="k",
                linewidths=0.6,
                zorder=5,
                label="context stations",
                **kw,
            )
        else:
            ax.scatter(
                slon,
                slat,
                s=8,
                c="k",
                marker="o",
                linewidths=0,
                alpha=0.7,
                zorder=5,
                label="context stations",
                **kw,
            )

    if geo:
        _draw_box(ax, ds, PLATE)
    label = str(da.attrs.get("long_name", var))
    units = _units(da)
    cbar = fig.colorbar(mesh, ax=ax, shrink=0.85, pad=0.02)
    cbar.set_label(f"{label} [{units}]" if units else label)
    if title is None:
        title = _title(ds, var, channel)
        context = ds.attrs.get("context")
        # Fixed inputs and elevation do not depend on the context; saying which would mislead.
        if context and var not in ("fixed_inputs", "elevation"):
            title += f" — {context}"
    ax.set_title(title, fontsize=11)
    if own and ds.attrs.get("title"):
        fig.suptitle(ds.attrs["title"], fontsize=9, color="0.3")
    return fig


def breaking_vs_elevation(ds: xr.Dataset, *, figsize: tuple[float, float] = (17.0, 5.2)) -> Figure:
    """Breaking field | elevation | scatter of breaking against elevation (inside the box) with r."""
    if "elevation" not in ds:
        raise ValueError("this map has no elevation variable (its dataset has no elevation)")
    fig = plt.figure(figsize=figsize, layout="constrained")
    proj = None if ds.attrs.get("planar") else projection_for(ds)
    kw = {} if proj is None else {"projection": proj}
    ax1 = fig.add_subplot(1, 3, 1, **kw)
    ax2 = fig.add_subplot(1, 3, 2, **kw)
    ax3 = fig.add_subplot(1, 3, 3)
    map(ds, "breaking", ax=ax1, contours=False)
    map(ds, "elevation", ax=ax2, stations=False, contours=False)
    b, e = ds["breaking"].values, ds["elevation"].values
    keep = np.isfinite(b) & np.isfinite(e)
    if "in_box" in ds:
        keep &= ds["in_box"].values
    r = correlation(b[keep], e[keep])
    ax3.scatter(e[keep], b[keep], s=4, alpha=0.35, c="tab:blue", linewidths=0)
    if keep.sum() > 2 and np.ptp(e[keep]) > 0:
        slope, icept = np.polyfit(e[keep], b[keep], 1)
        xs = np.array([e[keep].min(), e[keep].max()])
        ax3.plot(
            xs,
            slope * xs + icept,
            "k-",
            lw=1.2,
            label=f"slope {1000 * slope:.2f} {_units(ds['breaking'])}/km",
        )
        ax3.legend(loc="best", fontsize=9)
    ax3.axhline(0, color="0.5", lw=0.6)
    ax3.set_xlabel("elevation [m]")
    ax3.set_ylabel(f"breaking [{_units(ds['breaking'])}]")
    ax3.set_title(f"Breaking vs elevation inside the box: r = {r:.2f}", fontsize=11)
    ax3.grid(alpha=0.3)
    fig.suptitle(f"{ds.attrs.get('title', '')} — {ds.attrs.get('context', '')}", fontsize=12)
    return fig


#: Colours of the parts of a gap to the oracle (the same in every gap-split figure).
GAP_COLOURS = {
    "learning_shortfall": "#f4a259",
    "symmetry_headroom": "#bc4b51",
    "gaussian_limit": "#9e9e9e",
    "beyond": "#5b8e7d",
}
#: What the three ceilings are called in the figure's legend.
CEILING_NAMES = {
    "oracle_loglik": "A: exact oracle",
    "gaussian_loglik": "B: best Gaussian",
    "equivariant_loglik": "D: best strict (translation-equivariant)",
}


def _metric_rows(models: Any) -> list[tuple[str, list[dict[str, float]]]]:
    """``{name: metrics | Run | [metrics or Run per seed]}`` as ``[(name, [metrics per seed])]``."""
    rows = []
    for name, value in dict(models).items():
        seeds = value if isinstance(value, (list, tuple)) else [value]
        metrics = [getattr(v, "metrics", v) for v in seeds]
        needed = ("loglik", "oracle_loglik", "gaussian_loglik", "equivariant_loglik", "symmetry_headroom")
        missing = [k for k in needed if any(k not in m for m in metrics)]
        if missing or not metrics:
            raise ValueError(
                f"model {name!r} lacks {', '.join(missing) or 'metrics'}: the gap split needs the "
                "ceilings of a synthetic GP dataset (workbench.run adds them)"
            )
        rows.append((str(name), metrics))
    return rows


def gap_split(
    models: Any,
    ax: Any = None,
    *,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Where each model's gap to the oracle goes: one horizontal bar per model, ceilings drawn.

    ``models`` maps a name to a run's metrics (or a :class:`~workbench.runs.Run`), or to a list of
    them, one per seed: the bar then starts at the mean test log-likelihood, with its standard
    error over seeds as an error bar. From the model's log-likelihood up to the oracle A the bar
    holds the learning shortfall, the symmetry headroom B - D (strict models only: their
    ``symmetry_headroom`` metric is non-zero) and the Gaussian limit A - B. A model above its
    ceiling (a negative shortfall, possible on a finite test set) gets a green hatched piece from
    the ceiling up to its score. The x axis spans the numbers, not 0, so hundredths show.
    """
    rows = _metric_rows(models)
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=figsize or (10.0, 1.2 + 0.75 * len(rows)), layout="constrained")
    fig = ax.figure
    first = rows[0][1]
    ceil = {k: float(np.mean([m[k] for m in first])) for k in CEILING_NAMES}
    lows = []
    drawn: set[str] = set()

    def segment(y: float, lo: float, hi: float, part: str, label: str, **kw: Any) -> None:
        if hi - lo <= 0:
            return
        # One legend entry per part, however many bars use it.
        show = label if part not in drawn else None
        drawn.add(part)
        ax.barh(y, hi - lo, left=lo, height=0.6, color=GAP_COLOURS[part], label=show, **kw)

    for y, (_, metrics) in enumerate(rows):
        ll = np.array([m["loglik"] for m in metrics], dtype=float)
        mean = float(ll.mean())
        se = float(ll.std(ddof=1) / np.sqrt(len(ll))) if len(ll) > 1 else 0.0
        strict = any(abs(m["symmetry_headroom"]) > 0 for m in metrics)
        a, b, d = ceil["oracle_loglik"], ceil["gaussian_loglik"], ceil["equivariant_loglik"]
        ceiling = d if strict else b  # the best this kind of model can do on average
        segment(y, mean, ceiling, "learning_shortfall", "learning shortfall")
        if strict:
            segment(y, max(mean, d), b, "symmetry_headroom", "symmetry headroom B - D (strict models)")
        segment(y, max(mean, b), a, "gaussian_limit", "Gaussian limit A - B")
        segment(y, ceiling, mean, "beyond", "above its ceiling", hatch="//", alpha=0.6)
        if se > 0:
            ax.errorbar(mean, y, xerr=se, fmt="none", ecolor="k", capsize=4, lw=1.2)
        ax.plot(mean, y, "k|", ms=18, mew=2)
        note = f"{mean:.3f}" + (f" ± {se:.3f}" if se > 0 else "")
        ax.annotate(
            note,
            (min(mean - se, ceiling), y),
            xytext=(-6, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=9,
        )
        lows.append(min(mean - se, ceiling))

    styles = {
        "oracle_loglik": ("k", "-"),
        "gaussian_loglik": ("0.3", "--"),
        "equivariant_loglik": ("#bc4b51", ":"),
    }
    for key, value in ceil.items():
        colour, ls = styles[key]
        ax.axvline(value, color=colour, ls=ls, lw=1.5, label=f"{CEILING_NAMES[key]} = {value:.3f}")
    lo, hi = min(lows + [ceil["equivariant_loglik"]]), ceil["oracle_loglik"]
    span = max(hi - lo, 1e-3)
    # Room on the left for the value labels; the axis never starts at 0, hundredths must show.
    ax.set_xlim(lo - 0.3 * span, hi + 0.05 * span)
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.set_xlabel("test log-likelihood per target [nats] (higher is better)")
    ax.grid(alpha=0.3, axis="x")
    if own:
        # Outside the axes, below them: constrained layout keeps it clear of the bars at any height.
        fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    else:
        ax.legend(loc="best", fontsize=8)
    n_seeds = max(len(m) for _, m in rows)
    default = "Where the gap to the oracle goes" + (
        f" (mean ± s.e. over {n_seeds} seeds)" if n_seeds > 1 else ""
    )
    ax.set_title(title or default, fontsize=11)
    return fig


#: Colours of the scaling study's methods (others get the matplotlib cycle).
METHOD_COLOURS = {
    "none": "#7a7a7a",
    "none+augmentation": "#e09f3e",
    "strict": "#bc4b51",
    "fixed-inputs": "#2a6f97",
    "residual-pathway": "#6a994e",
}


def _scaling_panel(ax: Any, ds: xr.Dataset, dim: str, ceilings: dict[str, float] | None, fits: Any) -> None:
    mean, n = ds["loglik"].mean("seed"), ds["loglik"].notnull().sum("seed")
    se = (ds["loglik"].std("seed", ddof=1) / np.sqrt(n)).where(n > 1).fillna(0.0)
    x = ds[dim].values.astype(float)
    for m in ds["method"].values:
        colour = METHOD_COLOURS.get(str(m))
        y, e = mean.sel({"method": m}).values, se.sel({"method": m}).values
        line = ax.errorbar(x, y, yerr=e, marker="o", ms=5, capsize=3, lw=1.6, color=colour, label=str(m))
        if fits is not None and bool(fits["holds"].sel({"method": m})):
            f = fits.sel({"method": m})
            xs = np.geomspace(x.min(), x.max(), 100)
            ax.plot(
                xs,
                float(f["c"]) - float(f["a"]) * xs ** (-float(f["b"])),
                ls="--",
                lw=1,
                color=line[0].get_color(),
            )
    if ceilings:
        for key, label, ls in (
            ("oracle_loglik", "A oracle", "-"),
            ("equivariant_loglik", "D best strict", ":"),
        ):
            if key in ceilings:
                ax.axhline(
                    ceilings[key], color="k", ls=ls, lw=1, alpha=0.7, label=f"{label} {ceilings[key]:.2f}"
                )
    ax.set_xscale("log", base=2 if dim == "n_tasks" else 10)
    units = ds[dim].attrs.get("units", "")
    ax.set_xlabel(f"{ds[dim].attrs.get('long_name', dim)} [{units}]")
    ax.set_ylabel("test log-likelihood [nats/target]")
    ax.grid(alpha=0.3, which="both")


def scaling(
    data: xr.Dataset | None = None,
    compute: xr.Dataset | None = None,
    *,
    ceilings: dict[str, float] | None = None,
    fits: bool = True,
    title: str | None = None,
) -> Figure:
    """Test log-likelihood against training-set size (left) and compute (right), one line per method.

    ``data`` / ``compute``: :func:`workbench.scaling.data_scaling` / ``compute_scaling`` results
    (either may be None). Points are means over seeds with standard errors; dashed lines are the
    power laws of :func:`workbench.scaling.power_laws` where they hold; ``ceilings`` (A, D) are drawn.
    """
    from workbench.scaling import power_laws

    panels = [(ds, dim) for ds, dim in ((data, "n_tasks"), (compute, "budget")) if ds is not None]
    if not panels:
        raise ValueError("give data= (data_scaling) or compute= (compute_scaling), or both")
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6.2 * len(panels), 4.6), layout="constrained", squeeze=False
    )
    for ax, (ds, dim) in zip(axes[0], panels, strict=True):
        _scaling_panel(ax, ds, dim, ceilings, power_laws(ds, dim) if fits else None)
        what = "training-set size" if dim == "n_tasks" else "compute"
        ax.set_title(f"{ds.attrs.get('dataset', '')}: against {what}", fontsize=11)
    handles, labels = axes[0][0].get_legend_handles_labels()
    ncol = min(len(labels), 7)
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
    seeds = panels[0][0].sizes.get("seed", 1)
    fig.suptitle(title or f"Does equivariance matter at scale? (mean ± s.e. over {seeds} seeds)", fontsize=12)
    return fig
