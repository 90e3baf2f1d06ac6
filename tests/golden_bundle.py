# Writer of the layer golden bundles read by tests/golden_bundle.c (the
# format is described in tests/golden_bundle.h). Used by gen_golden_*.py;
# CI never runs it.
import os
import struct

import numpy as np

MAGIC = b"CLATTNB1"
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.uint8): 1,
           np.dtype(np.int32): 2, np.dtype(np.float64): 3}
LAYER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "golden", "layers")


def write_bundle(name, tensors):
    """tensors: dict name -> numpy array (float32, uint8, int32, float64)
    or a Python int/float scalar (stored as int32 / float64)."""
    os.makedirs(LAYER_DIR, exist_ok=True)
    path = os.path.join(LAYER_DIR, name)
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(tensors)))
        for key, value in tensors.items():
            if isinstance(value, bool) or isinstance(value, int):
                value = np.array(value, dtype=np.int32)
            elif isinstance(value, float):
                value = np.array(value, dtype=np.float64)
            value = np.ascontiguousarray(value)
            code = _DTYPES[value.dtype]
            raw = key.encode()
            f.write(struct.pack("<I", len(raw)))
            f.write(raw)
            f.write(struct.pack("<II", code, value.ndim))
            for d in value.shape:
                f.write(struct.pack("<Q", d))
            f.write(value.astype(value.dtype.newbyteorder("<")).tobytes())
    return path
