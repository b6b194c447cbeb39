"""The command line: scan (JSON Lines, overlays, DICOS TDR, failures), info, demo."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pydicom

from parcelscan.cli import main, scan_paths

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "datasets" / "sample"
SCHEMA = json.loads((ROOT / "docs" / "result.schema.json").read_text())


def test_scan_writes_results_overlays_and_tdr_and_reports_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    scans = [str(SAMPLE / "scans" / "000000.npz"), str(bad), str(SAMPLE / "scans" / "000001.npz")]
    out = tmp_path / "r.jsonl"
    folders = ["--overlays", str(tmp_path / "ov"), "--tdr", str(tmp_path / "tdr")]
    code = main(
        ["scan", *scans, "--out", str(out), *folders, "--batch-size", "2", "--quiet", "--threads", "1"]
    )
    assert code == 1  # one scan failed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["source"] for d in lines] == scans
    for d in lines:
        jsonschema.validate(d, SCHEMA)
    assert [d["ok"] for d in lines] == [True, False, True]
    assert "broken.npz" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "ov").glob("*.png")) == ["000000.png", "000001.png"]
    tdrs = sorted((tmp_path / "tdr").glob("*.dcm"))
    assert len(tdrs) == 2
    ds = pydicom.dcmread(tdrs[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.501.3"
    assert ds.AlarmDecision == ("ALARM" if lines[0]["alarm"] else "CLEAR")


def test_threshold_option_changes_the_verdict(tmp_path):
    scan = str(SAMPLE / "scans" / "000001.npz")
    for thr, alarm in (("0.0", True), ("1.0", False)):
        out = tmp_path / f"{thr}.jsonl"
        assert main(["scan", scan, "--out", str(out), "--threshold", thr, "--quiet"]) == 0
        assert json.loads(out.read_text())["alarm"] is alarm


def test_dataset_folder_means_its_scans_not_its_previews():
    paths = scan_paths([str(SAMPLE)])
    assert len(paths) == 4 and all(p.suffix == ".npz" for p in paths)


def test_info_reports_card_providers_and_versions(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"]["providers"] == ["CPUExecutionProvider"]
    assert len(info["model"]["sha256"]) == 64
    assert {"onnxruntime", "numpy", "parcelscan"} <= set(info["versions"])
    assert main(["info"]) == 0
    assert "verified" in capsys.readouterr().out


def test_missing_provider_and_missing_model_are_clear_errors(tmp_path, capsys):
    assert main(["info", "--provider", "NoSuchExecutionProvider"]) == 2
    assert "NoSuchExecutionProvider" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--model", str(tmp_path / "nope.onnx")]) == 2
    assert "no model file" in capsys.readouterr().err


def test_demo_scans_known_parcels_with_the_shipped_model(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line[:6].isdigit()]
    assert len(rows) == 7 and all((" ALARM " in line) ^ (" clear " in line) for line in rows)
    assert sum("benign" in line for line in rows) == 2
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 7 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_manifest_sidecars_and_a_shared_manifest(tmp_path):
    import shutil

    for name in ("000000", "000001"):
        shutil.copy(SAMPLE / "scans" / f"{name}.npz", tmp_path / f"{name}.npz")
    declared = {"items": [{"description": "clothing", "net_mass": 800, "unit": "g"}]}
    (tmp_path / "000001.manifest.json").write_text(json.dumps(declared))
    out = tmp_path / "r.jsonl"
    assert (
        main(
            ["scan", str(tmp_path / "000000.npz"), str(tmp_path / "000001.npz"), "--out", str(out), "--quiet"]
        )
        == 0
    )
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["manifest"] is None
    assert second["manifest"]["verdict"] in ("consistent", "inconsistent", "cannot_tell")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"items": [{"description": "nickel powder", "net_mass": -2, "unit": "kg"}]}))
    assert main(["scan", str(tmp_path / "000000.npz"), "--manifest", str(bad), "--quiet"]) == 2


def test_a_reader_that_goes_away_ends_the_command_quietly():
    # `parcelscan info | head -1`: the reader closes the pipe before the command writes
    proc = subprocess.Popen(
        [sys.executable, "-m", "parcelscan.cli", "info", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "BrokenPipeError" not in err and "Traceback" not in err and err == ""
