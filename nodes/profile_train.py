"""Profile Train: photos of a person, cat or dog (an IMAGE batch and/or a folder under ComfyUI's input folder) → a profile."""

from __future__ import annotations

from comfy_api.v0_0_2 import io, ui

from ..identity.cache import BoundedCache
from ..identity.errors import IdentityError, ProfileExists
from ..identity.profile import name_key
from ..identity.reference import portrait_grid
from ..identity.text import printable
from ..identity.training import KINDS, Photo, train
from .glue import (
    EngineChoice,
    Profiles,
    Progress,
    check_interrupt,
    face_engine_input,
    folder_photos,
    folder_state,
    hashed,
    profile_store,
    shown_path,
    to_arrays,
    to_images,
    training_engine,
)

#: Profile name (as compared) → (the stamp of the file this node saved, the fingerprint of that run); the
#: least recently trained names beyond 256 are forgotten (they then train once more when queued again).
SAVED_HERE: BoundedCache[tuple] = BoundedCache(256)


def profile_state(name: str):
    """ComfyUI's cache key for the profile this node trains: steady while the file the node saved is there
    unchanged (the node's own save must not count as a change), new when that file is deleted or replaced."""
    store = profile_store()
    try:
        current = store.stamp(store.resolve(name))
    except IdentityError:
        current = None
    saved = SAVED_HERE.get(name_key(name.strip()))
    if saved is None:
        return "not trained here yet"
    stamp, state = saved
    return state if current == stamp else ("changed", current)


class ProfileTrain(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityProfileTrain",
            display_name="Profile Train",
            category="identity",
            description="Train an identity profile from 1-50 photos of a person, cat or dog (group shots are fine: "
            "the one in most photos is the subject). Saves it to models/identity_profiles/.",
            inputs=[
                io.String.Input(
                    "name", default="", tooltip="the person's (or animal's) name; profiles are picked by it later"
                ),
                io.Combo.Input(
                    "kind",
                    options=list(KINDS),
                    default="person",
                    optional=True,
                    tooltip="what the photos are of; 'pet' detects whether it is a cat or a dog",
                ),
                io.Image.Input("images", optional=True, tooltip="photos as an IMAGE batch"),
                io.String.Input(
                    "folder",
                    default="",
                    optional=True,
                    tooltip="a folder of photos inside ComfyUI's input folder, e.g. 'people/alice'",
                ),
                io.Boolean.Input(
                    "overwrite", default=False, tooltip="retrain an existing profile of that name (keeps its id)"
                ),
                face_engine_input(),
            ],
            outputs=[
                Profiles.Output(display_name="profiles"),
                io.String.Output(display_name="report"),
                io.Image.Output(display_name="references"),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, name: str = "", folder: str = "", **_) -> str:
        return hashed((profile_state(name), folder_state(folder)))

    @classmethod
    def execute(
        cls,
        name: str,
        images=None,
        folder: str = "",
        overwrite: bool = False,
        face_engine: EngineChoice | None = None,
        kind: str = "person",
    ) -> io.NodeOutput:
        state = profile_state(name)
        photos = (
            [Photo(f"image {i + 1}", array) for i, array in enumerate(to_arrays(images))] if images is not None else []
        )
        photos += [Photo(printable(shown_path(str(path))), path) for path in folder_photos(folder)]
        if not photos:
            raise IdentityError(
                "Profile Train needs photos: connect an IMAGE batch or name a folder in ComfyUI's input folder"
            )
        progress = Progress(cls.hidden.unique_id)
        chosen = training_engine(kind, face_engine)

        def on_update(job):
            progress(job.progress, f"{job.status.value}: {job.message}")

        try:
            job = train(
                photos,
                name,
                chosen,
                profile_store(),
                overwrite=overwrite,
                on_update=on_update,
                check=check_interrupt,
                kind=kind,
            )
        except ProfileExists as exc:
            raise ProfileExists(f"{exc}; set 'overwrite' to true to retrain it") from None
        SAVED_HERE.put(name_key(job.name), (profile_store().stamp(job.profile_id), state))
        grid = portrait_grid(job.profile.portraits)
        report = job.describe()
        return io.NodeOutput(
            [job.profile],
            report,
            to_images([grid]),
            ui={**ui.PreviewImage(to_images([grid]), cls=cls).as_dict(), "text": [report]},
        )
