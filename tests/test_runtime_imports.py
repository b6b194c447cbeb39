"""The runtime (scan I/O, simulation, previews, detection) never imports torch."""

import subprocess
import sys


def test_runtime_path_never_imports_torch(tmp_path):
    code = f"""
import sys
import numpy as np
import parcelscan
from parcelscan.sim.dataset import generate_dataset
from parcelscan.sim.catalogue import SceneConfig
index = generate_dataset({str(tmp_path)!r}, 1, seed=0, preview=True, progress=False,
                         config=SceneConfig(max_parcel_cm=(40.0, 30.0, 25.0), clutter=(1, 2)))
scan = parcelscan.load_scan({str(tmp_path)!r} + "/" + index["parcels"][0]["scan"])
assert scan.signals.ndim == 3
# preprocessing, material analysis, readers and rendering: the whole front half of the pipeline
from parcelscan.preprocess import Preprocessor, estimate_mass, scanner_model, apparent_z, r_curves
from parcelscan.io import write_png_pair, write_dicos
from parcelscan.viz import pseudo_colour, draw_regions
from parcelscan.engine import OnnxModel
from parcelscan.postprocess import regions_from_heatmap
from parcelscan.evaluation import auroc
pre = Preprocessor()(scan)
batch, origins = Preprocessor().tiles(pre)
a = -np.log(scan.transmission())
region = np.zeros(a.shape[1:], bool); region[10:20, 10:20] = True
estimate_mass(a, region, 0.01, scanner_model(scan))
write_dicos(scan, {str(tmp_path)!r} + "/x.dcm")
assert parcelscan.load_scan({str(tmp_path)!r} + "/x.dcm").shape == scan.shape
draw_regions(pseudo_colour(scan), [[1, 1, 5, 5]], ["x"])
# the station API: a full detect, batched and streamed, with the region analysis
detector = parcelscan.Detector.from_pretrained(threads=1)
d = detector.detect(scan, threshold=0.0)
assert d.alarm and d.heatmap.ndim == 2
assert len(detector.detect([scan, "missing.npz"])) == 2
with detector.stream() as stream:
    assert stream.submit(scan).result().score == d.score
bad = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
print("TORCH" if bad else "CLEAN")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("CLEAN")
