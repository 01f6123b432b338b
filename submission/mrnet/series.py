"""Reading and checking one `.npy` series without trusting it.

The header is parsed on its own so a whole dataset (6 GB) can be checked without loading a single
array, and `allow_pickle=False` everywhere: a series file is data, never code.
"""

import numpy as np

from mrnet.contract import SLICE_SHAPE


def header_info(path):
    """(shape, dtype, fortran_order, data offset): all that `read_data` needs, parsed once; raises
    ValueError with a user-facing reason."""
    try:
        with open(path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
            except ValueError:
                raise ValueError("not a .npy file (bad magic bytes); save series with numpy.save") from None
            try:
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                offset = f.tell()
            except ValueError as e:
                raise ValueError(f"corrupt .npy header ({e})") from None
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except IsADirectoryError:
        raise ValueError("is a directory, expected a .npy file") from None
    except PermissionError:
        raise ValueError("unreadable (permission denied)") from None
    return tuple(shape), dtype, fortran, offset


def header_problem(shape, dtype, strict_uint8=True):
    """The reason a series of this shape and dtype is unusable, or None.

    `strict_uint8` is for datasets (the contract says uint8); prediction also accepts numeric
    arrays on the same 0-255 scale, checked value by value in `value_problem`.
    """
    if dtype.hasobject:
        return "object (pickled) array; series must be plain uint8 arrays"
    if len(shape) != 3:
        return f"expected 3 dimensions (slices, 256, 256), got shape {shape}"
    if tuple(shape[1:]) != SLICE_SHAPE:
        return f"expected in-plane size 256x256, got {shape[1]}x{shape[2]}"
    if shape[0] == 0:
        return "zero slices"
    if strict_uint8 and dtype != np.uint8:
        return f"dtype {dtype} is not uint8; convert to uint8 (0-255) as MRNet-v1.0 stores it"
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating) or dtype == np.bool_):
        return f"dtype {dtype} cannot be read as intensities; save as uint8 (0-255)"
    return None


def value_problem(array):
    """For non-uint8 input: the values must already be on MRNet's 0-255 scale, else we would guess."""
    if array.dtype == np.uint8:
        return None
    values = np.asarray(array)
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        return "non-finite values (NaN or inf)"
    lo, hi = float(values.min()), float(values.max())
    if lo < 0 or hi > 255:
        return f"values span {lo:g}..{hi:g}, outside 0-255; rescale to uint8 as MRNet-v1.0 stores it"
    return None


def check_series(path, strict_uint8=True):
    """(header info or None, reason the file is not a usable series or None).

    Non-uint8 arrays (accepted only when not `strict_uint8`) are also checked value by value.
    """
    try:
        info = header_info(path)
    except ValueError as e:
        return None, str(e)
    reason = header_problem(info[0], info[1], strict_uint8)
    if reason is None and info[1] != np.uint8:
        try:
            reason = value_problem(read_data(path, info))
        except ValueError as e:
            reason = str(e)
    return info, reason


def open_series(path):
    """Memory-mapped, never unpickled: only the slices a batch touches are paged in."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def read_data(path, info):
    """Read a series whose header was parsed already (`header_info`).

    Worker threads use this instead of np.load: CPython 3.11's ast.literal_eval, which np.load uses
    on every header, is not safe to call from several threads at once.
    """
    shape, dtype, fortran, offset = info
    if dtype.hasobject:
        raise ValueError(f"{path}: object array")
    count = int(np.prod(shape))
    data = np.fromfile(path, dtype=dtype, count=count, offset=offset)
    if data.size != count:
        raise ValueError(f"{path}: truncated, {data.size} of {count} values")
    return data.reshape(shape[::-1]).transpose() if fortran else data.reshape(shape)
