"""Checkpoints: safetensors + JSON round trip gives identical actions; bad files rejected."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mesa_econ.model import EconomyModel
from mesa_econ.policies import NormalizedPolicy, NormalizedPolicyView, registry
from mesa_econ.policies.checkpoint import (
    checkpoint_paths,
    load_ensemble,
    load_policy,
    read_metadata,
)
from mesa_econ.rl.ppo import PPO, PPOConfig

torch.set_num_threads(1)

MARKET = {"n_agents": 10, "n_assets": 2, "sigma_eta": 0.01, "factor_std": 0.1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A briefly trained PPO population (two shared groups) and its saved checkpoint."""
    model = EconomyModel(**MARKET, n_groups=5, hidden=(16, 16), rng=3)
    algo = PPO(model, PPOConfig(num_steps=16, num_minibatches=2, seed=3))
    algo.train(2, progress=False)
    path = tmp_path_factory.mktemp("ckpt") / "run"
    algo.save(path)
    return algo, path


def _obs(seed: int = 0) -> torch.Tensor:
    model = EconomyModel(**MARKET, rng=seed)
    for _ in range(3):
        model.step()
    return torch.from_numpy(model.observations())


def test_round_trip_gives_identical_actions(trained):
    algo, path = trained
    loaded = load_policy(path)
    assert isinstance(loaded, NormalizedPolicy) and loaded.n_groups == 5
    obs = _obs()
    with torch.no_grad():
        for deterministic in (True, False):
            g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
            want = algo.policy().act(obs, generator=g1, deterministic=deterministic)
            got = loaded.act(obs, generator=g2, deterministic=deterministic)
            for a, b in zip(want, got, strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        # agent views too (what agent.policy gives the Mesa agents)
        want = algo.policy().agent_view(7).act(obs[7], deterministic=True)[0]
        torch.testing.assert_close(loaded.agent_view(7).act(obs[7], deterministic=True)[0],
                                   want, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.normalizer.rms.mean, algo.obs_normalizer.rms.mean)


def test_checkpoint_drives_an_economy_model(trained):
    """EconomyModel(policy='checkpoint:PATH') acts exactly like the trained policy."""
    algo, path = trained
    model = EconomyModel(**MARKET, policy=f"checkpoint:{path}", rng=11)
    obs = torch.from_numpy(model.observations())
    state = model.torch_generator.get_state()
    with torch.no_grad():
        want = algo.policy().act(obs, generator=model.torch_generator)[0]
    model.torch_generator.set_state(state)
    np.testing.assert_array_equal(model.policy_orders(),
                                  model.trade_scale * np.clip(want.numpy(), -1.0, 1.0))
    for _ in range(5):
        model.step()
    assert model.t == 5
    assert model.ensemble.generator is model.torch_generator


def test_metadata_describes_the_checkpoint(trained):
    _, path = trained
    meta = read_metadata(path)
    assert meta["format"] == "mesa_econ.policy_checkpoint"
    assert meta["policy_class"] == "actor_critic_ensemble" and meta["algo"] == "ppo"
    assert meta["format_version"] == 2
    assert meta["policy_kwargs"] == {"n_agents": 10, "obs_dim": 8, "act_dim": 2,
                                     "hidden": [16, 16], "n_groups": 5}
    assert meta["observation_layout"] == [["capital", 1], ["holdings", 2], ["price", 2],
                                          ["factor", 2], ["time", 1]]
    assert meta["horizon"] == 128
    rewards = meta["rewards"]
    assert rewards["profit_mark"] == "liquidation" and rewards["omega"] == 0.0
    assert meta["config"]["num_steps"] == 16
    assert meta["obs_normalizer"]["clip"] == 10.0
    assert checkpoint_paths(path)[0].read_bytes()[:8] != b""  # safetensors, never pickle
    assert b"pickle" not in checkpoint_paths(path)[0].read_bytes()[:200]


def test_file_pair_layout(trained, tmp_path):
    algo, _ = trained
    algo.save(tmp_path / "agents.safetensors")
    assert (tmp_path / "agents.json").is_file()
    assert load_policy(tmp_path / "agents.json").n_agents == 10


# ------------------------------------------------------------------ bad files

def _copy(path, tmp_path):
    src_t, src_j = checkpoint_paths(path)
    dst = tmp_path / "copy"
    dst.mkdir()
    (dst / "policy.safetensors").write_bytes(src_t.read_bytes())
    (dst / "policy.json").write_text(src_j.read_text())
    return dst


@pytest.mark.parametrize(("n_agents", "n_assets", "field"), [
    (12, 2, "n_agents"), (10, 3, "obs_dim")])
def test_wrong_market_is_rejected(trained, n_agents, n_assets, field):
    _, path = trained
    with pytest.raises(ValueError, match=f"{field}=.*{field}="):
        EconomyModel(**{**MARKET, "n_agents": n_agents, "n_assets": n_assets},
                     policy=f"checkpoint:{path}", rng=0)


def test_tampered_tensor_shape_is_rejected(trained, tmp_path):
    _, path = trained
    dst = _copy(path, tmp_path)
    tensors = load_file(dst / "policy.safetensors")
    tensors["actor_w.0"] = torch.zeros(5, 8, 17)
    save_file(tensors, dst / "policy.safetensors")
    with pytest.raises(ValueError, match=r"actor_w\.0"):
        load_policy(dst)
    meta = json.loads((dst / "policy.json").read_text())  # consistent JSON: still wrong
    meta["tensors"]["actor_w.0"]["shape"] = [5, 8, 17]
    (dst / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"actor_w.0.*expected \[5, 8, 16\]"):
        load_policy(dst)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "nan"])
def test_corrupted_tensor_file_is_rejected(trained, tmp_path, damage):
    _, path = trained
    dst = _copy(path, tmp_path)
    file = dst / "policy.safetensors"
    data = file.read_bytes()
    if damage == "truncate":
        file.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        file.write_bytes(bytes(range(256)) * 8)
    elif damage == "empty":
        file.write_bytes(b"")
    else:
        tensors = load_file(file)
        tensors["log_std"][0, 0] = float("nan")
        save_file(tensors, file)
    with pytest.raises(ValueError, match="checkpoint tensor"):
        load_policy(dst)


@pytest.mark.parametrize("key", ["format", "policy_class", "policy_kwargs", "tensors",
                                 "obs_normalizer", "observation_layout", "rewards",
                                 "horizon"])
def test_missing_json_key_is_rejected(trained, tmp_path, key):
    _, path = trained
    dst = _copy(path, tmp_path)
    meta = json.loads((dst / "policy.json").read_text())
    del meta[key]
    (dst / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=key):
        load_policy(dst)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda m: m.update(format="something_else"), "format"),
    (lambda m: m.update(format_version=99), "format_version"),
    (lambda m: m.update(format_version="2"), "format_version"),
    (lambda m: m.update(observation_layout=[["capital", "1"]]), "observation_layout"),
    (lambda m: m.update(rewards=[1, 2]), "rewards"),
    (lambda m: m.update(horizon=12.5), "horizon"),
    (lambda m: m.update(policy_class="no_such_policy"), "policy_class"),
    (lambda m: m["policy_kwargs"].pop("act_dim"), "act_dim"),
    (lambda m: m["obs_normalizer"].update(count=-1.0), "count"),
    (lambda m: m["policy_kwargs"].update(hidden=[8, 8]),
     r"'actor_b\.0' has shape \[5, 1, 16\].*expected \[5, 1, 8\]"),
])
def test_inconsistent_json_is_rejected(trained, tmp_path, edit, match):
    _, path = trained
    dst = _copy(path, tmp_path)
    meta = json.loads((dst / "policy.json").read_text())
    edit(meta)
    (dst / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=match):
        load_policy(dst)


def test_garbage_json_and_missing_files_are_rejected(trained, tmp_path):
    _, path = trained
    dst = _copy(path, tmp_path)
    (dst / "policy.json").write_bytes(b"\x00\xff{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_policy(dst)
    with pytest.raises(ValueError, match="not found"):
        load_policy(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="not found"):
        load_ensemble(tmp_path / "nowhere", model=None)


def test_training_continues_from_a_checkpoint(trained):
    """PPO on a checkpoint-driven model keeps the saved weights and normaliser."""
    algo, path = trained
    model = EconomyModel(**MARKET, policy=f"checkpoint:{path}", rng=5)
    tuned = PPO(model, PPOConfig(num_steps=16, num_minibatches=2, seed=5))
    np.testing.assert_array_equal(tuned.obs_normalizer.rms.var, algo.obs_normalizer.rms.var)
    obs = _obs(1)
    with torch.no_grad():
        want = algo.policy().act(obs, deterministic=True)[0]
        torch.testing.assert_close(tuned.policy().act(obs, deterministic=True)[0], want,
                                   rtol=0, atol=0)
    frame = tuned.train(1, progress=False)
    assert len(frame) == 1
    with pytest.raises(ValueError, match="norm_obs"):
        PPO(EconomyModel(**MARKET, policy=f"checkpoint:{path}", rng=5),
            PPOConfig(norm_obs=False))


# ------------------------------------------------------------------ format 2: training context

@pytest.mark.parametrize("version", [None, 1])
def test_format_version_1_is_refused_with_a_message_to_retrain(trained, tmp_path, version):
    """A checkpoint without format_version is version 1 (before t/H and the new rewards)."""
    _, path = trained
    dst = _copy(path, tmp_path)
    meta = json.loads((dst / "policy.json").read_text())
    for key in ("format_version", "observation_layout", "rewards", "horizon"):
        del meta[key]  # what a version-1 file holds
    if version is not None:
        meta["format_version"] = version
    (dst / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"format_version=1.*retrain"):
        load_policy(dst)
    with pytest.raises(ValueError, match=r"format_version=1.*retrain"):
        EconomyModel(**MARKET, policy=f"checkpoint:{dst}", rng=0)


def test_other_observation_layout_is_refused(trained, tmp_path):
    """Same widths, another layout: named with both values."""
    _, path = trained
    dst = _copy(path, tmp_path)
    meta = json.loads((dst / "policy.json").read_text())
    meta["observation_layout"][2], meta["observation_layout"][3] = (
        meta["observation_layout"][3], meta["observation_layout"][2])  # factor before price
    (dst / "policy.json").write_text(json.dumps(meta))
    load_policy(dst)  # the file itself is fine
    with pytest.raises(ValueError, match=r"observation_layout=\[\['capital', 1\], "
                       r"\['holdings', 2\], \['factor', 2\].*observation_layout=\[\["
                       r"'capital', 1\], \['holdings', 2\], \['price', 2\]"):
        EconomyModel(**MARKET, policy=f"checkpoint:{dst}", rng=0)


def test_needs_in_the_observation_change_the_layout(trained):
    """A market with needs observes M more values: refused before any tensor is read."""
    _, path = trained
    with pytest.raises(ValueError, match=r"obs_dim=8.*obs_dim=10"):
        EconomyModel(**MARKET, demand=2.0, policy=f"checkpoint:{path}", rng=0)


def test_other_rewards_or_horizon_warn(trained):
    _, path = trained
    with pytest.warns(UserWarning, match=r"profit_mark='liquidation' \(model: 'quote'\)"):
        model = EconomyModel(**MARKET, profit_mark="quote", policy=f"checkpoint:{path}",
                             rng=0)
    model.step()  # it runs
    with pytest.warns(UserWarning, match="horizon=128 but the model has horizon=64"):
        EconomyModel(**MARKET, horizon=64, policy=f"checkpoint:{path}", rng=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the training market itself: no warning
        EconomyModel(**MARKET, policy=f"checkpoint:{path}", rng=0)


def test_saved_without_a_model_has_no_context_to_check(trained, tmp_path):
    from mesa_econ.rl.checkpoint import save_checkpoint

    algo, _ = trained
    save_checkpoint(algo.policy(), tmp_path / "bare", algo="ppo")
    meta = read_metadata(tmp_path / "bare")
    assert meta["observation_layout"] is None and meta["rewards"] is None
    model = EconomyModel(**MARKET, policy=f"checkpoint:{tmp_path / 'bare'}", rng=0)
    model.step()


# ------------------------------------------------------------------ where loading lives

def test_rl_checkpoint_and_normalize_re_export_the_policies_names():
    """Old import paths keep working: the same objects, not copies."""
    import mesa_econ.policies.checkpoint as new
    import mesa_econ.policies.normalize as new_norm
    import mesa_econ.rl.checkpoint as old
    import mesa_econ.rl.normalize as old_norm

    for name in ("load_ensemble", "load_policy", "read_metadata", "check_model",
                 "checkpoint_paths", "register_policy_class", "training_context", "FORMAT",
                 "FORMAT_VERSION"):
        assert getattr(old, name) is getattr(new, name), name
    for name in ("NormalizedPolicy", "ObsNormalizer", "RewardNormalizer", "RunningMeanStd"):
        assert getattr(old_norm, name) is getattr(new_norm, name), name


def test_the_model_never_imports_rl(trained, checkpoint_model_in_fresh_process):
    """Building and stepping a checkpoint-driven model imports no mesa_econ.rl module."""
    _, path = trained
    assert checkpoint_model_in_fresh_process(MARKET, path) == ["NormalizedPolicyView", "[]"]


def test_agents_of_a_checkpoint_model_show_a_public_policy_class(trained):
    algo, path = trained
    model = EconomyModel(**MARKET, policy=f"checkpoint:{path}", rng=0)
    policy = model.traders[7].policy
    assert type(policy) is NormalizedPolicyView
    assert repr(policy) == ("NormalizedPolicyView(agent=7, group=3, hidden=(16, 16), "
                            "normalized=True, clip=10.0, ensemble=PolicyEnsemble of 10 "
                            "agents in 5 groups)")
    obs = torch.from_numpy(model.observations()[7])
    with torch.no_grad():
        want = algo.policy().agent_view(7).act(obs, deterministic=True)[0]
        torch.testing.assert_close(policy.act(obs, deterministic=True)[0], want,
                                   rtol=0, atol=0)


# ------------------------------------------------------------------ hostile files

def test_a_file_that_is_not_a_checkpoint_says_so(trained, tmp_path):
    """A .txt, or a .json that is not ours, is named as not a checkpoint (not a directory
    that lacks policy.json, nor a version-1 checkpoint to retrain)."""
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt is a file but not a checkpoint"):
        load_policy(text)
    with pytest.raises(ValueError, match="not a checkpoint"):
        EconomyModel(**MARKET, policy=f"checkpoint:{text}", rng=0)
    for i, content in enumerate(['{"name": "my-app", "version": 3}', "[1, 2]",
                                 '{"format": "something_else"}']):
        other = tmp_path / f"other{i}.json"
        other.write_text(content)
        with pytest.raises(ValueError, match=r"is not a mesa_econ policy checkpoint"):
            load_policy(other)


def test_deeply_nested_json_is_reported(trained, tmp_path):
    _, path = trained
    dst = _copy(path, tmp_path)
    (dst / "policy.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ValueError, match=r"policy\.json is JSON nested too deeply"):
        load_policy(dst)


def test_deeply_nested_safetensors_header_is_reported(trained, tmp_path):
    _, path = trained
    dst = _copy(path, tmp_path)
    header = b"[" * 50_000 + b"]" * 50_000
    (dst / "policy.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(ValueError, match=r"safetensors: its header is JSON nested too deep"):
        load_policy(dst)


def _raise_memory_error(*args, **kwargs):
    raise MemoryError


def test_memory_error_while_parsing_is_reported(trained, tmp_path, monkeypatch):
    _, path = trained
    monkeypatch.setattr(json, "loads", _raise_memory_error)
    with pytest.raises(ValueError, match=r"checkpoint .*policy\.json could not be loaded: "
                                         r"out of memory \(MemoryError\)"):
        load_policy(path)


def test_memory_error_while_building_is_reported(trained, monkeypatch):
    _, path = trained
    entry = registry.entry("actor_critic_ensemble")
    monkeypatch.setitem(registry._REGISTRY, "actor_critic_ensemble",
                        entry._replace(build=_raise_memory_error))
    with pytest.raises(ValueError, match=r"policy\.safetensors could not be loaded: out of "
                                         r"memory \(MemoryError\) while building"):
        load_policy(path)


@pytest.mark.parametrize(("field", "value"), [
    ("hidden", [2**20, 2**20]), ("hidden", [16, 10**15]), ("n_agents", 10**12),
    ("obs_dim", 10**9)])
def test_declared_sizes_are_checked_before_allocating(trained, tmp_path, monkeypatch, field,
                                                      value):
    """policy_kwargs the file cannot hold are refused without building the policy."""
    _, path = trained
    dst = _copy(path, tmp_path)
    meta = json.loads((dst / "policy.json").read_text())
    meta["policy_kwargs"][field] = value
    (dst / "policy.json").write_text(json.dumps(meta))
    entry = registry.entry("actor_critic_ensemble")

    def build(kwargs):
        raise AssertionError(f"built a policy for {kwargs}")

    monkeypatch.setitem(registry._REGISTRY, "actor_critic_ensemble",
                        entry._replace(build=build))
    with pytest.raises(ValueError, match=re.escape(f"policy_kwargs {field}={value!r} is "
                                                   "invalid: expected sizes")):
        load_policy(dst)


def test_header_is_checked_against_the_json_before_the_data_is_read(trained, tmp_path,
                                                                   monkeypatch):
    """A file whose header disagrees with the JSON is refused from the header alone."""
    import safetensors.torch

    _, path = trained
    dst = _copy(path, tmp_path)
    tensors = load_file(dst / "policy.safetensors")
    tensors["log_std"] = torch.zeros(5, 3)
    save_file(tensors, dst / "policy.safetensors")
    monkeypatch.setattr(safetensors.torch, "load", _raise_memory_error)  # must not be reached
    with pytest.raises(ValueError, match=r"header declares tensor 'log_std' as shape \[5, 3\]"
                                         r".*the JSON says .*\[5, 2\]"):
        load_policy(dst)


def test_a_tensor_file_larger_than_declared_is_refused_unread(trained, tmp_path, monkeypatch):
    """A sparse 1 TiB tensor file: refused from its size, never opened."""
    _, path = trained
    dst = _copy(path, tmp_path)
    big = dst / "policy.safetensors"
    os.truncate(big, 2**40)  # sparse: no disk used
    opened = []
    real_open, real_read = Path.open, Path.read_bytes
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self)
                        or real_open(self, *a, **k))
    monkeypatch.setattr(Path, "read_bytes", lambda self: opened.append(self) or real_read(self))
    with pytest.raises(ValueError, match=r"policy\.safetensors is 1099511627776 bytes: "
                                         r"larger than the \d+ bytes of tensors its JSON "
                                         r"declares.*refused unread"):
        load_policy(dst)
    assert big not in opened


def test_bytes_appended_to_the_tensor_file_are_refused(trained, tmp_path):
    _, path = trained
    dst = _copy(path, tmp_path)
    file = dst / "policy.safetensors"
    file.write_bytes(file.read_bytes() + b"\0" * 100)
    with pytest.raises(ValueError, match=r"\(\d+ bytes\) make \d+ \(truncated, or data "
                                         "appended"):
        load_policy(dst)


def test_header_size_beyond_the_file_is_refused(trained, tmp_path):
    _, path = trained
    dst = _copy(path, tmp_path)
    file = dst / "policy.safetensors"
    data = file.read_bytes()
    file.write_bytes((2**63).to_bytes(8, "little") + data[8:])
    with pytest.raises(ValueError, match=f"claims a header of {2**63} bytes"):
        load_policy(dst)


@pytest.mark.parametrize("kwargs", [
    {"n_agents": 7, "obs_dim": 5, "act_dim": 2, "hidden": [16, 16], "n_groups": None},
    {"n_agents": 7, "obs_dim": 5, "act_dim": 3, "hidden": [8, 4, 3], "n_groups": 3},
    {"n_agents": 1, "obs_dim": 1, "act_dim": 1, "hidden": [1], "n_groups": 1}])
def test_declared_shapes_equal_the_built_policy(kwargs):
    """The shapes checked before building are exactly the built policy's state dict."""
    entry = registry.entry("actor_critic_ensemble")
    built = {k: (list(v.shape), str(v.dtype).removeprefix("torch."))
             for k, v in entry.build(dict(kwargs)).state_dict().items()}
    assert entry.shapes(dict(kwargs)) == built


def test_meta_device_shapes_equal_the_built_q_ensemble():
    """Classes without a shapes function are sized on the meta device, allocating nothing."""
    entry = registry.entry("q_ensemble")
    kwargs = {"n_agents": 4, "obs_dim": 3, "act_dim": 2, "n_levels": 5, "hidden": [8, 8]}
    built = {k: (list(v.shape), str(v.dtype).removeprefix("torch."))
             for k, v in entry.build(dict(kwargs)).state_dict().items()}
    assert entry.shapes(dict(kwargs)) == built
