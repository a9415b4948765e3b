package dev.specula.cli;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

import org.jspecify.annotations.Nullable;

import dev.specula.engine.ModelPair;
import dev.specula.model.ExecutionProvider;
import dev.specula.model.MatMulKernels;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;

/**
 * Which models to load and how: {@code --target}, {@code --draft}, {@code --griffin} (a
 * GRIFFIN feature head), {@code --threads}, {@code --provider}, {@code --device},
 * {@code --kernels} (onnx-runtime, auto or specula: whose float32 MatMul kernels).
 */
final class ModelOptions {

    static final Set<String> OPTIONS = Set.of("target", "draft", "griffin", "target-packed", "threads", "provider",
            "device", "kernels");

    /**
     * Model flags (no value): {@code --spinning}, idle ONNX Runtime threads spin;
     * {@code --no-kv-in-place}, every call returns a new copy of the KV, as before it was
     * written in place (to compare).
     */
    static final Set<String> FLAGS = Set.of("spinning", "no-kv-in-place");

    /** {@code flags} and the model flags. */
    static Set<String> flags(String... flags) {
        Set<String> all = new java.util.HashSet<>(FLAGS);
        all.addAll(Set.of(flags));
        return all;
    }

    /**
     * The file name of a directory's {@code --packed} graph (the embedded pair ships one
     * next to model.onnx).
     */
    static final String PACKED_GRAPH = "model_packed.onnx";

    private ModelOptions() {
    }

    /**
     * No --target: the embedded pair (its draft and feature head too, unless --draft or
     * --griffin names another). --target alone: target only. A directory with a
     * {@value #PACKED_GRAPH} decodes on it, as the starter's default batching does (one
     * row, no mask-to-lengths nodes and no padded-batch branch in each layer: the same
     * tokens, a cheaper call); a graph file named as the location, on that graph.
     */
    static ModelPair load(Arguments arguments) {
        Path[] locations = locations(arguments);
        return ModelPair.load(packedIfAny(locations[0]), locations[1] == null ? null : packedIfAny(locations[1]),
                locations[2], runtime(arguments));
    }

    /**
     * The graphs as located, model.onnx for a directory: the padded batch path's, whose
     * rows a packed graph cannot take.
     */
    static ModelPair loadAsLocated(Arguments arguments) {
        Path[] locations = locations(arguments);
        return ModelPair.load(locations[0], locations[1], locations[2], runtime(arguments));
    }

    /** A directory's {@value #PACKED_GRAPH} when it has one; else the location. */
    private static Path packedIfAny(Path location) {
        Path packed = location.resolve(PACKED_GRAPH);
        return java.nio.file.Files.isDirectory(location) && java.nio.file.Files.isRegularFile(packed) ? packed
                : location;
    }

    /**
     * {target, draft (or null), feature head (or null)} from --target / --draft /
     * --griffin, or the embedded pair's.
     */
    private static @Nullable Path[] locations(Arguments arguments) {
        Path griffin = arguments.has("griffin") ? Path.of(arguments.string("griffin", null)) : null;
        if (arguments.has("target")) {
            return new Path[] { Path.of(arguments.string("target", null)),
                    arguments.has("draft") ? Path.of(arguments.string("draft", null)) : null, griffin };
        }
        if (!TinyModels.isAvailable()) {
            throw new CliException(
                    "No --target given and the embedded pair (specula-models-tiny) is not on the classpath");
        }
        TinyModels.Pair pair = TinyModels.extract();
        return new Path[] { pair.target(),
                arguments.has("draft") ? Path.of(arguments.string("draft", null)) : pair.draft(),
                griffin != null ? griffin : pair.head().orElse(null) };
    }

    /**
     * The pair for unpadded (EMS-SD) batching: the target's --packed graph
     * ({@code --target-packed}, or model_packed.onnx in the target directory), and the
     * draft's packed graph when it has one.
     */
    static ModelPair loadPacked(Arguments arguments) {
        return loadPacked(arguments, "or use --batch-path padded");
    }

    /**
     * {@link #loadPacked(Arguments)}, whose error for a missing packed graph ends with
     * {@code alternative} (what else the user can do).
     */
    static ModelPair loadPacked(Arguments arguments, String alternative) {
        Path[] locations = locations(arguments);
        Path target = locations[0];
        Path draft = locations[1];
        Path packedTarget = arguments.has("target-packed") ? Path.of(arguments.string("target-packed", null))
                : target.resolve(PACKED_GRAPH);
        if (!java.nio.file.Files.exists(packedTarget)) {
            throw new CliException(
                    "No packed target graph at " + packedTarget.toAbsolutePath() + ": export the target with "
                            + "`python -m specula_tools export ... --packed` and pass --target-packed, " + alternative);
        }
        Path packedDraft = draft == null ? null : packedIfAny(draft);
        return ModelPair.load(packedTarget, packedDraft, locations[2], runtime(arguments));
    }

    private static RuntimeOptions runtime(Arguments arguments) {
        String provider = arguments.string("provider", "cpu").toUpperCase(Locale.ROOT);
        ExecutionProvider executionProvider;
        try {
            executionProvider = ExecutionProvider.valueOf(provider);
        }
        catch (IllegalArgumentException ex) {
            throw new CliException("--provider must be cpu or cuda but was '" + arguments.string("provider", "") + "'");
        }
        RuntimeOptions options = RuntimeOptions.defaults()
            .withProvider(executionProvider, arguments.integer("device", 0, 0, 64))
            .withIntraOpThreads(arguments.integer("threads", 1, 0, 1024))
            .withSpinning(arguments.has("spinning"))
            .withKvInPlace(!arguments.has("no-kv-in-place"));
        if (arguments.has("kernels")) {
            try {
                options = options.withKernels(MatMulKernels.parse(arguments.string("kernels", ""), "--kernels"));
            }
            catch (IllegalArgumentException ex) {
                throw new CliException(ex.getMessage());
            }
        }
        // --profile PREFIX: only commands that accept it (cost) get here with it
        return arguments.has("profile") ? options.withProfiling(Path.of(arguments.string("profile", null))) : options;
    }

}
