package dev.specula.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import dev.specula.engine.Engine;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.ModelPair;
import dev.specula.kv.KvSequence;
import dev.specula.model.DecoderModel;
import dev.specula.model.GraphSignature;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.policy.PlainPolicy;

/**
 * {@code specula-cli cost --target DIR [--threads N] [--context 128] [--max-k 16]
 * [--prefill 128,2048,8192] [--repeat 5] [--decode-tokens 32] [--json OUT.json]}: what
 * one model costs on this machine, the figures speculative decoding's speedup is computed
 * from.
 *
 * <p>
 * In one process, in this order: load time and resident memory; prefill time and peak
 * memory for each prompt length; the time of one forward step of k = 1..max-k tokens over
 * a cache of {@code context} tokens, k rows of logits returned (what verifying k − 1
 * drafts costs); plain greedy decoding through the engine, ms per token. Prompts are
 * random token ids (seed 0): cost does not depend on the weights' values or the tokens.
 * One model per process, so that its memory is read alone.
 *
 * <p>
 * With {@code --profile PREFIX [--profile-steps 50]} it only profiles one-token steps
 * instead ({@link CostProfile}): the profiler costs time on every call, so the other
 * figures are taken in a run without it.
 */
final class CostCommand {

    /** One-token steps growing the cache, per --repeat. */
    private static final int GROWING_STEPS_PER_REPEAT = 16;

    static final String USAGE = "cost --target DIR [--threads N] [--context 128] [--max-k 16] "
            + "[--prefill 128,2048,8192] [--repeat 5] [--decode-tokens 32] [--json OUT.json] "
            + "[--profile PREFIX [--profile-steps 50]]";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /**
     * Prefills up to this many tokens are repeated {@code --repeat} times; longer ones
     * run once.
     */
    private static final int REPEATED_PREFILL_MAX_TOKENS = 512;

    private CostCommand() {
    }

    static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
        Set<String> valued = new HashSet<>(ModelOptions.OPTIONS);
        valued.addAll(
                Set.of("context", "max-k", "prefill", "repeat", "decode-tokens", "json", "profile", "profile-steps"));
        Arguments arguments = Arguments.parse("cost", args, 1, valued, ModelOptions.flags(), Set.of());
        if (!arguments.has("target")) {
            throw new CliException("cost: --target DIR is required (the model to measure)");
        }
        if (arguments.has("draft")) {
            throw new CliException("cost: measures one model per process; run it once with the draft as --target");
        }
        int context = arguments.integer("context", 128, 1, 1 << 20);
        int maxK = arguments.integer("max-k", 16, 1, 256);
        int repeat = arguments.integer("repeat", 5, 1, 1000);
        int decodeTokens = arguments.integer("decode-tokens", 32, 2, 1 << 16);
        int[] prefillLengths = lengths(arguments.string("prefill", "128,2048,8192"));
        int profileSteps = arguments.integer("profile-steps", 50, 1, 100_000);

        long residentBefore = ProcessMemory.residentBytes();
        long loadStart = System.nanoTime();
        try (ModelPair models = ModelOptions.load(arguments)) {
            long loadNanos = System.nanoTime() - loadStart;
            DecoderModel model = models.target();
            checkRoom(model.contextLength(), context, arguments.has("profile") ? profileSteps
                    : Math.max(Math.max(maxK, GROWING_STEPS_PER_REPEAT * repeat), decodeTokens));
            Map<String, Object> report = new LinkedHashMap<>();
            report.put("model", model.files().directory().toString());
            report.put("graph", model.files().model().getFileName().toString());
            report.put("file_bytes", fileBytes(model.files().model()));
            report.put("vocab", model.logitsWidth());
            report.put("context_length", model.contextLength());
            report.put("kv_bytes_per_token", kvBytesPerToken(model.signature()));
            report.put("threads", arguments.string("threads", "default"));
            report.put("load_ms", loadNanos / 1e6);
            report.put("rss_before_load_bytes", residentBefore);
            report.put("rss_after_load_bytes", ProcessMemory.residentBytes());
            err.printf("cost: %s loaded in %.1f s, RSS %s%n", model.name(), loadNanos / 1e9,
                    gib(ProcessMemory.residentBytes()));

            Random random = new Random(0);
            warmUp(model, random);
            if (arguments.has("profile")) {
                report.put("profile", CostProfile.of(model, context, profileSteps, random, err));
                report.put("rss_end_bytes", ProcessMemory.residentBytes());
                write(report, arguments, out);
                return 0;
            }
            report.put("prefill", prefills(model, prefillLengths, repeat, random, err));
            report.put("steps", steps(model, context, maxK, repeat, random, err));
            report.put("plain", plainDecoding(models, context, decodeTokens, random, err));
            report.put("rss_end_bytes", ProcessMemory.residentBytes());
            write(report, arguments, out);
        }
        return 0;
    }

    private static void write(Map<String, Object> report, Arguments arguments, PrintStream out) throws IOException {
        String json = JSON.writeValueAsString(report);
        if (arguments.has("json")) {
            Files.writeString(Path.of(arguments.string("json", null)), json);
        }
        out.println(json);
    }

    /**
     * A short prefill and a few steps: sessions allocate their arenas and pick kernels.
     */
    private static void warmUp(DecoderModel model, Random random) throws Exception {
        try (KvSequence cache = model.newCache()) {
            model.forward(new StepInput(cache, randomIds(random, model, 16), 1, false, null));
            for (int k = 1; k <= 4; k++) {
                model.forward(new StepInput(cache, randomIds(random, model, k), k, false, null));
            }
        }
    }

    /**
     * Each prompt length: wall time of the prefill (1 row of logits) and the process's
     * peak memory during it.
     */
    private static List<Map<String, Object>> prefills(DecoderModel model, int[] lengths, int repeat, Random random,
            PrintStream err) throws Exception {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int length : lengths) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("tokens", length);
            if (length >= model.contextLength()) {
                row.put("skipped", "the model's context is " + model.contextLength() + " tokens");
                rows.add(row);
                continue;
            }
            int runs = length <= REPEATED_PREFILL_MAX_TOKENS ? repeat : 1;
            long[] nanos = new long[runs];
            long before = ProcessMemory.residentBytes();
            boolean peakReset = ProcessMemory.resetPeak();
            for (int run = 0; run < runs; run++) {
                int[] prompt = randomIds(random, model, length);
                try (KvSequence cache = model.newCache()) {
                    long start = System.nanoTime();
                    model.forward(new StepInput(cache, prompt, 1, false, null));
                    nanos[run] = System.nanoTime() - start;
                }
            }
            double ms = median(nanos) / 1e6;
            row.put("ms", ms);
            row.put("runs", runs);
            row.put("tokens_per_second", length / (ms / 1e3));
            row.put("rss_before_bytes", before);
            row.put(peakReset ? "peak_rss_bytes" : "peak_rss_since_start_bytes", ProcessMemory.peakResidentBytes());
            err.printf("cost: prefill %,d tokens: %.0f ms (%.0f tokens/s), peak RSS %s%n", length, ms,
                    length / (ms / 1e3), gib(ProcessMemory.peakResidentBytes()));
            rows.add(row);
        }
        return rows;
    }

    /**
     * Steps of k = 1..maxK tokens over a {@code context}-token cache, k logits rows each,
     * interleaved over k and repeated; each is rolled back before the next, as a rejected
     * draft is (the engine's hole rollback and compaction included). Median wall time per
     * k, and ONNX Runtime's own time within it.
     */
    private static Map<String, Object> steps(DecoderModel model, int context, int maxK, int repeat, Random random,
            PrintStream err) throws Exception {
        long[][] wall = new long[maxK][repeat];
        long[][] runtime = new long[maxK][repeat];
        try (KvSequence cache = model.newCache()) {
            model.forward(new StepInput(cache, randomIds(random, model, context), 1, false, null));
            for (int round = -1; round < repeat; round++) { // round -1 warms every k up
                for (int k = 1; k <= maxK; k++) {
                    int[] tokens = randomIds(random, model, k);
                    long start = System.nanoTime();
                    StepOutput output = model.forward(new StepInput(cache, tokens, k, false, null));
                    long elapsed = System.nanoTime() - start;
                    cache.rollbackTo(context);
                    if (round >= 0) {
                        wall[k - 1][round] = elapsed;
                        runtime[k - 1][round] = output.runNanos();
                    }
                }
            }
        }
        double one = median(wall[0]);
        List<Map<String, Object>> byK = new ArrayList<>();
        for (int k = 1; k <= maxK; k++) {
            double ms = median(wall[k - 1]) / 1e6;
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("k", k);
            row.put("ms", ms);
            row.put("runtime_ms", median(runtime[k - 1]) / 1e6);
            row.put("relative", median(wall[k - 1]) / one);
            byK.add(row);
        }
        err.printf("cost: step over %d tokens: t(1) %.2f ms, t(%d)/t(1) %.2f%n", context, one / 1e6, maxK,
                median(wall[maxK - 1]) / one);
        Map<String, Object> steps = new LinkedHashMap<>();
        steps.put("context", context);
        steps.put("repeat", repeat);
        steps.put("by_k", byK);
        steps.put("growing", growing(model, context, GROWING_STEPS_PER_REPEAT * repeat, random, err));
        return steps;
    }

    /**
     * One-token steps that append without rolling back, as plain decoding's do: the cache
     * grows from {@code context} by one token per step. Median wall time and ONNX
     * Runtime's time.
     */
    private static Map<String, Object> growing(DecoderModel model, int context, int count, Random random,
            PrintStream err) throws Exception {
        long[][] times = oneTokenSteps(model, context, count, random);
        long[] wall = times[0];
        long[] runtime = times[1];
        Map<String, Object> growing = new LinkedHashMap<>();
        growing.put("steps", count);
        growing.put("ms", median(wall) / 1e6);
        growing.put("runtime_ms", median(runtime) / 1e6);
        err.printf("cost: one-token steps growing the cache from %d tokens: %.2f ms%n", context, median(wall) / 1e6);
        return growing;
    }

    /**
     * {@code count} one-token steps over a fresh cache of {@code context} random tokens,
     * appended without rollback: {wall nanos, ONNX Runtime nanos} per step.
     */
    static long[][] oneTokenSteps(DecoderModel model, int context, int count, Random random) throws Exception {
        long[] wall = new long[count];
        long[] runtime = new long[count];
        try (KvSequence cache = model.newCache()) {
            model.forward(new StepInput(cache, randomIds(random, model, context), 1, false, null));
            for (int step = 0; step < count; step++) {
                int[] token = randomIds(random, model, 1);
                long start = System.nanoTime();
                StepOutput output = model.forward(new StepInput(cache, token, 1, false, null));
                wall[step] = System.nanoTime() - start;
                runtime[step] = output.runNanos();
            }
        }
        return new long[][] { wall, runtime };
    }

    /**
     * Greedy plain decoding through the engine (scheduler, sampling, detokenizer
     * included).
     */
    private static Map<String, Object> plainDecoding(ModelPair models, int context, int decodeTokens, Random random,
            PrintStream err) {
        GenerationRequest request = GenerationRequest.builder(randomIds(random, models.target(), context))
            .maxNewTokens(decodeTokens)
            .ignoreEos(true)
            .policy(PlainPolicy::new)
            .build();
        GenerationResult result;
        try (Engine engine = new Engine(models, Engine.Settings.defaults())) {
            result = engine.generate(request);
        }
        double tokensPerSecond = result.stats().decodeTokensPerSecond();
        Map<String, Object> plain = new LinkedHashMap<>();
        plain.put("prompt_tokens", context);
        plain.put("new_tokens", result.tokenIds().length);
        plain.put("decode_tokens_per_second", tokensPerSecond);
        plain.put("ms_per_token", 1e3 / tokensPerSecond);
        plain.put("mean_target_step_ms", result.stats().meanTargetStepNanos() / 1e6);
        err.printf("cost: plain decoding %.2f ms/token (%.1f tokens/s)%n", 1e3 / tokensPerSecond, tokensPerSecond);
        return plain;
    }

    /** KV of one token in every layer: keys and values. */
    static long kvBytesPerToken(GraphSignature signature) {
        long elementBytes = signature.kvType() == ai.onnxruntime.OnnxJavaType.FLOAT ? 4 : 2;
        return 2L * signature.layers() * signature.kvHeads() * signature.headDim() * elementBytes;
    }

    /**
     * The graph and the external data files beside it ({@code .onnx_data},
     * {@code .onnx.data}, {@code .data}); without one of its own, the model.onnx_data
     * that a second graph (model_packed.onnx) shares.
     */
    private static long fileBytes(Path graph) throws IOException {
        long bytes = Files.size(graph);
        String name = graph.getFileName().toString();
        long data = 0;
        for (String file : List.of(name + "_data", name + ".data", name.replaceFirst("\\.onnx$", ".data"))) {
            Path path = graph.resolveSibling(file);
            if (!file.equals(name) && Files.isRegularFile(path)) {
                data += Files.size(path);
            }
        }
        Path shared = graph.resolveSibling("model.onnx_data");
        return bytes + (data == 0 && Files.isRegularFile(shared) ? Files.size(shared) : data);
    }

    /**
     * Refuses a {@code --context} whose measurements would run past the model's context:
     * {@code after} tokens follow the context (the longest of --max-k, the growing
     * one-token steps and --decode-tokens; or --profile-steps).
     */
    private static void checkRoom(int contextLength, int context, int after) {
        if (context + after > contextLength) {
            throw new CliException("--context " + context + " leaves too little of the model's " + contextLength
                    + "-token context: the steps measured after it take " + after + " more tokens (the longest of "
                    + "--max-k, " + GROWING_STEPS_PER_REPEAT + " x --repeat one-token steps and --decode-tokens; or "
                    + "--profile-steps); use --context " + Math.max(1, contextLength - after) + " or less");
        }
    }

    static int[] lengths(String list) {
        try {
            int[] lengths = Arrays.stream(list.split(","))
                .map(String::trim)
                .filter((s) -> !s.isEmpty())
                .mapToInt(Integer::parseInt)
                .sorted()
                .toArray();
            if (lengths.length == 0 || lengths[0] < 1) {
                throw new NumberFormatException();
            }
            return lengths;
        }
        catch (NumberFormatException ex) {
            throw new CliException(
                    "cost: --prefill must be positive token counts, e.g. 128,2048,8192, but was '" + list + "'");
        }
    }

    static int[] randomIds(Random random, DecoderModel model, int count) {
        // ids the tokenizer knows: a random-weight model often has a tokenizer smaller
        // than its vocabulary
        int vocab = Math.min(model.logitsWidth(), model.tokenizer().vocabularySize());
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }

    static double median(long[] values) {
        long[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    }

    private static String gib(long bytes) {
        return bytes < 0 ? "unknown" : String.format("%.2f GiB", bytes / (double) (1L << 30));
    }

}
