"""The CUDA path of the Warp simulators, checked on any machine: the same kernels must
generate valid CUDA code (PTX through NVRTC, which ships with warp-lang). Running them on a
GPU is covered by the ``gpu``-marked tests beside each simulator's CPU tests."""

from __future__ import annotations

from pathlib import Path


def test_kernels_compile_for_cuda_without_a_gpu(tmp_path: Path) -> None:
    """The CUDA path uses the same kernels: check they generate valid CUDA (PTX via NVRTC)."""
    import warp as wp

    from physground.simulators.warp import cloth, smoke, sph
    from physground.simulators.warp.common import start_warp

    start_warp()
    for module in (cloth, smoke, sph):
        files = wp.compile_aot_module(module, arch=75, module_dir=tmp_path, use_ptx=True)
        assert files and all(Path(f).stat().st_size > 0 for f in files)
