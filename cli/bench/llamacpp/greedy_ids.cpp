// Greedy ids and tokenization from llama.cpp's C API, for the comparison with transformers (greedy_check.py).
//   specula-llama-greedy MODEL.gguf N_NEW CASES.txt [f16|f32]
// CASES.txt: one case per line, "HEX_UTF8_TEXT PROMPT_IDS" (ids comma-separated, as transformers tokenized the
// text). Per case, prints one JSON line: {"tokenized": llama_tokenize(text), "greedy": N_NEW argmax ids decoded
// from PROMPT_IDS}. The greedy loop feeds transformers' prompt ids, so a tokenizer difference cannot hide a
// model difference (and is reported separately). End of generation never stops it. One thread. The last
// argument is the KV cache type (default f16, llama.cpp's default; f32 for a cache like transformers').
#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static std::string unhex(const std::string & h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) {
        out.push_back((char) std::strtol(h.substr(i, 2).c_str(), nullptr, 16));
    }
    return out;
}

static void print_ids(const std::vector<llama_token> & ids) {
    printf("[");
    for (size_t i = 0; i < ids.size(); i++) {
        printf(i ? ",%d" : "%d", ids[i]);
    }
    printf("]");
}

int main(int argc, char ** argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL.gguf N_NEW CASES.txt [f16|f32]\n", argv[0]);
        return 2;
    }
    const int n_new = std::atoi(argv[2]);
    const ggml_type kv_type = (argc == 5 && std::string(argv[4]) == "f32") ? GGML_TYPE_F32 : GGML_TYPE_F16;
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    std::ifstream in(argv[3]);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) {
            continue;
        }
        std::istringstream ls(line);
        std::string hex, ids_s;
        ls >> hex >> ids_s;
        const std::string text = unhex(hex);
        std::vector<llama_token> tok(text.size() + 8);
        int n = llama_tokenize(vocab, text.c_str(), (int) text.size(), tok.data(), (int) tok.size(), true, false);
        tok.resize(n < 0 ? 0 : n);
        std::vector<llama_token> prompt;
        std::stringstream ss(ids_s);
        std::string item;
        while (std::getline(ss, item, ',')) {
            prompt.push_back(std::atoi(item.c_str()));
        }
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = (uint32_t) (prompt.size() + n_new + 16);
        cp.n_batch = cp.n_ctx;
        cp.n_threads = 1;
        cp.n_threads_batch = 1;
        cp.type_k = kv_type;
        cp.type_v = kv_type;
        llama_context * ctx = llama_init_from_model(model, cp);
        std::vector<llama_token> out;
        llama_batch batch = llama_batch_get_one(prompt.data(), (int32_t) prompt.size());
        llama_token next = 0;
        for (int i = 0; i < n_new; i++) {
            if (llama_decode(ctx, batch) != 0) {
                fprintf(stderr, "llama_decode failed\n");
                return 1;
            }
            const float * logits = llama_get_logits_ith(ctx, -1);
            int best = 0;
            for (int v = 1; v < n_vocab; v++) {
                if (logits[v] > logits[best]) {
                    best = v;
                }
            }
            out.push_back(best);
            next = best;
            batch = llama_batch_get_one(&next, 1);
        }
        printf("{\"tokenized\":");
        print_ids(tok);
        printf(",\"greedy\":");
        print_ids(out);
        printf("}\n");
        fflush(stdout);
        llama_free(ctx);
    }
    llama_model_free(model);
    return 0;
}
