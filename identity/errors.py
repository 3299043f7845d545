"""Errors a user can act on.

Every `IdentityError` carries one sentence that says what went wrong and how to fix it; the CLI prints it
without a traceback and ComfyUI shows it in its error dialog. Anything else escaping the library is a bug.
"""

from __future__ import annotations

#: The module every error class reports (see IdentityError).
TITLE_MODULE = "identity"


class IdentityError(Exception):
    """A problem with the user's input, files or set-up (not a bug).

    ComfyUI titles an error with its class's module and name (`execution.full_type_name`), and loads the pack under
    its folder's absolute path, so each error class names the library's package instead: "identity.MissingKey",
    not "/home/…/custom_nodes/identity-layer.identity.errors.MissingKey"."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__module__ = TITLE_MODULE


IdentityError.__module__ = TITLE_MODULE


class ImageError(IdentityError):
    """A file or array that cannot be used as a photo; `reason` is the part without the file name."""

    def __init__(self, reason: str, label: str | None = None):
        super().__init__(f"{label}: {reason}" if label else reason)
        self.reason = reason


class ModelFilesMissing(IdentityError):
    """Face model files that are not where they must be."""


class ProviderUnavailable(IdentityError):
    """An onnxruntime execution provider that was asked for but is not installed."""


class InvalidProfileId(IdentityError):
    """A profile id that could name a path outside the profile folder, or is otherwise malformed."""


class ProfileNotFound(IdentityError):
    """No saved profile answers to that id or name."""


class ProfileExists(IdentityError):
    """Saving would replace a profile and overwrite was not asked for (front ends add how to ask)."""


class ProfileFormatError(IdentityError):
    """A profile file that is not a valid Identity Layer profile."""


class TrainingError(IdentityError):
    """Training could not produce a profile (for example: no photo was accepted)."""


class TrainingBusy(IdentityError):
    """A training job for that profile id is already running."""


class Cancelled(IdentityError):
    """The user stopped the work; nothing was saved."""


class InvalidRequest(IdentityError):
    """A request the chosen base model cannot take (resolution, quality, image count …); refused before any call."""


class MissingKey(IdentityError):
    """No API key for a provider; the message names the environment variable and the keys file."""


class ProviderError(IdentityError):
    """A provider answered with an error, or not in its documented format."""

    def __init__(self, message: str, provider: str = "", status: int | None = None, request_id: str | None = None):
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.request_id = request_id


class ModelMoved(ProviderError):
    """The provider no longer serves the model id under that name (unknown, retired or deprecated): the message
    names the models.json override that points the model at its new id."""


class ModerationRefused(ProviderError):
    """The provider's safety system refused the request or its output (not retried: the same prompt fails again)."""


class UploadRefused(IdentityError):
    """Uploaded photos that are refused as a whole: not an image, a path for a name, too many."""


class UploadTooLarge(UploadRefused):
    """An upload over the size limits (web front ends answer it with HTTP 413)."""


class UploadStalled(UploadRefused):
    """An upload that stopped sending, or took too long in all (web front ends answer it with HTTP 408)."""


class WeightsMismatch(IdentityError):
    """A weights file whose tensors are not those its model needs (missing, unexpected or mis-shaped keys), or
    weights that do not fit the model they are applied to."""
