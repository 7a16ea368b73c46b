"""`export` and `evaluate`: what a run's trained model does after training: written out in a deployable format with
a parity report, or scored on the run's own test split or on another folder. Both load TensorFlow.
"""
from __future__ import annotations

from core.cli.common import add_command, print_json
from core.runs import store


def cmd_export(a):
    from core.runs import exports
    run = store.find_run(a.run)
    report = exports.export(run["id"], a.path, a.format, a.which)
    if a.json:
        return print_json(report)
    print(f"wrote {a.path} ({a.format}, {report['size_bytes'] / 1e6:.2f} MB)\n{report['preprocessing']}")
    print(f"parity on the run's {report['split']} split ({report['images']} images): classes agree "
          f"{report['class_agreement']:.2%}, max |probability difference| {report['max_abs_prob_diff']:.2e} "
          f"(against the float32 Keras model: {report['class_agreement_float32']:.2%}, "
          f"{report['max_abs_prob_diff_float32']:.2e}), "
          f"accuracy {report['accuracy_export']:.4f} (Keras {report['accuracy_keras']:.4f}); single-image latency "
          f"{report['latency_ms_median']:.2f} ms (median, {report['host']} host)")


def cmd_evaluate(a):
    from core.analysis.evaluate import evaluate
    run = store.find_run(a.run)
    result = evaluate(run["id"], a.data, a.split, a.which)
    if a.json:
        return print_json(result)
    where = "the run's own recorded" if result["own_split"] else f"{result['data']}'s"
    print(f"{result['n']} images ({where} {result['split']} split): accuracy {result['accuracy']:.4f}, "
          f"loss {result['loss']:.4f}")
    if result["overlap_with_training"]:
        print(f"left out {result['overlap_with_training']} images whose content is in the run's training split")
    if result["missing"]:
        print(f"left out {result['missing']} recorded images that no longer exist or changed")
    print("confusion matrix (rows: true, columns: predicted): " + ", ".join(result["classes"]))
    for cls, row in zip(result["classes"], result["confusion_matrix"]):
        print(f"  {cls:<12}" + " ".join(f"{n:>6}" for n in row))


def register(sub) -> None:
    s = add_command(sub, "export", cmd_export, "write a run's model to PATH in a deployable format, with a parity "
                                               "report on its own test split", "run", "path")
    s.add_argument("--format", default="keras", choices=["keras", "saved_model", "tflite", "tflite-int8", "onnx"])
    s.add_argument("--which", choices=["best", "last"], default="best")
    s.add_argument("--json", action="store_true", help="the parity report as JSON")

    s = add_command(sub, "evaluate", cmd_evaluate, "score a run on its own test split, or on a folder of class "
                                                   "subfolders (leaving out the images it trained on)", "run")
    s.add_argument("--data", help="a folder of class subfolders (default: the run's own recorded split)")
    s.add_argument("--split", help="validation or test of the run's own split; with --data also train "
                                   "(default: test if present, else validation)")
    s.add_argument("--which", choices=["best", "last"], default="best")
    s.add_argument("--json", action="store_true")
