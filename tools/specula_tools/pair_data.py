"""Corpus, held-out split and tokenizer for the embedded pair (train-pair / eval-pair).

The corpus is the Python standard library of the interpreter running the tool
(``sysconfig.get_paths()["stdlib"]``, ``*.py`` files, site-packages excluded). A file is held out
for evaluation when it belongs to one of HELDOUT_PACKAGES or when the SHA-1 of its relative path
falls in the first HELDOUT_PERCENT buckets of 100. The split depends only on relative paths, so it
is the same on every machine with the same Python version.
"""
import hashlib
import os
import sysconfig

import numpy as np

EOT = "<|endoftext|>"
VOCAB_SIZE = 4096
HELDOUT_PERCENT = 3
# Whole packages (and their test packages) kept out of training.
HELDOUT_PACKAGES = ("json/", "tomllib/", "wsgiref/", "test/test_json/", "test/test_tomllib/")


def stdlib_root():
    return sysconfig.get_paths()["stdlib"]


def list_sources(root=None):
    """Sorted relative paths of the *.py files of the standard library (no site-packages)."""
    root = root or stdlib_root()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "dist-packages", "__pycache__"))
        for f in filenames:
            if f.endswith(".py"):
                rel = os.path.normpath(os.path.join(rel_dir, f)).replace(os.sep, "/")
                out.append(rel)
    return sorted(out)


def is_heldout(rel):
    if any(rel.startswith(p) for p in HELDOUT_PACKAGES):
        return True
    h = int(hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8], 16)
    return h % 100 < HELDOUT_PERCENT


def read_text(root, rel):
    """UTF-8 text of a source file, or None when it is not valid UTF-8 or is empty."""
    with open(os.path.join(root, rel), "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.replace("\r\n", "\n")
    return text if text.strip() else None


def split_corpus(root=None):
    root = root or stdlib_root()
    files = list_sources(root)
    train = [f for f in files if not is_heldout(f)]
    held = [f for f in files if is_heldout(f)]
    return root, train, held


def write_file_list(path, root, rels):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# root: {root}\n")
        for r in rels:
            fh.write(r + "\n")


def read_file_list(path):
    root, rels = None, []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("# root: "):
                root = line[len("# root: "):]
            elif line and not line.startswith("#"):
                rels.append(line)
    return root or stdlib_root(), rels


def train_tokenizer(texts, vocab_size=VOCAB_SIZE):
    """Byte-level BPE (GPT-2 style pre-tokenizer/decoder); <|endoftext|> is id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def encode_stream(tok, texts):
    """All texts tokenized and concatenated, each document preceded by <|endoftext|> (uint16)."""
    eot = tok.token_to_id(EOT)
    encs = tok.encode_batch(texts, add_special_tokens=False)
    total = sum(len(e.ids) + 1 for e in encs)
    arr = np.empty(total, dtype=np.uint16)
    pos = 0
    for e in encs:
        arr[pos] = eot
        n = len(e.ids)
        arr[pos + 1:pos + 1 + n] = e.ids
        pos += n + 1
    return arr
