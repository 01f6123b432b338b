"""The fixed facts of the MRNet competition contract (../shared/CONTRACT.md), named once."""

PLANES = ("sagittal", "coronal", "axial")
TASKS = ("abnormal", "acl", "meniscus")
SPLITS = ("train", "valid")
SLICE_SHAPE = (256, 256)

# The places the localiser finds on every slice, where the scored tears live (phantom/landmarks.py
# has their truth), and the task a tear at each place speaks for. On a sagittal slice meniscus A is
# the anterior horn (image left), B the posterior; on coronal and axial slices the meniscus on the
# image's left and on its right.
PLACES = ("ACL", "meniscus A", "meniscus B")
PLACE_TASKS = ("acl", "meniscus", "meniscus")
WINDOW_TASKS = ("acl", "meniscus")  # the crop branch's kinds of window, in its head's order
PLACE_KIND = tuple(WINDOW_TASKS.index(task) for task in PLACE_TASKS)  # each place's kind of window
TASK_PLACES = {task: tuple(i for i, t in enumerate(PLACE_TASKS) if t == task) for task in WINDOW_TASKS}
