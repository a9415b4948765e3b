package dev.specula.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.specula.model.DecoderModel;

/**
 * Where the time of one-token steps goes, from the model's side and from ONNX Runtime's
 * profiler (the model loaded with {@code RuntimeOptions.withProfiling}): per step, the
 * wall time of {@code DecoderModel.forward}, the part inside {@code OrtSession.run} (what
 * the engine measures), the profiler's {@code model_run} and the sum of its node kernels;
 * and per operator type, kernels per step and time per step. Wall − run is the Java side
 * (feeds, JNI, KV bookkeeping); run − kernels is ONNX Runtime's executor (allocating
 * outputs, including the present KV, and scheduling).
 */
final class CostProfile {

    private static final ObjectMapper JSON = new ObjectMapper();

    private CostProfile() {
    }

    /**
     * {@code steps} one-token steps over a cache that starts at {@code context} tokens
     * and grows by one each step, as plain decoding's do; then the profiler's trace,
     * read.
     */
    static Map<String, Object> of(DecoderModel model, int context, int steps, Random random, PrintStream err)
            throws Exception {
        long[][] times = CostCommand.oneTokenSteps(model, context, steps, random);
        long[] wall = times[0];
        long[] runtime = times[1];
        Path trace = model.endProfiling();
        Map<String, Object> profile = summarize(trace, steps);
        profile.put("context", context);
        profile.put("steps", steps);
        profile.put("wall_us", CostCommand.median(wall) / 1e3);
        profile.put("runtime_us", CostCommand.median(runtime) / 1e3);
        err.printf(
                "cost: profile of %d one-token steps: wall %.0f us, OrtSession.run %.0f us, model_run %.0f us, "
                        + "kernels %.0f us in %.0f node runs; trace %s%n",
                steps, CostCommand.median(wall) / 1e3, CostCommand.median(runtime) / 1e3,
                (double) profile.get("model_run_us"), (double) profile.get("kernel_us"),
                (double) profile.get("kernels_per_step"), trace);
        return profile;
    }

    /**
     * The last {@code steps} {@code model_run} events of the trace and the node kernels
     * inside them: medians of the runs, kernel time and counts per step, by operator
     * type.
     */
    static Map<String, Object> summarize(Path trace, int steps) throws IOException {
        JsonNode events = JSON.readTree(trace.toFile());
        List<long[]> runs = new ArrayList<>(); // {start µs, duration µs}
        for (JsonNode event : events) {
            if ("Session".equals(event.path("cat").asText()) && "model_run".equals(event.path("name").asText())) {
                runs.add(new long[] { event.path("ts").asLong(), event.path("dur").asLong() });
            }
        }
        if (runs.size() < steps) {
            throw new CliException("cost: the profiler's trace " + trace + " has " + runs.size()
                    + " model runs, fewer than the " + steps + " steps profiled");
        }
        runs.sort(Comparator.comparingLong((long[] run) -> run[0]));
        List<long[]> measured = runs.subList(runs.size() - steps, runs.size());
        long first = measured.get(0)[0];
        long[] runDurations = measured.stream().mapToLong((run) -> run[1]).toArray();
        Map<String, long[]> byOp = new HashMap<>(); // op type → {kernel runs, µs}
        long kernelMicros = 0;
        long kernelRuns = 0;
        for (JsonNode event : events) {
            if (!"Node".equals(event.path("cat").asText()) || !event.path("name").asText().endsWith("_kernel_time")
                    || event.path("ts").asLong() < first) {
                continue;
            }
            long[] totals = byOp.computeIfAbsent(event.path("args").path("op_name").asText("?"), (op) -> new long[2]);
            totals[0]++;
            totals[1] += event.path("dur").asLong();
            kernelMicros += event.path("dur").asLong();
            kernelRuns++;
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("trace", trace.toString());
        summary.put("model_run_us", CostCommand.median(runDurations));
        summary.put("kernel_us", (double) kernelMicros / steps);
        summary.put("kernels_per_step", (double) kernelRuns / steps);
        List<Map<String, Object>> ops = new ArrayList<>();
        List<Map.Entry<String, long[]>> sorted = new ArrayList<>(byOp.entrySet());
        sorted.sort((x, y) -> Long.compare(y.getValue()[1], x.getValue()[1]));
        for (Map.Entry<String, long[]> entry : sorted) {
            Map<String, Object> op = new LinkedHashMap<>();
            op.put("op", entry.getKey());
            op.put("per_step", (double) entry.getValue()[0] / steps);
            op.put("us_per_step", (double) entry.getValue()[1] / steps);
            op.put("share", (double) entry.getValue()[1] / Math.max(1, kernelMicros));
            ops.add(op);
        }
        summary.put("by_op", ops);
        return summary;
    }

}
