import json
import subprocess
import sys

import numpy as np
import pytest
from faceparse.app import cli
from faceparse.app.cli import main
from faceparse.core.store import ProjectStore
from PIL import Image


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "my faces"
    root.mkdir()
    for i in range(3):
        Image.new("RGB", (10, 8), (i, 0, 0)).save(root / f"f{i}.jpg")
    return root


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"faceparse {cli.version()}"
    assert cli.version() != ""


def test_version_of_the_installed_command():
    proc = subprocess.run([sys.executable, "-m", "faceparse.app.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("faceparse ")


def test_user_errors_are_one_line_when_run_as_a_module(folder):
    command = [sys.executable, "-m", "faceparse.app.cli"]
    assert subprocess.run([*command, "scan", str(folder)], capture_output=True, timeout=120).returncode == 0
    proc = subprocess.run([*command, "jobs", str(folder), "--log", "99"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no job 99" in proc.stderr and "Traceback" not in proc.stderr


def test_scan_creates_then_updates(capsys, folder):
    code, out, err = run(capsys, "scan", folder)
    assert code == 0, err
    assert "Created project" in out and "3 added" in out
    assert err == ""
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("  ")}
    assert lines == {"new": "3", "predicted": "0", "corrected": "0", "reviewed": "0", "total": "3"}
    Image.new("RGB", (10, 8)).save(folder / "f3.jpg")
    code, out, _ = run(capsys, "scan", folder)
    assert code == 0 and "Updated project" in out and "1 added" in out and "3 unchanged" in out


def test_scan_counts_follow_statuses(capsys, folder):
    run(capsys, "scan", folder)
    with ProjectStore.open(folder) as store:
        first = store.images()[0]
        store.save_predicted(first.id, np.zeros((8, 10), np.uint8), "v0001")
    code, out, _ = run(capsys, "scan", folder)
    assert "  new        2" in out and "  predicted  1" in out


def test_scan_with_schema_and_details(capsys, folder, tmp_path):
    (folder / "broken.png").write_text("not a png")
    code, out, _ = run(capsys, "scan", folder, "--schema", "lapa", "--details")
    assert code == 0
    assert "Schema lapa (11 classes)" in out
    assert "1 unreadable" in out and "broken.png: not a recognised image" in out
    with ProjectStore.open(folder) as store:
        assert store.schema.name == "lapa"
        assert store.count_pending_details() == 0


def test_scan_with_schema_file(capsys, folder, tmp_path):
    spec = tmp_path / "two.json"
    spec.write_text(json.dumps({"name": "two", "classes": ["background", "thing"],
                                "colors": [[0, 0, 0], [9, 9, 9]]}))
    code, out, _ = run(capsys, "scan", folder, "--schema", spec)
    assert code == 0 and "Schema two (2 classes)" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["scan", "{missing}"], "folder does not exist"),
    (["info", "{missing}"], "folder does not exist"),
    (["info", "{folder}"], "not a FaceParse project"),
    (["scan", "{folder}", "--schema", "helen"], "unknown label schema 'helen'"),
    (["scan", "{folder}", "--schema", "{bad_schema}"], "not valid JSON"),
])
def test_user_errors_exit_2_without_traceback(capsys, folder, tmp_path, argv, message):
    bad_schema = tmp_path / "bad.json"
    bad_schema.write_text("{")
    argv = [a.format(folder=folder, missing=tmp_path / "nowhere", bad_schema=bad_schema) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.startswith(f"faceparse {argv[0]}: error:")


def test_schema_is_fixed_after_creation(capsys, folder):
    run(capsys, "scan", folder, "--schema", "lapa")
    code, _, err = run(capsys, "scan", folder, "--schema", "celebamask-hq")
    assert code == 2 and "fixed when it is created" in err
    code, out, _ = run(capsys, "scan", folder)
    assert code == 0 and "Schema lapa" in out


def test_usage_errors_exit_2(capsys):
    assert run(capsys)[0] == 2
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "invalid choice" in err


def test_a_stray_argument_is_refused_with_the_usage_of_the_command_it_follows(capsys, folder):
    run(capsys, "scan", folder)
    code, _, err = run(capsys, "info", folder, "extra")
    assert code == 2 and "usage: faceparse info" in err and "faceparse info: error: unrecognized arguments: extra" in err
    code, _, err = run(capsys, "models", folder, "list", "v1", "more")
    assert code == 2 and "usage: faceparse models" in err and "unrecognized arguments: more" in err


def test_an_empty_path_is_refused_not_taken_for_the_current_folder(capsys, folder, monkeypatch):
    monkeypatch.chdir(folder)
    code, _, err = run(capsys, "scan", "")
    assert code == 2 and "argument FOLDER: is empty" in err
    assert not (folder / ".faceparse").exists()
    run(capsys, "scan", folder)
    code, _, err = run(capsys, "export", folder, "--format", "coco", "--out", "")
    assert code == 2 and "argument --out/-o: is empty" in err


def test_format_and_schema_names_ignore_case(capsys, tmp_path, folder):
    code, out, err = run(capsys, "scan", folder, "--schema", "LaPa")
    assert code == 0, err
    with ProjectStore.open(folder) as store:
        assert store.schema.name == "lapa"
        store.save_corrected(store.images()[0].id, np.ones((8, 10), np.uint8))
    code, out, err = run(capsys, "export", folder, "--format", "COCO", "--out", tmp_path / "x", "--split", "1,0")
    assert code == 0, err
    assert "as coco" in out and (tmp_path / "x" / "dataset.json").exists()


def test_a_minus_value_is_joined_only_to_an_option_that_takes_one_and_never_past_a_double_dash():
    parser = cli.build_parser()
    joined = cli._attach_negative_values
    assert joined(parser, ["export", "F", "--split", "-0.1,1,0.1"]) == ["export", "F", "--split=-0.1,1,0.1"]
    assert joined(parser, ["predict", "--whole-image", "-1", "--out", "m.png"]) == \
        ["predict", "--whole-image", "-1", "--out", "m.png"]
    assert joined(parser, ["predict", "--out", "m.png", "--", "-1.jpg"]) == ["predict", "--out", "m.png", "--", "-1.jpg"]
    assert joined(parser, ["export", "F", "--", "--split", "-1"]) == ["export", "F", "--", "--split", "-1"]


def test_a_split_that_starts_with_a_minus_sign_gets_its_own_message(capsys, tmp_path, folder):
    run(capsys, "scan", folder)
    out = tmp_path / "x"
    code, _, err = run(capsys, "export", folder, "--format", "coco", "--out", out, "--split", "-0.1,0.6,0.5")
    assert code == 2 and "must not be negative" in err and "expected one argument" not in err
    code, _, err = run(capsys, "export", folder, "--format", "coco", "--out", out, "--split", "-1")
    assert code == 2 and "got 1 value" in err and "values" not in err


def test_scan_and_info_name_photos_changed_since_their_masks_were_checked(capsys, folder):
    import os

    run(capsys, "scan", folder, "--details")
    with ProjectStore.open(folder) as store:
        rec = store.find("f1.jpg")
        store.save_corrected(rec.id, np.ones((8, 10), np.uint8))
    Image.new("RGB", (10, 8), (0, 200, 0)).save(folder / "f1.jpg")
    os.utime(folder / "f1.jpg", ns=(rec.mtime_ns + 3_000_000_000,) * 2)
    code, out, _ = run(capsys, "scan", folder)  # a plain scan knows already: it hashes changed checked photos
    assert code == 0
    assert "1 photo changed since their masks were checked" in out and "  f1.jpg" in out
    code, out, _ = run(capsys, "info", folder)
    assert "Photos changed since their masks were checked: 1" in out and "\n  f1.jpg\n" in out
    code, out, _ = run(capsys, "info", folder, "--json")
    assert json.loads(out)["photos_changed"] == ["f1.jpg"]


def test_scan_accept_changed_keeps_retouched_and_scaled_photos_masks_and_names_reshaped_ones(capsys, folder):
    import os

    from faceparse.core.imageio import load_mask

    run(capsys, "scan", folder, "--details")
    mask = np.zeros((8, 10), np.uint8)
    mask[2:6, 4:8] = 3
    with ProjectStore.open(folder) as store:
        records = [store.find(name) for name in ("f0.jpg", "f1.jpg", "f2.jpg")]
        for rec in records:
            store.save_corrected(rec.id, mask)
        store.set_status(records[2].id, "reviewed")
    for rec, size in zip(records, ((12, 12), (10, 8), (20, 16)), strict=True):
        Image.new("RGB", size, (0, 200, 0)).save(folder / rec.relpath)
        os.utime(folder / rec.relpath, ns=(rec.mtime_ns + 3_000_000_000,) * 2)
    code, out, _ = run(capsys, "scan", folder)
    assert "3 photos changed since their masks were checked" in out and "--accept-changed" in out
    code, out, _ = run(capsys, "scan", folder, "--accept-changed")
    assert code == 0
    assert "Kept the masks of 2 changed photos as checked (1 scaled to the photo's new size)" in out
    assert "not f0.jpg: the photo is now 12x12 but its mask is 10x8, another shape" in out
    assert "1 photo changed since their masks were checked" in out
    with ProjectStore.open(folder) as store:
        assert [r.relpath for r in store.changed_photos()] == ["f0.jpg"]
        scaled = store.find("f2.jpg")
        assert scaled.status == "reviewed" and not scaled.photo_changed
        assert np.array_equal(load_mask(store.mask_path("corrected", scaled.id)), np.kron(mask, np.ones((2, 2), np.uint8)))
        assert np.array_equal(store.corrected_mask(store.find("f1.jpg").id), mask)
    code, out, _ = run(capsys, "scan", folder, "--accept-changed")
    assert "Kept the masks" not in out and "not f0.jpg" in out


def test_a_moved_photo_is_found_again_and_a_deleted_one_is_named(capsys, folder, tmp_path):
    run(capsys, "scan", folder)
    with ProjectStore.open(folder) as store:
        for name in ("f1.jpg", "f2.jpg"):
            store.save_corrected(store.find(name).id, np.ones((8, 10), np.uint8))
    (folder / "kept").mkdir()
    (folder / "f1.jpg").rename(folder / "kept" / "f1 moved.jpg")
    (folder / "f2.jpg").unlink()
    code, out, _ = run(capsys, "scan", folder)
    assert code == 0 and "1 removed" in out and "Found 1 renamed or moved photo again" in out
    code, out, _ = run(capsys, "info", folder)
    assert "Photos gone from the folder, masks kept: 1" in out and "  f2.jpg (corrected)" in out
    code, out, _ = run(capsys, "info", folder, "--json")
    assert json.loads(out)["photos_missing"] == [{"relpath": "f2.jpg", "status": "corrected"}]
    code, out, _ = run(capsys, "export", folder, "--format", "index-png", "--out", tmp_path / "out",
                       "--split", "1,0,0")
    assert code == 0 and "Exported 1 image (" in out
    assert "left out f2.jpg: the photo is gone from the folder" in out


def test_info_text_and_json(capsys, folder):
    run(capsys, "scan", folder)
    with ProjectStore.open(folder) as store:
        i = store.images()[0].id
        store.save_corrected(i, np.ones((8, 10), np.uint8))
        store.add_model_version("parser", "v0001", None, {"miou": 0.4})
        store.add_model_version("parser", "v0002", None, {"miou": 0.5})
        store.set_active_model("parser", "v0002")
    code, out, _ = run(capsys, "info", folder)
    assert code == 0
    assert f"Project {folder.resolve()}" in out
    assert "Schema  celebamask-hq (19 classes" in out
    assert "Images  3" in out and "corrected  1" in out
    assert "parser: versions v0001, v0002; active: v0002" in out
    code, out, _ = run(capsys, "info", folder, "--json")
    data = json.loads(out)
    assert data["counts"] == {"new": 2, "predicted": 0, "corrected": 1, "reviewed": 0}
    assert data["active_models"] == {"parser": "v0002"}
    with ProjectStore.open(folder) as store:
        store.set_active_model("parser", None)
    code, out, _ = run(capsys, "info", folder)
    assert "parser: versions v0001, v0002; active: starter" in out
    assert json.loads(run(capsys, "info", folder, "--json")[1])["active_models"] == {"parser": "starter"}
    assert data["model_versions"] == {"parser": ["v0001", "v0002"]}
    assert sum(data["splits"].values()) == 1
    assert data["details_pending"] == 2


def test_commands_can_be_added_by_modules(capsys, monkeypatch, tmp_path):
    module = tmp_path / "hello_command.py"
    module.write_text(
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('hello')\n"
        "    p.add_argument('name')\n"
        "    p.set_defaults(handler=lambda args: print('hello', args.name) or 0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("hello_command",))
    code, out, _ = run(capsys, "hello", "world")
    assert code == 0 and out.strip() == "hello world"
