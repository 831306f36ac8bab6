"""Controls bound to an :class:`~workbench.Experiment`: only valid combinations can be picked.

Which choices are offered is decided by ``Experiment.validate`` itself (a choice is offered when an
experiment with it validates), so the widgets never disagree with the library; what is left out is
named, with the library's reason, in the widget's tooltip.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import ipywidgets as w
import torch

from workbench.config import MODELS, RELAXATIONS, Experiment
from workbench.data.registry import DATASETS, make_dataset
from workbench.groups import GROUPS

#: Preferred fallbacks when a change makes the current choice invalid.
PREFERRED = {"group": ("T", "none"), "relaxation": ("fixed-inputs", "strict")}


def _reason(err: ValueError) -> str:
    return str(err).removeprefix("Experiment.")


def _try(exp: Experiment, **changes: Any) -> str | None:
    """``None`` when the experiment with ``changes`` validates, else the library's reason."""
    try:
        exp.replace(**changes)
    except ValueError as err:
        return _reason(err)
    return None


def _why_not(left_out: dict[str, str]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in left_out.items())


class Controls(w.VBox):
    """Dataset, model family, group, relaxation, strength, steps and device of an experiment."""

    def __init__(self, experiment: Experiment | None = None, datasets: Sequence[str] | None = None) -> None:
        self._base = experiment or Experiment()
        names = list(datasets or DATASETS)
        self._custom: Any = None
        if not (isinstance(self._base.dataset, str) and self._base.dataset in names):
            if isinstance(self._base.dataset, str):
                names.append(self._base.dataset)
            else:  # an in-memory field cannot be an option value: keep it aside under a label
                self._custom = self._base.dataset
                names.append("your field")
        style = {"description_width": "90px"}
        layout = w.Layout(width="330px")
        self.dataset = w.Dropdown(options=names, description="dataset", style=style, layout=layout)
        self.model = w.Dropdown(options=list(MODELS), description="model", style=style, layout=layout)
        self.group = w.Dropdown(options=list(GROUPS), description="group", style=style, layout=layout)
        self.relaxation = w.Dropdown(
            options=list(RELAXATIONS), description="relaxation", style=style, layout=layout
        )
        self.strength = w.FloatSlider(
            min=0.0, max=1.0, step=0.05, description="strength", style=style, layout=layout
        )
        self.steps = w.BoundedIntText(min=0, max=10_000_000, description="steps", style=style, layout=layout)
        self.steps.add_class("aenp-steps")
        devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        self.device = w.Dropdown(options=devices, description="device", style=style, layout=layout)
        self.device.tooltip = (
            "auto = CUDA when present, else CPU"
            if "cuda" in devices
            else "cuda is not offered: PyTorch sees no CUDA GPU on this machine"
        )
        self.early = w.Checkbox(
            value=True,
            description="early stopping",
            indent=False,
            layout=w.Layout(width="330px"),
            tooltip="score the validation split every tenth of the steps and keep the best weights",
        )
        self.early.add_class("aenp-early")
        self.help = w.HTML(layout=w.Layout(width="420px"))
        self.help.add_class("aenp-help")
        self._busy = False
        self._updating = False
        self.set_experiment(self._base)
        for widget in (self.dataset, self.model, self.group, self.relaxation):
            widget.observe(self._on_change, names="value")
        left = w.VBox([self.dataset, self.model, self.group, self.relaxation])
        right = w.VBox([self.strength, self.steps, self.device, self.early])
        super().__init__([w.HBox([left, right]), self.help])
        self.add_class("aenp-controls")

    # --- the experiment ---------------------------------------------------------------------------

    def _dataset_value(self) -> Any:
        return self._custom if self.dataset.value == "your field" else self.dataset.value

    @property
    def has_validation(self) -> bool:
        """Whether the chosen dataset has a validation split (real data: early stopping applies)."""
        try:
            return make_dataset(self._dataset_value()).has_validation
        except Exception:  # an unreadable dataset: Experiment.validate will say why
            return False

    @property
    def experiment(self) -> Experiment:
        """The validated experiment the widgets describe (other fields come from the one given).

        With early stopping ticked (and a validation split to stop on) the validation split is
        scored every tenth of the steps; the given experiment's own ``validate_every`` wins if set.
        """
        steps = int(self.steps.value)
        every = 0
        if self.early.value and self.has_validation:
            every = self._base.validate_every or max(10, steps // 10)
        return self._base.replace(
            dataset=self._dataset_value(),
            model=self.model.value,
            group=self.group.value,
            relaxation=self.relaxation.value,
            strength=float(self.strength.value),
            steps=steps,
            device=self.device.value,
            validate_every=every,
        )

    def set_experiment(self, exp: Experiment) -> None:
        """Show ``exp`` in the widgets (its other fields are kept for :attr:`experiment`)."""
        self._base = exp
        self._updating = True
        try:
            if isinstance(exp.dataset, str):
                if exp.dataset not in self.dataset.options:
                    self.dataset.options = [*self.dataset.options, exp.dataset]
                self.dataset.value = exp.dataset
            else:
                self._custom = exp.dataset
                if "your field" not in self.dataset.options:
                    self.dataset.options = [*self.dataset.options, "your field"]
                self.dataset.value = "your field"
            self.model.value = exp.model
            self.strength.value = float(exp.strength)
            self.steps.value = int(exp.steps)
            if exp.device in self.device.options:
                self.device.value = exp.device
        finally:
            self._updating = False
        self._refresh(group=exp.group, relaxation=exp.relaxation)

    # --- validity ---------------------------------------------------------------------------------

    def _on_change(self, change: dict) -> None:
        if not self._updating:
            self._refresh()

    def _offer(
        self, widget: w.Dropdown, name: str, candidates: Iterable[str], probe: Experiment, want: str
    ) -> dict[str, str]:
        """Offer the candidates that validate; pick ``want`` or a preferred fallback; return the rest."""
        ok, left_out = [], {}
        for value in candidates:
            why = _try(probe, **{name: value})
            if why is None:
                ok.append(value)
            else:
                left_out[value] = why
        pick = want if want in ok else next((p for p in PREFERRED.get(name, ()) if p in ok), ok[0])
        if tuple(widget.options) != tuple(ok):
            widget.options = ok
        widget.value = pick
        return left_out

    def _refresh(self, group: str | None = None, relaxation: str | None = None) -> None:
        """Offer only valid groups and relaxations for the chosen dataset and model; say why not."""
        if self._updating:
            return
        self._updating = True
        try:
            # Probe groups with the strict relaxation (valid with every group), then relaxations
            # with the chosen group, so a group is never hidden by the current relaxation.
            probe = self._base.replace(
                dataset=self._dataset_value(), model=self.model.value, group="none", relaxation="strict"
            )
            no_group = self._offer(self.group, "group", GROUPS, probe, group or self.group.value)
            probe = probe.replace(group=self.group.value)
            no_relax = self._offer(
                self.relaxation, "relaxation", RELAXATIONS, probe, relaxation or self.relaxation.value
            )
        except ValueError as err:
            # E.g. the dataset file has gone since it was picked: say so here, where the user looks;
            # an exception in a change handler would only reach the kernel's log.
            self._show_error(err)
            return
        finally:
            self._updating = False
        self.group.tooltip = "not offered: " + _why_not(no_group) if no_group else "every group fits"
        free = self._free
        self.relaxation.tooltip = (
            "group 'none' is free: there is no symmetry to relax"
            if free
            else ("not offered: " + _why_not(no_relax) if no_relax else "")
        )
        strict = self.relaxation.value == "strict"
        self.strength.tooltip = (
            "group 'none' is free: strength does not apply"
            if free
            else "a strict model has no strength"
            if strict
            else "0 = strictly equivariant, 1 = as free as the relaxation allows"
        )
        self.model.tooltip = MODELS[self.model.value]
        self.dataset.tooltip = DATASETS.get(self.dataset.value, (0, "your own data"))[1]
        self._apply_enabled()
        self.help.value = self._help_text(no_group, no_relax)

    def _show_error(self, err: ValueError) -> None:
        """Show why the chosen settings are not valid in the help panel."""
        self.help.value = (
            "<div class='aenp-error' style='color:#b00020;font-size:90%'>"
            f"<b>these settings are not valid</b>: {html.escape(_reason(err))}</div>"
        )

    @property
    def _free(self) -> bool:
        """Whether the chosen group is the trivial one (nothing to relax)."""
        return GROUPS[self.group.value].is_trivial

    def _apply_enabled(self) -> None:
        free = self._free
        self.early.disabled = self._busy or not self.has_validation
        for widget in (self.dataset, self.model, self.group, self.steps, self.device):
            widget.disabled = self._busy
        self.relaxation.disabled = self._busy or free
        self.strength.disabled = self._busy or free or self.relaxation.value == "strict"

    def _help_text(self, no_group: dict[str, str], no_relax: dict[str, str]) -> str:
        """What the choices mean and, visibly (a tooltip may never show), why others are not offered."""
        rows = [
            f"<b>{self.model.value}</b>: {MODELS[self.model.value]}",
            f"<b>{self.group.value}</b>: {GROUPS[self.group.value].description}",
        ]
        if not self._free:
            rows.append(f"<b>{self.relaxation.value}</b>: {RELAXATIONS[self.relaxation.value]}")
        why = [f"group {k}: {v}" for k, v in no_group.items()]
        if self._free:
            why.append("relaxation and strength: group 'none' is free, there is no symmetry to relax")
        else:
            why += [f"relaxation {k}: {v}" for k, v in no_relax.items()]
            if self.relaxation.value == "strict":
                why.append("strength: a strict model has no strength")
        if "cuda" not in self.device.options:
            why.append("device cuda: PyTorch sees no CUDA GPU on this machine")
        if not self.has_validation:
            why.append("early stopping: this dataset has no validation split (fresh tasks never repeat)")
        if why:
            items = "".join(f"<li>{html.escape(r)}</li>" for r in why)
            rows.append(
                "<details class='aenp-why' open><summary><i>why some choices are not offered</i></summary>"
                f"<ul style='margin:2px 0 2px 16px;padding:0'>{items}</ul></details>"
            )
        return "<div style='font-size:90%;line-height:1.3'>" + "<br>".join(rows) + "</div>"

    def set_busy(self, busy: bool) -> None:
        """Disable every control while a run trains; re-enable only what fits the experiment after."""
        self._busy = busy
        self._apply_enabled()
