"""The folder format of everything the project freezes, and the frozen bundle itself.

One format serves the bundle (one SavedModel per plane, the combiner as JSON) and the artefacts
training makes and ships (a localiser, a pretrained crop CNN: learning/artefacts.py): a folder with
a manifest that records its format version and every file's sha256. It is built in a temporary
folder beside its destination and then exchanged with the old one in one atomic step (Linux's
renameat2 RENAME_EXCHANGE), so at every instant the destination holds either the old folder or the
new one, whole. Reading re-hashes every file against the manifest, so a partial or altered folder
stops predict (or fit) with one line saying why.
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


def _exchange(a, b):
    """Swap two existing paths atomically; False where the system cannot (then nothing moved)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd, rename_exchange = -100, 2
        return libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    except (AttributeError, OSError):
        return False


def write_folder(dest, fill, manifest, format_version=FORMAT_VERSION):
    """`fill(folder)` writes the files into a fresh temporary folder beside `dest`; then the manifest
    (`manifest` with the format version and each file's sha256) goes in, and the folder takes dest's
    place whole: exchanged with an existing dest in one step where the system allows, else renamed
    over it (two renames: a brief instant without dest). Returns dest."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
        manifest = {**manifest, "format_version": format_version, "files": file_hashes(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if dest.exists() and _exchange(tmp, dest):
            shutil.rmtree(tmp)  # the old folder, now under the temporary name
            return dest
        old = dest.with_name(dest.name + f".old-{os.getpid()}")
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verify_folder(folder, format_version=FORMAT_VERSION, what="bundle"):
    """The manifest of a folder write_folder wrote, after checking its format version and every
    file against its sha256; raises BundleError with one line saying what is wrong and what to do."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("format_version") != format_version:
        raise BundleError(f"{folder}: {what} format {manifest.get('format_version')} but this code reads "
                          f"{format_version}; make it again with this version")
    expected = manifest.get("files", {})
    actual = file_hashes(folder)
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            raise BundleError(f"{folder / name}: missing from the {what} (partial copy?); copy it again")
        if name not in expected:
            raise BundleError(f"{folder / name}: not listed in the manifest; the {what} was altered")
        if actual[name] != expected[name]:
            raise BundleError(f"{folder / name}: checksum mismatch; the {what} was altered or corrupted")
    return manifest


def write_bundle(dest, export_plane, combiner, manifest):
    """`export_plane(plane, folder)` writes one SavedModel; everything lands in `dest` atomically."""
    def fill(folder):
        for plane in PLANES:
            export_plane(plane, folder / plane)
        (folder / "combiner.json").write_text(json.dumps(combiner, indent=1))

    return write_folder(dest, fill, manifest)


def read_manifest(bundle):
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{path}: missing; the folder is absent or partial - run `python train/fit.py`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON ({e}); rebuild the bundle with train/fit.py") from None


def verify(bundle, tf_version=None):
    """Check the manifest, versions and every checksum; return (manifest, combiner) or raise BundleError."""
    bundle = Path(bundle)
    manifest = verify_folder(bundle)
    if manifest.get("output_spec", {}).get("tasks") != list(TASKS):
        raise BundleError(f"{bundle}: manifest tasks {manifest.get('output_spec')} are not {list(TASKS)}")
    built_with = manifest.get("libraries", {}).get("tensorflow", "")
    if tf_version and built_with.split(".")[:2] != tf_version.split(".")[:2]:
        raise BundleError(f"{bundle}: built with TensorFlow {built_with}, running {tf_version}; "
                          f"install requirements.txt (bash setup.sh)")
    combiner = json.loads((bundle / "combiner.json").read_text())
    reason = comb.validate(combiner)
    if reason:
        raise BundleError(f"{bundle / 'combiner.json'}: {reason}")
    return manifest, combiner
