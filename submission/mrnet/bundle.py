"""The frozen bundle: one SavedModel per plane, the combiner as JSON, and a manifest.

Written to a temporary folder and renamed into place, so an interrupted fit never leaves half a
bundle. Loading re-hashes every file against the manifest and checks the format and library
versions, so a partial or altered bundle stops predict with one line saying why.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

from mrnet import combiner as comb
from mrnet.contract import PLANES, TASKS

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class BundleError(Exception):
    pass


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hashes(root):
    root = Path(root)
    return {p.relative_to(root).as_posix(): sha256(p)
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def write_bundle(dest, export_plane, combiner, manifest):
    """`export_plane(plane, folder)` writes one SavedModel; everything lands in `dest` atomically."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for plane in PLANES:
        export_plane(plane, tmp / plane)
    (tmp / "combiner.json").write_text(json.dumps(combiner, indent=1))
    manifest = {**manifest, "format_version": FORMAT_VERSION, "files": file_hashes(tmp)}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    old = dest.with_name(dest.name + f".old-{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def read_manifest(bundle):
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{path}: missing; the bundle is absent or partial - run `python train/fit.py`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON ({e}); rebuild the bundle with train/fit.py") from None


def verify(bundle, tf_version=None):
    """Check the manifest, versions and every checksum; return (manifest, combiner) or raise BundleError."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{bundle}: bundle format {manifest.get('format_version')} but this predict reads "
                          f"{FORMAT_VERSION}; rebuild it with this version's train/fit.py")
    if manifest.get("output_spec", {}).get("tasks") != list(TASKS):
        raise BundleError(f"{bundle}: manifest tasks {manifest.get('output_spec')} are not {list(TASKS)}")
    built_with = manifest.get("libraries", {}).get("tensorflow", "")
    if tf_version and built_with.split(".")[:2] != tf_version.split(".")[:2]:
        raise BundleError(f"{bundle}: built with TensorFlow {built_with}, running {tf_version}; "
                          f"install requirements.txt (bash setup.sh)")
    expected = manifest.get("files", {})
    actual = file_hashes(bundle)
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            raise BundleError(f"{bundle / name}: missing from the bundle (partial copy?); copy it again")
        if name not in expected:
            raise BundleError(f"{bundle / name}: not listed in the manifest; the bundle was altered")
        if actual[name] != expected[name]:
            raise BundleError(f"{bundle / name}: checksum mismatch; the bundle was altered or corrupted")
    combiner = json.loads((bundle / "combiner.json").read_text())
    reason = comb.validate(combiner)
    if reason:
        raise BundleError(f"{bundle / 'combiner.json'}: {reason}")
    return manifest, combiner
