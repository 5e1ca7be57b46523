"""ndl.profile from ``needle train --profile`` (the device tests are needle.testing.test_profile)."""

from __future__ import annotations

import json



def test_needle_train_profile_writes_a_trace(tmp_path, capsys):
    from needle_nn.cli.train import main

    path = tmp_path / "trace.json"
    assert main(["--device", "cpu_numpy", "--limit-train", "200", "--max-steps", "2", "--no-progress",
                 "--profile", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| op | pass | kernel |" in out and f"Chrome trace written to {path}" in out
    names = {e["name"] for e in json.loads(path.read_text())["traceEvents"] if e.get("cat") == "op"}
    assert {"MatMul", "EWiseAdd"} <= names
