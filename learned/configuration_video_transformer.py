"""Configuration of the `video-transformer` world model (see `modeling_video_transformer`)."""

from __future__ import annotations

from dataclasses import dataclass

from physground.errors import ValidationError


@dataclass(frozen=True, kw_only=True)
class VideoTransformerConfig:
    """Spatiotemporal patch transformer predicting the next frame from ``context`` frames.

    Frames are cut into space-time patches of ``tubelet`` frames x ``patch`` x ``patch``
    pixels (the tokens); queries for the next frame's patches attend to them. Channels are
    RGB plus one object-mask channel. ``image_size`` (frame width) and ``image_height`` are
    inferred from the data when the model is first prepared (0 until then) and stored in
    checkpoints; ``image_height = 0`` means square frames (checkpoints written before wide
    frames were supported).
    """

    context: int = 4
    tubelet: int = 2
    patch: int = 4
    dim: int = 96
    depth: int = 3
    heads: int = 4
    mlp_ratio: float = 2.0
    image_size: int = 0
    image_height: int = 0

    def __post_init__(self) -> None:
        if self.context < 1 or self.tubelet < 1 or self.context % self.tubelet:
            raise ValidationError(
                f"video-transformer context = {self.context} must be a positive multiple of "
                f"tubelet = {self.tubelet}"
            )
        if self.patch < 1 or self.dim % self.heads:
            raise ValidationError(f"video-transformer patch = {self.patch} must be >= 1 and "
                                  f"dim = {self.dim} divisible by heads = {self.heads}")
        for field, value in (("image_size", self.image_size),
                             ("image_height", self.image_height)):
            if value < 0 or value % self.patch:
                raise ValidationError(f"video-transformer {field} = {value} is not a "
                                      f"non-negative multiple of patch = {self.patch}")

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) in pixels of the frames the model reads and writes."""
        return (self.image_height or self.image_size, self.image_size)
