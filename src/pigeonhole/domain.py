"""Small value types shared by every layer: project types and splits.

Example:
    >>> from pigeonhole.domain import ProjectType, Split
    >>> ProjectType("multi-label").is_multi_label
    True
    >>> Split.parse("val")
    <Split.VALID: 'valid'>
"""

from __future__ import annotations

from enum import StrEnum

from pigeonhole.errors import ValidationError


class ProjectType(StrEnum):
    """Whether an image has exactly one class or any number of labels."""

    SINGLE_LABEL = "single-label"
    MULTI_LABEL = "multi-label"

    @property
    def is_multi_label(self) -> bool:
        return self is ProjectType.MULTI_LABEL

    @classmethod
    def parse(cls, value: str | ProjectType) -> ProjectType:
        """Accepts ``single-label`` or ``multi-label``, any case, ``_`` for ``-``."""
        if isinstance(value, ProjectType):
            return value
        text = str(value).strip().lower().replace("_", "-")
        for member in cls:
            if member.value == text:
                return member
        accepted = ", ".join(member.value for member in cls)
        raise ValidationError(f"project type {value!r} is not one of: {accepted}")


class Split(StrEnum):
    """The three splits; ``valid`` chooses settings, ``test`` only measures."""

    TRAIN = "train"
    VALID = "valid"
    TEST = "test"

    @classmethod
    def parse(cls, value: str | Split) -> Split:
        """Accepts ``train``, ``valid`` (or ``val``, ``validation``) and ``test``."""
        if isinstance(value, Split):
            return value
        text = str(value).strip().lower()
        aliases = {"val": "valid", "validation": "valid", "training": "train"}
        text = aliases.get(text, text)
        for member in cls:
            if member.value == text:
                return member
        raise ValidationError(
            f"split {value!r} is not one of: train, valid (or val), test"
        )


SPLITS: tuple[Split, ...] = (Split.TRAIN, Split.VALID, Split.TEST)
