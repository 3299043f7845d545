"""Real animal photos from installable packages, and the pet engine installed into a test folder.

scikit-image's `chelsea` (a cat, from PyPI), Darknet's `dog.jpg` and `person.jpg` (Debian's `darknet`) and
OpenCV's `cat_det.jpg` (Debian's `opencv-doc`). Tests that need Darknet's photos skip, naming the package, where it
is not installed; the cat training test uses opencv-doc's cat when it is there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from identity.images import load_image

DARKNET = Path("/usr/share/darknet/data")
OPENCV_DOC = Path("/usr/share/doc/opencv-doc/opencv4/html")
DOG = DARKNET / "dog.jpg"  # a dog (with a bicycle and a truck)
DOG_BOX = (112, 214, 338, 535)  # where yolov3-tiny puts it (letterboxed, as Darknet runs it)
PERSON_WITH_DOG = DARKNET / "person.jpg"  # a woman, a dog and a horse
OTHER_CAT = OPENCV_DOC / "cat_det.jpg"

needs_darknet = pytest.mark.skipif(not DOG.is_file(), reason=f"{DOG} absent: apt-get install darknet")


def chelsea() -> np.ndarray:
    from skimage import data

    return data.chelsea()


def photo(path: Path) -> np.ndarray:
    return load_image(path)


def variants(image: np.ndarray) -> dict[str, np.ndarray]:
    """The same animal as a user's photo set has it: mirrored, framed tighter, darker."""
    height, width = image.shape[:2]
    return {
        "as shot": image,
        "mirrored": image[:, ::-1].copy(),
        "framed tighter": image[height // 12 : -height // 12, width // 12 : -width // 12].copy(),
        "darker": (image * 0.8).astype(np.uint8),
    }
