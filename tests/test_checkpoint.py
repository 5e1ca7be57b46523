"""ndl.save / ndl.load formats and their errors, device-independent (the device tests are
needle_nn.testing.test_checkpoint)."""

from __future__ import annotations

import needle as ndl
import numpy as np
import pytest

from needle_nn import checkpoint
from needle_nn.testing.support import seeded_mlp_resnet


def test_strict_loading_reports_missing_unexpected_and_shapes():
    model = seeded_mlp_resnet(None, 0)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    broken = dict(state)
    del broken["modules.0.bias"]
    broken["extra.weight"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"missing keys: \['modules.0.bias'\].*unexpected keys: \['extra.weight'\]"):
        model.load_state_dict(broken)
    model.load_state_dict(broken, strict=False)  # tolerated when asked
    wrong = dict(state)
    wrong["modules.0.weight"] = np.zeros((12, 9), dtype=np.float32)
    with pytest.raises(KeyError, match=r"modules.0.weight: checkpoint has shape \(12, 9\), model has \(12, 8\)"):
        model.load_state_dict(wrong)


def test_save_load_nested_values_without_pickle(tmp_path):
    obj = {"a": {"b": np.arange(3), "c": 2.5, "name": "adam"}, "empty": {}, "n": 7}
    checkpoint.save(obj, tmp_path / "x.npz")
    with np.load(tmp_path / "x.npz", allow_pickle=False) as npz:  # plain arrays only
        assert "a/b" in npz.files
    back = checkpoint.load(tmp_path / "x.npz")
    np.testing.assert_array_equal(back["a"]["b"], np.arange(3))
    assert back["a"]["c"] == 2.5 and back["a"]["name"] == "adam" and back["n"] == 7 and back["empty"] == {}


def test_save_rejects_objects_and_load_reports_bad_files(tmp_path):
    with pytest.raises(TypeError, match="no pickled objects"):
        ndl.save({"f": object()}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="expects a dict"):
        ndl.save([1, 2], tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match=r"nope\.npz.*written by ndl.save"):
        ndl.load(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"bad\.npz.*is not a needle checkpoint.*an \.npz file written by ndl.save"):
        ndl.load(tmp_path / "bad.npz")


def test_load_never_suggests_unpickling(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    (tmp_path / "garbage.npz").write_bytes(b"just text")
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04\x95 a pickle")
    ndl.save({"w": np.ones(50)}, tmp_path / "good.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:100])
    cases = {"one.npy": "single .npy array", "objects.npz": "entry 'x' holds pickled Python objects",
             "garbage.npz": "not an .npz (zip) archive", "pickle.npz": "not an .npz (zip) archive",
             "cut.npz": "damaged or truncated"}
    for name, why in cases.items():
        with pytest.raises(checkpoint.CheckpointError) as info:
            ndl.load(tmp_path / name)
        text = str(info.value)
        assert "is not a needle checkpoint" in text and why in text, text
        assert "allow_pickle" not in text and "pickle.load" not in text and "unsafe" not in text, text


def test_restore_rejects_a_plain_state_dict():
    model = seeded_mlp_resnet(None, 0)
    with pytest.raises(KeyError, match="not a training checkpoint"):
        checkpoint.restore_training_state(model.state_dict(), model)
