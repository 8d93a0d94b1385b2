"""`faceparse eval` on a folder of images and masks: a wrong --schema is a clear error, not a traceback."""

import pytest
from faceparse.app.cli import main
from faceparse.core.evaluate import EvaluationError, folder_samples
from faceparse.core.model_resolver import starter_model_path
from test_cli_train import labelled_folder


@pytest.fixture
def data(tmp_path):
    return labelled_folder(tmp_path, schema="celebamask-hq", count=2)


@pytest.mark.parametrize("schema, message", [("no-such-schema", "unknown label schema 'no-such-schema'"),
                                             ("missing/schema.json", "cannot read schema file")])
def test_unknown_schema_is_an_evaluation_error(data, schema, message):
    with pytest.raises(EvaluationError, match=message):
        folder_samples(data, schema=schema)


def test_eval_command_reports_an_unknown_schema(data, capsys):
    model = starter_model_path("parser")
    code = main(["eval", "--model", str(model), str(data), "--schema", "no-such-schema"])
    _, err = capsys.readouterr()
    assert code == 2 and "unknown label schema 'no-such-schema'" in err and "Traceback" not in err
    code = main(["eval", "--model", str(model), str(data), "--schema", "celebamask-hq", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and '"miou_no_bg"' in out


def test_eval_onnx_of_a_checkpoint_without_an_export_is_refused_not_swapped(data, capsys):
    checkpoint = starter_model_path("parser").with_suffix("")
    assert (checkpoint / "model.safetensors").is_file() and not (checkpoint / "model.onnx").exists()
    code = main(["eval", "--model", str(checkpoint), str(data), "--onnx"])
    _, err = capsys.readouterr()
    assert code == 2 and "has no ONNX export" in err and "Traceback" not in err


@pytest.mark.parametrize("model", ["/no/such/model.onnx", "runs/gone", "weights.safetensors"])
def test_eval_with_a_missing_model_file_says_the_file_is_missing(data, capsys, model):
    code = main(["eval", "--model", model, str(data)])
    _, err = capsys.readouterr()
    assert code == 2 and f"model file not found: {model}" in err


def test_eval_on_a_folder_that_does_not_exist_says_so(tmp_path, capsys):
    missing = tmp_path / "nothere"
    code = main(["eval", "--model", "starter", str(missing)])
    _, err = capsys.readouterr()
    assert code == 2 and f"folder does not exist: {missing}" in err
