"""Model shapes, chat template and HF saving for the embedded pair."""
import os

# The model completes Python source files, so the chat path renders a conversation as one. Every conversation
# starts with a module docstring (stdlib files open with one, and it steers the model towards library code rather
# than the test suites that dominate its corpus). Assistant messages and messages that look like code (a newline,
# "(", "=", "import ", "class ", "def ", or a trailing ":") are handed through as code; other system and user
# messages become docstrings. Messages are joined by newlines and the last one is left open: the tokenizer merges a
# line break with the next line's indentation ("\n   " is one token), so the model writes the break itself.
# add_generation_prompt adds nothing. Only for/if/set, `in`, [-1:], `+` and string literals are used, inside
# whitespace-stripping tags, so transformers (Jinja2) and Jinjava render the same string (models-tiny's
# EmbeddedChatTemplateTest checks it against transformers' renderings).
CHAT_TEMPLATE = (
    "{{- '\"\"\"Utilities.\"\"\"\\n\\n' }}\n"
    "{%- if tools %}\n"
    "    {{- '# Tools: to call one, write <tool_call>\\n# {\"name\": <function-name>, \"arguments\": <args-json-object>}"
    "\\n# </tool_call>\\n' }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- '# ' + (tool | tojson) + '\\n' }}\n"
    "    {%- endfor %}\n"
    "    {{- '\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- set content = message['content'] or '' %}\n"
    "    {%- if message['role'] == 'tool' %}\n"
    "        {%- set content = '<tool_response>\\n' + content + '\\n</tool_response>' %}\n"
    "    {%- elif message['role'] != 'assistant' and not ('\\n' in content or '(' in content or '=' in content"
    " or 'import ' in content or 'class ' in content or 'def ' in content or content[-1:] == ':') %}\n"
    "        {%- set content = '\"\"\"' + content + '\\n\"\"\"' %}\n"
    "    {%- endif %}\n"
    "    {{- content }}\n"
    "    {%- if message['role'] == 'assistant' and message['tool_calls'] %}\n"
    "        {%- for tool_call in message['tool_calls'] %}\n"
    "            {%- set call = tool_call['function'] if tool_call['function'] is defined else tool_call %}\n"
    "            {%- if content or not loop.first %}\n"
    "                {{- '\\n' }}\n"
    "            {%- endif %}\n"
    "            {{- '<tool_call>\\n{\"name\": \"' + call['name'] + '\", \"arguments\": ' + (call['arguments'] | tojson)"
    " + '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "    {%- endif %}\n"
    "    {%- if not loop.last and content[-1:] != '\\n' %}\n"
    "        {{- '\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
)

TARGET_SHAPE = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2,
                    intermediate_size=1024)
DRAFT_SHAPE = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=384)
RANDOM_DRAFT_SHAPE = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                          intermediate_size=64)
MAX_POSITIONS = 2048


def llama_config(shape, vocab_size, eot_id, max_positions=MAX_POSITIONS):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=max_positions,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
        pad_token_id=eot_id,
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        **shape,
    )


def hf_tokenizer(tok):
    """A PreTrainedTokenizerFast over a `tokenizers.Tokenizer`, with the chat template."""
    from transformers import PreTrainedTokenizerFast

    from .pair_data import EOT

    t = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=EOT,
                                unk_token=None, model_max_length=MAX_POSITIONS, clean_up_tokenization_spaces=False)
    t.chat_template = CHAT_TEMPLATE
    return t


def save_hf(model, tokenizer, out_dir):
    from transformers import GenerationConfig

    os.makedirs(out_dir, exist_ok=True)
    cfg = model.config
    model.generation_config = GenerationConfig(bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id,
                                               pad_token_id=cfg.pad_token_id, do_sample=False)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def param_count(model):
    # Tied embeddings are one tensor: count unique parameters.
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n
