package dev.specula.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.jspecify.annotations.Nullable;

import dev.specula.engine.GenerationStats;

/**
 * Figures of a benchmark per (policy, category): tokens/s, speedup over plain decoding,
 * mean accepted length, acceptance, the share of wall time outside ONNX Runtime, and
 * Leviathan et al.'s expected speedup for the measured acceptance and costs: <pre>
 *   ideal = (1 − α^(γ+1)) / (1 − α) · t_target(1) / (γ · t_draft(1) + t_target(γ+1))
 * </pre> α = accepted / (accepted + rejections) (the drafts the target actually judged),
 * γ the policy's fixed length (for adaptive policies the mean drafted per round), t the
 * mean ONNX Runtime time of a plain target step, a draft step and this policy's
 * verification call (first calls of a request, which prefill, excluded).
 */
final class BenchReport {

    private final Map<String, Map<String, GenerationStats>> totals;

    private final @Nullable String plainPolicy;

    private final int mismatches;

    /** The policy of each run (a run's key may name its proposer too). */
    private final Map<String, String> policyOf;

    /** What proposed in each run that speculated. */
    private final Map<String, String> proposerOf;

    /** The draft shape of each run: chain, or the tree's. */
    private final Map<String, String> shapeOf;

    /**
     * A report over the runs of one benchmark.
     * @param totals run → category → statistics
     * @param policyOf run → its policy's name (missing: the run's key is the name)
     * @param proposerOf run → what proposed its drafts (missing: nothing did)
     * @param shapeOf run → its draft shape (missing: chain)
     */
    BenchReport(Map<String, Map<String, GenerationStats>> totals, Map<String, String> policyOf,
            Map<String, String> proposerOf, Map<String, String> shapeOf, int mismatches) {
        this.totals = totals;
        this.plainPolicy = totals.containsKey("plain") ? "plain" : null;
        this.policyOf = policyOf;
        this.proposerOf = proposerOf;
        this.shapeOf = shapeOf;
        this.mismatches = mismatches;
    }

    List<Map<String, @Nullable Object>> rows() {
        List<Map<String, @Nullable Object>> rows = new ArrayList<>();
        for (Map.Entry<String, Map<String, GenerationStats>> policy : totals.entrySet()) {
            for (Map.Entry<String, GenerationStats> category : policy.getValue().entrySet()) {
                GenerationStats stats = category.getValue();
                GenerationStats plain = plainPolicy == null ? null : totals.get(plainPolicy).get(category.getKey());
                Map<String, @Nullable Object> row = new LinkedHashMap<>();
                String policyName = policyOf.getOrDefault(policy.getKey(), policy.getKey());
                row.put("policy", policyName);
                row.put("proposer", proposerOf.get(policy.getKey()));
                row.put("draft_shape", proposerOf.containsKey(policy.getKey())
                        ? shapeOf.getOrDefault(policy.getKey(), "chain") : null);
                row.put("tree_nodes_mean", stats.treeRounds() == 0 ? null : stats.meanTreeNodes());
                row.put("tree_rounds", stats.treeRounds());
                row.put("category", category.getKey());
                row.put("tokens_per_second", stats.tokensPerSecond());
                row.put("speedup_vs_plain", plain == null ? null : stats.tokensPerSecond() / plain.tokensPerSecond());
                row.put("mean_accepted_length", stats.meanAcceptedLength());
                row.put("acceptance_rate", stats.acceptanceRate());
                row.put("alpha", stats.perTokenAcceptance());
                row.put("outside_ort_share", (double) stats.outsideRuntimeNanos() / stats.wallNanos());
                row.put("leviathan_expected_speedup", plain == null ? null : expectedSpeedup(policyName, stats, plain));
                row.put("wasted_draft_tokens", stats.drafted() - stats.accepted());
                row.put("generated_tokens", stats.generatedTokens());
                row.put("requests", stats.requests());
                row.put("target_step_ms", stats.meanTargetStepNanos() / 1e6);
                row.put("draft_step_ms", stats.draftCalls() == 0 ? null : stats.meanDraftStepNanos() / 1e6);
                // the grammar's cost per output token, and as a share of a plain target
                // step
                double grammarPerToken = stats.generatedTokens() == 0 ? 0
                        : (double) stats.grammarNanos() / stats.generatedTokens();
                row.put("grammar_us_per_token", stats.grammarNanos() == 0 ? null : grammarPerToken / 1e3);
                row.put("grammar_share_of_plain_step", stats.grammarNanos() == 0 || plain == null ? null
                        : grammarPerToken / plain.meanTargetStepNanos());
                rows.add(row);
            }
        }
        return rows;
    }

    static @Nullable Double expectedSpeedup(String policy, GenerationStats stats, GenerationStats plain) {
        if (stats.drafted() == 0) {
            return 1.0;
        }
        if (stats.treeRounds() > 0) {
            // Leviathan's formula is a chain's
            return null;
        }
        double gamma = policy.startsWith("fixed:") ? Double.parseDouble(policy.substring("fixed:".length()))
                : stats.meanDrafted();
        double alpha = stats.perTokenAcceptance();
        double expectedTokens = alpha >= 1 ? gamma + 1 : (1 - Math.pow(alpha, gamma + 1)) / (1 - alpha);
        // a proposer without model calls (prompt lookup) drafts for free
        double draftStep = stats.draftCalls() == 0 ? 0 : stats.meanDraftStepNanos();
        double cost = gamma * draftStep + stats.meanTargetStepNanos();
        double speedup = expectedTokens * plain.meanTargetStepNanos() / cost;
        return Double.isFinite(speedup) ? speedup : null;
    }

    String markdown() {
        StringBuilder md = new StringBuilder();
        md.append(
                "| policy | proposer | shape | category | tokens/s | speedup vs plain | mean accepted | acceptance | tree nodes | wasted drafts | outside ORT | ideal speedup | measured / ideal |\n");
        md.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Map<String, @Nullable Object> row : rows()) {
            Double speedup = (Double) row.get("speedup_vs_plain");
            Double ideal = (Double) row.get("leviathan_expected_speedup");
            md.append(String.format(Locale.ROOT,
                    "| %s | %s | %s | %s | %.1f | %s | %.2f | %.3f | %s | %d | %.1f%% | %s | %s |%n", row.get("policy"),
                    row.get("proposer") == null ? "" : row.get("proposer"),
                    row.get("draft_shape") == null ? "" : row.get("draft_shape"), row.get("category"),
                    (Double) row.get("tokens_per_second"), format(speedup, "x"),
                    (Double) row.get("mean_accepted_length"), (Double) row.get("acceptance_rate"),
                    format((Double) row.get("tree_nodes_mean"), ""), (Long) row.get("wasted_draft_tokens"),
                    100 * (Double) row.get("outside_ort_share"), format(ideal, "x"), speedup == null || ideal == null
                            ? "" : String.format(Locale.ROOT, "%.0f%%", 100 * speedup / ideal)));
        }
        if (rows().stream().anyMatch((row) -> row.get("grammar_us_per_token") != null)) {
            md.append("\n| policy | proposer | category | grammar µs/token | share of a plain target step |\n");
            md.append("|---|---|---|---:|---:|\n");
            for (Map<String, @Nullable Object> row : rows()) {
                Double share = (Double) row.get("grammar_share_of_plain_step");
                md.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |%n", row.get("policy"),
                        row.get("proposer") == null ? "" : row.get("proposer"), row.get("category"),
                        format((Double) row.get("grammar_us_per_token"), ""),
                        share == null ? "" : String.format(Locale.ROOT, "%.1f%%", 100 * share)));
            }
        }
        md.append(String.format(Locale.ROOT, "%nGreedy outputs differing between policies: %d%n", mismatches));
        return md.toString();
    }

    private static String format(@Nullable Double value, String suffix) {
        return value == null ? "" : String.format(Locale.ROOT, "%.2f%s", value, suffix);
    }

    static Map<String, Object> machine() {
        Map<String, Object> machine = new LinkedHashMap<>();
        machine.put("cores", Runtime.getRuntime().availableProcessors());
        machine.put("cpu", cpuModel());
        machine.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
        machine.put("arch", System.getProperty("os.arch"));
        machine.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        machine.put("onnxruntime", dev.specula.model.OrtEnvironments.get().getVersion());
        machine.put("max_heap_mb", Runtime.getRuntime().maxMemory() >> 20);
        return machine;
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        }
        catch (IOException | RuntimeException ignored) {
            // not Linux
        }
        return "unknown";
    }

}
