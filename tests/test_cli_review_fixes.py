"""Command-line behaviour a user relies on: activating a version that must first be exported to ONNX says so
before the wait, an export whose selected photos are all gone says that rather than "no corrected images", and
`eval --onnx` measures the starter model's ONNX file, as pre-labeling runs it."""

import types

from drawn_projects import make_project
from faceparse.app.cli import main
from faceparse.app.commands.train import _predictor_for
from faceparse.core import onnx_export
from faceparse.core.evaluate import MappedPredictor, OnnxPredictor, TorchPredictor
from faceparse.core.store import ProjectStore
from faceparse.core.versions import activate
from test_versions import fake_version


def test_activating_a_version_without_onnx_says_it_exports_first(tmp_path, monkeypatch, capsys):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    version = fake_version(store)["version"]
    store.close()
    said_before_export = []

    def export(model, meta, path):
        said_before_export.append(capsys.readouterr().err)
        path.write_bytes(b"")
    monkeypatch.setattr(onnx_export, "export_onnx", export)
    assert main(["models", str(tmp_path / "faces"), "activate", version]) == 0
    assert "exporting it from its checkpoint first (this can take a minute)" in said_before_export[0]
    assert f"parser {version} is now active" in capsys.readouterr().out


def test_activate_tells_nothing_when_the_onnx_file_is_there(tmp_path, monkeypatch):
    store, _ = make_project(tmp_path / "faces", count=2, corrected=0)
    version = fake_version(store)["version"]
    monkeypatch.setattr(onnx_export, "export_onnx", lambda model, meta, path: path.write_bytes(b""))
    monkeypatch.setattr("faceparse.core.versions._readable_onnx", lambda path: True)
    said = []
    activate(store, "parser", version, announce=said.append)
    activate(store, "parser", version, announce=said.append)
    assert len(said) == 1
    store.close()


def test_an_export_whose_photos_are_all_gone_says_so(tmp_path, capsys):
    store, _ = make_project(tmp_path / "faces", count=3, corrected=3)
    photos = [store.root / rec.relpath for rec in store.images()]
    store.close()
    for photo in photos:
        photo.unlink()
    assert main(["scan", str(tmp_path / "faces")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "faces"), "-f", "coco", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "the photos of all 3 corrected or reviewed images are gone from the folder" in err
    with ProjectStore.open(tmp_path / "faces") as store:
        assert all(store.corrected_mask(rec.id) is not None for rec in store.images())


def test_eval_onnx_measures_the_starter_models_onnx_file(tmp_path):
    for schema, mapped in (("celebamask-hq", False), ("lapa", True)):
        store, _ = make_project(tmp_path / schema, count=1, corrected=1, schema=schema)
        try:
            for onnx, kind in ((True, OnnxPredictor), (False, TorchPredictor)):
                predictor = _predictor_for(types.SimpleNamespace(model="starter", onnx=onnx, task=None), store)
                assert isinstance(predictor, MappedPredictor) == mapped
                assert isinstance(predictor.inner if mapped else predictor, kind)
        finally:
            store.close()
