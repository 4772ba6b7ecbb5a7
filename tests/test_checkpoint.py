"""Checkpoints: no code execution from any file, one atomic publication, verified on load."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from test_learned_fixtures import ballistic_rollout, one_torch_thread  # noqa: F401

from physground.errors import DataIntegrityError, ValidationError
from physground.learned import checkpoint as ck
from physground.learned.training import TrainConfig, load_model, train

ROLLOUTS = [ballistic_rollout(s) for s in range(2)]
FILES = [ck.WEIGHTS, ck.CONFIG, ck.TRAINER_STATE, ck.TRAINER_TENSORS, ck.MANIFEST, ck.LOG]


def _config(directory: Path, **kw) -> TrainConfig:
    base = dict(steps=6, batch_size=4, progress=False, log_every=1, checkpoint_every=3,
                model_config={"hidden": 16, "layers": 1}, checkpoint_dir=str(directory),
                resume=True)
    return TrainConfig(**{**base, **kw})


@pytest.fixture
def trained(tmp_path) -> Path:
    """A checkpoint halfway through a 6-step training (trainer state at step 3)."""
    directory = tmp_path / "ckpt"
    _interrupted(directory)
    return directory


class _Kill(BaseException):
    pass


def _interrupted(directory: Path) -> None:
    """Train 6 steps with a checkpoint every 3, killed during step 4."""
    def kill(record):
        if record["step"] == 4:
            raise _Kill

    with pytest.raises(_Kill):
        train(_config(directory), ROLLOUTS, on_log=kill)


def _replace(directory: Path, name: str, data: bytes, *, update_manifest: bool = True) -> None:
    """Put ``data`` as ``name``; with ``update_manifest`` the manifest vouches for it (an
    attacker who can write the directory can also rewrite the manifest)."""
    (directory / name).write_bytes(data)
    manifest = json.loads((directory / ck.MANIFEST).read_text()) \
        if name != ck.MANIFEST else {"files": {}}
    if update_manifest and name in manifest["files"]:
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(),
                                   "bytes": len(data)}
        (directory / ck.MANIFEST).write_text(json.dumps(manifest))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payloads(marker: Path, tmp: Path) -> dict[str, bytes]:
    """A raw pickle and a torch.save archive, each running ``touch marker`` when loaded."""
    torch.save({"optimizer": _Payload(marker)}, tmp / "payload.pt")
    return {"pickle": pickle.dumps(_Payload(marker)),
            "torch-zip": (tmp / "payload.pt").read_bytes()}


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


@pytest.mark.parametrize("update_manifest", [False, True])
@pytest.mark.parametrize("name", [*FILES, "trainer.pt"])
def test_pickle_planted_as_any_checkpoint_file_never_runs(trained, tmp_path, name,
                                                          update_manifest):
    """Every file the loader could read, replaced by a pickle (raw and torch.save), with
    and without a matching manifest: resume and load either refuse with one line naming
    the file or ignore it; the payload never runs."""
    marker = tmp_path / "payload-ran"
    for kind, data in _payloads(marker, tmp_path).items():
        _replace(trained, name, data, update_manifest=update_manifest)
        for action in (lambda: train(_config(trained), ROLLOUTS),
                       lambda: load_model(trained)):
            try:
                action()
            except DataIntegrityError as err:
                message = _one_line(err)
                expected = trained / (ck.MANIFEST if not update_manifest and
                                      name != ck.MANIFEST else name)
                assert str(expected) in message or str(trained / name) in message, message
            assert not marker.exists(), (name, kind)
        assert not marker.exists(), (name, kind)


def test_resume_restores_trainer_state_exactly(tmp_path):
    straight = train(_config(tmp_path / "a", steps=6, checkpoint_every=0), ROLLOUTS)
    _interrupted(tmp_path / "b")
    assert [json.loads(line)["step"] for line in
            (tmp_path / "b" / ck.LOG).read_text().splitlines()] == [1, 2, 3, 4]
    resumed = train(_config(tmp_path / "b", steps=6), ROLLOUTS)
    for p, q in zip(straight.module.state_dict().values(), resumed.module.state_dict().values(),
                    strict=True):
        assert torch.equal(p, q)
    lines = (tmp_path / "b" / ck.LOG).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5, 6]


def test_flipped_byte_in_weights_is_refused(trained):
    data = bytearray((trained / ck.WEIGHTS).read_bytes())
    data[-3] ^= 0x01
    (trained / ck.WEIGHTS).write_bytes(bytes(data))
    for action in (lambda: load_model(trained), lambda: train(_config(trained), ROLLOUTS)):
        with pytest.raises(DataIntegrityError, match="sha256") as err:
            action()
        assert str(trained / ck.WEIGHTS) in _one_line(err.value)


@pytest.mark.parametrize("step", [10**9, 1e9, -1, True, "3", 5])
def test_tampered_step_is_refused(trained, step):
    """step = 1e9 (also as an int, with the manifest updated), negative, a bool, a string,
    or a step the optimizer's own count disagrees with."""
    state = json.loads((trained / ck.TRAINER_STATE).read_text())
    state["step"] = step
    _replace(trained, ck.TRAINER_STATE, json.dumps(state).encode())
    with pytest.raises(DataIntegrityError, match="step") as err:
        train(_config(trained), ROLLOUTS)
    assert str(trained / ck.TRAINER_STATE) in _one_line(err.value)


@pytest.mark.parametrize("name, data", [
    (ck.TRAINER_TENSORS, None),  # truncated
    (ck.TRAINER_STATE, b'{"step": 3, "param_groups": '),
    (ck.CONFIG, b"{not json"),
    (ck.CONFIG, b'{"model": "state-gnn", "config": {"hidden": "wide"}, "extra": {}}'),
    (ck.CONFIG, b"[]"),
    (ck.MANIFEST, b'{"format": 2, "files": null}'),
    (ck.MANIFEST, b"[]"),
])
def test_malformed_files_give_one_line_naming_them(trained, name, data):
    if data is None:
        data = (trained / name).read_bytes()[:40]
    _replace(trained, name, data)
    with pytest.raises(DataIntegrityError) as err:
        train(_config(trained), ROLLOUTS)
    assert str(trained / name) in _one_line(err.value)


def test_failed_save_leaves_previous_checkpoint_whole(trained, monkeypatch):
    """A save that dies after writing the weights leaves the old checkpoint (same bytes)
    and no temporary directory behind."""
    before = {p.name: p.read_bytes() for p in trained.iterdir()}

    def die(state):
        raise KeyboardInterrupt  # as a kill between the weights and the trainer state

    monkeypatch.setattr(ck, "_trainer_files", die)
    with pytest.raises(KeyboardInterrupt):
        train(_config(trained, checkpoint_every=1), ROLLOUTS)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in trained.iterdir() if p.name != ck.LOG} == \
        {k: v for k, v in before.items() if k != ck.LOG}
    assert sorted(p.name for p in trained.parent.iterdir()) == [trained.name]
    assert ck.open_checkpoint(trained).trainer_state().step == 3


def test_directory_that_is_not_a_checkpoint_is_never_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValidationError, match="not a physground checkpoint") as err:
        train(_config(tmp_path / "mine"), ROLLOUTS)
    _one_line(err.value)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_legacy_pickled_trainer_state_is_refused_not_loaded(tmp_path):
    marker = tmp_path / "payload-ran"
    legacy = tmp_path / "legacy"
    train(TrainConfig(steps=1, batch_size=2, progress=False,
                      model_config={"hidden": 8, "layers": 1}), ROLLOUTS).save(legacy)
    (legacy / ck.MANIFEST).unlink()
    (legacy / "trainer.pt").write_bytes(_payloads(marker, tmp_path)["torch-zip"])
    with pytest.raises(DataIntegrityError, match="never loaded"):
        load_model(legacy)
    with pytest.raises(ValidationError, match="never loaded"):
        train(_config(legacy), ROLLOUTS)
    assert not marker.exists()
