"""The NIR graph is the contract: hardware/ never imports torch or models/; models/ never imports lava."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(folder: str) -> set[str]:
    names = set()
    for f in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_hardware_takes_graphs_not_torch_modules():
    assert not _imports("hardware") & {"torch", "models", "pipeline", "snntorch"}


def test_models_know_nothing_of_lava_or_onnx():
    assert not _imports("models") & {"lava", "onnx", "onnxruntime", "hardware"}


def test_no_tonic_dataset_classes_which_download_on_a_failed_file_count():
    modules = set()
    for folder in ("pipeline", "models", "export", "hardware"):
        for f in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    modules.add(node.module)
                elif isinstance(node, ast.Import):
                    modules |= {a.name for a in node.names}
    assert "tonic" in {m.split(".")[0] for m in modules}          # tonic's readers are used ...
    assert not {m for m in modules if m.startswith("tonic.datasets")}   # ... never its dataset classes
