"""The command line: every bad argument and every error ends in one line on stderr with the right exit status.

Each case runs ``course_utils.__main__.main`` in this process (fast) and asserts the exit status and the one line;
one case runs the real ``python -m course_utils`` to check the process's own exit status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import pytest
from PIL import Image

import course_utils
from course_utils import backbones, cli, engines
from course_utils.__main__ import BENCHMARKS, COMMANDS, main
from course_utils.datasets.base import DatasetMissingError
from course_utils.imageio import BadImageError

PROG = "python -m course_utils"


def _one_line(capsys) -> str:
    """The only line written on stderr (failing the test if there are more, or none)."""
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _never_load(*args, **kwargs):
    pytest.fail("the network was loaded before the arguments were checked")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (32, 24), (200, 30, 30)).save(path)
    return path


# ------------------------------------------------------------------------------------------ bad arguments (exit 2)


def test_unknown_backbone_lists_the_valid_ones(photo, capsys, monkeypatch):
    monkeypatch.setattr(backbones, "load", _never_load)
    assert main(["predict", "--backbone", "resnet", str(photo)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"{PROG} predict: error: argument --backbone: unknown backbone 'resnet'; choose one of: ")
    assert ", ".join(backbones.available()) in line


def test_unknown_engine_lists_the_valid_ones(capsys):
    assert main(["demo", "--engine", "nosuch"]) == 2
    assert _one_line(capsys).startswith(
        f"{PROG} demo: error: argument --engine: unknown engine 'nosuch'; choose one of: auto, torch, onnxruntime, "
        "onnxruntime-int8, compile (")


@pytest.mark.parametrize(("topk", "why"), [
    ("-3", "must be at least 1; got -3"),
    ("5000", "must be at most 1000, the number of ImageNet classes; got 5000"),
    ("five", "'five' is not a whole number"),
])
def test_topk_out_of_range(topk, why, photo, capsys, monkeypatch):
    monkeypatch.setattr(backbones, "load", _never_load)
    assert main(["predict", "--topk", topk, str(photo)]) == 2
    assert _one_line(capsys) == (f"{PROG} predict: error: argument --topk: {why} "
                                 f"({PROG} predict --help lists the options)")


def test_missing_image_is_reported_before_the_network_loads(photo, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(backbones, "load", _never_load)
    missing = tmp_path / "nosuch.jpg"
    assert main(["predict", str(photo), str(missing)]) == 2
    assert _one_line(capsys).startswith(f"{PROG} predict: error: argument IMAGE: no such file: {missing} (")
    assert main(["predict", str(tmp_path)]) == 2
    assert f"argument IMAGE: {tmp_path} is a folder, not a file" in _one_line(capsys)


def test_a_file_that_is_not_an_image_is_reported_without_loading_the_network(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(backbones, "load", _never_load)
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    assert main(["predict", str(text)]) == 1
    line = _one_line(capsys)
    assert line == (f"Cannot use image {text}: not an image file, or a format Pillow cannot decode. "
                    f"{cli.BAD_IMAGE_ADVICE}")
    assert "on_error" not in line


def test_empty_folder_dataset_is_refused_and_nothing_is_scanned(tmp_path, capsys, monkeypatch):
    import course_utils.datasets.folder as folder

    monkeypatch.setattr(folder, "image_folder", lambda *a, **k: pytest.fail("a folder was scanned"))
    parser = cli.Parser(prog="reproduce")
    parser.add_argument("--dataset", type=cli.dataset_name, action="append")
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--dataset", "folder:"])
    assert stop.value.code == 2
    assert _one_line(capsys).startswith("reproduce: error: argument --dataset: 'folder:': give the folder of your "
                                        "images after folder:")
    with pytest.raises(cli.UsageError, match=r"^'folder:  ': give the folder .*; unknown dataset 'nosuch'; "
                                             r"choose one of: .*, folder:PATH, retrieval-folder:PATH$"):
        cli.check_datasets(["demo_classes", "folder:  ", "nosuch"])
    with pytest.raises(cli.UsageError, match=f"no folder {tmp_path / 'absent'}"):
        cli.check_datasets([f"folder:{tmp_path / 'absent'}"])
    assert cli.check_datasets(["demo_classes", f"folder:{tmp_path}"]) == ["demo_classes", f"folder:{tmp_path}"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--tasks", "nonsense"], "argument --tasks: unknown task 'nonsense'"),
    (["--dataset", "folder:"], "argument --dataset: 'folder:': give the folder of your images after folder:"),
    (["--dataset", "retrieval-folder:"], "'retrieval-folder:': give the folder of your images after "
                                         "retrieval-folder:"),
    (["--layer-sweep", "nosuchset"], "argument --layer-sweep: unknown dataset 'nosuchset'"),
    (["--backbones", "efficientnet_lite0,nosuchnet"], "argument --backbones: unknown backbone 'nosuchnet'"),
    (["--engine", "nosuch"], "argument --engine: unknown engine 'nosuch'"),
])
def test_reproduce_refuses_bad_arguments_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    from course_utils import reproduce

    monkeypatch.setattr(reproduce, "_run_block", lambda *a, **k: pytest.fail("work started"))
    assert main(["reproduce", "--out", str(tmp_path), *argv]) == 2
    line = _one_line(capsys)
    assert line.startswith("python -m course_utils reproduce: error: ") and message in line, line


def test_reproduce_exits_1_when_no_dataset_ran(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    assert main(["reproduce", "--out", str(tmp_path / "out"), "--dataset", "voc2007", "--no-progress"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no dataset ran (tasks: all; datasets: voc2007): **voc2007**: not run, data missing." in line
    assert "download.py voc2007" in line
    assert not (tmp_path / "out" / "report.md").exists()


def test_reproduce_exits_1_when_no_dataset_has_a_requested_task(tmp_path, capsys):
    assert main(["reproduce", "--out", str(tmp_path), "--dataset", "demo_retrieval", "--tasks", "classification",
                 "--no-progress"]) == 1
    assert "none of them has a task among --tasks" in capsys.readouterr().err


def test_reproduce_checks_the_layer_sweep_set_is_here_before_the_main_blocks(tmp_path, capsys, monkeypatch):
    from course_utils import reproduce

    monkeypatch.setenv("COURSE_SHARED_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(reproduce, "_run_block", lambda *a, **k: pytest.fail("work started"))
    assert main(["reproduce", "--out", str(tmp_path), "--dataset", "demo_classes", "--layer-sweep", "flowers17"]) == 1
    assert "download.py flowers17" in capsys.readouterr().err


def test_lists_of_names_and_numbers():
    assert cli.backbone_list("efficientnet_lite0, resnet50") == "efficientnet_lite0,resnet50"
    with pytest.raises(argparse.ArgumentTypeError, match="unknown backbone 'resnet5'"):
        cli.backbone_list("efficientnet_lite0,resnet5")
    assert cli.task_list("classification,retrieval") == "classification,retrieval"
    with pytest.raises(argparse.ArgumentTypeError, match="unknown task 'nonsense'; choose one of: all, "
                                                         "classification, attributes, retrieval"):
        cli.task_list("nonsense")
    assert cli.positive_int_list("1, 8,16") == [1, 8, 16]
    with pytest.raises(argparse.ArgumentTypeError, match="'1,,8' is not a comma-separated list"):
        cli.positive_int_list("1,,8")
    with pytest.raises(argparse.ArgumentTypeError, match="must be a number above 0; got nan"):
        cli.positive_float("nan")
    assert cli.device_name("cuda:1") == "cuda:1"


def test_a_layer_the_backbone_lacks_is_a_usage_error():
    assert cli.check_layer("efficientnet_lite0", "head@gem") == "head@gem"
    with pytest.raises(cli.UsageError, match=r"--layer fc7: Backbone 'efficientnet_lite0' has no layer 'fc7'. "
                                             r"Its layers: stage1 \(16-d\)"):
        cli.check_layer("efficientnet_lite0", "fc7")


def test_bench_extract_refuses_a_bad_layer_before_loading(capsys, monkeypatch):
    monkeypatch.setattr(backbones, "load", _never_load)
    assert main(["bench", "extract", "--layer", "fc7", "--device", "cpu"]) == 2
    assert _one_line(capsys).startswith(f"{PROG} bench extract: error: --layer fc7: Backbone 'efficientnet_lite0' "
                                        "has no layer 'fc7'.")


def test_unknown_command_and_benchmark(capsys):
    assert main(["predicts"]) == 2
    assert _one_line(capsys) == (f"{PROG}: error: unknown command 'predicts'; choose one of: predict, demo, "
                                 f"reproduce, download, warm, student, search, bench ({PROG} --help describes them)")
    assert main(["bench", "nosuch"]) == 2
    assert "unknown benchmark 'nosuch'; choose one of: extract, svm, search, cache" in _one_line(capsys)
    assert main(["bench"]) == 2
    assert "bench needs a benchmark; choose one of: extract, svm, search, cache" in _one_line(capsys)


# ----------------------------------------------------------------------------------- runtime errors, --debug, ^C


def _unavailable(*args, **kwargs):
    raise backbones.WeightsUnavailableError("No weights for vgg16 offline. Connect once to download them.")


@pytest.mark.parametrize("where", ["none", "before", "after"])
def test_runtime_error_is_one_line_and_debug_adds_the_traceback(where, photo, capsys, monkeypatch):
    monkeypatch.setattr(backbones, "load", _unavailable)
    argv = ["predict", str(photo)]
    argv = {"none": argv, "before": ["--debug", *argv], "after": [*argv, "--debug"]}[where]
    assert main(argv) == 1
    err = capsys.readouterr().err
    line = f"{PROG} predict: error: No weights for vgg16 offline. Connect once to download them."
    if where == "none":
        assert err.splitlines() == [line]
    else:
        assert err.startswith("Traceback (most recent call last):") and "in _unavailable" in err
        assert err.splitlines()[-1] == line


def test_ctrl_c_exits_130_with_one_line(photo, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(backbones, "load", interrupted)
    assert main(["predict", str(photo)]) == 130
    assert _one_line(capsys) == f"{PROG} predict: interrupted"


def test_run_guarded_statuses(capsys):
    def raises(err: BaseException):
        def command():
            raise err
        return command

    assert cli.run_guarded(lambda: None, "cmd") == 0
    assert cli.run_guarded(lambda: 3, "cmd") == 3
    assert cli.run_guarded(raises(SystemExit(4)), "cmd") == 4
    assert capsys.readouterr().err == ""
    assert cli.run_guarded(raises(SystemExit("Bad\ncount.")), "cmd") == 1
    assert _one_line(capsys) == "cmd: error: Bad count."
    assert cli.run_guarded(raises(KeyError("Unknown dataset 'x'.")), "cmd") == 1
    assert _one_line(capsys) == "cmd: error: Unknown dataset 'x'."  # the text, not KeyError's repr
    assert cli.run_guarded(raises(cli.UsageError("--layer x: no such layer")), "cmd") == 2
    assert _one_line(capsys) == "cmd: error: --layer x: no such layer"
    assert cli.run_guarded(raises(DatasetMissingError("voc2007", Path("/nowhere"))), "cmd") == 1
    assert _one_line(capsys).startswith("cmd: error: Dataset 'voc2007' was not found under /nowhere.")
    assert cli.run_guarded(raises(TypeError("unsupported operand")), "cmd") == 1
    assert _one_line(capsys) == "cmd: error: TypeError: unsupported operand (unexpected: --debug shows the traceback)"


def test_python_advice_is_rewritten_for_the_command_line(monkeypatch):
    """The library's messages name Python keywords (notebooks see them unchanged); the command line's name flags."""
    monkeypatch.setattr(engines, "_import_onnxruntime", lambda: None)
    network = types.SimpleNamespace(model=__import__("torch").nn.Linear(1, 1))
    with pytest.raises(engines.EngineUnavailableError) as caught:
        engines.make_engine(network, ["pool"], "onnxruntime")
    assert "engine='onnxruntime' needs the onnxruntime package" in str(caught.value)  # the library's own words
    assert cli.describe(caught.value) == (
        "--engine onnxruntime needs the onnxruntime package, which is not installed: pip install onnxruntime "
        "(or use --engine auto or --engine torch).")

    bad = BadImageError("/data/cat.jpg", "corrupt or truncated image data (OSError: image file is truncated)")
    assert "on_error='skip'" in str(bad)
    assert cli.describe(bad) == ("Cannot use image /data/cat.jpg: corrupt or truncated image data (OSError: image "
                                 f"file is truncated). {cli.BAD_IMAGE_ADVICE}")


# ------------------------------------------------------------------------------------ help, listing and --version


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"course_utils {course_utils.__version__}\n"


def test_the_console_script_names_itself(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/off-the-shelf", "--help"])
    assert main() == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: off-the-shelf [--debug] [--version] COMMAND [options]\n")
    assert out.endswith("off-the-shelf COMMAND --help shows a command's options.\n")


def test_bench_help_lists_the_benchmarks(capsys):
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    width = max(map(len, BENCHMARKS))  # the names are padded to the longest one
    for name, (_, help_) in BENCHMARKS.items():
        assert f"  {name:<{width}}  {help_}\n" in out
    assert main(["bench", "extract", "--help"]) == 0
    assert "--naive-images NAIVE_IMAGES" in capsys.readouterr().out


def test_usage_lists_commands_and_benchmarks_in_aligned_columns(capsys):
    assert main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [*COMMANDS, *(f"bench {name}" for name in BENCHMARKS)]
    helps = [help_ for _, help_ in [*COMMANDS.values(), *BENCHMARKS.values()]]
    rows = [next(line for line in lines if line.startswith(f"  {name} ")) for name in names]
    assert {row.index(help_) for row, help_ in zip(rows, helps, strict=True)} == {2 + max(map(len, names)) + 2}


@pytest.mark.parametrize("command", [*COMMANDS, *(f"bench {name}" for name in BENCHMARKS)])
def test_every_option_has_help_text(command):
    import importlib

    module_name = (BENCHMARKS[command[6:]] if command.startswith("bench ") else COMMANDS[command])[0]
    parser = cli.Parser(prog=command)
    importlib.import_module(module_name).add_arguments(parser)
    missing = [action.option_strings[0] if action.option_strings else action.dest for action in parser._actions
               if not action.help]
    assert missing == [], f"{command}: options without help text: {missing}"


def test_the_real_process_exits_2_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "course_utils", "predict", str(tmp_path / "x.jpg")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"{PROG} predict: error: argument IMAGE: no such file: {tmp_path / 'x.jpg'} "
                                        f"({PROG} predict --help lists the options)"]
