"""`video-transformer`: a spatiotemporal patch transformer predicting future frames.

As in Sora-style video models, the last ``context`` frames (RGB plus an object-mask channel,
in [0, 1]) are cut into space-time patches (``tubelet`` frames x ``patch``^2 pixels), each
linearly embedded with a learned space-time position embedding. One learned query token per
spatial patch of the next frame attends, together with the context tokens, through a
pre-norm transformer encoder; a linear head turns each query into its patch of the next
frame: an RGB change relative to the last frame and the mask logit. Rollouts are
autoregressive: each predicted frame (RGB clamped to [0, 1], mask probability) is appended
to the context. `unroll_video` is the one rollout function of predict and training.

Pixel physics losses act on the colour coverage of the predicted RGB
(`losses.rgb_coverage`, the estimator the pixel metrics track positions with): the
centroid's least-squares acceleration over the window's free-flight frames (true context +
predictions) is the projected gravity, and the coverage area stays the context's mean.
Prediction reads only the observation's frames and masks; the losses read the training
rollouts' gravity and states (training labels, never a model input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from physground.errors import ValidationError
from physground.learned.base import LearnedModel, Windows
from physground.learned.configuration_video_transformer import VideoTransformerConfig
from physground.observation import Observation
from physground.rollout import Prediction, Rollout
from physground.world_model import Modality

CHANNELS = 4  # RGB + object mask
COVERAGE_GATE_WIDTH = 0.03  # width of the smooth coverage gate of the pixel losses


class VideoTransformer(nn.Module):
    """Next-frame predictor over space-time patch tokens."""

    def __init__(self, config: VideoTransformerConfig) -> None:
        super().__init__()
        self.config = config
        c, p = config, config.patch
        height, width = config.frame_shape
        self.grid = (height // p, width // p)  # patches along (y, x)
        tokens_t = c.context // c.tubelet
        self.embed = nn.Linear(CHANNELS * c.tubelet * p * p, c.dim)
        self.pos_space = nn.Parameter(0.02 * torch.randn(self.grid[0] * self.grid[1], c.dim))
        self.pos_time = nn.Parameter(0.02 * torch.randn(tokens_t + 1, c.dim))
        self.query = nn.Parameter(0.02 * torch.randn(c.dim))
        layer = nn.TransformerEncoderLayer(
            c.dim, c.heads, int(c.dim * c.mlp_ratio), dropout=0.0, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, c.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, CHANNELS * p * p)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def patchify(self, video: torch.Tensor) -> torch.Tensor:
        """[B,K,C,H,W] -> tokens [B, K/tubelet * gy*gx, C*tubelet*p^2]."""
        B, K, C, H, W = video.shape
        t, p, (gy, gx) = self.config.tubelet, self.config.patch, self.grid
        x = video.reshape(B, K // t, t, C, gy, p, gx, p)
        x = x.permute(0, 1, 4, 6, 3, 2, 5, 7)  # B, Kt, gy, gx, C, t, p, p
        return x.reshape(B, (K // t) * gy * gx, C * t * p * p)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, gy*gx, C*p^2] -> one frame [B,C,H,W]."""
        B = tokens.shape[0]
        p, (gy, gx) = self.config.patch, self.grid
        x = tokens.reshape(B, gy, gx, CHANNELS, p, p).permute(0, 3, 1, 4, 2, 5)
        return x.reshape(B, CHANNELS, gy * p, gx * p)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Next frame [B,C,H,W]: RGB in [0,1]-space (last frame + change) and a mask logit,
        from context video [B,K,C,H,W] whose mask channel holds probabilities."""
        B = video.shape[0]
        g2 = self.grid[0] * self.grid[1]
        tokens = self.embed(self.patchify(video))
        kt = tokens.shape[1] // g2
        pos = (self.pos_time[:kt, None] + self.pos_space[None]).reshape(kt * g2, -1)
        queries = (self.query + self.pos_time[kt] + self.pos_space).expand(B, g2, -1)
        out = self.encoder(torch.cat([tokens + pos, queries], dim=1))
        frame = self.unpatchify(self.head(self.norm(out[:, -g2:])))
        last = video[:, -1]
        rgb = last[:, :3] + frame[:, :3]
        return torch.cat([rgb, frame[:, 3:]], dim=1)


def unroll_video(net: VideoTransformer, video: torch.Tensor, horizon: int, *,
                 detach_inputs: bool = False) -> torch.Tensor:
    """Autoregressive rollout: [B,K,C,H,W] context -> [B,horizon,C,H,W] outputs (RGB,
    mask logits); each output enters the context as (clamped RGB, mask probability)."""
    outs = []
    for _ in range(horizon):
        if detach_inputs:
            video = video.detach()
        out = net(video[:, -net.config.context:])
        outs.append(out)
        frame = torch.cat([out[:, :3].clamp(0, 1), torch.sigmoid(out[:, 3:])], dim=1)
        video = torch.cat([video[:, 1:], frame[:, None]], dim=1)
    return torch.stack(outs, dim=1)


def video_tensor(rollout: Rollout | Observation) -> torch.Tensor:
    """Frames and masks of a rendered rollout or observation as float [T,4,H,W] in [0, 1]."""
    if rollout.frames is None or rollout.masks is None:
        raise ValidationError(
            f"{rollout.scenario} has no frames/masks; the video model "
            "needs rendered rollouts (ScenarioConfig render=True)"
        )
    rgb = torch.as_tensor(np.array(rollout.frames)).float().permute(0, 3, 1, 2) / 255.0
    mask = torch.as_tensor(np.asarray(rollout.masks) > 0).float()[:, None]
    return torch.cat([rgb, mask], dim=1)


def projected_gravity(rollout: Rollout, frame: int) -> np.ndarray:
    """Pixel acceleration (u, v) [px/s^2] of a point at the first body's position at
    ``frame`` accelerating with gravity: J(X) g with J the camera projection's Jacobian."""
    if rollout.camera is None or "pos" not in rollout.states:
        raise ValidationError(f"{rollout.scenario}: centroid_gravity needs a camera and rigid "
                              "body positions to project gravity into the image")
    X = np.asarray(rollout.states["pos"][frame, 0], dtype=np.float64)
    g = np.asarray(rollout.static["gravity"], dtype=np.float64)
    eps = 1e-4
    return (rollout.camera.project(X + eps * g) - rollout.camera.project(X)) / eps


class ModelVideoTransformer(LearnedModel):
    """Learned pixel world model (`video-transformer`)."""

    name: ClassVar[str] = "video-transformer"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"pixels"})
    config_type: ClassVar[type] = VideoTransformerConfig
    config: VideoTransformerConfig

    def is_built(self) -> bool:
        return self.config.image_size > 0

    def build(self) -> VideoTransformer:
        return VideoTransformer(self.config)

    @property
    def net(self) -> VideoTransformer:
        module = self.require_module()
        assert isinstance(module, VideoTransformer)
        return module

    def prepare(self, rollouts: Sequence[Rollout]) -> None:
        if self.module is not None:
            return
        height, width = video_tensor(rollouts[0]).shape[-2:]
        self.config = replace(self.config, image_size=width,
                              image_height=0 if height == width else height)
        self.module = VideoTransformer(self.config).to(self.device)

    def _check_frame_shape(self, scenario: str, video: torch.Tensor) -> None:
        if tuple(video.shape[-2:]) != self.config.frame_shape:
            raise ValidationError(
                f"{scenario} frames are {list(video.shape[-2:])} px (height, width); the "
                f"model was built for {list(self.config.frame_shape)} px"
            )

    def windows(self, rollouts: Sequence[Rollout], unroll: int) -> Windows:
        K = self.config.context
        clips, rows, grav, free = [], [], [], []
        for i, r in enumerate(rollouts):
            video = (video_tensor(r) * 255).round().to(torch.uint8)
            self._check_frame_shape(r.scenario, video)
            n_frames = video.shape[0]
            if n_frames < K + unroll:
                raise ValidationError(f"{r.scenario} rollouts have {n_frames} frames; need context "
                                      f"{K} + unroll {unroll}")
            flight = _free_flight_frames(r)
            for s in range(K, n_frames - unroll + 1):
                clips.append(video[s - K : s + unroll])
                rows.append(i)
                g = projected_gravity(r, s - 1) if "pos" in r.states and r.camera else \
                    np.zeros(2)
                grav.append(g)
                # second differences of the clip's frames s-K..s+unroll-1, centred on
                # frames s-K+1..s+unroll-2 (flight[t]: frames t, t+1, t+2 all free)
                free.append(flight[s - K : s + unroll - 2])
        return Windows(
            tensors={"clip": torch.stack(clips).to(self.device),
                     "gravity_px": torch.as_tensor(np.array(grav), dtype=torch.float32,
                                                   device=self.device),
                     "free": torch.as_tensor(np.array(free), device=self.device)},
            rows=torch.as_tensor(rows, device=self.device), static=None,
            dt=float(rollouts[0].dt), info={"scenario": rollouts[0].scenario},
        )

    def losses(self, batch: dict[str, Any], *, unroll_mode: str, terms: Sequence[str],
               options: dict[str, Any]) -> dict[str, torch.Tensor]:
        from physground.learned.losses import context_colours, pixel_physics_loss, rgb_coverage

        K = self.config.context
        clip = batch["clip"].float() / 255.0
        horizon = clip.shape[1] - K
        out = unroll_video(self.net, clip[:, :K], horizon,
                           detach_inputs=unroll_mode == "pushforward")
        target = clip[:, K:]
        rgb = F.mse_loss(out[:, :, :3], target[:, :, :3]) / 0.01  # 0.1 RMS error reads as 1
        mask = F.binary_cross_entropy_with_logits(out[:, :, 3], target[:, :, 3])
        values = {"data": rgb + mask}
        pixel = [t for t in terms if t != "data"]
        if not pixel:
            return values
        # what the pixel metrics see: the colour coverage of the predicted RGB, measured
        # with the object colour and background of the true context. Not the mask channel:
        # for a 1-2 px object its BCE fit is a near-uniform sigmoid (~0.013 per pixel at
        # 32 px), whose centroid is the image centre and whose area is ~7x the object's
        background, colour = context_colours(clip[:, :K, :3], clip[:, :K, 3])
        # the tracker's coverage gate as a smooth step, so that the gradient reaches pixels just
        # below it (a hard gate let a fine-tune push the object out of sight for good)
        cover = rgb_coverage(out[:, :, :3].clamp(0, 1), background, colour,
                             soft_gate=COVERAGE_GATE_WIDTH)
        context = rgb_coverage(clip[:, :K, :3], background, colour)
        for term in pixel:
            if term == "centroid_gravity":
                # the true context frames + the predictions: one fit over the window
                values[term] = pixel_physics_loss(
                    term, torch.cat([context, cover], dim=1), gravity_px=batch["gravity_px"],
                    free=batch["free"], dt=batch["dt"])
            else:
                # the context's mean area: a 1-2 px object's own area steps by 0.5-1 px
                values[term] = pixel_physics_loss(term, cover,
                                                  area0=context.sum((-2, -1)).mean(1))
        return values

    def predict(self, context: Observation, horizon: int) -> Prediction:
        net = self.net
        net.eval()
        K = self.config.context
        video = video_tensor(context).to(self.device)
        self._check_frame_shape(context.scenario, video)
        if video.shape[0] < K:  # pad by repeating the first frame
            video = torch.cat([video[:1].expand(K - video.shape[0], -1, -1, -1), video])
        with torch.no_grad():
            out = unroll_video(net, video[None, -K:], horizon)[0]
        rgb = (out[:, :3].clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        masks = (out[:, 3] > 0).to(torch.uint8)
        return Prediction.for_observation(
            context, model=self.name, horizon=horizon,
            frames=rgb.cpu().numpy(), masks=masks.cpu().numpy(),
        )


def _free_flight_frames(rollout: Rollout) -> np.ndarray:
    """Bool [T-2]: whether frames t, t+1, t+2 are all in free flight (ground truth states:
    clearance above the ground larger than the distance coverable in one frame)."""
    T = rollout.num_frames
    if "pos" not in rollout.states or "ground_height" not in rollout.static:
        return np.zeros(max(T - 2, 0), dtype=bool)
    pos = np.asarray(rollout.states["pos"])
    vel = np.asarray(rollout.states.get("vel", np.zeros_like(pos)))
    g = np.asarray(rollout.static["gravity"], dtype=np.float64)
    up = -g / max(np.linalg.norm(g), 1e-12)
    radius = np.asarray(rollout.static.get("radius", np.zeros(pos.shape[1])))
    clearance = pos @ up - float(rollout.static["ground_height"]) - radius
    reach = np.linalg.norm(vel, axis=-1) * rollout.dt + np.linalg.norm(g) * rollout.dt ** 2
    ok = (clearance > reach).all(axis=-1)
    return ok[:-2] & ok[1:-1] & ok[2:]
