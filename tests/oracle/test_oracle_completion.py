"""Hull completion: analogue competitors of missing sub-systems, relaxed by the oracle, cached, marked computed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pymatgen.core import Composition, Structure

from oracle.analogues import analogue_structures, substitution_weight
from oracle.completion import cache_dir, complete, load_cached, missing_subsystems, subsystems
from oracle.config import OracleConfig
from oracle.phases import PhaseSet, ReferencePhase, default_phase_set


@pytest.fixture(scope="module")
def reference(shared_data) -> PhaseSet:
    return default_phase_set(competing=False)


def _fresh(phases: PhaseSet) -> PhaseSet:
    """A private copy (computed phases added to it stay out of the process-wide default set)."""
    return PhaseSet(compounds=phases.compounds, mu=phases.mu, structure_files=phases.structure_files)


class CountingLabeler:
    """Stands in for oracle.labelling.label_structures: energy = MP's elemental mean + ``formation`` eV/atom."""

    def __init__(self, mu: dict[str, float], formation: float = -1.0, fail: str = "") -> None:
        self.mu, self.formation, self.fail, self.calls, self.structures = mu, formation, fail, 0, 0

    def __call__(self, config: Any, structures: list[Structure], *, num_threads: int = 1, on_result=None) -> list:
        self.calls += 1
        self.structures += len(structures)
        out = []
        for i, s in enumerate(structures):
            comp = s.composition.fractional_composition
            energy = self.formation + sum(float(x) * self.mu[el.symbol] for el, x in comp.items())
            failed = self.fail and self.fail == s.composition.reduced_formula
            fields = {"status": "failed", "reason": "boom"} if failed else {"status": "converged"}
            fields.update(corrected_energy_per_atom=None if failed else energy, relaxed_structure=s.as_dict())
            out.append(fields)
            if on_result is not None:
                on_result(i, fields)
        return out


def test_subsystems_are_the_binaries_and_ternaries():
    assert subsystems(["O", "Li"]) == [("Li", "O")]
    got = subsystems(["Li", "Fe", "P", "O"])
    assert len(got) == 6 + 4 and ("Fe", "Li", "O") in got and ("Fe", "Li", "O", "P") not in got


def test_li_fe_p_o_misses_li_o_and_li_p(reference):
    """The shared files hold no Li-O or Li-P compound (the issue's diagnosis) but Fe-O and Li-O-P ones."""
    missing = missing_subsystems(reference, ["Li", "Fe", "P", "O"])
    assert ("Li", "O") in missing and ("Li", "P") in missing
    assert ("Fe", "O") not in missing and ("Li", "O", "P") not in missing
    assert missing_subsystems(reference, ["Li", "Fe", "P", "O"], min_compounds=0) == []


def test_substitution_weights():
    assert substitution_weight("Na", "Li", 1) == pytest.approx(0.043, abs=0.002)  # data-mined, same charge
    assert substitution_weight("Li", "Li", 1) == 1.0
    assert substitution_weight("Ca", "Li", 2) is None  # Li2+ does not exist: no charge-changing swaps
    assert substitution_weight("H", "Li", None) is None  # hydrogen is no alkali analogue
    assert substitution_weight("Bi", "P", None) == pytest.approx(0.02)  # same group, no oxidation state


def test_li2o_comes_from_an_alkali_oxide_by_ion_exchange(reference):
    analogues = analogue_structures(reference, ["Li", "O"])
    li2o = [a for a in analogues if a.formula == "Li2O"]
    assert li2o and analogues[0].formula == "Li2O"  # the likeliest composition first
    exchange = li2o[0]
    assert exchange.parent_formula in ("Na2O", "K2O", "Rb2O", "Cs2O")
    assert exchange.structure.composition.reduced_formula == "Li2O"
    parent = reference.structure(exchange.parent_id).get_primitive_structure()
    assert exchange.structure.volume < 0.8 * parent.volume  # rescaled to the smaller Li+ (Shannon radii)
    assert len({(a.formula, a.parent_id) for a in analogues}) == len(analogues) <= 3 * 2
    assert "Li2O" not in {p.formula for p in reference.phases_of(["Li", "O"])}


def test_complete_adds_caches_and_records(reference, tmp_path):
    config = OracleConfig()
    phases = _fresh(reference)
    label = CountingLabeler(dict(reference.mu), formation=-2.5)
    before = phases.stability("Li5FeO4", -6.0)
    report = complete(phases, [["Li", "Fe", "O"]], config, label=label, directory=tmp_path)
    assert label.calls == 1 and report.n_relaxed == label.structures > 0
    assert "Li-O" in report.missing and "Fe-O" not in report.missing and report.from_cache == []
    computed = [p for p in phases.phases_of(["Li", "O"]) if p.source == "computed"]
    assert "Li2O" in {p.formula for p in computed}
    key = config.key()
    li2o = next(p for p in computed if p.formula == "Li2O")
    assert li2o.entry_id == f"computed:{key}:Li2O:{li2o.parent}" and li2o.provenance == f"computed:{key}"
    assert li2o.formation_energy_per_atom == pytest.approx(-2.5)
    after = phases.stability("Li5FeO4", -6.0)
    assert after.sources["computed"] == len([p for p in phases.phases(["Li", "Fe", "O"]) if p.source == "computed"])
    assert after.e_above_hull > before.e_above_hull  # the cached diagram was dropped: Li2O lowers the hull
    doc = json.loads((tmp_path / "Li-O.json").read_text())
    assert doc["oracle_key"] == key and doc["failed"] == [] and len(doc["phases"]) == len(computed)
    assert phases.completion(["Li", "O"]).n_added == len(computed)
    assert phases.completion(["Fe", "O"]).n_candidates == 0  # had MP phases: examined, nothing computed

    again = _fresh(reference)
    label2 = CountingLabeler(dict(reference.mu))
    report2 = complete(again, [["Li", "Fe", "O"]], config, label=label2, directory=tmp_path)
    assert label2.calls == 0 and report2.n_relaxed == 0 and set(report2.from_cache) == set(report.missing)
    assert {p.entry_id for p in again.phases_of(["Li", "O"])} == {p.entry_id for p in phases.phases_of(["Li", "O"])}
    other = CountingLabeler(dict(reference.mu))  # another oracle never reads this one's phases
    complete(
        _fresh(reference), [["Li", "O"]], OracleConfig(refine={"potential": None}), label=other, directory=tmp_path
    )
    assert other.calls == 1 and json.loads((tmp_path / "Li-O.json").read_text())["oracle_key"] != key


def test_failures_and_empty_searches_are_cached_not_retried(reference, tmp_path):
    phases = _fresh(reference)
    label = CountingLabeler(dict(reference.mu), fail="Li2O")
    complete(phases, [["Li", "O"], ["Li", "Xe"]], OracleConfig(), label=label, directory=tmp_path)
    doc = json.loads((tmp_path / "Li-O.json").read_text())
    assert [f["formula"] for f in doc["failed"]] and {f["formula"] for f in doc["failed"]} == {"Li2O"}
    assert json.loads((tmp_path / "Li-Xe.json").read_text())["phases"] == []  # nothing to derive it from
    assert phases.completion(["Li", "Xe"]).n_candidates == 0
    label2 = CountingLabeler(dict(reference.mu))
    complete(_fresh(reference), [["Li", "O"], ["Li", "Xe"]], OracleConfig(), label=label2, directory=tmp_path)
    assert label2.structures == 0


def test_thin_means_an_empty_subsystem_completion_could_not_fill(reference):
    phases = PhaseSet(compounds=[_phase("LiCl", -2.0, reference.mu)], mu=reference.mu)
    # before completion: the MIN_COMPOUNDS heuristic (a ternary needs three compounds)
    st = phases.stability("Li2TiCl6", -4.0)
    assert st.thin and set(st.gaps) == {"Cl-Ti", "Li-Ti", "Cl-Li-Ti"}
    from oracle.phases import SubsystemCompletion

    phases.mark_completed(SubsystemCompletion(system=("Cl", "Li"), n_reference=1))
    phases.mark_completed(SubsystemCompletion(system=("Li", "Ti"), n_reference=0))  # nothing to derive: fine
    phases.mark_completed(SubsystemCompletion(system=("Cl", "Li", "Ti"), n_reference=0, n_candidates=2, n_added=2))
    phases.add_phases([_phase("Li2TiCl6", -2.1, reference.mu, source="computed")])
    phases.mark_completed(SubsystemCompletion(system=("Cl", "Ti"), n_reference=0, n_candidates=3, n_failed=3))
    st = phases.stability("Li2TiCl6", -4.0)
    assert st.thin and st.gaps == ("Cl-Ti",)  # analogues existed but none relaxed
    phases.add_phases([_phase("TiCl4", -1.5, reference.mu, source="computed")])
    st = phases.stability("Li2TiCl6", -4.0)
    assert not st.thin and st.gaps == () and st.sources == {"mp_20": 1, "computed": 2}


def _phase(formula: str, e_form: float, mu, source: str = "mp_20") -> ReferencePhase:
    comp = Composition(formula)
    fractions = comp.fractional_composition
    return ReferencePhase(
        entry_id=f"{source}:{formula}",
        formula=comp.reduced_formula,
        elements=tuple(sorted(el.symbol for el in comp.elements)),
        energy_per_atom=e_form + sum(float(x) * mu[el.symbol] for el, x in fractions.items()),
        formation_energy_per_atom=e_form,
        source=source,
    )


@pytest.mark.slow
def test_completion_adds_li2o_to_the_li_fe_p_o_hull_offline(reference, monkeypatch):
    """Real phase files, real CHGNet: Li2O derived from an alkali oxide joins the Li-Fe-P-O hull as a computed
    phase near MP's formation energy (-2.07 eV/atom); a second completion relaxes nothing."""
    import oracle.labelling

    monkeypatch.delenv("MP_API_KEY", raising=False)
    config = OracleConfig()
    phases = _fresh(reference)
    calls: list[int] = []
    real = oracle.labelling.label_structures

    def counting(*args: Any, **kwargs: Any) -> list:
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(oracle.labelling, "label_structures", counting)
    before = phases.stability("Li3Fe2(PO4)3", -6.5)
    report = complete(phases, [["Li", "Fe", "P", "O"]], config, max_structures=1, per_formula=1)
    assert sum(calls) == report.n_relaxed <= 3
    li2o = [p for p in phases.phases_of(["Li", "O"]) if p.formula == "Li2O"]
    assert len(li2o) == 1 and li2o[0].source == "computed"
    assert li2o[0].provenance == f"computed:{config.key()}"
    assert li2o[0].formation_energy_per_atom == pytest.approx(-2.07, abs=0.1)
    after = phases.stability("Li3Fe2(PO4)3", -6.5)
    assert after.sources.get("computed", 0) >= 1 and "computed" not in before.sources
    assert "Li-O" in before.gaps and "Li-O" not in after.gaps
    assert (cache_dir(config) / "Li-O.json").is_file()
    calls.clear()
    complete(_fresh(reference), [["Li", "Fe", "P", "O"]], config, max_structures=1, per_formula=1)
    assert calls == []


def test_a_read_only_completion_adds_cached_phases_and_relaxes_nothing(reference, tmp_path):
    config = OracleConfig()
    complete(_fresh(reference), [["Li", "O"]], config, label=CountingLabeler(dict(reference.mu)), directory=tmp_path)
    view = _fresh(reference)
    label = CountingLabeler(dict(reference.mu))
    report = complete(view, [["Li", "O"], ["Li", "Se"]], config, relax=False, label=label, directory=tmp_path)
    assert label.calls == 0 and report.from_cache == ["Li-O"] and "Li-Se" in report.missing
    assert any(p.source == "computed" for p in view.phases_of(["Li", "O"]))
    assert view.completion(["Li", "Se"]) is None and view.stability("Li2Se", -3.0).thin  # still unexamined


def test_load_cached_reads_one_oracles_phases_by_system_or_all(reference, tmp_path):
    config = OracleConfig()
    complete(
        _fresh(reference),
        [["Li", "O"], ["Li", "Se"]],
        config,
        label=CountingLabeler(dict(reference.mu)),
        directory=tmp_path,
    )
    some = _fresh(reference)
    assert load_cached(some, config.key(), systems=[["Li", "Fe", "O"]], directory=tmp_path) == ["Li-O"]
    assert any(p.source == "computed" for p in some.phases_of(["Li", "O"]))
    assert not any(p.source == "computed" for p in some.phases_of(["Li", "Se"]))
    every = _fresh(reference)
    assert load_cached(every, config.key(), directory=tmp_path) == ["Li-O", "Li-Se"]
    assert load_cached(every, config.key(), directory=tmp_path) == []  # already there: nothing read twice
    other = OracleConfig(refine={"potential": None}).key()
    assert load_cached(_fresh(reference), other, directory=tmp_path) == []  # another oracle's cache is not read


def test_the_system_itself_is_completed_while_it_holds_few_compounds(reference, tmp_path):
    """Na-Se holds one file compound: enough as a sub-system of Na-Se-O, not as the system a Na2Se candidate is in
    (its own composition may be missing: Na2Se then lies far below a hull of NaSe-like phases alone)."""
    held = {p.formula for p in reference.phases_of(["Na", "Se"])}
    assert 1 <= len(held) < 3 and "Na2Se" not in held  # the shared files' Na-Se side
    phases = _fresh(reference)
    label = CountingLabeler(dict(reference.mu))
    report = complete(phases, [["Na", "Se", "O"]], OracleConfig(), label=label, directory=tmp_path)
    assert "Na-Se" not in report.missing and phases.completion(["Na", "Se"]).searched is False
    report = complete(phases, [["Na", "Se"]], OracleConfig(), label=label, directory=tmp_path)
    assert report.missing == ["Na-Se"] and phases.completion(["Na", "Se"]).searched
    computed = {p.formula for p in phases.phases_of(["Na", "Se"]) if p.source == "computed"}
    assert "Na2Se" in computed and not computed & held
    again = complete(phases, [["Na", "Se"]], OracleConfig(), label=label, directory=tmp_path)
    assert again.examined == []  # examined once under the stricter rule: never again


def test_completion_off_examines_nothing_and_keeps_the_thin_heuristic(reference, tmp_path):
    phases = _fresh(reference)
    label = CountingLabeler(dict(reference.mu))
    off = OracleConfig(completion={"max_structures": 0})
    report = complete(phases, [["Li", "O"]], off, label=label, directory=tmp_path, **off.completion.kwargs())
    assert report.examined == [] and label.calls == 0 and phases.completion(["Li", "O"]) is None
    assert phases.stability("Li2O", -4.0).thin and list(tmp_path.iterdir()) == []


def test_a_campaign_sees_the_computed_phases_its_own_systems_call_for(reference, tmp_path):
    """Whatever other campaigns added to the shared set, a campaign's hull holds the computed phases of its own
    systems' empty sub-systems and of its systems themselves: the same labels give the same hull."""
    shared = _fresh(reference)
    label = CountingLabeler(dict(reference.mu))
    complete(shared, [["Li", "O"], ["Na", "Se"], ["Li", "Se"]], OracleConfig(), label=label, directory=tmp_path)
    computed = {frozenset(p.elements) for p in shared.compounds if p.source == "computed"}
    assert {frozenset({"Li", "O"}), frozenset({"Na", "Se"}), frozenset({"Li", "Se"})} <= computed

    def systems(view: PhaseSet) -> set[str]:
        return {"-".join(p.elements) for p in view.compounds if p.source == "computed"}

    assert systems(shared.restricted([["Li", "Fe", "O"]])) == {"Li-O"}  # Li-O has no file compound: any campaign
    assert systems(shared.restricted([["Na", "Se", "O"]])) == set()  # Na-Se has one: completed only as a system
    assert systems(shared.restricted([["Na", "Se"], ["Li", "Se"]])) == {"Na-Se", "Li-Se"}
    assert systems(shared.restricted([])) == set() and len(shared.restricted([])) < len(shared)
    isolated = _fresh(reference)  # a campaign alone in its data home that labelled Li-Fe-O
    complete(isolated, [["Li", "Fe", "O"]], OracleConfig(), label=label, directory=tmp_path / "alone")
    view = shared.restricted([["Li", "Fe", "O"]])
    assert view.stability("Li5FeO4", -6.0).e_above_hull == pytest.approx(
        isolated.stability("Li5FeO4", -6.0).e_above_hull
    )
