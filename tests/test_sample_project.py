from faceparse.app.sample_project import build_sample_project, main


def test_sample_project_holds_photos_and_drawn_faces_and_is_idempotent(tmp_path):
    store = build_sample_project(tmp_path / "sample", faces=3, size=128, prelabel=False)
    names = sorted(r.relpath for r in store.images())
    store.close()
    assert names == ["astronaut.jpg", "grace_hopper.jpg", "synthetic_00000.jpg", "synthetic_00001.jpg",
                     "synthetic_00002.jpg"]
    again = build_sample_project(tmp_path / "sample", faces=3, size=128, prelabel=False)
    assert again.count() == 5
    assert all(r.width and r.height for r in again.images())
    again.close()


def test_sample_project_command_reports_counts(tmp_path, capsys):
    assert main([str(tmp_path / "s"), "--faces", "1", "--no-prelabel"]) == 0
    assert "new 3" in capsys.readouterr().out


def test_more_faces_adds_faces_without_touching_the_ones_there(tmp_path):
    build_sample_project(tmp_path / "sample", faces=1, size=64, prelabel=False).close()
    first = tmp_path / "sample" / "synthetic_00000.jpg"
    before = first.stat().st_mtime_ns, first.read_bytes()
    store = build_sample_project(tmp_path / "sample", faces=2, size=64, prelabel=False)
    assert (first.stat().st_mtime_ns, first.read_bytes()) == before
    assert store.count() == 4 and store.find("synthetic_00001.jpg") is not None
    store.close()
