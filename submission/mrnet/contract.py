"""The fixed facts of the MRNet competition contract (../shared/CONTRACT.md), named once."""

PLANES = ("sagittal", "coronal", "axial")
TASKS = ("abnormal", "acl", "meniscus")
SPLITS = ("train", "valid")
SLICE_SHAPE = (256, 256)
