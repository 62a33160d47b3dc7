"""Run folders unpacked from a bundle are carried over until a training step overwrites them."""
import torch
from safetensors.torch import save_file

from train.unpack import _write_run, carried_over


def test_a_folder_retrained_in_place_is_no_longer_carried_over(tmp_path):
    config = {"out_dir": str(tmp_path)}
    origin = {"bundle_id": "rrg-parent", "card_sha256": "ab" * 32}
    for component in ("detector", "generator"):
        _write_run(tmp_path / component, {"w": torch.ones(3)}, {"epoch": 4}, origin | {"component": component})
    assert set(carried_over(config)) == {"detector", "generator"}
    assert "rrg-parent" in carried_over(config)["detector"]

    save_file({"w": torch.zeros(3)}, str(tmp_path / "generator" / "best.safetensors"))  # a new best epoch
    assert set(carried_over(config)) == {"detector"}


def test_unpacking_a_damaged_bundle_says_so_and_writes_nothing(tmp_path, capsys):
    from rrg_desk.models.bundle import build_random_bundle
    from train.cli import main

    bundle = build_random_bundle(tmp_path / "bundle")
    (bundle / "generator.safetensors").write_bytes(b"not the weights the card lists")
    out = tmp_path / "runs"
    assert main(["unpack", "--bundle", str(bundle), "--set", f"out_dir={out}", "--device", "cpu"]) == 2
    assert "damaged" in capsys.readouterr().err
    assert not (out / "detector").exists()
