package dev.specula.cli;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

import org.jspecify.annotations.Nullable;

import dev.specula.engine.Engine;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.GenerationStats;
import dev.specula.engine.ModelPair;
import dev.specula.proposer.PromptLookup;
import dev.specula.sampling.SamplingParams;

/**
 * {@code bench --concurrency 1,4,8,16 [--batch-path padded|unpadded|both]}: N clients
 * send the prompts (each prompt × repeat once, round robin) and wait for each answer
 * before sending the next; N > 1 runs through the continuous-batching scheduler with
 * batch size N. tokens_per_second is the total over all requests. Concurrency 1 decodes
 * directly (batch_path "none"). Greedy outputs are compared across every run.
 */
final class ConcurrencyBench {

    private final List<int[]> promptIds;

    /** Each prompt's prediction, or null. */
    private final List<int @Nullable []> predictions;

    private final PromptLookup lookup;

    private final List<String> promptNames;

    private final int maxNewTokens;

    private final int repeat;

    private final boolean ignoreEos;

    private final SamplingParams sampling;

    private final PrintStream err;

    /**
     * Prompt index → the first greedy output seen, to check that batching never changes
     * one.
     */
    private final Map<Integer, int[]> reference = new LinkedHashMap<>();

    private int mismatches;

    ConcurrencyBench(List<int[]> promptIds, List<int @Nullable []> predictions, List<String> promptNames,
            int maxNewTokens, int repeat, boolean ignoreEos, SamplingParams sampling, PromptLookup lookup,
            PrintStream err) {
        this.promptIds = promptIds;
        this.predictions = predictions;
        this.lookup = lookup;
        this.promptNames = promptNames;
        this.maxNewTokens = maxNewTokens;
        this.repeat = repeat;
        this.ignoreEos = ignoreEos;
        this.sampling = sampling;
        this.err = err;
    }

    /** One row: N clients, one policy and proposer, one batch path. */
    Map<String, Object> run(ModelPair models, int concurrency, String batchPath, BenchCommand.Run run)
            throws Exception {
        String policyName = run.policy();
        int total = promptIds.size() * repeat;
        AtomicInteger next = new AtomicInteger();
        GenerationStats stats = new GenerationStats();
        long start;
        long wall;
        if (concurrency == 1) {
            try (Engine engine = new Engine(models, Engine.Settings.defaults().withoutDraftTimeLimit())) {
                start = System.nanoTime();
                for (int i = 0; i < total; i++) {
                    record(i % promptIds.size(), engine.generate(request(i % promptIds.size(), run)), stats);
                }
                wall = System.nanoTime() - start;
            }
        }
        else {
            try (Engine engine = new Engine(models,
                    new Engine.Settings(concurrency, total + concurrency, Duration.ofMillis(2), null))) {
                ExecutorService clients = Executors.newFixedThreadPool(concurrency);
                try {
                    start = System.nanoTime();
                    List<Future<?>> running = new ArrayList<>();
                    for (int c = 0; c < concurrency; c++) {
                        running.add(clients.submit(() -> {
                            for (int i = next.getAndIncrement(); i < total; i = next.getAndIncrement()) {
                                int prompt = i % promptIds.size();
                                GenerationResult result = engine.submit(request(prompt, run)).join();
                                synchronized (this) {
                                    record(prompt, result, stats);
                                }
                            }
                            return null;
                        }));
                    }
                    for (Future<?> client : running) {
                        client.get();
                    }
                    wall = System.nanoTime() - start;
                }
                finally {
                    clients.shutdownNow();
                }
            }
        }
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("policy", policyName);
        row.put("proposer", run.proposer() == null ? null : run.proposer().id());
        row.put("category", "all");
        row.put("concurrency", concurrency);
        row.put("batch_path", batchPath);
        row.put("tokens_per_second", stats.generatedTokens() * 1e9 / wall);
        row.put("mean_accepted_length", stats.meanAcceptedLength());
        row.put("acceptance_rate", stats.acceptanceRate());
        row.put("wasted_draft_tokens", stats.drafted() - stats.accepted());
        row.put("generated_tokens", stats.generatedTokens());
        row.put("requests", total);
        row.put("target_calls", stats.targetCalls());
        row.put("wall_ms", wall / 1e6);
        err.printf(Locale.ROOT, "bench: concurrency %d, %s, %s %s: %.1f tokens/s%n", concurrency, batchPath, policyName,
                run.proposer() == null ? "" : run.proposer(), stats.generatedTokens() * 1e9 / wall);
        return row;
    }

    /** Prompt {@code prompt}'s request in {@code run}, its prediction included. */
    GenerationRequest request(int prompt, BenchCommand.Run run) {
        return run.request(promptIds.get(prompt), predictions.get(prompt), sampling, maxNewTokens, ignoreEos, lookup);
    }

    private void record(int prompt, GenerationResult result, GenerationStats stats) {
        stats.add(result.stats());
        if (!sampling.isGreedy()) {
            return;
        }
        int[] seen = reference.putIfAbsent(prompt, result.tokenIds());
        if (seen != null && !Arrays.equals(seen, result.tokenIds())) {
            mismatches++;
            err.println("bench: greedy output differs on prompt " + promptNames.get(prompt));
        }
    }

    int mismatches() {
        return mismatches;
    }

    /**
     * Markdown table of concurrency rows, speedups against plain decoding at the same
     * concurrency and path.
     */
    static String markdown(List<Map<String, Object>> rows) {
        StringBuilder md = new StringBuilder();
        md.append(
                "| concurrency | batch path | policy | proposer | total tokens/s | vs plain (same N, path) | mean accepted | target calls |\n");
        md.append("|---:|---|---|---|---:|---:|---:|---:|\n");
        for (Map<String, Object> row : rows) {
            Object speedup = row.get("speedup_vs_plain");
            md.append(String.format(Locale.ROOT, "| %d | %s | %s | %s | %.1f | %s | %.2f | %d |%n",
                    (Integer) row.get("concurrency"), row.get("batch_path"), row.get("policy"),
                    row.get("proposer") == null ? "" : row.get("proposer"), (Double) row.get("tokens_per_second"),
                    speedup == null ? "" : String.format(Locale.ROOT, "%.2fx", (Double) speedup),
                    (Double) row.get("mean_accepted_length"), (Long) row.get("target_calls")));
        }
        return md.toString();
    }

    /**
     * Adds speedup_vs_plain to each row: its tokens/s over plain's at the same
     * concurrency and batch path.
     */
    static void addSpeedups(List<Map<String, Object>> rows) {
        for (Map<String, Object> row : rows) {
            rows.stream()
                .filter((other) -> "plain".equals(other.get("policy"))
                        && other.get("concurrency").equals(row.get("concurrency"))
                        && other.get("batch_path").equals(row.get("batch_path")))
                .findFirst()
                .ifPresent((plain) -> row.put("speedup_vs_plain",
                        (Double) row.get("tokens_per_second") / (Double) plain.get("tokens_per_second")));
        }
    }

}
