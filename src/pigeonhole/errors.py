"""Every error Pigeonhole raises on purpose.

The tree::

    PigeonholeError
    ├── WorkspaceError           missing, not a workspace, schema too new
    ├── NotFoundError            a project, class, image, version or model
    ├── ConflictError            a name or slug that is already taken
    ├── ValidationError          a value outside what is accepted
    ├── ImportFormatError        a folder, CSV or zip in no known layout
    │   └── UnsafeArchiveError   a zip member that would escape its folder
    ├── ImageError               one image that cannot be used (the batch goes on)
    │   ├── UnsupportedImageError   not an image, or a format we do not read
    │   ├── CorruptImageError       truncated or damaged bytes
    │   └── ImageTooLargeError      more pixels than the decompression-bomb limit
    ├── WeightsError             pretrained weights missing or failing their checksum
    └── DependencyError          an optional package or a service missing (Ray)

Every message says what failed, the offending value, what is accepted and how to fix it.
The CLI prints ``Error: <message>`` and exits 1 (2 for usage errors); the server maps
each class to a stable code and HTTP status.
"""

from __future__ import annotations


class PigeonholeError(Exception):
    """Base class of every error raised on purpose by Pigeonhole."""

    code = "pigeonhole_error"


class WorkspaceError(PigeonholeError):
    """The workspace folder or its database cannot be used."""

    code = "workspace_error"


class NotFoundError(PigeonholeError):
    """A project, class, image, version or model does not exist."""

    code = "not_found"


class ConflictError(PigeonholeError):
    """A name or slug is already taken, or the change contradicts fixed state."""

    code = "conflict"


class ValidationError(PigeonholeError):
    """An argument is outside what is accepted."""

    code = "invalid"


class ImportFormatError(PigeonholeError):
    """A source cannot be read as any supported dataset layout."""

    code = "import_format"


class UnsafeArchiveError(ImportFormatError):
    """An archive member would be written outside the extraction folder."""

    code = "unsafe_archive"


class ImageError(PigeonholeError):
    """One image cannot be used; batch operations report it and go on."""

    code = "bad_image"


class UnsupportedImageError(ImageError):
    """The bytes are not an image in a format Pigeonhole reads."""

    code = "unsupported_image"


class CorruptImageError(ImageError):
    """The image is truncated or damaged."""

    code = "corrupt_image"


class ImageTooLargeError(ImageError):
    """The image has more pixels than the decompression-bomb limit."""

    code = "image_too_large"


class WeightsError(PigeonholeError):
    """Pretrained weights are missing, unreachable or fail their checksum."""

    code = "weights_error"


class DependencyError(PigeonholeError):
    """An optional package is not installed, or a service it needs is unreachable."""

    code = "dependency_error"
