"""The benchmark suite: timing helpers, targets, the PyTorch baseline, and a smoke run of all of it."""

import json
import math

import benchmarks.__main__ as bench
import numpy as np
import onnxruntime as ort
import pytest
from benchmarks._inputs import model_path
from benchmarks._report import TARGETS, targets
from benchmarks._timing import interleave, speedup


def test_speedup_is_the_median_of_ratios_paired_by_round():
    fast, slow = [1.0, 2.0, 1.0], [3.0, 4.0, 2.0]  # per round: 3x, 2x, 2x
    assert speedup(fast, slow) == 2.0
    # the fast candidate did 2 tiles per call, the slow one 1: per tile it is twice as fast again
    assert speedup(fast, slow, per_fast=2, per_slow=1) == 4.0
    # a slow phase of the machine hits both candidates of a round: paired ratios ignore it
    assert speedup([1.0, 10.0, 1.0], [2.0, 20.0, 2.0]) == 2.0


def test_end_to_end_rate_is_restated_at_a_station_alarm_share():
    from benchmarks._report import rows as report_rows
    from benchmarks.e2e import _alarm_costs

    def call(marks):  # post-processing costs 100 ms with an alarm, 10 ms without
        return [({"postprocess_ms": 100.0 if a else 10.0}, a) for a in marks]

    calls = [call([True, False, False, False]), call([True, False, False, False])]
    got = _alarm_costs(calls, ms_per_scan=50.0)
    assert got["alarm_share"] == 0.25
    assert (got["postprocess_ms_alarm"], got["postprocess_ms_clear"]) == (100.0, 10.0)
    # measured mix 0.25 x 100 + 0.75 x 10 = 32.5 ms of the 50; at 1 % alarms it would be 10.9 ms
    assert got["scans_per_s_at_station_alarm_share"] == pytest.approx(1e3 / (50.0 - 32.5 + 10.9))
    quiet = _alarm_costs([call([False, False])], ms_per_scan=50.0)
    assert quiet["alarm_share"] == 0.0 and quiet["scans_per_s_at_station_alarm_share"] is None
    variant = {"precision": "fp32", "scans_per_s": 20.0, "megapixels_per_s": 21.0}
    variant.update(median_stage_ms={"total_ms": 50.0}, **got)
    result = {"name": "e2e", "provider": "cpu", "threads": 2, "scans_per_call": 8, "scan": "2 x 1024 x 1024"}
    rows = report_rows({**result, "variants": [variant], "ratios": {}, "errors": {}})
    assert "25% of the scans alarm" in rows[0] and "with 1 % alarming: 35.2 scans/s" in rows[0]


def test_interleave_rotates_the_order_and_times_every_round():
    calls = []
    candidates = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    times = interleave(candidates, duration_s=0.0, min_rounds=3, warmup=1)
    assert calls == list("abc" + "abc" + "bca" + "cab")  # warm-up, then one step further each round
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for v in times.values() for t in v)


def _results(e2e=60.0, ratio=2.5, int8=1.6, fraction=0.4, p99=120.0):
    variant = {"name": "onnxruntime fp32 b8", "batch": 8, "fraction_of_peak": fraction}
    return [
        {"name": "e2e", "variants": [{"precision": "fp32", "scans_per_s": e2e}]},
        {
            "name": "model",
            "variants": [variant],
            "ratios": {"ort_fp32_over_torch_eager": ratio, "int8_over_fp32": int8},
        },
        {"name": "stream", "precision": "fp32", "p99_ms": p99, "rate_per_s": 20.0},
        {"name": "stream", "precision": "fp32", "p99_ms": 9.0, "rate_per_s": 5.0},
    ]


def test_targets_say_met_not_met_or_not_measured():
    got = {t["key"]: t for t in targets(_results(), "cpu", size=1024, rate=20)}
    assert [k for k, *_ in TARGETS] == list(got)
    assert got["e2e_scans_per_s"]["met"] is True and got["e2e_scans_per_s"]["value"] == 60.0
    assert got["ort_fp32_over_torch_eager"]["met"] is False
    assert got["int8_over_fp32"]["met"] is True
    assert got["fraction_of_peak"]["met"] is False
    assert got["stream_p99_ms"]["met"] is True  # a latency target is met from below
    assert got["gpu_e2e_scans_per_s"]["met"] is None  # a CPU run says nothing about the GPU target
    # the targets are stated for 1,024 x 1,024 scans at 20 scans/s: other runs do not claim them
    other = {t["key"]: t for t in targets(_results(), "cpu", size=256, rate=5)}
    assert other["e2e_scans_per_s"]["met"] is None and other["stream_p99_ms"]["met"] is None
    assert {t["key"]: t for t in targets(_results(p99=151.0), "cpu", 1024, 20)}["stream_p99_ms"][
        "met"
    ] is False


def test_torch_baseline_carries_the_shipped_weights():
    from benchmarks.torch_baseline import agreement, shipped_net

    # not the export's batch or tile size, and not square
    x = np.random.default_rng(3).uniform(0, 1, (3, 3, 48, 80)).astype(np.float32)
    session = ort.InferenceSession(str(model_path("fp32")), providers=["CPUExecutionProvider"])
    heatmap = session.run(["heatmap"], {"image": x})[0]
    assert agreement(shipped_net(model_path("fp32")), x, heatmap) < 1e-4


def test_torch_baseline_names_nested_modules_and_rebuilds_the_card_s_network(tmp_path):
    import torch
    from benchmarks.torch_baseline import _module_name, agreement, shipped_net

    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.export import export_onnx
    from parcelscan.training.network import DetectorNet

    assert _module_name("/enc2/enc2.3/Conv_output_0") == "enc2.3"
    assert _module_name("/context/context.1/body/body.3/Conv_output_0") == "context.1.body.3"
    assert _module_name("/head/Conv_output_0") == "head"
    torch.manual_seed(0)
    net = DetectorNet(context=2, widths=(8, 8, 16, 16))
    with torch.no_grad():  # blocks that are not the identity, so their weights must really be carried
        for block in net.context:
            block.body[4].weight.normal_(std=0.5)
    card = {"preprocess": PreprocessConfig().to_dict(), "network": {"config": net.config()}}
    export_onnx(net, tmp_path / "m.onnx", card)
    x = np.random.default_rng(4).uniform(0, 1.5, (2, 3, 64, 96)).astype(np.float32)
    heatmap = ort.InferenceSession(str(tmp_path / "m.onnx")).run(["heatmap"], {"image": x})[0]
    rebuilt = shipped_net(tmp_path / "m.onnx")
    assert rebuilt.config() == net.config()
    assert agreement(rebuilt, x, heatmap) < 1e-4


TINY = ["--scan-size", "192", "--duration", "0.3", "--parcels", "1", "--repeats", "2", "--batch-sizes", "1,2"]
TINY += ["--scans", "2", "--distinct", "1", "--rate", "10"]


def test_the_whole_suite_runs_saves_a_record_and_renders_a_table(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    assert bench.main(TINY) == 0
    out = capsys.readouterr().out
    for row in (
        "| float32 matmul ceiling |",
        "| simulator, 1 core |",
        "| preprocessing, 1 thread |",
        "| postprocessing, 1 thread |",
        "| onnxruntime int8 b2 ",
        "| torch eager ",
        "| Detector.detect fp16 ",
        "| detector.stream fp32 at 10 scans/s |",
        "| training ratios (paired by round, ",
        "| target | measured | met |",
    ):
        assert row in out  # fmt: skip
    saved = sorted(tmp_path.iterdir())
    assert [p.suffix for p in saved] == [".json", ".md"] and saved[1].read_text() in out
    record = json.loads(saved[0].read_text())
    env = record["environment"]
    assert (
        env["cores"] >= 1
        and "onnxruntime" in env["versions"]
        and "CPUExecutionProvider" in env["providers_active"]
    )
    names = [r["name"] for r in record["results"]]
    assert names == [
        "ceiling",
        "simulator",
        "preprocess",
        "preprocess_vs_model",
        "postprocess",
        "model",
        "e2e",
        "stream",
        "training_step",
    ]
    r = {r["name"]: r for r in record["results"]}
    assert r["ceiling"]["peak_gflops"] > 0 and r["ceiling"]["gpu"] is None
    model = r["model"]
    assert model["errors"] == {} and model["torch_vs_onnx_max_abs_diff"] < 1e-4
    assert {v["name"] for v in model["variants"]} == {
        *(f"onnxruntime {p} b{b}" for p in ("fp32", "int8", "fp16") for b in (1, 2)),
        "torch eager",
        "torch channels_last",
    }
    assert all(v["gflops"] > 0 and v["fraction_of_peak"] > 0 for v in model["variants"])
    assert {"ort_fp32_over_torch_eager", "int8_over_fp32", "fp16_over_fp32"} <= set(model["ratios"])
    assert [v["precision"] for v in r["e2e"]["variants"]] == ["fp32", "int8", "fp16"]
    assert all(v["providers_active"] == ["CPUExecutionProvider"] for v in r["e2e"]["variants"])
    stream = r["stream"]
    assert stream["failed"] == 0 and stream["submitted"] == 3
    assert math.isfinite(stream["p99_ms"]) and 0 < stream["p50_ms"] <= stream["p99_ms"] <= stream["max_ms"]
    assert len(record["targets"]) == len(TARGETS)
    steps = r["training_step"]
    assert set(steps["tiles_per_s"]) == {"fp32", "fp32 channels_last", "bf16 channels_last"}
    rates = [*steps["tiles_per_s"].values(), *steps["ratios"].values()]
    assert steps["rounds"] >= 3 and all(v > 0 for v in rates)


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="here CUDA would load and really run"
)
def test_a_provider_that_cannot_load_fails_the_run_loudly(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    assert bench.main(["--suite", "model,e2e", "--provider", "cuda", "--no-save", *TINY]) == 1
    out = capsys.readouterr().out
    assert "| model | - | failed: RuntimeError: " in out and "CUDAExecutionProvider" in out
    assert "| e2e | - | failed: RuntimeError: " in out
    assert not list(tmp_path.iterdir())
