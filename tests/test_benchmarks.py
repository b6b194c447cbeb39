"""Smoke test of the benchmark suite: it runs, prints its table and records the environment."""

import json

from benchmarks.__main__ import RESULTS, main


def test_benchmark_suite_runs_and_saves_a_record(capsys):
    before = set(RESULTS.glob("*.json")) if RESULTS.exists() else set()
    assert main(["--parcels", "1", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "| simulator, 1 core |" in out and "| preprocessing, 1 thread |" in out and "model" in out
    new = sorted(set(RESULTS.glob("*.json")) - before)
    assert len(new) == 1
    try:
        record = json.loads(new[0].read_text())
        assert record["environment"]["cores"] >= 1 and "numpy" in record["environment"]["versions"]
        names = [r["name"] for r in record["results"]]
        assert names == ["simulator", "preprocess", "preprocess_vs_model"]
        assert record["results"][2]["model_over_preprocess"] > 0
    finally:
        new[0].unlink()
