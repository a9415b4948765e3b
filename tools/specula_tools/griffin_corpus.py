"""train-griffin's corpus: the user's text (``--corpus``) or, by default, the Python standard library (pair_data).

``--corpus PATH`` (repeatable, or comma-separated) takes
  * a text file (UTF-8; one document),
  * a directory: its files whose name ends in one of ``--corpus-ext`` (recursively, hidden folders skipped; one
    document a file; ``.jsonl`` files inside are read as below),
  * a ``.jsonl`` file: one document a record, its ``text`` field, or its chat ``messages`` ([{role, content}])
    rendered with the target's chat template (the target directory's tokenizer_config.json /
    chat_template.jinja; "role: content" lines when it has none).

Held-out split (deterministic, the same on every machine): a document is held out when the SHA-1 of its name
(a file's path relative to the --corpus argument it came from, a record's "file.jsonl#line") falls in the first
``--heldout-percent`` buckets of 100. When that holds nothing out, the document with the smallest hash is held out;
a corpus of one document holds out its last lines instead (about --heldout-percent of its characters).

Documents are tokenized without special tokens and concatenated, each preceded by a separator: ``<|endoftext|>``
when the tokenizer has it (the embedded pair's stream), else the target's eos token.
"""
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from . import pair_data

DEFAULT_EXTENSIONS = ".txt,.md,.rst,.py,.java,.kt,.js,.ts,.c,.h,.cc,.cpp,.hpp,.go,.rs,.rb,.php,.cs,.swift,.scala," \
                     ".sh,.sql,.html,.css,.xml,.yaml,.yml,.toml,.json,.jsonl,.tex,.csv"
DEFAULT_HELDOUT_PERCENT = 5


@dataclass
class Doc:
    name: str  # what the held-out split hashes: a relative path, or "file.jsonl#line"
    text: str


@dataclass
class Corpus:
    what: str  # for the log and griffin.json
    train: list
    held: list
    fingerprint: str  # names and sizes of the held-out documents (eval cache key); "stdlib" for the default


# ---------------------------------------------------------------------------------------------- reading


def corpus_paths(values):
    """--corpus values (each possibly comma-separated) -> list of paths"""
    return [p.strip() for v in (values or []) for p in v.split(",") if p.strip()]


def _decode(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.replace("\r\n", "\n")
    return text if text.strip() else None


def _text_file(path, name):
    with open(path, "rb") as fh:
        text = _decode(fh.read())
    return [Doc(name, text)] if text else []


def _jsonl_file(path, name, render):
    """One Doc per record with a non-empty `text`, or chat `messages` rendered by render(messages)."""
    docs = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"train-griffin: --corpus {path}, line {i + 1}: not JSON ({e.msg})")
            text = None
            if isinstance(rec, dict) and isinstance(rec.get("text"), str):
                text = rec["text"]
            elif isinstance(rec, dict) and isinstance(rec.get("messages"), list):
                text = render(rec["messages"])
            if text and text.strip():
                docs.append(Doc(f"{name}#{i + 1}", text))
    return docs


def _walk(root, exts):
    """Sorted relative paths of the files under root whose name ends in one of exts (hidden folders skipped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for f in filenames:
            if f.lower().endswith(exts) and not f.startswith("."):
                out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return sorted(out)


def read_path(path, exts, render):
    """All documents of one --corpus argument."""
    if os.path.isdir(path):
        docs = []
        for rel in _walk(path, exts):
            full = os.path.join(path, rel)
            docs += _jsonl_file(full, rel, render) if rel.lower().endswith(".jsonl") else _text_file(full, rel)
        return docs
    if not os.path.isfile(path):
        raise SystemExit(f"train-griffin: --corpus {path}: no such file or directory")
    name = os.path.basename(path)
    return _jsonl_file(path, name, render) if path.lower().endswith(".jsonl") else _text_file(path, name)


def chat_renderer(target_dir):
    """messages -> text with the target's chat template (loaded on the first chat record), else "role: content"."""
    state = {}

    def joined(messages):
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in messages if isinstance(m, dict))

    def render(messages):
        if "tok" not in state:
            try:
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(target_dir)
                state["tok"] = tok if getattr(tok, "chat_template", None) else None
            except Exception:  # noqa: BLE001 - no template: the plain join below
                state["tok"] = None
        if state["tok"] is not None:
            try:
                return state["tok"].apply_chat_template(messages, tokenize=False)
            except Exception:  # noqa: BLE001 - a record the template refuses (roles, tools): joined instead
                pass
        return joined(messages)

    return render


# ---------------------------------------------------------------------------------------------- split


def _bucket(name):
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16)


def split_docs(docs, percent):
    """(train, held): by the hash of each name; at least one held-out document (see the module docstring)."""
    held = [d for d in docs if _bucket(d.name) % 100 < percent]
    if not held and len(docs) >= 2:
        held = [min(docs, key=lambda d: _bucket(d.name))]
    if not held and len(docs) == 1:
        return _split_one(docs[0], percent)
    names = {d.name for d in held}
    return [d for d in docs if d.name not in names], held


def _split_one(doc, percent):
    """One document: its last lines (about `percent` of its characters, at least one line) are held out."""
    cut = int(len(doc.text) * (1 - max(percent, 1) / 100))
    nl = doc.text.rfind("\n", 0, cut)
    cut = nl + 1 if nl > 0 else cut
    return [Doc(doc.name, doc.text[:cut])], [Doc(doc.name + "#heldout", doc.text[cut:])]


def load_corpus(values, exts, percent, target_dir):
    """--corpus values -> Corpus; the stdlib corpus when there are none."""
    paths = corpus_paths(values)
    if not paths:
        root, train, held = pair_data.split_corpus()
        read = lambda rels: [Doc(r, t) for r in rels for t in [pair_data.read_text(root, r)] if t]  # noqa: E731
        return Corpus(f"the Python standard library ({root})", read(train), read(held), "stdlib")
    exts = tuple(e.strip().lower() if e.strip().startswith(".") else "." + e.strip().lower()
                 for e in exts.split(",") if e.strip())
    render = chat_renderer(target_dir)
    docs = []
    for p in paths:
        got = read_path(p, exts, render)
        if not got:
            raise SystemExit(f"train-griffin: --corpus {p}: no text in it (UTF-8 files ending in {', '.join(exts)} "
                             "(--corpus-ext), or .jsonl records with text / messages)")
        docs += got
    train, held = split_docs(docs, percent)
    fp = hashlib.sha1("\n".join(f"{d.name}:{len(d.text)}" for d in held).encode()).hexdigest()[:10]
    return Corpus(f"{', '.join(paths)} ({len(docs)} documents)", train, held, fp)


# ---------------------------------------------------------------------------------------------- tokens


def separator_id(tok, target_cfg):
    """The document separator: <|endoftext|> when the tokenizer has it, else the target's eos (or bos) token."""
    eot = tok.token_to_id(pair_data.EOT)
    if eot is not None:
        return eot
    for key in ("eos_token_id", "bos_token_id"):
        v = target_cfg.get(key)
        v = v[0] if isinstance(v, list) and v else v
        if isinstance(v, int):
            return v
    raise SystemExit("train-griffin: the target's tokenizer has no <|endoftext|> and its config.json no "
                     "eos_token_id / bos_token_id to separate documents with")


def token_dtype(vocab):
    return np.uint16 if vocab <= 65536 else np.uint32


def encode_docs(tok, docs, sep, vocab):
    """All documents tokenized (no special tokens) and concatenated, each preceded by sep: [N] uint16/uint32."""
    encs = tok.encode_batch([d.text for d in docs], add_special_tokens=False)
    total = sum(len(e.ids) + 1 for e in encs)
    arr = np.empty(total, dtype=token_dtype(vocab))
    pos = 0
    for e in encs:
        arr[pos] = sep
        arr[pos + 1:pos + 1 + len(e.ids)] = e.ids
        pos += len(e.ids) + 1
    return arr


def pick_prompts(tok, docs, sep, n, plen, need):
    """eval-pair's picker over documents: up to n (name, start, ids[plen]) from held-out documents of at least
    plen + need tokens, a start per document and round chosen by hash."""
    cands = []
    for d in docs:
        ids = [sep] + tok.encode(d.text, add_special_tokens=False).ids
        if len(ids) >= plen + need:
            cands.append((d.name, ids))
    prompts = []
    rnd = 0
    while len(prompts) < n and cands and rnd < 8:
        for name, ids in cands:
            if len(prompts) >= n:
                break
            h = int(hashlib.sha1(f"{name}#{rnd}".encode()).hexdigest()[:8], 16)
            start = h % (len(ids) - plen - need + 1)
            prompts.append((name, start, ids[start:start + plen]))
        rnd += 1
    return prompts
