"""Profiles: the trained identity of one person, its file format and the folder that holds them."""

from .calibration import calibrate, centroid
from .ids import ID_PATTERN, ID_RULE, clean_name, name_key, new_id, picker_labels, slug, validate_id
from .profile import FORMAT_VERSION, PERSON, Profile
from .store import ProfileStore

__all__ = [
    "FORMAT_VERSION",
    "ID_PATTERN",
    "ID_RULE",
    "PERSON",
    "Profile",
    "ProfileStore",
    "calibrate",
    "centroid",
    "clean_name",
    "name_key",
    "new_id",
    "picker_labels",
    "slug",
    "validate_id",
]
