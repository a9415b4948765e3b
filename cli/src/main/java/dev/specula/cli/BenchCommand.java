package dev.specula.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.jspecify.annotations.Nullable;

import dev.specula.engine.Engine;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.GenerationStats;
import dev.specula.engine.ModelPair;
import dev.specula.grammar.CompiledGrammar;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.PolicyResources;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TreeShape;
import dev.specula.sampling.SamplingParams;

/**
 * {@code specula-cli bench [--target DIR] [--draft DIR] [--griffin DIR] --prompts FILE.jsonl [--max-new-tokens 128]
 * --policies plain,fixed:1,... [--repeat 3] [--warmup 1] [--warmup-prompts FILE.jsonl] [--json OUT.json] [--markdown OUT.md]}.
 *
 * <p>
 * Runs are interleaved in one process (repeat → prompt → policy) so every policy sees the
 * same machine state; ratios are computed between policies of the same run. Greedy
 * outputs of every policy are checked against each other per prompt (speculation is
 * lossless), and mismatches are reported.
 */
final class BenchCommand {

    static final String USAGE = "bench [--target DIR] [--draft DIR] [--griffin DIR] --prompts FILE.jsonl [--max-new-tokens 128] "
            + "--policies plain,fixed:1,fixed:2,fixed:4,... [--proposers model,ngram,model+ngram,suffix,model+suffix,prediction,griffin] [--ngram-min 1] [--ngram-max 4] [--draft-shape chain,tree] [--tree-nodes auto,8,16] [--tree-width 2,3] [--categories a,b] [--repeat 3] [--warmup 1] [--warmup-prompts FILE.jsonl] [--ignore-eos] [--response-format json|SCHEMA.json] [--json OUT.json] [--markdown OUT.md] [--chart OUT.png] "
            + "[--concurrency 1,4,8,16 [--batch-path padded|unpadded|both] [--target-packed FILE]] "
            + "[--threads 1] [--kernels onnx-runtime|auto|specula]";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private BenchCommand() {
    }

    /** A prompt of the file; {@code prediction}: its predicted output, or null. */
    record BenchPrompt(String id, String category, PromptInput input, @Nullable String prediction) {
    }

    static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
        Set<String> valued = new HashSet<>(ModelOptions.OPTIONS);
        valued.addAll(ProposerOptions.OPTIONS);
        valued.addAll(TreeOptions.OPTIONS);
        valued.add("proposers");
        valued.add("categories");
        valued.addAll(Set.of("prompts", "warmup-prompts", "max-new-tokens", "policies", "repeat", "warmup", "json",
                "markdown", "chart", "gamma", "concurrency", "batch-path", "policy-option", "temperature", "top-p",
                "top-k", "seed", "response-format"));
        Arguments arguments = Arguments.parse("bench", args, 1, valued, ModelOptions.flags("ignore-eos"),
                Set.of("policy-option"));
        if (!arguments.has("prompts")) {
            throw new CliException("bench: --prompts FILE.jsonl is required");
        }
        if (!arguments.has("policies")) {
            throw new CliException("bench: --policies is required, e.g. --policies plain,fixed:2,fixed:4");
        }
        List<BenchPrompt> prompts = readPrompts(Path.of(arguments.string("prompts", null)));
        if (arguments.has("categories")) {
            Set<String> wanted = new LinkedHashSet<>(Arrays.asList(arguments.string("categories", "").split(",")));
            prompts.removeIf((prompt) -> !wanted.contains(prompt.category()));
            if (prompts.isEmpty()) {
                throw new CliException("bench: no prompt of the file is in --categories " + wanted);
            }
        }
        List<String> policyNames = new ArrayList<>(
                new LinkedHashSet<>(Arrays.asList(arguments.string("policies", "").split(","))));
        policyNames.removeIf(String::isBlank);
        int maxNewTokens = arguments.integer("max-new-tokens", 128, 1, 1 << 20);
        int repeat = arguments.integer("repeat", 3, 1, 1000);
        int warmup = arguments.integer("warmup", 1, 0, 1000);
        boolean ignoreEos = arguments.has("ignore-eos");
        if (ignoreEos && arguments.has("response-format")) {
            throw new CliException("bench: --response-format ends each answer where its grammar completes (an end "
                    + "token): drop --ignore-eos");
        }
        SamplingParams sampling = arguments.sampling();
        List<@Nullable ProposerKind> proposers = ProposerOptions.kinds(arguments);
        PromptLookup lookup = ProposerOptions.lookup(arguments);
        // run --warmup times before the measured prompts, never measured; without the
        // option, the first three measured prompts warm up
        List<BenchPrompt> warmupPrompts = arguments.has("warmup-prompts")
                ? readPrompts(Path.of(arguments.string("warmup-prompts", null)))
                : prompts.subList(0, Math.min(3, prompts.size()));
        if (proposers.contains(ProposerKind.PREDICTION)) {
            for (BenchPrompt prompt : Stream.concat(prompts.stream(), warmupPrompts.stream()).toList()) {
                if (prompt.prediction() == null) {
                    throw new CliException("bench: --proposers prediction needs a \"prediction\" in every prompt, "
                            + "and prompt " + prompt.id() + " has none");
                }
            }
        }
        if (arguments.has("concurrency")) {
            if (arguments.has("warmup-prompts")) {
                throw new CliException("bench: --warmup-prompts is for single-stream runs; with --concurrency the "
                        + "first prompt warms up: drop --warmup-prompts");
            }
            return runConcurrency(arguments, prompts, policyNames, proposers, lookup, maxNewTokens, repeat, warmup,
                    ignoreEos, sampling, out, err);
        }

        // trees need the packed graphs: then every run decodes on them, chains and plain
        // too
        try (ModelPair models = TreeOptions.wantsTrees(arguments)
                ? ModelOptions.loadPacked(arguments, "or bench chains only (--draft-shape chain)")
                : ModelOptions.load(arguments); PolicyResources resources = new PolicyResources()) {
            Map<String, Run> policies = runs(policyNames, proposers, arguments, models, resources);
            List<int[]> promptIds = promptIds(prompts, models);
            List<int @Nullable []> predictions = predictions(prompts, models);
            List<int[]> warmupIds = promptIds(warmupPrompts, models);
            List<int @Nullable []> warmupPredictions = predictions(warmupPrompts, models);
            // no draft time limit and no batching: the engine holds no thread, nothing to
            // close
            Engine decoder = new Engine(models, Engine.Settings.defaults().withoutDraftTimeLimit());
            for (int w = 0; w < warmup; w++) {
                for (Run run : policies.values()) {
                    for (int p = 0; p < warmupIds.size(); p++) {
                        decoder.generate(run.request(warmupIds.get(p), warmupPredictions.get(p), sampling, maxNewTokens,
                                ignoreEos, lookup));
                    }
                }
            }
            // (policy, category) -> stats; category "all" holds every prompt
            Map<String, Map<String, GenerationStats>> totals = new LinkedHashMap<>();
            Map<String, String> proposerOf = new LinkedHashMap<>();
            Map<String, String> shapeOf = new LinkedHashMap<>();
            policies.forEach((key, run) -> shapeOf.put(key, run.tree() == null ? "chain" : run.tree().toString()));
            int mismatches = 0;
            for (int r = 0; r < repeat; r++) {
                for (int p = 0; p < prompts.size(); p++) {
                    int[] reference = null;
                    for (Map.Entry<String, Run> policy : policies.entrySet()) {
                        GenerationResult result = decoder.generate(policy.getValue()
                            .request(promptIds.get(p), predictions.get(p), sampling, maxNewTokens, ignoreEos, lookup));
                        if (result.proposer() != null) {
                            proposerOf.put(policy.getKey(), result.proposer());
                        }
                        Map<String, GenerationStats> byCategory = totals.computeIfAbsent(policy.getKey(),
                                (key) -> new LinkedHashMap<>());
                        byCategory.computeIfAbsent("all", (key) -> new GenerationStats()).add(result.stats());
                        byCategory.computeIfAbsent(prompts.get(p).category(), (key) -> new GenerationStats())
                            .add(result.stats());
                        if (sampling.isGreedy()) {
                            if (reference == null) {
                                reference = result.tokenIds();
                            }
                            else if (!Arrays.equals(reference, result.tokenIds())) {
                                mismatches++;
                                err.println("bench: greedy output of " + policy.getKey() + " differs from "
                                        + policies.keySet().iterator().next() + " on prompt " + prompts.get(p).id());
                            }
                        }
                    }
                }
                err.printf("bench: repeat %d/%d done%n", r + 1, repeat);
            }
            Map<String, String> policyOf = new LinkedHashMap<>();
            policies.forEach((key, run) -> policyOf.put(key, run.policy()));
            BenchReport report = new BenchReport(totals, policyOf, proposerOf, shapeOf, mismatches);
            out.print(report.markdown());
            if (arguments.has("json")) {
                Map<String, Object> json = new LinkedHashMap<>();
                json.put("machine", BenchReport.machine());
                json.put("settings", Map.of("prompts", prompts.size(), "max_new_tokens", maxNewTokens, "repeat", repeat,
                        "warmup", warmup, "warmup_prompts", warmupIds.size(), "temperature", sampling.temperature(),
                        "greedy_mismatches", mismatches, "target_kernels", models.target().kernelsInUse().spelling()));
                json.put("results", report.rows());
                JSON.writeValue(Path.of(arguments.string("json", null)).toFile(), json);
            }
            if (arguments.has("markdown")) {
                Files.writeString(Path.of(arguments.string("markdown", null)), report.markdown());
            }
            if (arguments.has("chart")) {
                BenchChart.write(report.rows(), Path.of(arguments.string("chart", null)));
            }
        }
        return 0;
    }

    /**
     * {@code --concurrency}: total tokens/s of N clients through the batch scheduler, per
     * batch path and policy.
     */
    private static int runConcurrency(Arguments arguments, List<BenchPrompt> prompts, List<String> policyNames,
            List<@Nullable ProposerKind> proposers, PromptLookup lookup, int maxNewTokens, int repeat, int warmup,
            boolean ignoreEos, SamplingParams sampling, PrintStream out, PrintStream err) throws Exception {
        List<Integer> levels = new ArrayList<>();
        for (String level : arguments.string("concurrency", "").split(",")) {
            try {
                int value = Integer.parseInt(level.trim());
                if (value < 1 || value > 1024) {
                    throw new NumberFormatException();
                }
                levels.add(value);
            }
            catch (NumberFormatException ex) {
                throw new CliException(
                        "bench: --concurrency must list integers in [1, 1024], e.g. 1,4,8,16, but has '" + level + "'");
            }
        }
        String pathOption = arguments.string("batch-path", "both");
        List<String> paths = switch (pathOption) {
            case "padded" -> List.of("padded");
            case "unpadded" -> List.of("unpadded");
            case "both" -> List.of("padded", "unpadded");
            default -> throw new CliException(
                    "bench: --batch-path must be padded, unpadded or both but was '" + pathOption + "'");
        };
        if (TreeOptions.wantsTrees(arguments) && paths.contains("padded")) {
            throw new CliException("bench: draft trees need the packed graphs of the unpadded path: add "
                    + "--batch-path unpadded, or bench chains only (--draft-shape chain)");
        }
        List<Map<String, Object>> rows = new ArrayList<>();
        ConcurrencyBench bench = null;
        for (String path : paths) {
            try (ModelPair models = path.equals("unpadded") ? ModelOptions.loadPacked(arguments)
                    : ModelOptions.loadAsLocated(arguments); PolicyResources resources = new PolicyResources()) {
                List<int[]> ids = new ArrayList<>();
                List<String> names = new ArrayList<>();
                for (BenchPrompt prompt : prompts) {
                    ids.add(prompt.input().encode(models.target()));
                    names.add(prompt.id());
                }
                if (bench == null) {
                    bench = new ConcurrencyBench(ids, predictions(prompts, models), names, maxNewTokens, repeat,
                            ignoreEos, sampling, lookup, err);
                }
                Map<String, Run> policies = runs(policyNames, proposers, arguments, models, resources);
                Engine warm = new Engine(models, Engine.Settings.defaults().withoutDraftTimeLimit());
                for (int w = 0; w < warmup; w++) {
                    for (Run run : policies.values()) {
                        warm.generate(bench.request(0, run));
                    }
                }
                for (int level : levels) {
                    if (level == 1 && path.equals("unpadded") && paths.size() > 1) {
                        // concurrency 1 decodes directly: measured once, on the padded
                        // models
                        continue;
                    }
                    for (Run run : policies.values()) {
                        rows.add(bench.run(models, level, level == 1 ? "none" : path, run));
                    }
                }
            }
        }
        ConcurrencyBench.addSpeedups(rows);
        String markdown = ConcurrencyBench.markdown(rows) + String.format(java.util.Locale.ROOT,
                "%nGreedy outputs differing between runs: %d%n", bench.mismatches());
        out.print(markdown);
        if (arguments.has("json")) {
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("machine", BenchReport.machine());
            json.put("settings",
                    Map.of("prompts", prompts.size(), "max_new_tokens", maxNewTokens, "repeat", repeat, "warmup",
                            warmup, "temperature", sampling.temperature(), "greedy_mismatches", bench.mismatches(),
                            "concurrency", levels, "batch_path", pathOption));
            json.put("results", rows);
            JSON.writeValue(Path.of(arguments.string("json", null)).toFile(), json);
        }
        if (arguments.has("markdown")) {
            Files.writeString(Path.of(arguments.string("markdown", null)), markdown);
        }
        return 0;
    }

    /**
     * Every (policy, proposer, draft shape) is one run; plain proposes nothing and runs
     * once; a tree shapes only the draft model's proposals, so it runs with the proposers
     * that use the model. Keys name all three when several run.
     */
    private static Map<String, Run> runs(List<String> policyNames, List<@Nullable ProposerKind> proposers,
            Arguments arguments, ModelPair models, PolicyResources resources) throws IOException {
        Map<String, Run> runs = new LinkedHashMap<>();
        CompiledGrammar grammar = ResponseFormats.grammar(arguments.string("response-format", null), models);
        List<@Nullable TreeShape> shapes = TreeOptions.shapes(arguments);
        for (String name : policyNames) {
            Supplier<SpeculationPolicy> factory = PolicyOptions.factory(name.trim(), arguments, models, resources);
            for (ProposerKind proposer : proposers) {
                if (name.trim().equals(PlainPolicy.NAME)) {
                    runs.put(PlainPolicy.NAME, new Run(PlainPolicy.NAME, null, factory, grammar, null));
                    break;
                }
                boolean usesModel = proposer == null ? models.draft().isPresent() || models.head().isPresent()
                        : proposer.usesDrafter();
                for (TreeShape shape : shapes) {
                    if (shape != null && !usesModel) {
                        continue;
                    }
                    String key = name.trim() + (proposers.size() == 1 ? "" : " " + proposer)
                            + (shapes.size() == 1 ? "" : " " + (shape == null ? "chain" : shape));
                    runs.put(key, new Run(name.trim(), proposer, factory, grammar, shape));
                }
            }
        }
        return runs;
    }

    /** Each prompt's prediction tokenized for the target, or null. */
    private static List<int[]> promptIds(List<BenchPrompt> prompts, ModelPair models) {
        List<int[]> ids = new ArrayList<>();
        for (BenchPrompt prompt : prompts) {
            ids.add(prompt.input().encode(models.target()));
        }
        return ids;
    }

    private static List<int @Nullable []> predictions(List<BenchPrompt> prompts, ModelPair models) {
        List<int @Nullable []> predictions = new ArrayList<>();
        for (BenchPrompt prompt : prompts) {
            predictions.add(prompt.prediction() == null ? null
                    : models.target().tokenizer().encode(prompt.prediction(), false));
        }
        return predictions;
    }

    /**
     * One benchmarked configuration: a policy and what proposes for it (null: default).
     */
    record Run(String policy, @Nullable ProposerKind proposer, Supplier<SpeculationPolicy> factory,
            @Nullable CompiledGrammar grammar, @Nullable TreeShape tree) {

        /**
         * The prompt's request; its prediction goes with it when this run's proposer is
         * {@code prediction} or the default (which then is {@code prediction}).
         */
        GenerationRequest request(int[] prompt, int @Nullable [] prediction, SamplingParams sampling, int maxNewTokens,
                boolean ignoreEos, PromptLookup lookup) {
            boolean predicts = proposer == null || proposer == ProposerKind.PREDICTION;
            return GenerationRequest.builder(prompt)
                .sampling(sampling)
                .maxNewTokens(maxNewTokens)
                .ignoreEos(ignoreEos)
                .policy(factory)
                .proposer(proposer)
                .tree(tree)
                .promptLookup(lookup)
                .prediction(predicts && !PlainPolicy.NAME.equals(policy) ? prediction : null)
                .grammar(grammar)
                .build();
        }

    }

    /**
     * One object per line: {"id":…, "category":…, "prompt"|"chat"|"prompt_ids": …,
     * "prediction": … (optional)}.
     */
    static List<BenchPrompt> readPrompts(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        }
        catch (NoSuchFileException ex) {
            throw new CliException("bench: prompts file " + file.toAbsolutePath() + " does not exist");
        }
        catch (IOException ex) {
            throw new CliException("bench: cannot read prompts file " + file.toAbsolutePath() + ": " + ex.getMessage());
        }
        ObjectMapper reader = new ObjectMapper();
        List<BenchPrompt> prompts = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty()) {
                continue;
            }
            String where = file + " line " + (i + 1);
            JsonNode node;
            try {
                node = reader.readTree(line);
            }
            catch (com.fasterxml.jackson.core.JsonProcessingException ex) {
                throw new CliException("bench: " + where + " is not a JSON object: " + ex.getOriginalMessage());
            }
            if (!node.isObject()) {
                throw new CliException("bench: " + where + " is not a JSON object");
            }
            PromptInput input;
            if (node.path("prompt").isTextual()) {
                input = PromptInput.ofText(node.get("prompt").asText());
            }
            else if (node.path("chat").isTextual()) {
                input = PromptInput.ofChat(node.get("chat").asText());
            }
            else if (node.path("prompt_ids").isArray() && !node.get("prompt_ids").isEmpty()) {
                int[] ids = new int[node.get("prompt_ids").size()];
                for (int k = 0; k < ids.length; k++) {
                    JsonNode id = node.get("prompt_ids").get(k);
                    if (!id.isIntegralNumber()) {
                        throw new CliException("bench: " + where + ": prompt_ids must hold integers");
                    }
                    ids[k] = id.asInt();
                }
                input = PromptInput.ofIds(ids);
            }
            else {
                throw new CliException("bench: " + where
                        + " needs a \"prompt\" or \"chat\" string or a non-empty \"prompt_ids\" array");
            }
            String id = node.path("id").asText(String.valueOf(prompts.size() + 1));
            if (node.has("prediction") && !node.get("prediction").isTextual()) {
                throw new CliException("bench: " + where + ": \"prediction\" must be a string");
            }
            String prediction = node.has("prediction") ? node.get("prediction").asText() : null;
            prompts.add(new BenchPrompt(id, node.path("category").asText("default"), input, prediction));
        }
        if (prompts.isEmpty()) {
            throw new CliException("bench: prompts file " + file.toAbsolutePath() + " holds no prompts");
        }
        return prompts;
    }

}
