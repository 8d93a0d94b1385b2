"""What the command line says when things are not as expected: version files that are gone, the starter model by
name, a subfolder of a project, singular counts, the jobs table's header."""

import pytest
from drawn_projects import make_project
from faceparse.app.cli import main
from faceparse.core.model_resolver import ModelNotFoundError, find_model, starter_model_path
from faceparse.core.store import ProjectError, ProjectStore
from onnx_models import foreground_model


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _project(folder, count=2):
    store, _ = make_project(folder, count=count, corrected=0, schema="celebamask-hq")
    store.close()
    return folder


@pytest.fixture
def project(tmp_path):
    return _project(tmp_path / "faces")


def _add_version(folder, name, with_files=True, active=True):
    with ProjectStore.open(folder) as store:
        version_dir = store.models_dir / "parser" / name
        if with_files:
            version_dir.mkdir(parents=True)
            foreground_model(version_dir / "model.onnx")
            (version_dir / "model.safetensors").write_bytes(b"weights")
            (version_dir / "meta.json").write_text("{}")
        store.add_model_version("parser", name, version_dir, {"score": 0.5})
        if active:
            store.set_active_model("parser", name)
    return version_dir


def test_models_list_and_info_say_which_versions_have_lost_their_files(project, capsys):
    _add_version(project, "v0001")
    _add_version(project, "v0002", with_files=False, active=False)
    code, out, _ = run(capsys, "models", project)
    assert code == 0
    lines = {next(word for word in line.split() if word.startswith("v000")): line for line in out.splitlines()
             if "v000" in line}
    assert "files missing" in lines["v0002"] and "files missing" not in lines["v0001"]
    assert "* active" in out
    code, out, _ = run(capsys, "info", project)
    assert code == 0 and "files missing: v0002" in out


def test_models_list_has_no_active_legend_when_nothing_listed_is_active(project, capsys):
    _add_version(project, "v0001", active=False)
    code, out, _ = run(capsys, "models", project)
    assert code == 0 and "v0001" in out and "* active" not in out


def test_starter_and_active_name_models_for_prelabel(project):
    with ProjectStore.open(project) as store:
        starter = find_model(store, "starter")
        assert starter.source == "starter" and starter.path == starter_model_path("parser")
        assert find_model(store, "active").source == "starter"
    _add_version(project, "v0001")
    with ProjectStore.open(project) as store:
        assert find_model(store, "active").model_id == "v0001"
        assert find_model(store, "starter").source == "starter"


def test_an_active_version_whose_folder_is_gone_is_not_told_to_export(project):
    version_dir = _add_version(project, "v0001")
    for child in version_dir.iterdir():
        child.unlink()
    version_dir.rmdir()
    with ProjectStore.open(project) as store, pytest.raises(ModelNotFoundError) as caught:
        find_model(store, "v0001")
    assert "are gone" in str(caught.value) and "export it" not in str(caught.value)


def test_a_version_without_its_onnx_export_is_told_how_to_get_one(project):
    version_dir = _add_version(project, "v0001")
    (version_dir / "model.onnx").unlink()
    with ProjectStore.open(project) as store, pytest.raises(ModelNotFoundError) as caught:
        find_model(store, "v0001")
    assert f"faceparse models {project} activate v0001)" in str(caught.value)


def test_info_on_a_folder_inside_a_project_names_the_project(project, capsys):
    inner = project / "more"
    inner.mkdir()
    with pytest.raises(ProjectError, match="inside the project"):
        ProjectStore.open(inner)
    code, _, err = run(capsys, "info", inner)
    assert code == 2 and f"use {project.resolve()} instead" in err and "scan it first" not in err


def test_one_of_a_kind_is_counted_in_the_singular(tmp_path, capsys):
    folder = _project(tmp_path / "one", count=1)
    code, out, _ = run(capsys, "scan", folder)
    assert code == 0 and "Scanned 1 image in" in out


def test_predict_help_does_not_offer_project_versions(capsys):
    code, out, _ = run(capsys, "predict", "--help")
    out = " ".join(out.split())
    assert code == 0
    assert "project model version" not in out and "starter" in out


def test_progress_into_a_log_file_is_not_redrawn_on_every_step():
    import io

    from faceparse.app.cli import progress_bar

    log = io.StringIO()
    bar = progress_bar(200, log, unit="img")
    for _ in range(200):
        bar.update(1)
    bar.close()
    drawn = [part for part in log.getvalue().split("\r") if part.strip()]
    assert len(drawn) <= 3 and "200/200" in drawn[-1]
