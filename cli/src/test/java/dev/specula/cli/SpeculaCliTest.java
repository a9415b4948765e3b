package dev.specula.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;

/** The CLI contract on the embedded pair, and its one-line errors for bad input. */
class SpeculaCliTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path temp;

    record Run(int exitCode, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = SpeculaCli.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void generateJsonOnTheEmbeddedPair() throws Exception {
        Run run = run("generate", "--prompt", "def add(a, b):\n    return", "--max-new-tokens", "12", "--policy",
                "fixed", "--gamma", "3", "--json");
        assertThat(run.exitCode()).as(run.err()).isZero();
        JsonNode json = JSON.readTree(run.out());
        assertThat(json.path("token_ids").size()).isBetween(1, 12);
        assertThat(json.path("finish_reason").asText()).isIn("length", "stop", "eos");
        assertThat(json.path("prompt_tokens").asInt()).isPositive();
        JsonNode stats = json.path("stats");
        assertThat(stats.path("target_calls").asInt()).isPositive();
        assertThat(stats.path("draft_calls").asInt()).isPositive();
        long rounds = stats.path("target_calls").asLong();
        assertThat(stats.path("mean_accepted_length").asDouble()).isCloseTo(
                (stats.path("accepted").asDouble() + rounds) / rounds, org.assertj.core.api.Assertions.within(1e-9));
        for (String field : new String[] { "drafted", "accepted", "wall_ms", "target_ms", "draft_ms",
                "tokens_per_second" }) {
            assertThat(stats.has(field)).as(field).isTrue();
        }
    }

    @Test
    void generateTakesAResponseFormatPenaltiesAndLogprobs() throws Exception {
        Run run = run("generate", "--chat", "A JSON object describing a Python package", "--response-format", "json",
                "--frequency-penalty", "0.5", "--logprobs", "2", "--max-new-tokens", "160", "--policy", "fixed:4",
                "--json");
        assertThat(run.exitCode()).as(run.err()).isZero();
        JsonNode json = JSON.readTree(run.out());
        assertThat(json.path("text").asText()).startsWith("{");
        if (json.path("finish_reason").asText().equals("eos")) {
            assertThat(JSON.readTree(json.path("text").asText()).isObject()).isTrue();
        }
        assertThat(json.path("logprobs").size()).isEqualTo(json.path("token_ids").size());
        assertThat(json.path("logprobs").get(0).path("top_token_ids").size()).isEqualTo(2);

        assertOneLineError(run("generate", "--chat", "x", "--frequency-penalty", "3"), "frequency_penalty");
        assertOneLineError(run("generate", "--chat", "x", "--response-format", "none.json"), "--response-format");
    }

    @Test
    void plainPromptIdsAndSpeculationAgree() throws Exception {
        JsonNode plain = JSON.readTree(
                run("generate", "--prompt-ids", "31,40,50", "--max-new-tokens", "16", "--policy", "plain", "--json")
                    .out());
        JsonNode speculative = JSON.readTree(
                run("generate", "--prompt-ids", "31,40,50", "--max-new-tokens", "16", "--policy", "fixed:4", "--json")
                    .out());
        assertThat(speculative.path("token_ids")).isEqualTo(plain.path("token_ids"));
        assertThat(plain.path("stats").path("draft_calls").asInt()).isZero();
        assertThat(plain.path("prompt_tokens").asInt()).isEqualTo(3);
    }

    /**
     * Runtime flags change how the models run, never the tokens: {@code --threads 2
     * --spinning}, two intra-op threads that spin while idle (the models share one pool
     * when the process's environment was made with it); {@code --no-kv-in-place}, every
     * call returns a new copy of the KV, as before it was written in place.
     */
    @ParameterizedTest
    @ValueSource(strings = { "--threads 2 --spinning", "--no-kv-in-place" })
    void runtimeFlagsDecodeTheSameTokens(String flags) throws Exception {
        List<String> base = List.of("generate", "--prompt-ids", "31,40,50", "--max-new-tokens", "24", "--policy",
                "fixed:4", "--json");
        JsonNode plain = JSON.readTree(run(base.toArray(String[]::new)).out());
        List<String> withFlags = new ArrayList<>(base);
        withFlags.addAll(List.of(flags.split(" ")));
        Run flagged = run(withFlags.toArray(String[]::new));
        assertThat(flagged.exitCode()).as(flagged.err()).isZero();
        assertThat(JSON.readTree(flagged.out()).path("token_ids")).isEqualTo(plain.path("token_ids"));
    }

    @Test
    void chatUsesTheTemplate() throws Exception {
        Run run = run("generate", "--chat", "write a function that adds two numbers", "--max-new-tokens", "8",
                "--json");
        assertThat(run.exitCode()).as(run.err()).isZero();
        assertThat(JSON.readTree(run.out()).path("prompt_tokens").asInt()).isGreaterThan(5);
    }

    @Test
    void benchWritesTheContractJson() throws Exception {
        Path prompts = temp.resolve("prompts.jsonl");
        Files.writeString(prompts, """
                {"id": "a", "category": "code", "prompt": "def square(x):\\n    return"}
                {"id": "b", "category": "prose", "prompt_ids": [31, 40, 50]}
                """);
        Path out = temp.resolve("out.json");
        Path markdown = temp.resolve("out.md");
        Run run = run("bench", "--prompts", prompts.toString(), "--max-new-tokens", "8", "--policies", "plain,fixed:2",
                "--repeat", "1", "--warmup", "0", "--json", out.toString(), "--markdown", markdown.toString());
        assertThat(run.exitCode()).as(run.err()).isZero();
        JsonNode json = JSON.readTree(out.toFile());
        assertThat(json.path("machine").path("cores").asInt()).isPositive();
        // 2 policies × (all, code, prose)
        assertThat(json.path("results").size()).isEqualTo(6);
        JsonNode fixedAll = null;
        for (JsonNode row : json.path("results")) {
            if (row.path("policy").asText().equals("fixed:2") && row.path("category").asText().equals("all")) {
                fixedAll = row;
            }
            if (row.path("policy").asText().equals("plain")) {
                assertThat(row.path("speedup_vs_plain").asDouble()).isEqualTo(1.0);
            }
        }
        assertThat(fixedAll).isNotNull();
        for (String field : new String[] { "tokens_per_second", "speedup_vs_plain", "mean_accepted_length",
                "acceptance_rate", "outside_ort_share", "leviathan_expected_speedup" }) {
            assertThat(fixedAll.path(field).isNumber()).as(field).isTrue();
        }
        assertThat(fixedAll.path("proposer").asText()).isEqualTo("model");
        assertThat(Files.readString(markdown)).contains("| fixed:2 | model | chain | all |");
    }

    @Test
    void benchWarmsUpOnItsOwnPromptsAndMeasuresOnlyTheOthers() throws Exception {
        Path prompts = temp.resolve("measured.jsonl");
        Files.writeString(prompts, """
                {"id": "a", "category": "code", "prompt": "def square(x):\\n    return"}
                """);
        Path warmupPrompts = temp.resolve("warmup.jsonl");
        Files.writeString(warmupPrompts, """
                {"id": "w1", "category": "prose", "prompt": "Once upon a time"}
                {"id": "w2", "category": "prose", "prompt_ids": [31, 40, 50]}
                """);
        Path out = temp.resolve("warm.json");
        Run run = run("bench", "--prompts", prompts.toString(), "--warmup-prompts", warmupPrompts.toString(),
                "--max-new-tokens", "8", "--policies", "plain,fixed:2", "--repeat", "1", "--warmup", "2", "--json",
                out.toString());
        assertThat(run.exitCode()).as(run.err()).isZero();
        JsonNode json = JSON.readTree(out.toFile());
        assertThat(json.path("settings").path("warmup_prompts").asInt()).isEqualTo(2);
        assertThat(json.path("settings").path("prompts").asInt()).isEqualTo(1);
        for (JsonNode row : json.path("results")) {
            assertThat(row.path("category").asText()).isIn("all", "code");
            assertThat(row.path("requests").asInt()).as(row.toString()).isEqualTo(1);
        }
        Files.writeString(warmupPrompts, "{\"prompt\": \"ok\"}\n{\"prompt\": 7}\n");
        assertOneLineError(run("bench", "--prompts", prompts.toString(), "--warmup-prompts", warmupPrompts.toString(),
                "--policies", "plain"), "line 2");
    }

    @Test
    void benchRunsChainsAndTreesOnThePackedGraphs() throws Exception {
        Path prompts = temp.resolve("trees.jsonl");
        Files.writeString(prompts,
                "{\"id\": \"a\", \"category\": \"code\", \"prompt\": \"def square(x):\\n    return\"}\n");
        Path out = temp.resolve("trees.json");
        Run run = run("bench", "--prompts", prompts.toString(), "--max-new-tokens", "16", "--policies", "plain,fixed:3",
                "--proposers", "model,ngram", "--draft-shape", "chain,tree", "--tree-nodes", "auto,6", "--repeat", "1",
                "--warmup", "0", "--json", out.toString());
        assertThat(run.exitCode()).as(run.err()).isZero();
        java.util.Map<String, JsonNode> byRun = new java.util.HashMap<>();
        for (JsonNode row : JSON.readTree(out.toFile()).path("results")) {
            if (row.path("category").asText().equals("all")) {
                byRun.put(row.path("policy").asText() + " " + row.path("proposer").asText("") + " "
                        + row.path("draft_shape").asText(""), row);
            }
        }
        // a tree shapes only the draft model's proposals: prompt lookup runs as a chain
        assertThat(byRun).containsOnlyKeys("plain  ", "fixed:3 model chain", "fixed:3 ngram chain",
                "fixed:3 model tree(width 3, nodes auto)", "fixed:3 model tree(width 3, nodes 6)");
        JsonNode fixedTree = byRun.get("fixed:3 model tree(width 3, nodes 6)");
        assertThat(fixedTree.path("tree_nodes_mean").asDouble()).isBetween(1.0, 6.0);
        assertThat(fixedTree.path("tree_rounds").asLong()).isPositive();
        assertThat(JSON.readTree(out.toFile()).path("settings").path("greedy_mismatches").asInt()).isZero();
    }

    @Test
    void generateDraftsTreesAndRefusesTreeOptionsWithoutATree() throws Exception {
        Run tree = run("generate", "--prompt", "def square(x):", "--max-new-tokens", "12", "--draft-shape", "tree",
                "--tree-width", "2", "--json");
        Run chain = run("generate", "--prompt", "def square(x):", "--max-new-tokens", "12", "--json");
        assertThat(tree.exitCode()).as(tree.err()).isZero();
        assertThat(JSON.readTree(tree.out()).path("token_ids")).isEqualTo(JSON.readTree(chain.out()).path("token_ids"));
        Run stray = run("generate", "--prompt", "x", "--tree-nodes", "8");
        assertThat(stray.exitCode()).isEqualTo(2);
        assertThat(stray.err()).contains("--draft-shape tree");
        Run badShape = run("generate", "--prompt", "x", "--draft-shape", "bush");
        assertThat(badShape.exitCode()).isEqualTo(2);
        assertThat(badShape.err()).contains("--draft-shape must be chain or tree");
    }

    @Test
    void benchRunsEveryProposerWithEveryPolicy() throws Exception {
        Path prompts = temp.resolve("repeating.jsonl");
        Files.writeString(prompts,
                "{\"id\": \"a\", \"category\": \"code\", \"prompt_ids\": [31, 40, 50, 31, 40, 50, 31, 40]}\n");
        Path out = temp.resolve("proposers.json");
        Run run = run("bench", "--prompts", prompts.toString(), "--max-new-tokens", "12", "--policies", "plain,fixed:3",
                "--proposers", "model,ngram,model+ngram,suffix", "--repeat", "1", "--warmup", "0", "--json",
                out.toString());
        assertThat(run.exitCode()).as(run.err()).isZero();
        java.util.Map<String, JsonNode> byProposer = new java.util.HashMap<>();
        for (JsonNode row : JSON.readTree(out.toFile()).path("results")) {
            if (row.path("category").asText().equals("all")) {
                byProposer.put(row.path("policy").asText() + " " + row.path("proposer").asText(""), row);
            }
        }
        assertThat(byProposer).containsOnlyKeys("plain ", "fixed:3 model", "fixed:3 ngram", "fixed:3 model+ngram",
                "fixed:3 suffix");
        assertThat(byProposer.get("fixed:3 ngram").path("acceptance_rate").asDouble()).isPositive();
        assertThat(byProposer.get("fixed:3 ngram").path("draft_step_ms").isNull()).isTrue();
        assertThat(byProposer.get("fixed:3 suffix").path("acceptance_rate").asDouble()).isPositive();
        assertThat(run.out()).contains("Greedy outputs differing between policies: 0");
    }

    @Test
    void aPredictionIsDraftedAndChangesNothing() throws Exception {
        JsonNode plain = JSON.readTree(
                run("generate", "--prompt", "def add(a, b):", "--max-new-tokens", "24", "--policy", "plain", "--json")
                    .out());
        Path predictionFile = temp.resolve("prediction.txt");
        Files.writeString(predictionFile, plain.path("text").asText());
        Run predicted = run("generate", "--prompt", "def add(a, b):", "--max-new-tokens", "24", "--prediction-file",
                predictionFile.toString(), "--json");
        assertThat(predicted.exitCode()).as(predicted.err()).isZero();
        JsonNode json = JSON.readTree(predicted.out());
        assertThat(json.path("token_ids")).isEqualTo(plain.path("token_ids"));
        assertThat(json.path("stats").path("proposer").asText()).isEqualTo("prediction");
        assertThat(json.path("stats").path("accepted").asInt()).isGreaterThan(12);
        assertOneLineError(run("generate", "--prompt", "x", "--prediction", "y", "--prediction-file", "z"), "not both");
        assertOneLineError(run("generate", "--prompt", "x", "--prediction-file", temp.resolve("none").toString()),
                "cannot read --prediction-file");
    }

    @Test
    void concurrencyBenchRunsEveryProposer() throws Exception {
        Path prompts = temp.resolve("concurrent.jsonl");
        Files.writeString(prompts, "{\"id\": \"a\", \"prompt_ids\": [31, 40, 50, 31, 40, 50, 31, 40]}\n"
                + "{\"id\": \"b\", \"prompt_ids\": [12, 5, 99, 12, 5]}\n");
        Path out = temp.resolve("concurrent.json");
        Run run = run("bench", "--prompts", prompts.toString(), "--max-new-tokens", "8", "--policies", "plain,fixed:2",
                "--proposers", "model,ngram", "--concurrency", "2", "--batch-path", "padded", "--repeat", "1",
                "--warmup", "0", "--json", out.toString());
        assertThat(run.exitCode()).as(run.err()).isZero();
        java.util.List<String> configurations = new java.util.ArrayList<>();
        for (JsonNode row : JSON.readTree(out.toFile()).path("results")) {
            configurations.add(row.path("policy").asText() + " " + row.path("proposer").asText(""));
        }
        assertThat(configurations).containsExactly("plain ", "fixed:2 model", "fixed:2 ngram");
        assertThat(run.out()).contains("| fixed:2 | ngram |").contains("Greedy outputs differing between runs: 0");
    }

    @Test
    void promptLookupNeedsNoDraft() throws Exception {
        Path target = dev.specula.models.tiny.TinyModels.extract().target();
        JsonNode plain = JSON.readTree(run("generate", "--target", target.toString(), "--prompt-ids",
                "31,40,50,31,40,50,31,40", "--max-new-tokens", "16", "--json")
            .out());
        Run lookup = run("generate", "--target", target.toString(), "--prompt-ids", "31,40,50,31,40,50,31,40",
                "--max-new-tokens", "16", "--proposer", "ngram", "--ngram-max", "3", "--json");
        assertThat(lookup.exitCode()).as(lookup.err()).isZero();
        JsonNode json = JSON.readTree(lookup.out());
        assertThat(json.path("token_ids")).isEqualTo(plain.path("token_ids"));
        assertThat(plain.path("stats").path("policy").asText()).isEqualTo("plain");
        assertThat(json.path("stats").path("proposer").asText()).isEqualTo("ngram");
        assertThat(json.path("stats").path("drafted").asInt()).isPositive();
        assertThat(json.path("stats").path("draft_calls").asInt()).isZero();
        assertOneLineError(run("generate", "--target", target.toString(), "--prompt", "x", "--proposer", "model"),
                "needs a draft model");
        assertOneLineError(run("generate", "--prompt", "x", "--proposer", "eagle"), "Unknown proposer 'eagle'");
        assertOneLineError(run("generate", "--prompt", "x", "--ngram-min", "3", "--ngram-max", "2"),
                "--ngram-max (2) must be >= --ngram-min (3)");
    }

    @Test
    void costMeasuresTheEmbeddedTargetsStepsPrefillsAndPlainDecoding() throws Exception {
        Path target = dev.specula.models.tiny.TinyModels.extract().target();
        Path report = temp.resolve("cost.json");
        Run run = run("cost", "--target", target.toString(), "--threads", "1", "--context", "8", "--max-k", "4",
                "--prefill", "64,16", "--repeat", "2", "--decode-tokens", "4", "--json", report.toString());
        assertThat(run.exitCode()).as(run.err()).isZero();
        JsonNode json = JSON.readTree(Files.readString(report));
        JsonNode config = JSON.readTree(Files.readString(target.resolve("config.json")));
        int heads = config.path("num_attention_heads").asInt();
        int headDim = config.path("head_dim").asInt(config.path("hidden_size").asInt() / heads);
        long kvPerToken = 2L * config.path("num_hidden_layers").asInt()
                * config.path("num_key_value_heads").asInt(heads) * headDim * 4;
        assertThat(json.path("kv_bytes_per_token").asLong()).isEqualTo(kvPerToken);
        // a directory's packed graph, as the starter's default batching: the embedded
        // graphs share their weights in model.onnx_data
        assertThat(json.path("graph").asText()).isEqualTo("model_packed.onnx");
        assertThat(json.path("file_bytes").asLong())
            .isEqualTo(Files.size(target.resolve("model_packed.onnx")) + Files.size(target.resolve("model.onnx_data")));
        assertThat(json.path("vocab").asInt()).isEqualTo(config.path("vocab_size").asInt());
        assertThat(json.path("load_ms").asDouble()).isPositive();
        JsonNode prefill = json.path("prefill");
        assertThat(prefill.size()).isEqualTo(2);
        assertThat(prefill.get(0).path("tokens").asInt()).isEqualTo(16);
        assertThat(prefill.get(1).path("tokens").asInt()).isEqualTo(64);
        assertThat(prefill.get(1).path("runs").asInt()).isEqualTo(2);
        assertThat(prefill.get(1).path("ms").asDouble()).isPositive();
        JsonNode steps = json.path("steps").path("by_k");
        assertThat(steps.size()).isEqualTo(4);
        for (int k = 1; k <= 4; k++) {
            assertThat(steps.get(k - 1).path("k").asInt()).isEqualTo(k);
            assertThat(steps.get(k - 1).path("runtime_ms").asDouble()).isPositive()
                .isLessThanOrEqualTo(steps.get(k - 1).path("ms").asDouble());
        }
        assertThat(steps.get(0).path("relative").asDouble()).isEqualTo(1.0);
        JsonNode growing = json.path("steps").path("growing");
        assertThat(growing.path("steps").asInt()).isEqualTo(32);
        assertThat(growing.path("runtime_ms").asDouble()).isPositive()
            .isLessThanOrEqualTo(growing.path("ms").asDouble());
        assertThat(json.path("plain").path("new_tokens").asInt()).isEqualTo(4);
        assertThat(json.path("plain").path("ms_per_token").asDouble()).isPositive();
        assertThat(JSON.readTree(run.out())).isEqualTo(json);
    }

    @Test
    void aDirectoryDecodesOnItsPackedGraphAndANamedGraphFileOnThatGraph() throws Exception {
        Path target = dev.specula.models.tiny.TinyModels.extract().target();
        for (String graph : List.of("model_packed.onnx", "model.onnx")) {
            Path location = graph.equals("model.onnx") ? target.resolve(graph) : target;
            Path report = temp.resolve(graph + ".json");
            Run run = run("cost", "--target", location.toString(), "--context", "8", "--max-k", "2", "--prefill", "16",
                    "--repeat", "1", "--decode-tokens", "2", "--json", report.toString());
            assertThat(run.exitCode()).as(run.err()).isZero();
            assertThat(JSON.readTree(Files.readString(report)).path("graph").asText()).isEqualTo(graph);
        }
        // the same greedy tokens from either graph of the pair
        List<String> texts = new ArrayList<>();
        for (String graph : List.of("", "model.onnx")) {
            Path pair = dev.specula.models.tiny.TinyModels.extract().draft();
            Run run = run("generate", "--target",
                    graph.isEmpty() ? target.toString() : target.resolve(graph).toString(), "--draft",
                    graph.isEmpty() ? pair.toString() : pair.resolve(graph).toString(), "--prompt", "def fibonacci(n):",
                    "--max-new-tokens", "24", "--json");
            assertThat(run.exitCode()).as(run.err()).isZero();
            texts.add(JSON.readTree(run.out()).path("text").asText());
        }
        assertThat(texts.get(0)).isNotEmpty().isEqualTo(texts.get(1));
    }

    @Test
    void costProfilesOneTokenStepsWithOnnxRuntimesProfiler() throws Exception {
        Path target = dev.specula.models.tiny.TinyModels.extract().target();
        Path report = temp.resolve("profile.json");
        Run run = run("cost", "--target", target.toString(), "--context", "8", "--profile",
                temp.resolve("trace").toString(), "--profile-steps", "5", "--json", report.toString());
        assertThat(run.exitCode()).as(run.err()).isZero();
        JsonNode profile = JSON.readTree(Files.readString(report)).path("profile");
        assertThat(profile.path("steps").asInt()).isEqualTo(5);
        assertThat(Path.of(profile.path("trace").asText())).exists().startsWith(temp);
        assertThat(profile.path("runtime_us").asDouble())
            .isGreaterThanOrEqualTo(profile.path("model_run_us").asDouble())
            .isLessThanOrEqualTo(profile.path("wall_us").asDouble());
        assertThat(profile.path("kernels_per_step").asDouble()).isGreaterThan(10);
        double shares = 0;
        java.util.Set<String> ops = new java.util.HashSet<>();
        for (JsonNode op : profile.path("by_op")) {
            shares += op.path("share").asDouble();
            ops.add(op.path("op").asText());
        }
        assertThat(shares).isCloseTo(1.0, org.assertj.core.api.Assertions.within(1e-9));
        // the weights' MatMuls: Specula's kernels by default where the engine's jar has
        // them (this build's platform), ONNX Runtime's elsewhere
        assertThat(ops).containsAnyOf("PanelMatMul", "MatMul");
    }

    @Test
    void badInputGivesOneClearLine() {
        assertOneLineError(run("frobnicate"), "unknown command 'frobnicate'");
        Path missing = temp.resolve("missing-model");
        assertOneLineError(run("generate", "--target", missing.toString(), "--prompt", "x"), missing.toString());
        assertOneLineError(run("generate", "--prompt", "x", "--policy", "fastest"),
                "Unknown speculation policy 'fastest'");
        assertOneLineError(run("generate", "--prompt", "x", "--chat", "y"), "exactly one of --prompt");
        assertOneLineError(run("generate", "--prompt", "x", "--temperature", "-1"), "temperature must be >= 0");
        assertOneLineError(run("generate", "--prompt-ids", "1,x"), "comma-separated integers");
        assertOneLineError(run("generate", "--prompt", "x", "--max-new-tokens", "100000"),
                "exceeds the context length");
        assertOneLineError(run("bench", "--prompts", temp.resolve("none.jsonl").toString(), "--policies", "plain"),
                "does not exist");
        assertOneLineError(run("cost", "--prefill", "128"), "--target DIR is required");
        assertOneLineError(run("cost", "--target", "t", "--draft", "d"), "run it once with the draft as --target");
        assertOneLineError(run("cost", "--target", "t", "--prefill", "128,x"), "--prefill must be positive");
        // the steps past the context would run out of the model's positions (2,048 for
        // the
        // embedded target): refused by name, before any measurement
        String embedded = dev.specula.models.tiny.TinyModels.extract().target().toString();
        assertOneLineError(run("cost", "--target", embedded, "--context", "2000", "--repeat", "10"),
                "--context 2000 leaves too little of the model's 2048-token context");
    }

    @Test
    void malformedPromptsFileNamesTheLine() throws Exception {
        Path prompts = temp.resolve("bad.jsonl");
        Files.writeString(prompts, "{\"prompt\": \"ok\"}\n{\"prompt\": 42}\n");
        assertOneLineError(run("bench", "--prompts", prompts.toString(), "--policies", "plain"), "line 2");
        Files.writeString(prompts, "{\"prompt\": \"ok\"}\nnot json\n");
        assertOneLineError(run("bench", "--prompts", prompts.toString(), "--policies", "plain"),
                "line 2 is not a JSON object");
    }

    private static void assertOneLineError(Run run, String expected) {
        assertThat(run.exitCode()).isEqualTo(2);
        assertThat(run.err().strip()).doesNotContain("\n").contains(expected).startsWith("specula-cli: error:");
    }

}
