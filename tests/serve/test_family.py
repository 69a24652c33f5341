"""Family declarations: options are typed with unknown keys refused, weight roles are checked once (in the base
`Model.load`), `runway-models validate` names entry and key, and validating imports no framework."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from serve.catalog import CatalogError, parse_catalog
from serve.cli import main
from serve.family import Roles, WeightRoles
from serve.model import ModelSpec
from serve.registry import IMPLEMENTATIONS, family_of, is_built

REPO = Path(__file__).resolve().parents[2]
CATALOG = json.loads((REPO / "models.json").read_text())
BUILT = [name for name in IMPLEMENTATIONS if is_built(name)]


def catalog_with(name: str, change) -> list[dict]:
    raw = copy.deepcopy(CATALOG)
    change(next(e for e in raw if e["name"] == name)["serving"])
    return raw


def problems_of(raw) -> list[str]:
    with pytest.raises(CatalogError) as info:
        parse_catalog(raw)
    return info.value.problems


def test_validate_names_entry_and_misspelled_option(tmp_path, capsys):
    path = tmp_path / "models.json"
    path.write_text(json.dumps(catalog_with("openpose", lambda s: s["options"].update(scale=2))))
    assert main(["validate", str(path), "--skip-weights"]) == 1
    err = capsys.readouterr().err
    assert "entry 1 (openpose).serving.options.scale: Extra inputs are not permitted (got 2)" in err, err


@pytest.mark.parametrize("name, change, problem", [
    ("yolo", lambda s: s["options"].update(conf_threshold="high"), "(yolo).serving.options.conf_threshold: Input "
     "should be a valid number"),
    ("openpose", lambda s: s["options"].update(input_size=[430, 368]), "(openpose).serving.options.input_size: "
     "Value error, input_size must be multiples of 8"),
    ("openpose", lambda s: s["options"].update(normalisation="rgb"), "(openpose).serving.options.normalisation: "
     "Input should be 'bgr255' or 'cmu'"),
    ("object-detection", lambda s: s["options"].update(interpreters=0), "(object-detection).serving.options."
     "interpreters: Input should be greater than or equal to 1"),
    ("movenet", lambda s: s.update(options={"min_score": 2}), "(movenet).serving.options.min_score"),
    ("yolo", lambda s: s["weights"].pop("names"), "(yolo).serving.weights: missing weight files for roles "
     "['names']"),
    ("movenet", lambda s: s["weights"].update(labels={"path": "x", "format": "txt"}), "(movenet).serving.weights: "
     "unknown weight roles ['labels']"),
    ("object-detection", lambda s: s["weights"].update(frozen_graph={"path": "x", "format": "pb"}),
     "(object-detection).serving.weights: needs exactly one of the weights tflite [+ labels] | saved_model"),
])
def test_options_and_weight_roles_are_checked_per_family(name, change, problem):
    problems = problems_of(catalog_with(name, change))
    assert len(problems) == 1 and problem in problems[0], problems


def test_validating_imports_no_framework():
    """Each family's declaration needs only pydantic: the validator must not pull torch or TensorFlow in."""
    code = ("import sys; from serve.catalog import load_catalog; load_catalog('models.json'); "
            "heavy = {'torch', 'tensorflow', 'cv2', 'ray'} & {m.split('.')[0] for m in sys.modules}; "
            "print(sorted(heavy)); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("implementation", BUILT)
def test_each_model_class_declares_its_family_and_checks_roles_in_the_base(implementation):
    family = family_of(implementation)
    cls = family.model_class()
    assert cls.family is family
    assert "load" not in vars(cls), "families implement load_weights; Model.load checks the roles once"
    model = cls(ModelSpec("x"))  # every option has a default
    assert model.options == family.options()
    with pytest.raises(ValueError, match="^x: (missing weight files|needs exactly one)"):
        model.load()  # no weights given: refused before any file is read
    with pytest.raises(ValidationError, match="not_an_option"):
        cls(ModelSpec("x", options={"not_an_option": 1}))


def test_weight_role_choices():
    one = WeightRoles.all_of("cfg", "weights", optional=["names"])
    assert one.choose(["cfg", "weights"]) == one.choose(["cfg", "weights", "names"]) == one.choices[0]
    with pytest.raises(ValueError, match=r"missing weight files for roles \['weights'\]; unknown weight roles"):
        one.choose(["cfg", "wieghts"])
    formats = WeightRoles((Roles(frozenset({"graph"})), Roles(frozenset({"prototxt"}), frozenset({"caffemodel"}))))
    assert formats.choose(["prototxt", "caffemodel"]).required == {"prototxt"}
    for wrong in ([], ["graph", "prototxt"], ["graph", "caffemodel"], ["caffemodel"]):
        with pytest.raises(ValueError, match=r"exactly one of the weights graph \| prototxt \[\+ caffemodel\]"):
            formats.choose(wrong)



@pytest.mark.parametrize("implementation", ["yolo-darknet", "im2txt"])
def test_torch_families_refuse_cuda_without_it(implementation, tmp_path):
    """One CUDA check (models/torch_device.py) for every torch family, before any weight file is read."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    family = family_of(implementation)
    (roles,) = family.weights.choices
    model = family.build(ModelSpec("x", {role: tmp_path / "absent" for role in roles.required}, device="cuda"))
    with pytest.raises(RuntimeError, match="^x: device 'cuda' requested but CUDA is not available"):
        model.load()
