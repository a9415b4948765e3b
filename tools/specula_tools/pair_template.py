"""The embedded pair's chat template: install it into an exported pair, and render the test fixture.

    python -m specula_tools.pair_template write ROOT       # ROOT/{target,draft}: chat_template.jinja,
                                                           # tokenizer_config.json's chat_template, ROOT/MANIFEST
    python -m specula_tools.pair_template fixture ROOT OUT.json

``fixture`` renders conversations with transformers' ``apply_chat_template`` over ROOT/target's tokenizer, for
models-tiny's EmbeddedChatTemplateTest, which renders the shipped template with the Java engine and compares.
"""
import argparse
import json
import os
import sys

from specula_tools.pair_bench import manifest
from specula_tools.pair_models import CHAT_TEMPLATE

CONVERSATIONS = [
    dict(name="code is handed through, left open",
         messages=[dict(role="user", content="def fibonacci(n):")]),
    dict(name="multi-line code",
         messages=[dict(role="user", content="import os\n\ndef list_files(directory):")]),
    dict(name="code ending with a newline",
         messages=[dict(role="user", content="class Stack:\n    def __init__(self):\n")]),
    dict(name="prose becomes a docstring",
         messages=[dict(role="user", content="Reverse a string")]),
    dict(name="system, user, assistant, user",
         messages=[dict(role="system", content="You complete Python."),
                   dict(role="user", content="Count the words of a text"),
                   dict(role="assistant", content="def word_count(text):\n    return len(text.split())"),
                   dict(role="user", content="def main():")]),
    dict(name="assistant prose is kept as is",
         messages=[dict(role="user", content="x = 1"), dict(role="assistant", content="Sure")]),
    dict(name="tools are listed as comments",
         messages=[dict(role="user", content="What's the weather in Paris?")],
         tools=[dict(type="function", function=dict(
             name="current_weather", description="Get the current weather in a city",
             parameters=dict(type="object", properties=dict(city=dict(type="string")), required=["city"])))]),
    dict(name="a tool call round trip",
         messages=[dict(role="user", content="What's the weather in Paris?"),
                   dict(role="assistant", content="", tool_calls=[dict(
                       id="call_1", type="function",
                       function=dict(name="current_weather", arguments=dict(city="Paris")))]),
                   dict(role="tool", tool_call_id="call_1", content="22 C"),
                   dict(role="assistant", content="It is 22 C in Paris.")],
         tools=[dict(type="function", function=dict(
             name="current_weather", description="Get the current weather in a city",
             parameters=dict(type="object", properties=dict(city=dict(type="string")), required=["city"])))]),
]


def write(root):
    for name in ("target", "draft"):
        directory = os.path.join(root, name)
        with open(os.path.join(directory, "chat_template.jinja"), "w", encoding="utf-8") as fh:
            fh.write(CHAT_TEMPLATE)
        config_path = os.path.join(directory, "tokenizer_config.json")
        with open(config_path, encoding="utf-8") as fh:
            config = json.load(fh)
        config["chat_template"] = CHAT_TEMPLATE
        with open(config_path, "w", encoding="utf-8") as fh:
            json.dump(config, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
    manifest(root)


def fixture(root, out):
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(root, "target", "tokenizer.json"))
    with open(os.path.join(root, "target", "chat_template.jinja"), encoding="utf-8") as fh:
        tokenizer.chat_template = fh.read()
    cases = []
    for conversation in CONVERSATIONS:
        for generation_prompt in (True, False):
            rendered = tokenizer.apply_chat_template(conversation["messages"], tools=conversation.get("tools"),
                                                     tokenize=False, add_generation_prompt=generation_prompt)
            case = dict(name=conversation["name"], messages=conversation["messages"],
                        add_generation_prompt=generation_prompt, expected=rendered)
            if conversation.get("tools"):
                case["tools"] = conversation["tools"]
            cases.append(case)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(cases, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def main(argv):
    parser = argparse.ArgumentParser(prog="pair_template", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("root")
    f = sub.add_parser("fixture")
    f.add_argument("root")
    f.add_argument("out")
    args = parser.parse_args(argv)
    if args.cmd == "write":
        write(args.root)
    else:
        fixture(args.root, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
