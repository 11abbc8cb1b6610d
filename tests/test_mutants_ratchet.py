"""make mutants' bookkeeping (tests/mutants.py): statuses come from mutmut's own meta files and exit-code table,
the score leaves out unchecked and equivalent mutants and counts the ones no test reaches against the module, and
the ratchet names a module whose score fell below docs/mutants.md's."""

import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests"))
mutants = pytest.importorskip("mutants")
pytest.importorskip("mutmut")


def test_score_equivalents_and_the_ratchet(tmp_path, monkeypatch):
    monkeypatch.setattr(mutants, "ROOT", tmp_path)
    meta = tmp_path / "mutants" / "frozen_glue" / "x.py.meta"
    meta.parent.mkdir(parents=True)
    # killed (1), killed, survived (0), survived (recorded as equivalent), no tests (33), not run (None)
    codes = {"frozen_glue.x.f__mutmut_1": 1, "frozen_glue.x.f__mutmut_2": 1, "frozen_glue.x.f__mutmut_3": 0,
             "frozen_glue.x.f__mutmut_4": 0, "frozen_glue.x.f__mutmut_5": 33, "frozen_glue.x.f__mutmut_6": None}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    (r,) = mutants.table(["frozen_glue/x.py"], {"frozen_glue.x.f__mutmut_4"})
    assert (r["total"], r["checked"], r["killed"], r["survived"], r["other"], r["equivalent"]) == (6, 5, 2, 2, 1, 1)
    assert r["score"] == pytest.approx(100 * 2 / 4)  # 2 killed of the 4 checked, non-equivalent mutants
    assert r["open"] == ["frozen_glue.x.f__mutmut_3"]
    line = mutants.row(r)
    doc = tmp_path / "mutants.md"
    doc.write_text(line.replace("50.0 %", "60.0 %") + "\n- `frozen_glue.x.f__mutmut_4`: the same value\n")
    monkeypatch.setattr(mutants, "DOC", doc)
    scores, equivalent = mutants.recorded()
    assert scores == {"frozen_glue/x.py": 60.0} and equivalent == {"frozen_glue.x.f__mutmut_4"}
    assert mutants.fallen([r], scores) == ["frozen_glue/x.py: 50.0 % < 60.0 % recorded"]
    assert mutants.fallen([r], {"frozen_glue/x.py": 50.0}) == []
