"""Entry point: ``python -m specula_tools <command> ...`` (run from tools/, or with tools/ on PYTHONPATH)."""
import importlib
import sys

COMMANDS = {
    "export": "specula_tools.export",
    "make-random": "specula_tools.make_random",
    "fixtures": "specula_tools.fixtures",
    "train-pair": "specula_tools.train_pair",
    "eval-pair": "specula_tools.eval_pair",
    "train-ldlp": "specula_tools.train_ldlp",
    "share-weights": "specula_tools.share_weights",
    "chat-ast": "specula_tools.chat_ast",
    "export-optimum": "specula_tools.export_optimum",
    "quantize": "specula_tools.quantize",
    "onnx-to-hf": "specula_tools.onnx_to_hf",
    "scale-report": "specula_tools.scale_report",
    "large-vocab": "specula_tools.large_vocab",
    "train-griffin": "specula_tools.train_griffin",
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m specula_tools {" + "|".join(COMMANDS) + "} [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
