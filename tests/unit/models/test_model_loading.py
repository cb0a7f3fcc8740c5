"""load(spec) and detect_family: any spec form, the family from model_type, clear errors naming the path."""

import json
from dataclasses import dataclass

import pytest
import torch

from mmreason.models import detect_family, load
from mmreason.models.loading import ModelSpec, as_spec


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen2_5_omni"])
def test_detect_family_from_path_and_config(tiny_model_dir, tiny_model, family):
    assert detect_family(tiny_model_dir(family)) == family
    assert detect_family(str(tiny_model_dir(family))) == family
    model, _ = tiny_model(family)
    assert detect_family(model.config) == family


def test_load_path_dict_and_dataclass(tiny_model_dir):
    path = tiny_model_dir("qwen2_5_vl")

    @dataclass
    class ModelSection:  # what a recipe section looks like: extra fields are not the loader's business
        path: str
        dtype: str = "bfloat16"
        lora: bool = False

    m1, p1 = load(str(path))
    m2, _ = load({"path": path, "dtype": "float32", "attn_implementation": "eager", "device": "cpu"})
    m3, _ = load(ModelSection(path=str(path)))
    assert type(m1).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(p1).__name__ == "Qwen2_5_VLProcessor"
    assert next(m1.parameters()).dtype == torch.float32  # "auto" keeps the checkpoint's dtype
    assert m2.config._attn_implementation == "eager"
    assert next(m3.parameters()).dtype == torch.bfloat16
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    with pytest.raises(FileNotFoundError, match="no-such-checkpoint"):
        load(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        detect_family(tmp_path / "empty")


def test_weights_without_processor_are_named(tmp_path, tiny_model_dir):
    import shutil

    src = tiny_model_dir("qwen2_5_vl")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, tmp_path / name)
    with pytest.raises(FileNotFoundError, match=r"no processor files \(processor_config.json"):
        load(tmp_path)
    for name in ("processor_config.json", "preprocessor_config.json"):
        if (src / name).is_file():
            shutil.copy(src / name, tmp_path / name)
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "tokenizer_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no tokenizer files"):
        load(tmp_path)


def test_unknown_model_type_lists_known(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava"}))
    with pytest.raises(ValueError, match=r"unknown model_type 'llava'.*qwen2_5_vl"):
        load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_omni"}))
    with pytest.raises(ValueError, match="thinker"):
        detect_family(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable config"):
        detect_family(tmp_path)


def test_spec_errors():
    with pytest.raises(ValueError, match="unknown key"):
        as_spec({"path": "x", "dtpye": "bfloat16"})
    with pytest.raises(ValueError, match="`path` is required"):
        as_spec({"dtype": "bfloat16"})
    with pytest.raises(TypeError):
        as_spec(42)
    assert as_spec({"path": "x", "device": None}) == ModelSpec(path="x")


def test_bad_dtype_is_named(tiny_model_dir):
    with pytest.raises(ValueError, match="float8"):
        load({"path": tiny_model_dir("qwen2_5_vl"), "dtype": "float8"})
