"""A non-editable install carries every module: build the wheel, install it into a clean environment (with the
project's dependencies visible, the repository not), and import every module from there."""
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "models", "export", "hardware")


def _modules() -> list[str]:
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if p.stem != "__main__")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_wheel_installs_and_imports_every_module(tmp_path):
    run = lambda *cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # noqa: E731
    src = tmp_path / "src"          # a clean copy: no build/ or egg-info left by an earlier build
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "runs",
                                                             "__pycache__", "benchmarks", "tests"))
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "w"),
                str(src))
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "w").glob("nmpipe-*.whl"))
    env = tmp_path / "env"
    assert run(sys.executable, "-m", "venv", "--without-pip", str(env)).returncode == 0
    py = env / "bin" / "python"
    site = run(str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    # the dependencies come from this environment's site-packages, the project itself only from the wheel
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run(sys.executable, "-m", "pip", "install", "--no-deps", "--target", site, str(wheel))
    assert installed.returncode == 0, installed.stderr[-2000:]
    modules = _modules()
    assert "hardware.backends.lava" in modules and "pipeline.distill.pace" in modules
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n"
            "    mod = importlib.import_module(m)\n"
            f"    assert mod.__file__.startswith({site!r}), (m, mod.__file__)\n"
            "print('ok', len(sys.modules))")
    out = run(str(py), "-c", code, cwd=str(tmp_path))
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr[-3000:]
